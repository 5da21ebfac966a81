"""infogauss: Gaussian models of contrastive (InfoNCE) embeddings.

``import infogauss`` needs only numpy, scipy and scikit-learn. Parts with optional
dependencies live in their own modules and say which extra to install when it is missing:
``infogauss.contrastive`` (torch: the ``train`` extra), ``infogauss.retrieval`` (faiss),
``infogauss.anomaly`` (pyod), ``infogauss.distributed`` (dask).
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import gaussian
from .gaussian import GaussianStats
from .model import GaussianModel

__all__ = [
    "__version__",
    "gaussian",
    "GaussianStats",
    "GaussianModel",
]
