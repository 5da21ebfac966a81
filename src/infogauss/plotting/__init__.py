"""Plots (the ``plot`` extra). matplotlib is imported in one module only: ``_mpl``.

Each submodule draws for one part of the toolkit and imports pyplot from ``_mpl``. The
functions are exported here lazily: ``import infogauss.plotting`` works without matplotlib,
and the first access to a plot function (``from infogauss.plotting import plot_report``)
imports its submodule, raising an ImportError that names the extra when matplotlib is
missing.

- :func:`plot_report`, :func:`plot_norm_histogram`, :func:`plot_qq_columns`,
  :func:`plot_mahalanobis_qq`: a :class:`~infogauss.diagnostics.GaussianityReport`.
- :func:`plot_ood_roc`: ROC curves of OOD detectors; :func:`save_figure` saves and closes one.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "plot_report": "diagnostics",
    "plot_norm_histogram": "diagnostics",
    "plot_qq_columns": "diagnostics",
    "plot_mahalanobis_qq": "diagnostics",
    "plot_ood_roc": "ood",
    "save_figure": "ood",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
