r"""Calibrated nearest-neighbour retrieval over whitened embeddings.

A raw cosine score says little on its own: 0.6 may be a sure match for one query and the best of
a million non-matches for another. The retriever turns scores into p-values compared with a
false-match level ``alpha``:

* **the same-item null** (the default, :mod:`~infogauss.retrieval.neighbour`) — is the query
  closer to a database item, relative to its next-best items, than a new item from the
  database's distribution ever is? Its law comes from database items held out one at a time,
  so it reflects the database's real neighbour structure; this is the question near-duplicate
  search asks, and the null whose false-match rate holds on real embeddings.

The pair nulls test *independence* ("more similar than a random pair"), exact for whitened
Gaussian embeddings but not "the same item" on real ones, where same-class items are far closer
than random pairs:

* **per-pair null** — for whitened isotropic Gaussian vectors the cosine :math:`c` of two
  independent vectors in :math:`d` dimensions satisfies
  :math:`(1+c)/2 \sim \mathrm{Beta}\big(\tfrac{d-1}{2}, \tfrac{d-1}{2}\big)`
  (:class:`AnalyticCosineNull`); or the law is estimated from random database pairs
  (:class:`EmpiricalCosineNull`, pairs of different labels when labels are given, duplicate
  rows counted once);
* **top-1 correction** — the best of ``n`` non-matches: Šidák, :math:`1-(1-p)^n`
  (:func:`sidak_correction`, exact for independent pairs), or an extreme-value law fitted to
  observed best-of-``n`` similarities; both respect the bound :math:`c \le 1`;
* **query-level OOD p-value** from :class:`~infogauss.GaussianModel` so the retriever can abstain;
* **P(relevant | score)** from isotonic or Platt calibration on labelled pairs.

Layout (each part reads alone):

* :mod:`~infogauss.retrieval.neighbour` — the same-item null (numpy only);
* :mod:`~infogauss.retrieval.nulls` — the pair null laws and corrections (scipy only);
* :mod:`~infogauss.retrieval.duplicates` — exact and near-exact duplicate rows (scipy only);
* ``_input`` (input conversion, :func:`as_float32_rows`), ``_result``
  (:class:`RetrievalResult`, relevance calibrators) — numpy/scikit-learn only;
* ``_index`` — the faiss index (the only ``import faiss``), ``_estimator`` —
  :class:`CalibratedRetriever`, ``_persist`` — its model file.

Only :class:`CalibratedRetriever` and :data:`INDEX_TYPES` need faiss; they are imported on first
use, so ``import infogauss.retrieval`` and the null laws work without it, and using them without
faiss raises an ImportError naming ``pip install 'infogauss[faiss]'``.
"""

from __future__ import annotations

import importlib
import importlib.util

from ._input import as_float32_rows
from ._result import RetrievalResult
from .duplicates import DUPLICATE_TOL, find_duplicates
from .neighbour import NeighbourNull
from .nulls import (
    CORRECTIONS,
    NULL_METHODS,
    AnalyticCosineNull,
    EmpiricalCosineNull,
    empirical_cosine_null,
    sidak_correction,
)

# names whose module imports faiss, resolved on first use
_FAISS_NAMES = {"CalibratedRetriever": "._estimator", "INDEX_TYPES": "._index"}

__all__ = [
    "RetrievalResult",
    "NeighbourNull",
    "AnalyticCosineNull",
    "EmpiricalCosineNull",
    "empirical_cosine_null",
    "sidak_correction",
    "find_duplicates",
    "as_float32_rows",
    "NULL_METHODS",
    "CORRECTIONS",
    "DUPLICATE_TOL",
]


def _faiss_installed() -> bool:
    try:
        return importlib.util.find_spec("faiss") is not None
    except (ImportError, ValueError):  # pragma: no cover - a broken installation
        return False


if _faiss_installed():
    __all__ = ["CalibratedRetriever", *__all__, "INDEX_TYPES"]


def __getattr__(name: str):
    module = _FAISS_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_FAISS_NAMES])
