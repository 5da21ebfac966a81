r"""Null laws of the similarity of a non-matching pair, and the top-1 corrections (scipy only).

This module imports neither faiss nor anything that does: the laws can be used, tested and
saved without the ``faiss`` extra.

* :class:`AnalyticCosineNull` — for whitened isotropic Gaussian vectors the cosine :math:`c`
  of two independent vectors in :math:`d` dimensions satisfies
  :math:`(1+c)/2 \sim \mathrm{Beta}\big(\tfrac{d-1}{2}, \tfrac{d-1}{2}\big)`;
* :class:`EmpiricalCosineNull` (built by :func:`empirical_cosine_null`) — the law estimated
  from database pairs (different labels when labels are given; a pseudo-query's own duplicates
  never count), with a bounded upper tail and an extreme-value (GEV) law of the best of ``n``;
* :func:`sidak_correction` — :math:`1-(1-p)^n`, :func:`infogauss.calibration.sidak`.

Bounded similarities
--------------------
A cosine cannot exceed 1, and under a continuous null a non-match reaches 1 with probability
0. Both tails used beyond the data respect that bound, so an item identical to the query gets a
p-value that vanishes as its similarity approaches 1:

* the per-pair tail beyond the largest null pair decays as :math:`(1-c)^\kappa` (the form of
  the Beta law's tail near 1), with :math:`\kappa` estimated from the top null pairs;
* the GEV is fitted to :math:`t = -\log(1 - m)` of the maxima :math:`m`, which maps the
  bound :math:`c = 1` to :math:`t = \infty` (a power-law tail at the bound becomes an
  exponential one, the Gumbel domain), so no fitted end point can lie beyond the bound: the
  GEV's top-1 p-value goes to 0 as :math:`c \to 1`. It is then held between the bounds any law
  of the best of ``n`` obeys given the per-pair law: at least ``sf(c)`` (one pair) and at most
  ``n sf(c)`` (the union bound, valid under any dependence).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from scipy import stats
from sklearn.utils import check_random_state

from .. import calibration
from .._validation import check_positive_int

__all__ = [
    "AnalyticCosineNull",
    "EmpiricalCosineNull",
    "empirical_cosine_null",
    "sidak_correction",
    "NULL_METHODS",
    "CORRECTIONS",
]

NULL_METHODS = ("neighbour", "empirical", "analytic")
CORRECTIONS = ("sidak", "evt", None)
_BLOCK_BYTES = 1 << 26
# 1 - c below this is "at the bound" for the log transform (float32 cosines resolve ~6e-8)
_MIN_GAP = 1e-12

EVT_NEEDS_DATA = (
    "correction='evt' fits an extreme-value law to observed best-of-n similarities and needs "
    "null='empirical'; under null='analytic' the best-of-n law is exact and is what "
    "correction='sidak' computes"
)


def check_correction(correction: Any) -> None:
    if correction not in CORRECTIONS:
        raise ValueError(f"`correction` must be one of {CORRECTIONS}, got {correction!r}")


def sidak_correction(pvalues: Any, n: int) -> np.ndarray:
    r"""Šidák correction :math:`1-(1-p)^n` for the best of ``n`` independent comparisons.

    :func:`infogauss.calibration.sidak` with ``n`` checked: computed as
    ``-expm1(n * log1p(-p))``, accurate for tiny ``p`` (where it is ``≈ n p``) and equal to 1
    at ``p = 1``.

    Examples
    --------
    >>> round(float(sidak_correction(1e-12, 1000)) / 1e-9, 6)   # naive 1-(1-p)**n: 0.99998
    1.0
    """
    return calibration.sidak(pvalues, check_positive_int(n, "n"))


def _gap_log(similarities: Any) -> np.ndarray:
    """``t = -log(1 - c)``: the bound c = 1 goes to +inf (c is clipped to [-1, 1])."""
    c = np.clip(np.asarray(similarities, dtype=np.float64), -1.0, 1.0)
    with np.errstate(divide="ignore"):
        return -np.log(np.where(1.0 - c < _MIN_GAP, 0.0, 1.0 - c))


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
        check_correction(correction)
        n = check_positive_int(n, "n")
        if correction == "evt":
            raise ValueError(EVT_NEEDS_DATA)
        if correction is None or n == 1:
            return self.sf(similarities)
        return sidak_correction(self.sf(similarities), n)


@dataclass(frozen=True, eq=False)
class EmpiricalCosineNull:
    r"""Law of non-matching similarities estimated from database pairs (see
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
        Maximum-likelihood generalised extreme-value fit of :math:`t = -\log(1 - m)` of the
        ``maxima`` :math:`m`, in :data:`scipy.stats.genextreme`'s parametrisation
        (``gev_shape = 0`` is the Gumbel law; see the module notes on bounded similarities).

    Notes
    -----
    Beyond ``tail_start`` (the largest null pair similarity, where the rank p-value reaches its
    floor :math:`1/(N+1)`) the per-pair law is
    extrapolated as :math:`\mathrm{sf}(c) = \mathrm{sf}(c_0)\,((1-c)/(1-c_0))^{\kappa}`
    with :math:`\kappa` = ``tail_index``, the maximum-likelihood exponent of the top
    :math:`\approx\sqrt{N}` null pairs (:math:`N` = ``n_pairs``). For the Beta law of whitened
    Gaussian cosines the local exponent at the data's edge is below the asymptotic
    :math:`(d-1)/2`, so the extrapolation is heavier than the truth (conservative).
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

    @cached_property
    def _tail(self) -> np.ndarray:
        """Counts of null pairs in each bin and above (length n_bins + 1, last entry 0)."""
        nb = self.counts.shape[0]
        tail = np.zeros(nb + 1, dtype=np.float64)
        tail[:nb] = np.cumsum(self.counts[::-1])[::-1]
        return tail

    @cached_property
    def tail_start(self) -> float:
        """The largest null pair similarity (the best of the ``maxima``); beyond it the
        per-pair tail is extrapolated."""
        return float(np.max(self.maxima))

    @cached_property
    def tail_index(self) -> float:
        r"""Exponent :math:`\kappa` of the bounded tail :math:`P(C \ge c) \propto (1-c)^\kappa`."""
        nb = self.counts.shape[0]
        tail = self._tail
        want = int(min(max(round(math.sqrt(max(self.n_pairs, 1))), 10), 10_000))
        above = np.flatnonzero(tail[:nb] >= want)
        b0 = int(above[-1]) if above.size else 0
        u = -1.0 + 2.0 * b0 / nb  # lower edge of the threshold bin
        bins = np.arange(b0, nb)
        w = self.counts[b0:].astype(np.float64)
        centres = -1.0 + (2.0 * bins + 1.0) / nb
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log((1.0 - u) / np.maximum(1.0 - centres, _MIN_GAP))
        total = float(np.sum(w * logs))
        kappa = float(w.sum()) / total if total > 0 else 1.0
        return kappa if math.isfinite(kappa) and kappa > 0 else 1.0

    def sf(self, similarities: Any) -> np.ndarray:
        """Per-pair p-values: the rank p-value ``(1 + #{null pairs >= c}) / (n_pairs + 1)``.

        Linear interpolation within a histogram bin (bins are 2/n_bins wide); beyond
        :attr:`tail_start` the bounded tail (class notes), which reaches 0 at ``c = 1``.
        """
        c = np.asarray(similarities, dtype=np.float64)
        shape = c.shape
        c = np.clip(np.nan_to_num(c.ravel(), nan=-1.0), -1.0, 1.0)
        nb = self.counts.shape[0]
        x = (c + 1.0) * (nb / 2.0)
        b = np.minimum(np.floor(x).astype(np.int64), nb - 1)
        count_ge = self._tail[b + 1] + (1.0 - (x - b)) * self.counts[b]
        p = calibration.rank_pvalue_from_count(count_ge, self.n_pairs)
        beyond = c > self.tail_start
        if beyond.any():
            ratio = (1.0 - c[beyond]) / max(1.0 - self.tail_start, _MIN_GAP)
            p[beyond] = np.clip(ratio, 0.0, 1.0) ** self.tail_index / (self.n_pairs + 1.0)
        return p.reshape(shape)

    def top1_sf(self, similarities: Any, n: int, correction: str | None = "evt") -> np.ndarray:
        r"""p-values of ``similarities`` as the best of ``n`` non-matches.

        ``"evt"``: the GEV law :math:`G` of :math:`t=-\log(1-m)` fitted to the observed
        best-of-``n_candidates`` similarities, moved to ``n`` by max-stability,
        :math:`1-G(t)^{n/n_\mathrm{cand}}` (computed as ``-expm1(m * logcdf)``), held within
        ``[sf(c), min(1, n sf(c))]`` (one pair; the union bound); ``"sidak"``:
        :func:`sidak_correction` of :meth:`sf`; ``None``: :meth:`sf`.
        """
        check_correction(correction)
        n = check_positive_int(n, "n")
        if correction is None:
            return self.sf(similarities)
        if correction == "sidak":
            return sidak_correction(self.sf(similarities), n)
        c = np.asarray(similarities, dtype=np.float64)
        logcdf = stats.genextreme.logcdf(_gap_log(c), self.gev_shape, self.gev_loc, self.gev_scale)
        top1 = 0.0 - np.expm1((n / self.n_candidates) * logcdf)
        p = self.sf(c)
        return np.clip(top1, p, np.minimum(1.0, n * p))


def _fit_gev(maxima: np.ndarray) -> tuple[float, float, float]:
    """Maximum-likelihood GEV of ``t = -log(1 - maxima)`` (scipy's parametrisation)."""
    # a maximum at the bound (a copy no duplicate search caught) is kept, at a finite distance
    t = -np.log(np.maximum(1.0 - np.clip(maxima, -1.0, 1.0), _MIN_GAP))
    shape, loc, scale = stats.genextreme.fit(t)
    return float(shape), float(loc), float(scale)


def empirical_cosine_null(
    vectors: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    groups: np.ndarray | None = None,
    n_queries: int = 2000,
    n_bins: int = 1 << 15,
    random_state: Any = None,
) -> EmpiricalCosineNull:
    """Estimate the non-match similarity law from pairs of database vectors.

    ``n_queries`` distinct database items, drawn at random, act as pseudo-queries; every pair
    with another distinct item (excluding, when ``labels`` are given, items with the same
    label) is a null pair. The pair similarities go into a fine histogram, and the best one of
    each pseudo-query into the best-of-``n`` sample that the extreme-value law is fitted to.

    Parameters
    ----------
    vectors : ndarray of shape (n, d), float32
        Unit-norm (whitened) database vectors, as stored in the index.
    labels : ndarray of shape (n,), optional
        Class labels; pairs with equal labels are matches and are left out. Without labels all
        pairs count as non-matches (the law is then slightly heavier than the true null:
        conservative).
    groups : ndarray of shape (n,), int, optional
        Duplicate groups (:func:`infogauss.retrieval.duplicates.find_duplicates`): rows with
        the same id are copies of one item, which counts once — as a pseudo-query and as a
        candidate — so no pseudo-query meets its own copies (they would sit at cosine 1 and
        swamp the tail). Default: every row distinct.
    n_queries : int, default=2000
        Pseudo-queries (capped at the number of distinct items). Cost:
        ``O(n_queries · n · d)``.
    n_bins : int, default=32768
        Histogram bins over [-1, 1].
    random_state : int, Generator or None

    Returns
    -------
    EmpiricalCosineNull

    Raises
    ------
    ValueError
        When fewer than 2 pseudo-queries have a non-matching item, or every best non-match is
        the same similarity (nothing to fit a law to); the message says which.
    """
    n_queries = check_positive_int(n_queries, "n_queries")
    n_bins = check_positive_int(n_bins, "n_bins", minimum=2)
    if groups is not None:
        reps = np.flatnonzero(np.asarray(groups) == np.arange(vectors.shape[0]))
        if reps.size < vectors.shape[0]:
            vectors = vectors[reps]
            labels = None if labels is None else labels[reps]
    n = vectors.shape[0]
    if n < 2:
        raise ValueError(
            f"the empirical null needs at least 2 distinct database items, got {n} (every other "
            "row duplicates one of them); use more data"
        )
    n_queries = min(n_queries, n)
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
    if maxima.size < 2:
        raise ValueError(
            "the empirical null needs at least 2 pseudo-queries with a non-matching database "
            f"item, got {maxima.size}: with labels, the database needs more than one label. "
            "Use null='analytic' or more data."
        )
    if np.ptp(maxima) == 0:
        raise ValueError(
            f"the empirical null cannot be fitted: the best non-match similarity is "
            f"{maxima[0]:.6g} for every pseudo-query (a degenerate space, e.g. one with a "
            "single whitened dimension). Use more varied data or null='analytic'."
        )
    if maxima.size < 100:
        warnings.warn(
            f"the empirical null's extreme-value fit rests on only {maxima.size} best-of-n "
            "samples; its top-1 p-values are rough (increase n_null_queries or the database).",
            RuntimeWarning,
            stacklevel=3,
        )
    shape, loc, scale = _fit_gev(maxima)
    return EmpiricalCosineNull(
        counts=counts[:n_bins],
        maxima=maxima,
        n_candidates=float(np.exp(np.mean(np.log(n_cand)))),
        gev_shape=shape,
        gev_loc=loc,
        gev_scale=scale,
    )
