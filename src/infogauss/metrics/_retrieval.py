r"""Retrieval and probability-calibration metrics (see infogauss.metrics).

Retrieval metrics take a **relevance matrix**: ``relevance[i, j]`` is True when the ``j``-th
ranked neighbour of query ``i`` is relevant (e.g. has the query's class), best first. Build it
as ``database_labels[indices] == query_labels[:, None]``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..calibration import binomial_interval

__all__ = [
    "recall_at_k",
    "map_at_k",
    "FalseMatchRate",
    "false_match_rate",
    "expected_calibration_error",
    "brier_score",
]


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------
def _binary(x: Any, name: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(x)
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in ndims:
        dims = " or ".join(map(str, ndims))
        raise ValueError(f"`{name}` must be a {dims}-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind not in "biuf" or not np.isin(arr, (0, 1)).all():
        raise ValueError(f"`{name}` must hold booleans or 0/1 values, got dtype {arr.dtype}")
    return arr.astype(bool)


def _check_k(k: Any, n_retrieved: int) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"`k` must be an integer in [1, {n_retrieved}], got {k!r}")
    if not 1 <= int(k) <= n_retrieved:
        raise ValueError(
            f"`k` must be an integer in [1, {n_retrieved}] (the number of ranked neighbours), "
            f"got {k!r}"
        )
    return int(k)


def _n_relevant(n_relevant: Any, n_queries: int) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(n_relevant), (n_queries,))
    if arr.dtype.kind not in "iu" or (arr < 0).any():
        raise ValueError(
            f"`n_relevant` must be non-negative integers (one per query), got {n_relevant!r}"
        )
    return arr.astype(np.int64)


def _probabilities(y_true: Any, y_prob: Any) -> tuple[np.ndarray, np.ndarray]:
    y = _binary(y_true, "y_true", 1)
    p = np.asarray(y_prob, dtype=np.float64)
    if p.shape != y.shape:
        raise ValueError(f"`y_prob` must have the shape of `y_true` {y.shape}, got {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("`y_prob` must hold finite probabilities in [0, 1]")
    return y, p


# --------------------------------------------------------------------------------------
# ranking metrics
# --------------------------------------------------------------------------------------
def recall_at_k(relevance: Any, k: int, *, n_relevant: Any = None) -> float:
    r"""Recall at ``k``, averaged over queries.

    Parameters
    ----------
    relevance : array-like of shape (n_queries, n_retrieved), bool
        Relevance of each ranked neighbour, best first.
    k : int
        Cut-off, in ``[1, n_retrieved]``.
    n_relevant : int or array-like of shape (n_queries,), optional
        Relevant items in the database per query. Without it (the metric-learning convention,
        "R@k"): the fraction of queries with at least one relevant item in the top ``k``.
        With it (the IR convention): the mean of ``#relevant in top k / n_relevant``
        (0 for a query with no relevant item).

    Returns
    -------
    float in [0, 1] (higher = better)

    Examples
    --------
    >>> recall_at_k([[False, True], [False, False]], k=2)
    0.5
    """
    rel = _binary(relevance, "relevance", 2)
    k = _check_k(k, rel.shape[1])
    if n_relevant is None:
        return float(rel[:, :k].any(axis=1).mean())
    total = _n_relevant(n_relevant, rel.shape[0])
    hits = rel[:, :k].sum(axis=1)
    return float(np.mean(np.divide(hits, total, out=np.zeros(total.shape), where=total > 0)))


def map_at_k(relevance: Any, k: int, *, n_relevant: Any = None) -> float:
    r"""Mean average precision at ``k``.

    :math:`\mathrm{AP@k}=\frac{1}{D}\sum_{j\le k} P@j\cdot\mathrm{rel}_j`, averaged over
    queries, with :math:`D=\min(k, R)` when the number of relevant items ``R`` is given
    (``n_relevant``, the TREC convention) and otherwise the number of relevant items in the
    top ``k`` (the image-retrieval/hashing convention). A query with :math:`D=0` scores 0.

    Parameters
    ----------
    relevance : array-like of shape (n_queries, n_retrieved), bool
    k : int
    n_relevant : int or array-like of shape (n_queries,), optional

    Returns
    -------
    float in [0, 1] (higher = better)

    Examples
    --------
    >>> map_at_k([[True, False, True]], k=3)  # (1/1 + 2/3) / 2
    0.8333333333333333
    """
    rel = _binary(relevance, "relevance", 2)
    k = _check_k(k, rel.shape[1])
    top = rel[:, :k]
    precision = np.cumsum(top, axis=1) / np.arange(1, k + 1)
    sums = (precision * top).sum(axis=1)
    if n_relevant is None:
        denom = top.sum(axis=1)
    else:
        denom = np.minimum(_n_relevant(n_relevant, rel.shape[0]), k)
    ap = np.divide(sums, denom, out=np.zeros(sums.shape), where=denom > 0)
    return float(ap.mean())


# --------------------------------------------------------------------------------------
# false-match rate
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FalseMatchRate:
    """Empirical false-match rate with a Clopper–Pearson (exact binomial) interval.

    Attributes
    ----------
    rate : float
        ``n_false / n_queries``.
    n_false, n_queries : int
    ci_low, ci_high : float
        Interval at ``confidence`` for the true rate.
    confidence : float
    alpha : float or None
        Nominal level the rate is compared with.
    """

    rate: float
    n_false: int
    n_queries: int
    ci_low: float
    ci_high: float
    confidence: float
    alpha: float | None = None

    @property
    def ratio(self) -> float:
        """``rate / alpha`` (NaN without ``alpha``)."""
        return self.rate / self.alpha if self.alpha else float("nan")

    @property
    def consistent(self) -> bool | None:
        """Whether ``alpha`` lies inside the interval (None without ``alpha``)."""
        return None if self.alpha is None else bool(self.ci_low <= self.alpha <= self.ci_high)


def false_match_rate(
    match: Any, relevant: Any = None, *, alpha: float | None = None, confidence: float = 0.95
) -> FalseMatchRate:
    """Fraction of queries that declare at least one false match.

    Parameters
    ----------
    match : array-like of shape (n_queries,) or (n_queries, k), bool
        Declared matches (e.g. ``RetrievalResult.match``).
    relevant : array-like of the same shape, bool, optional
        Whether each declared neighbour is truly relevant. None: every declared match is false
        (queries with no true match in the database, e.g. out-of-distribution queries or a
        search restricted to non-matches).
    alpha : float, optional
        Nominal level, stored for comparison (``ratio``, ``consistent``).
    confidence : float, default=0.95
        Level of the exact binomial interval.

    Returns
    -------
    FalseMatchRate

    Examples
    --------
    >>> r = false_match_rate([True, False, False, False], alpha=0.25)
    >>> r.rate, r.consistent
    (0.25, True)
    """
    m = _binary(match, "match", (1, 2))
    if relevant is None:
        false = m
    else:
        rel = _binary(relevant, "relevant", (1, 2))
        if rel.shape != m.shape:
            raise ValueError(
                f"`relevant` must have the shape of `match` {m.shape}, got {rel.shape}"
            )
        false = m & ~rel
    per_query = false.any(axis=1) if false.ndim == 2 else false
    if not 0 < confidence < 1:
        raise ValueError(f"`confidence` must lie in (0, 1), got {confidence!r}")
    n = int(per_query.shape[0])
    x = int(per_query.sum())
    ci_low, ci_high = binomial_interval(x, n, level=confidence, method="exact")
    return FalseMatchRate(
        rate=x / n,
        n_false=x,
        n_queries=n,
        ci_low=ci_low,
        ci_high=ci_high,
        confidence=float(confidence),
        alpha=None if alpha is None else float(alpha),
    )


# --------------------------------------------------------------------------------------
# probability calibration
# --------------------------------------------------------------------------------------
def _bin_ids(p: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    """Bin of each probability, exactly as ``sklearn.calibration.calibration_curve``."""
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        edges = np.percentile(p, np.linspace(0, 100, n_bins + 1))
    else:
        raise ValueError(f"`strategy` must be 'uniform' or 'quantile', got {strategy!r}")
    return np.searchsorted(edges[1:-1], p)


def expected_calibration_error(
    y_true: Any, y_prob: Any, *, n_bins: int = 15, strategy: str = "uniform"
) -> float:
    r"""Expected calibration error of binary probabilities.

    :math:`\mathrm{ECE}=\sum_b \frac{n_b}{n}\,\lvert \bar y_b - \bar p_b\rvert` over bins of
    the predicted probability (binned as :func:`sklearn.calibration.calibration_curve` does).

    Parameters
    ----------
    y_true : array-like of shape (n,), bool or 0/1
    y_prob : array-like of shape (n,)
        Predicted probability that ``y_true`` is 1.
    n_bins : int, default=15
    strategy : {"uniform", "quantile"}, default="uniform"

    Returns
    -------
    float in [0, 1] (lower = better calibrated)

    Examples
    --------
    >>> expected_calibration_error([0, 1, 1, 0], [0.0, 1.0, 1.0, 0.0])
    0.0
    """
    y, p = _probabilities(y_true, y_prob)
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 1:
        raise ValueError(f"`n_bins` must be an integer >= 1, got {n_bins!r}")
    ids = _bin_ids(p, int(n_bins), strategy)
    size = int(n_bins)
    gap = np.bincount(ids, weights=y - p, minlength=size)
    return float(np.abs(gap).sum() / y.shape[0])


def brier_score(y_true: Any, y_prob: Any) -> float:
    """Brier score: mean squared difference between probability and outcome.

    Returns
    -------
    float in [0, 1] (lower = better)

    Examples
    --------
    >>> brier_score([1, 0], [0.5, 0.5])
    0.25
    """
    y, p = _probabilities(y_true, y_prob)
    return float(np.mean((p - y) ** 2))
