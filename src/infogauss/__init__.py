"""infogauss: Gaussian models of contrastive (InfoNCE) embeddings.

``import infogauss`` needs only numpy, scipy and scikit-learn. Parts with optional
dependencies live in their own modules and say which extra to install when it is missing:
``infogauss.contrastive`` (torch: the ``train`` extra), ``infogauss.retrieval`` (faiss),
``infogauss.anomaly`` (pyod), ``infogauss.distributed`` (dask).
"""

from __future__ import annotations

from . import calibration, datasets, gaussian, persistence, streaming
from ._validation import PrecisionWarning
from ._version import __version__
from .diagnostics import GaussianityReport, diagnose
from .gaussian import GaussianStats
from .gaussianize import Gaussianizer
from .model import GaussianModel
from .ood import (
    EnsembleOOD,
    GaussianMixtureOOD,
    KernelDensityOOD,
    LocalGaussianOOD,
    MahalanobisOOD,
    NormAwareOOD,
    conformal_pvalues,
)
from .persistence import load

__all__ = [
    "__version__",
    "gaussian",
    "calibration",
    "persistence",
    "streaming",
    "datasets",
    "GaussianStats",
    "GaussianModel",
    "Gaussianizer",
    "GaussianityReport",
    "diagnose",
    "MahalanobisOOD",
    "LocalGaussianOOD",
    "GaussianMixtureOOD",
    "KernelDensityOOD",
    "EnsembleOOD",
    "NormAwareOOD",
    "conformal_pvalues",
    "load",
    "PrecisionWarning",
]

# Names whose modules need an optional dependency are resolved on first use, so that
# ``import infogauss`` never imports faiss, pyod or torch. They are in ``__all__`` when their
# dependency is installed (``from infogauss import *`` then imports it; without it the name is
# left out instead of failing, and using it raises an ImportError naming the extra).
_LAZY = {
    "GaussianLikelihoodDetector": "anomaly",
    "CalibratedRetriever": "retrieval",
    "RetrievalResult": "retrieval",
}
_LAZY_NEEDS = {"anomaly": "pyod", "retrieval": "faiss"}


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # pragma: no cover - a broken installation
        return False


__all__ += [name for name, mod in _LAZY.items() if _installed(_LAZY_NEEDS[mod])]


def __getattr__(name: str):
    if name == "contrastive":  # the torch fence: imported on first use only
        import importlib

        return importlib.import_module(".contrastive", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'infogauss' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, "contrastive"])
