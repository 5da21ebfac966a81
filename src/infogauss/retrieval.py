r"""Calibrated nearest-neighbour retrieval over whitened embeddings (the only faiss import).

A raw cosine score says little on its own: 0.6 may be a sure match for one query and the best of
a million non-matches for another. Under a Gaussian model of the embeddings the similarity of a
*non-matching* pair has a known law, so a score can be turned into a p-value, corrected for having
searched ``n`` items, and compared with a false-match level ``alpha``:

* **per-pair null** — for whitened isotropic Gaussian vectors the cosine :math:`c` of two
  independent vectors in :math:`d` dimensions satisfies
  :math:`(1+c)/2 \sim \mathrm{Beta}\big(\tfrac{d-1}{2}, \tfrac{d-1}{2}\big)`
  (:class:`AnalyticCosineNull`); or the law is estimated from random database pairs
  (:class:`EmpiricalCosineNull`, pairs of different labels when labels are given);
* **top-1 correction** — the best of ``n`` non-matches: Šidák, :math:`1-(1-p)^n` computed as
  ``-expm1(n * log1p(-p))`` (exact for independent pairs), or an extreme-value law (GEV, which
  contains the Gumbel law) fitted to observed best-of-``n`` similarities;
* **query-level OOD p-value** from :class:`~infogauss.GaussianModel` so the retriever can abstain;
* **P(relevant | score)** from isotonic or Platt calibration on labelled pairs.

:class:`CalibratedRetriever` is the estimator; the null laws are small pure objects it delegates
to. The search itself is faiss (exact inner product by default, IVF and HNSW as options).

Input is converted once, in :func:`as_float32_rows`, to the C-contiguous float32 arrays faiss
needs; ambiguous input (ragged sequences, object/complex/string data) is refused with a TypeError.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse, stats
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

try:
    import faiss
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "infogauss.retrieval needs faiss, which is not installed: "
        "pip install 'infogauss[faiss]' (or install faiss-cpu / faiss-gpu directly)"
    ) from exc

from ._validation import (
    all_finite,
    check_float_array,
    check_positive_int,
    check_probability,
    reject_device_tensor,
)
from .metrics import brier_score, expected_calibration_error
from .model import GaussianModel

__all__ = [
    "CalibratedRetriever",
    "RetrievalResult",
    "AnalyticCosineNull",
    "EmpiricalCosineNull",
    "empirical_cosine_null",
    "sidak_correction",
    "as_float32_rows",
    "INDEX_TYPES",
    "NULL_METHODS",
    "CORRECTIONS",
]

NULL_METHODS = ("analytic", "empirical")
CORRECTIONS = ("sidak", "evt", None)
WHITEN_METHODS = ("zca", "pca", None)
CALIBRATION_METHODS = ("isotonic", "platt")
# Bytes of working memory for one block of similarities / gathered neighbour vectors.
_BLOCK_BYTES = 1 << 26


# --------------------------------------------------------------------------------------
# Input conversion: the one place
# --------------------------------------------------------------------------------------
def as_float32_rows(
    X: Any, name: str = "X", *, n_features: int | None = None, min_rows: int = 1
) -> np.ndarray:
    """Return ``X`` as the C-contiguous float32 ``(n, d)`` array faiss needs.

    This is the only place input is converted. Lists and integer/boolean/float64 arrays
    are converted (unambiguous); ragged sequences and object, complex or string data are
    refused with a TypeError; wrong ndim, too few rows, a feature-count mismatch and NaN or
    infinity (also values that overflow float32) with a ValueError.

    Examples
    --------
    >>> as_float32_rows([[1, 2], [3, 4]]).dtype
    dtype('float32')
    """
    reject_device_tensor(X, name)
    if X is None or isinstance(X, (str, bytes, dict)):
        raise TypeError(f"`{name}` must be a 2-D array of numbers, got {type(X).__name__}")
    if sparse.issparse(X):
        raise TypeError(
            f"`{name}` is a sparse {type(X).__name__}; sparse input is not supported (faiss "
            "searches dense vectors): densify it with .toarray()"
        )
    try:
        arr = np.asarray(X)
    except ValueError as exc:  # ragged nested sequences
        raise TypeError(
            f"`{name}` must be a 2-D array of numbers, got a ragged sequence (rows of different "
            f"lengths): {exc}"
        ) from exc
    if arr.ndim == 2 and n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"`{name}` has {arr.shape[1]} features (columns), but the database has {n_features}"
        )
    arr = check_float_array(arr, name, min_rows=min_rows, finite=True)
    with np.errstate(over="ignore"):  # overflow to inf is reported just below
        out = np.ascontiguousarray(arr, dtype="float32")
    if arr.dtype != np.float32 and not all_finite(out):
        raise ValueError(
            f"`{name}` has values too large for float32 (faiss works in float32); rescale it"
        )
    return out


def _check_labels(labels: Any, n: int, name: str) -> np.ndarray | None:
    if labels is None:
        return None
    reject_device_tensor(labels, name)
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"`{name}` must be a 1-D array with one label per row ({n}), got shape {arr.shape}"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"`{name}` contains NaN or infinity")
    if arr.dtype.kind == "c":
        raise TypeError(f"`{name}` must hold integer or string labels, got dtype {arr.dtype}")
    return arr


def _check_k(k: Any, n_database: int) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"`k` must be an integer in [1, {n_database}], got {k!r}")
    if not (1 <= int(k) <= n_database):
        raise ValueError(
            f"`k` must be an integer in [1, n_database={n_database}], got {k!r}"
        )
    return int(k)


def _unit_rows(Z: np.ndarray, name: str) -> np.ndarray:
    """Divide each row by its L2 norm, in place (norms in float64, so no overflow)."""
    zero_rows = 0
    step = max(1, _BLOCK_BYTES // (8 * max(Z.shape[1], 1)))
    for start in range(0, Z.shape[0], step):
        block = Z[start : start + step]
        norms = np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float64))
        zero = norms == 0
        zero_rows += int(zero.sum())
        norms[zero] = 1.0
        block /= norms[:, None].astype(Z.dtype)
    if zero_rows:
        warnings.warn(
            f"{zero_rows} row(s) of `{name}` have zero norm; their cosine similarity is set to "
            "0. Remove zero vectors (or use whitening) to get meaningful scores.",
            RuntimeWarning,
            stacklevel=3,
        )
    return Z


# --------------------------------------------------------------------------------------
# Null laws of the similarity of a non-matching pair
# --------------------------------------------------------------------------------------
def sidak_correction(pvalues: Any, n: int) -> np.ndarray:
    r"""Šidák correction :math:`1-(1-p)^n` for the best of ``n`` independent comparisons.

    Computed as ``-expm1(n * log1p(-p))``, accurate for tiny ``p`` (where it is ``≈ n p``) and
    equal to 1 at ``p = 1``.

    Examples
    --------
    >>> round(float(sidak_correction(1e-12, 1000)) / 1e-9, 6)   # naive 1-(1-p)**n: 0.99998
    1.0
    """
    p = np.clip(np.asarray(pvalues, dtype=np.float64), 0.0, 1.0)
    n = check_positive_int(n, "n")
    with np.errstate(divide="ignore"):
        return 0.0 - np.expm1(n * np.log1p(-p))


def _check_correction(correction: Any) -> None:
    if correction not in CORRECTIONS:
        raise ValueError(f"`correction` must be one of {CORRECTIONS}, got {correction!r}")


@dataclass(frozen=True)
class AnalyticCosineNull:
    r"""Law of the cosine of two independent isotropic Gaussian vectors in ``dim`` dimensions.

    :math:`(1+c)/2 \sim \mathrm{Beta}(a, a)` with :math:`a=(d-1)/2` (mean 0, variance
    :math:`1/d`). Exact for whitened Gaussian embeddings with a known whitening; with an
    estimated one it is accurate when ``n_database >> dim``.

    Parameters
    ----------
    dim : int
        Dimension of the (whitened) space, at least 2.

    Examples
    --------
    >>> null = AnalyticCosineNull(dim=3)   # (1+c)/2 ~ Beta(1, 1): c is uniform on [-1, 1]
    >>> float(null.sf(0.5))
    0.25
    """

    dim: int

    def __post_init__(self) -> None:
        check_positive_int(self.dim, "dim", minimum=2)

    @property
    def _a(self) -> float:
        return (self.dim - 1) / 2.0

    def sf(self, similarities: Any) -> np.ndarray:
        """Per-pair p-values ``P(C >= c)`` (small = more similar than non-matches are)."""
        u = (np.clip(np.asarray(similarities, dtype=np.float64), -1.0, 1.0) + 1.0) / 2.0
        return stats.beta.sf(u, self._a, self._a)

    def top1_sf(self, similarities: Any, n: int, correction: str | None = "sidak") -> np.ndarray:
        r"""p-values of ``similarities`` as the best of ``n`` independent non-matches.

        ``correction="sidak"``: :math:`1-F(c)^n`, the exact law of the best of ``n``
        independent pairs (for whitened Gaussian vectors the similarities to a fixed query are
        independent); ``None``: the per-pair p-value. ``"evt"`` fits an extreme-value law to
        observed maxima and so needs :class:`EmpiricalCosineNull`.
        """
        _check_correction(correction)
        n = check_positive_int(n, "n")
        if correction == "evt":
            raise ValueError(_EVT_NEEDS_DATA)
        if correction is None or n == 1:
            return self.sf(similarities)
        return sidak_correction(self.sf(similarities), n)


_EVT_NEEDS_DATA = (
    "correction='evt' fits an extreme-value law to observed best-of-n similarities and needs "
    "null='empirical'; under null='analytic' the best-of-n law is exact and is what "
    "correction='sidak' computes"
)


@dataclass(frozen=True, eq=False)
class EmpiricalCosineNull:
    """Law of non-matching similarities estimated from database pairs (see
    :func:`empirical_cosine_null`).

    Parameters
    ----------
    counts : ndarray of shape (n_bins,), int64
        Histogram of null pair similarities over ``n_bins`` equal bins of [-1, 1].
    maxima : ndarray of shape (n_queries,), float64
        Best null similarity of each pseudo-query (the best-of-``n_candidates`` sample).
    n_candidates : float
        Geometric mean of the number of null items behind each maximum.
    gev_shape, gev_loc, gev_scale : float
        Maximum-likelihood generalised extreme-value fit of ``maxima``, in
        :data:`scipy.stats.genextreme`'s parametrisation (``gev_shape = 0`` is the Gumbel law;
        ``> 0`` a bounded upper tail, as cosines have).
    """

    counts: np.ndarray
    maxima: np.ndarray
    n_candidates: float
    gev_shape: float
    gev_loc: float
    gev_scale: float

    @property
    def n_pairs(self) -> int:
        """Number of null pairs in the histogram."""
        return int(self.counts.sum())

    def sf(self, similarities: Any) -> np.ndarray:
        """Per-pair p-values ``(1 + #{null pairs >= c}) / (n_pairs + 1)``.

        Linear interpolation within a histogram bin (bins are 2/n_bins wide). The smallest
        p-value is ``1 / (n_pairs + 1)``: with the Šidák correction a top-1 p-value cannot
        fall below about ``n / n_pairs`` (use ``correction="evt"`` for smaller levels).
        """
        c = np.asarray(similarities, dtype=np.float64)
        nb = self.counts.shape[0]
        tail = np.zeros(nb + 1, dtype=np.float64)
        tail[:nb] = np.cumsum(self.counts[::-1])[::-1]
        x = (np.clip(np.nan_to_num(c, nan=-1.0), -1.0, 1.0) + 1.0) * (nb / 2.0)
        b = np.minimum(np.floor(x).astype(np.int64), nb - 1)
        frac = x - b
        count_ge = tail[b + 1] + (1.0 - frac) * self.counts[b]
        return (1.0 + count_ge) / (self.n_pairs + 1.0)

    def top1_sf(self, similarities: Any, n: int, correction: str | None = "evt") -> np.ndarray:
        r"""p-values of ``similarities`` as the best of ``n`` non-matches.

        ``"evt"``: the GEV law :math:`G` fitted to the observed best-of-``n_candidates``
        similarities, moved to ``n`` by max-stability, :math:`1-G(c)^{n/n_\mathrm{cand}}`
        (computed as ``-expm1(m * logcdf)``); ``"sidak"``: :func:`sidak_correction` of
        :meth:`sf`; ``None``: :meth:`sf`.
        """
        _check_correction(correction)
        n = check_positive_int(n, "n")
        if correction is None:
            return self.sf(similarities)
        if correction == "sidak":
            return sidak_correction(self.sf(similarities), n)
        c = np.asarray(similarities, dtype=np.float64)
        logcdf = stats.genextreme.logcdf(c, self.gev_shape, self.gev_loc, self.gev_scale)
        top1 = 0.0 - np.expm1((n / self.n_candidates) * logcdf)
        # the best of n is at least as likely as one pair to exceed c (beyond the fitted
        # upper end point the GEV says 0; the histogram's floor 1/(n_pairs+1) is kept)
        return np.maximum(top1, self.sf(c))


def empirical_cosine_null(
    vectors: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    n_queries: int = 2000,
    n_bins: int = 1 << 15,
    random_state: Any = None,
) -> EmpiricalCosineNull:
    """Estimate the non-match similarity law from pairs of database vectors.

    ``n_queries`` database rows, drawn at random, act as pseudo-queries; every pair with
    another database row (excluding itself and, when ``labels`` are given, rows with the same
    label) is a null pair. The pair similarities go into a fine histogram, and the best one
    of each pseudo-query into the best-of-``n`` sample that the extreme-value law is fitted to.

    Parameters
    ----------
    vectors : ndarray of shape (n, d), float32
        Unit-norm (whitened) database vectors, as stored in the index.
    labels : ndarray of shape (n,), optional
        Class labels; pairs with equal labels are matches and are left out. Without labels all
        pairs count as non-matches (the law is then slightly heavier than the true null:
        conservative).
    n_queries : int, default=2000
        Pseudo-queries (capped at ``n``). Cost: ``O(n_queries · n · d)``.
    n_bins : int, default=32768
        Histogram bins over [-1, 1].
    random_state : int, Generator or None

    Returns
    -------
    EmpiricalCosineNull
    """
    n = vectors.shape[0]
    n_queries = min(check_positive_int(n_queries, "n_queries"), n)
    n_bins = check_positive_int(n_bins, "n_bins", minimum=2)
    rng = check_random_state(random_state)
    rows_all = np.sort(rng.choice(n, size=n_queries, replace=False))
    counts = np.zeros(n_bins + 1, dtype=np.int64)
    maxima, n_cand = [], []
    half = np.float32(n_bins / 2.0)
    block = max(1, min(1024, _BLOCK_BYTES // (13 * n)))
    for start in range(0, n_queries, block):
        rows = rows_all[start : start + block]
        S = vectors[rows] @ vectors.T
        excluded = np.zeros(S.shape, dtype=bool)
        excluded[np.arange(rows.shape[0]), rows] = True
        if labels is not None:
            excluded |= labels[rows][:, None] == labels[None, :]
        S[excluded] = -np.inf
        maxima.append(S.max(axis=1))
        n_cand.append(n - excluded.sum(axis=1))
        S += 1.0
        S *= half
        np.clip(S, 0, n_bins - 1, out=S)
        idx = S.astype(np.intp)
        idx[excluded] = n_bins
        counts += np.bincount(idx.ravel(), minlength=n_bins + 1)
    maxima = np.concatenate(maxima).astype(np.float64)
    n_cand = np.concatenate(n_cand)
    keep = n_cand > 0
    maxima, n_cand = maxima[keep], n_cand[keep]
    if maxima.size < 2 or np.ptp(maxima) == 0:
        raise ValueError(
            "the empirical null needs at least 2 pseudo-queries with non-matching database items "
            f"(got {maxima.size}); with labels, the database needs more than one label. "
            "Use null='analytic' or more data."
        )
    if maxima.size < 100:
        warnings.warn(
            f"the empirical null's extreme-value fit rests on only {maxima.size} best-of-n "
            "samples; "
            "its top-1 p-values are rough (increase n_null_queries or the database).",
            RuntimeWarning,
            stacklevel=2,
        )
    shape, loc, scale = stats.genextreme.fit(maxima)
    return EmpiricalCosineNull(
        counts=counts[:n_bins],
        maxima=maxima,
        n_candidates=float(np.exp(np.mean(np.log(n_cand)))),
        gev_shape=float(shape),
        gev_loc=float(loc),
        gev_scale=float(scale),
    )


# --------------------------------------------------------------------------------------
# faiss index types: one registry entry each (adding "ivfpq" is one more entry)
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _IndexSpec:
    """How to build and query one faiss index type over unit vectors (inner product)."""

    defaults: Callable[[int, dict], dict]  # (n_database, user params) -> full params
    factory: Callable[[dict], str]  # params -> faiss.index_factory description
    search_params: Callable[[dict, int], Any]  # (params, k) -> faiss SearchParameters | None
    configure: Callable[[Any, dict, int | None], None]  # before train/add
    exact: bool  # returns the exact inner products of the stored vectors


def _default_nlist(n: int) -> int:
    return int(max(1, min(round(4 * math.sqrt(n)), n // 39)))


def _ivf_defaults(n: int, user: dict) -> dict:
    nlist = user.get("nlist", _default_nlist(n))
    return {"nlist": nlist, "nprobe": user.get("nprobe", min(nlist, 32))}


def _configure_ivf(index: Any, params: dict, seed: int | None) -> None:
    ivf = faiss.extract_index_ivf(index)
    ivf.cp.seed = 1234 if seed is None else int(seed)


def _configure_hnsw(index: Any, params: dict, seed: int | None) -> None:
    index.hnsw.efConstruction = params["efConstruction"]


_INDEX_SPECS: dict[str, _IndexSpec] = {
    "flat": _IndexSpec(
        defaults=lambda n, user: {},
        factory=lambda p: "Flat",
        search_params=lambda p, k: None,
        configure=lambda index, p, seed: None,
        exact=True,
    ),
    "ivf": _IndexSpec(
        defaults=_ivf_defaults,
        factory=lambda p: f"IVF{p['nlist']},Flat",
        search_params=lambda p, k: faiss.SearchParametersIVF(nprobe=p["nprobe"]),
        configure=_configure_ivf,
        exact=True,
    ),
    "hnsw": _IndexSpec(
        defaults=lambda n, user: {"M": 32, "efConstruction": 40, "efSearch": 64, **user},
        factory=lambda p: f"HNSW{p['M']},Flat",
        search_params=lambda p, k: faiss.SearchParametersHNSW(efSearch=max(p["efSearch"], k)),
        configure=_configure_hnsw,
        exact=True,
    ),
}
INDEX_TYPES = tuple(_INDEX_SPECS)
_INDEX_PARAM_KEYS = {
    "flat": (),
    "ivf": ("nlist", "nprobe"),
    "hnsw": ("M", "efConstruction", "efSearch"),
}


def _resolve_index_params(index: str, user: dict | None, n: int) -> dict:
    user = dict(user or {})
    allowed = _INDEX_PARAM_KEYS[index]
    unknown = sorted(set(user) - set(allowed))
    if unknown:
        raise ValueError(
            f"`index_params` for index={index!r} accepts {list(allowed)}, got unknown {unknown}"
        )
    for key, value in user.items():
        check_positive_int(value, f"index_params[{key!r}]")
    params = _INDEX_SPECS[index].defaults(n, user)
    if index == "ivf":
        if params["nlist"] > n:
            raise ValueError(
                f"`index_params['nlist']` must be <= the database size ({n}), got {params['nlist']}"
            )
        params["nprobe"] = min(params["nprobe"], params["nlist"])
    return params


def _build_index(kind: str, params: dict, Z: np.ndarray, seed: int | None) -> Any:
    spec = _INDEX_SPECS[kind]
    index = faiss.index_factory(Z.shape[1], spec.factory(params), faiss.METRIC_INNER_PRODUCT)
    spec.configure(index, params, seed)
    if not index.is_trained:
        index.train(Z)
    index.add(Z)
    return index


# --------------------------------------------------------------------------------------
# Relevance calibrators (score -> P(relevant | score))
# --------------------------------------------------------------------------------------
class _IsotonicCalibrator:
    def __init__(self, scores: np.ndarray, relevant: np.ndarray) -> None:
        from sklearn.isotonic import IsotonicRegression

        self._model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        self._model.fit(scores, relevant.astype(np.float64))

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return self._model.predict(scores.ravel()).reshape(scores.shape)


class _PlattCalibrator:
    def __init__(self, scores: np.ndarray, relevant: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression

        self._model = LogisticRegression(C=np.inf).fit(scores[:, None], relevant)

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return self._model.predict_proba(scores.reshape(-1, 1))[:, 1].reshape(scores.shape)


_CALIBRATORS = {"isotonic": _IsotonicCalibrator, "platt": _PlattCalibrator}


# --------------------------------------------------------------------------------------
# Result and estimator
# --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class RetrievalResult:
    """Neighbours of each query with calibrated scores (rows = queries, columns = rank).

    Attributes
    ----------
    indices : ndarray of shape (n_queries, k), int64
        Database rows, best first (by whitened cosine). -1 marks a missing neighbour (only
        approximate indexes, when the probed cells hold fewer than ``k`` items).
    similarities : ndarray of shape (n_queries, k), float32
        Cosine similarity in the **raw** embedding space (higher = more similar).
    whitened_similarities : ndarray of shape (n_queries, k), float32
        Cosine similarity after whitening, the ranking score.
    pvalues : ndarray of shape (n_queries, k), float64
        Per-pair p-value of the whitened similarity under the non-match null (small = more
        similar than a non-matching pair).
    corrected_pvalues : ndarray of shape (n_queries, k), float64
        p-value of the similarity as the best of ``n_searched`` non-matches (top-1 correction).
    match : ndarray of shape (n_queries, k), bool
        ``corrected_pvalues <= alpha``. The probability that a query declares any non-matching
        item a match is at most ``alpha`` (under the null law).
    ood_pvalues : ndarray of shape (n_queries,), float64
        Query-level p-value under the Gaussian model of the database (small = out of
        distribution).
    abstain : ndarray of shape (n_queries,), bool
        ``ood_pvalues <= ood_alpha``: the query is unlike the database; decline to answer.
    relevance : ndarray of shape (n_queries, k), float64, or None
        Calibrated P(relevant | score), after :meth:`CalibratedRetriever.calibrate_relevance`.
    labels : ndarray of shape (n_queries, k), or None
        Database labels of the neighbours, when the retriever was fitted with labels.
    alpha, ood_alpha : float
    n_searched : int
        Number of database items searched (the ``n`` of the top-1 correction).
    """

    indices: np.ndarray
    similarities: np.ndarray
    whitened_similarities: np.ndarray
    pvalues: np.ndarray
    corrected_pvalues: np.ndarray
    match: np.ndarray
    ood_pvalues: np.ndarray
    abstain: np.ndarray
    relevance: np.ndarray | None
    labels: np.ndarray | None
    alpha: float
    ood_alpha: float
    n_searched: int

    @property
    def accept(self) -> np.ndarray:
        """``match`` for queries that are not abstained on (shape (n_queries, k))."""
        return self.match & ~self.abstain[:, None]


class CalibratedRetriever(BaseEstimator):
    r"""Nearest-neighbour search over whitened embeddings with match p-values and abstention.

    Parameters
    ----------
    whiten : {"zca", "pca", None}, default="zca"
        Whitening of the database Gaussian before L2 normalisation. ZCA and full-rank PCA give
        the same cosines; ``"pca"`` with ``n_components`` keeps the leading components. None
        searches the raw (L2-normalised) embeddings — the analytic null then assumes an
        isotropy that raw embeddings rarely have.
    n_components : int, optional
        Rank of the whitening (see :class:`~infogauss.GaussianModel`). Default: full rank.
    shrinkage : str or float, default="ledoit_wolf"
        Covariance shrinkage (see :class:`~infogauss.GaussianModel`).
    index : {"flat", "ivf", "hnsw"}, default="flat"
        faiss index over the unit whitened vectors, inner product metric.
        ``"flat"``: exact (``IndexFlatIP``; as fast as a numpy matmul + argpartition here, see
        ``benchmarks/retrieval_cifar10.py``). ``"ivf"``: ``IndexIVFFlat``, approximate.
        ``"hnsw"``: ``IndexHNSWFlat``, approximate.
    index_params : dict, optional
        ``"ivf"``: ``nlist`` (cells, default ``min(4 sqrt(n), n // 39)``), ``nprobe`` (cells
        visited per query, default ``min(nlist, 32)``; ``nprobe = nlist`` is exact).
        ``"hnsw"``: ``M`` (graph degree, default 32), ``efConstruction`` (default 40),
        ``efSearch`` (search beam, default 64, raised to ``k`` when smaller).
        Whitening spreads the data over all dimensions, which makes approximate search
        harder than on raw embeddings: check the recall against ``"flat"`` (the benchmark
        reports it) and raise ``nprobe`` / ``efSearch`` as needed. p-values are computed from
        the similarities found, so a missed best neighbour makes them conservative.
    null : {"analytic", "empirical"}, default="empirical"
        Non-match law of a similarity. ``"analytic"``: :class:`AnalyticCosineNull` in the
        whitened dimension, and the query OOD p-value from Hotelling's law
        (``GaussianModel.pvalues(method="f")``). ``"empirical"``: estimated from database pairs
        (:func:`empirical_cosine_null`; pairs of different labels when ``labels`` are given)
        and the OOD p-value from the rank of the query's Mahalanobis distance among the
        database's.
    correction : {"sidak", "evt", None}, default="sidak"
        Top-1 correction for searching ``n`` items. ``"sidak"``: :math:`1-(1-p)^n`, exact for
        independent pairs. ``"evt"`` (``null="empirical"`` only): a generalised extreme-value
        law (Gumbel when its shape is 0) fitted to the best similarity of each pseudo-query,
        moved to ``n`` by max-stability; it models the best-of-``n`` law directly, including
        the dependence of pairs through the query, and extrapolates below ``1 / n_pairs``.
        None: per-pair p-values (the false-match rate is then not controlled).
    alpha : float in (0, 1), default=0.01
        False-match level: ``match = corrected_pvalues <= alpha``.
    ood_alpha : float in (0, 1), default=0.01
        Abstention level: ``abstain = ood_pvalues <= ood_alpha``.
    n_null_queries : int, default=2000
        Pseudo-queries of the empirical null (``null="empirical"``); cost
        ``O(n_null_queries · n · d)`` at fit.
    seed : int or None, default=0
        Seeds the empirical null's pseudo-queries and IVF's k-means.

    Attributes
    ----------
    model_ : GaussianModel
        Gaussian fitted to the database (raw space).
    index_ : faiss.Index
        The index over unit whitened database vectors.
    index_params_ : dict
        Index parameters used.
    null_ : AnalyticCosineNull or EmpiricalCosineNull
    dim_ : int
        Dimension of the whitened space (the rank of the whitening).
    n_database_ : int
    n_features_in_ : int
    labels_ : ndarray of shape (n_database,) or None
    relevance_method_, relevance_ece_, relevance_brier_
        Set by :meth:`calibrate_relevance` (ECE and Brier score are in-sample).

    Notes
    -----
    Whitening makes the non-match similarity law query-independent for Gaussian embeddings:
    for whitened isotropic vectors the cosine :math:`c` of independent vectors satisfies
    :math:`(1+c)/2\sim\mathrm{Beta}((d-1)/2,(d-1)/2)`, whatever the query. A declared match
    (``corrected_pvalues <= alpha``) controls the probability that a query's best non-match
    is called a match at ``alpha``; queries whose true matches are in the database make the
    correction conservative (``n`` counts them as non-matches).

    Memory: the index holds the unit whitened vectors and the retriever a unit copy of the raw
    ones (for raw cosines), ``2 · n · d`` float32 values.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> db = rng.normal(size=(500, 8)).astype("float32")
    >>> r = CalibratedRetriever(null="analytic", correction="sidak").fit(db)
    >>> res = r.search(db[:3] + 0.01, k=2)
    >>> res.indices[:, 0].tolist(), res.match[:, 0].tolist()
    ([0, 1, 2], [True, True, True])
    """

    def __init__(
        self,
        *,
        whiten: str | None = "zca",
        n_components: int | None = None,
        shrinkage: str | float = "ledoit_wolf",
        index: str = "flat",
        index_params: dict | None = None,
        null: str = "empirical",
        correction: str | None = "sidak",
        alpha: float = 0.01,
        ood_alpha: float = 0.01,
        n_null_queries: int = 2000,
        seed: int | None = 0,
    ) -> None:
        self.whiten = whiten
        self.n_components = n_components
        self.shrinkage = shrinkage
        self.index = index
        self.index_params = index_params
        self.null = null
        self.correction = correction
        self.alpha = alpha
        self.ood_alpha = ood_alpha
        self.n_null_queries = n_null_queries
        self.seed = seed

    # ------------------------------------------------------------------ fitting
    def _validate_params_(self) -> None:
        if self.whiten not in WHITEN_METHODS:
            raise ValueError(f"`whiten` must be one of {WHITEN_METHODS}, got {self.whiten!r}")
        check_positive_int(self.n_components, "n_components", allow_none=True)
        if self.whiten is None and self.n_components is not None:
            raise ValueError(
                f"`n_components` needs whitening; got n_components={self.n_components} with "
                "whiten=None (use whiten='pca')"
            )
        if self.index not in _INDEX_SPECS:
            raise ValueError(f"`index` must be one of {INDEX_TYPES}, got {self.index!r}")
        if self.index_params is not None and not isinstance(self.index_params, dict):
            raise TypeError(
                f"`index_params` must be a dict or None, got {type(self.index_params).__name__}"
            )
        if self.null not in NULL_METHODS:
            raise ValueError(f"`null` must be one of {NULL_METHODS}, got {self.null!r}")
        _check_correction(self.correction)
        if self.correction == "evt" and self.null == "analytic":
            raise ValueError(_EVT_NEEDS_DATA)
        check_probability(self.alpha, "alpha")
        check_probability(self.ood_alpha, "ood_alpha")
        check_positive_int(self.n_null_queries, "n_null_queries")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral)
        ):
            raise TypeError(f"`seed` must be an integer or None, got {self.seed!r}")

    def fit(self, database_embeddings: Any, labels: Any = None) -> CalibratedRetriever:
        """Fit the Gaussian, whiten and normalise the database, build the index and the null.

        Parameters
        ----------
        database_embeddings : array-like of shape (n_database, n_features)
            At least 2 finite rows.
        labels : array-like of shape (n_database,), optional
            Class labels: the empirical null then uses pairs of different labels only, search
            results carry neighbour labels, and :meth:`calibrate_relevance` becomes available.

        Returns
        -------
        self
        """
        self._validate_params_()
        X = as_float32_rows(database_embeddings, "database_embeddings", min_rows=2)
        n, d = X.shape
        labels = _check_labels(labels, n, "labels")
        params = _resolve_index_params(self.index, self.index_params, n)
        model = GaussianModel(
            shrinkage=self.shrinkage, whiten=self.whiten or "zca", n_components=self.n_components
        ).fit(X)
        self.model_ = model
        self.n_features_in_ = d
        rank = self.n_components or model.whitening_.shape[1]
        self.dim_ = d if self.whiten is None else int(rank)
        Z = self._unit_embed(X, "database_embeddings")
        if self.null == "analytic":
            if self.dim_ < 2:
                raise ValueError(
                    f"null='analytic' needs at least 2 whitened dimensions, got {self.dim_}"
                )
            null = AnalyticCosineNull(self.dim_)
        else:
            null = empirical_cosine_null(
                Z, labels, n_queries=self.n_null_queries, random_state=self.seed
            )
        self._ood_law = "f" if (self.null == "analytic" and n > d) else "empirical"
        if self.null == "analytic" and n <= d:
            warnings.warn(
                f"the database has n={n} <= d={d} rows: query OOD p-values use the empirical "
                "rank of Mahalanobis distances instead of Hotelling's law",
                RuntimeWarning,
                stacklevel=2,
            )
        self._database_m2 = np.sort(model.mahalanobis(X))
        self._database_unit = _unit_rows(X.copy(), "database_embeddings")
        self.index_ = _build_index(self.index, params, Z, self.seed)
        self.index_params_ = params
        self.null_ = null
        self.n_database_ = n
        self.labels_ = labels
        self._relevance = None
        for attr in ("relevance_method_", "relevance_ece_", "relevance_brier_"):
            if hasattr(self, attr):
                delattr(self, attr)
        return self

    # ------------------------------------------------------------------ pure helpers
    def _unit_embed(self, X: np.ndarray, name: str) -> np.ndarray:
        if self.whiten is None:
            Z = X.copy()
        else:
            Z = np.ascontiguousarray(self.model_.transform(X), dtype=np.float32)
        return _unit_rows(Z, name)

    def _check_queries(self, X: Any, name: str = "queries") -> np.ndarray:
        check_is_fitted(self, "index_")
        return as_float32_rows(X, name, n_features=self.n_features_in_)

    def embed(self, X: Any) -> np.ndarray:
        """Unit-norm whitened rows, as stored in the index (float32, C-contiguous).

        Inner products of these vectors are the whitened cosine similarities.

        Returns
        -------
        ndarray of shape (n_samples, dim_), float32
        """
        return self._unit_embed(self._check_queries(X, "X"), "X")

    def similarity_pvalues(
        self, whitened_similarities: Any, *, n_searched: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-pair and top-1 corrected p-values of whitened similarities.

        Parameters
        ----------
        whitened_similarities : array-like
            Whitened cosine similarities (any shape).
        n_searched : int, optional
            ``n`` of the top-1 correction (default: the database size). Pass the number of
            non-matching items when the similarity is the best over a known subset.

        Returns
        -------
        pvalues, corrected_pvalues : ndarrays of the input's shape, float64
            Small = more similar than non-matches are.
        """
        check_is_fitted(self, "index_")
        n = self.n_database_ if n_searched is None else check_positive_int(n_searched, "n_searched")
        s = np.asarray(whitened_similarities, dtype=np.float64)
        p = self.null_.sf(s)
        if self.correction == "sidak":  # reuse p (the null's top1_sf would compute it again)
            return p, sidak_correction(p, n)
        return p, (p.copy() if self.correction is None else self.null_.top1_sf(s, n, "evt"))

    def ood_pvalues(self, X: Any) -> np.ndarray:
        """Query-level p-values under the database's Gaussian (small = out of distribution).

        Hotelling's law of the squared Mahalanobis distance (``null="analytic"`` and
        ``n_database > n_features``) or its rank among the database's own distances,
        ``(1 + #{database m² >= m²}) / (n + 1)`` (``null="empirical"``; slightly small for
        fresh points, as database distances are in-sample).

        Returns
        -------
        ndarray of shape (n_samples,), float64
        """
        return self._ood_pvalues(self._check_queries(X, "X"))

    def _ood_pvalues(self, Q: np.ndarray) -> np.ndarray:
        if self._ood_law == "f":
            return self.model_.pvalues(Q, method="f")
        m2 = self.model_.mahalanobis(Q)
        count_ge = self.n_database_ - np.searchsorted(self._database_m2, m2, side="left")
        return (1.0 + count_ge) / (self.n_database_ + 1.0)

    def _raw_cosines(self, Q: np.ndarray, idx: np.ndarray) -> np.ndarray:
        Qu = _unit_rows(Q.copy(), "queries")
        k = idx.shape[1]
        out = np.empty(idx.shape, dtype=np.float32)
        step = max(1, _BLOCK_BYTES // (4 * k * max(Q.shape[1], 1)))
        safe = np.maximum(idx, 0)
        for start in range(0, Q.shape[0], step):
            sl = slice(start, start + step)
            out[sl] = np.einsum("bd,bkd->bk", Qu[sl], self._database_unit[safe[sl]])
        out[idx < 0] = np.nan
        return out

    # ------------------------------------------------------------------ search
    def search(self, queries: Any, k: int = 10) -> RetrievalResult:
        """Top-``k`` neighbours of each query with calibrated quantities.

        Parameters
        ----------
        queries : array-like of shape (n_queries, n_features)
        k : int, default=10
            In ``[1, n_database_]``.

        Returns
        -------
        RetrievalResult
            Scoring is per query: a batch gives the same rows as one query at a time.
        """
        Q = self._check_queries(queries)
        k = _check_k(k, self.n_database_)
        Zq = self._unit_embed(Q, "queries")
        spec = _INDEX_SPECS[self.index]
        wsim, idx = self.index_.search(
            Zq, k, params=spec.search_params(self.index_params_, k)
        )
        idx = idx.astype(np.int64, copy=False)
        missing = idx < 0
        wsim[missing] = np.nan
        p, pc = self.similarity_pvalues(np.where(missing, -1.0, wsim))
        p[missing] = 1.0
        pc[missing] = 1.0
        ood_p = self._ood_pvalues(Q)
        relevance = None
        if self._relevance is not None:
            relevance = self._relevance(np.where(missing, -1.0, wsim).astype(np.float64))
            relevance[missing] = np.nan
        labels = None
        if self.labels_ is not None:
            labels = self.labels_[np.maximum(idx, 0)]
        return RetrievalResult(
            indices=idx,
            similarities=self._raw_cosines(Q, idx),
            whitened_similarities=wsim,
            pvalues=p,
            corrected_pvalues=pc,
            match=pc <= self.alpha,
            ood_pvalues=ood_p,
            abstain=ood_p <= self.ood_alpha,
            relevance=relevance,
            labels=labels,
            alpha=float(self.alpha),
            ood_alpha=float(self.ood_alpha),
            n_searched=int(self.n_database_),
        )

    # ------------------------------------------------------------------ calibration
    def calibrate_relevance(
        self, queries: Any, query_labels: Any, *, k: int = 10, method: str = "isotonic"
    ) -> CalibratedRetriever:
        """Learn P(relevant | whitened similarity) from labelled query–neighbour pairs.

        Each query's top-``k`` neighbours give ``k`` pairs; a pair is relevant when the
        neighbour's database label equals the query's label. Later :meth:`search` calls fill
        ``RetrievalResult.relevance``.

        Parameters
        ----------
        queries : array-like of shape (n_queries, n_features)
            Held-out labelled queries (not database rows).
        query_labels : array-like of shape (n_queries,)
        k : int, default=10
        method : {"isotonic", "platt"}, default="isotonic"
            Isotonic regression (monotone, non-parametric) or Platt scaling (logistic).

        Returns
        -------
        self
            With ``relevance_method_`` and the in-sample ``relevance_ece_`` and
            ``relevance_brier_`` (use held-out queries and :mod:`infogauss.metrics` for an
            honest estimate).
        """
        check_is_fitted(self, "index_")
        if method not in CALIBRATION_METHODS:
            raise ValueError(f"`method` must be one of {CALIBRATION_METHODS}, got {method!r}")
        if self.labels_ is None:
            raise ValueError(
                "calibrate_relevance needs database labels: pass `labels` to fit()"
            )
        Q = self._check_queries(queries)
        ql = _check_labels(query_labels, Q.shape[0], "query_labels")
        res = self.search(Q, k)
        valid = res.indices >= 0
        relevant = (res.labels == ql[:, None])[valid]
        scores = res.whitened_similarities[valid].astype(np.float64)
        if relevant.all() or not relevant.any():
            raise ValueError(
                "calibration pairs must include both relevant and irrelevant neighbours, got "
                f"{'only relevant' if relevant.all() else 'no relevant'} ones; use more queries "
                "or a larger `k`"
            )
        calibrator = _CALIBRATORS[method](scores, relevant)
        probs = calibrator(scores)
        self._relevance = calibrator
        self.relevance_method_ = method
        self.relevance_ece_ = expected_calibration_error(relevant, probs)
        self.relevance_brier_ = brier_score(relevant, probs)
        return self
