r"""The same-item null: is a query closer to its best database item than a *new* item would be?

The pair nulls of :mod:`~infogauss.retrieval.nulls` answer "is this pair more similar than a
random pair?". On real embeddings that is not "the same item": semantically close items (other
images of the class, other descriptions of a library) are much closer than random pairs, so
nearly every query has a neighbour that beats the pair null. This module answers the question
users ask of a near-duplicate search, with a null taken from the database's own neighbour
structure (numpy only, no faiss):

* **Statistic.** For a query with distinct candidate items sorted by similarity, the
  *neighbour ratio* of candidate :math:`c` is

  .. math:: T(c) = \log \frac{\tfrac1K \sum_{j \in N_K(c)} (1 - s_j)}{1 - s_c},

  the log of how much closer :math:`c` is than the query's :math:`K` next-best items
  :math:`N_K(c)` (the best :math:`K` candidates other than :math:`c`); :math:`1 - s` is half
  the squared chord distance of unit vectors. Dividing by the query's own neighbourhood makes
  the statistic comparable between dense and sparse regions: a copy is much closer to its
  original than to anything else, a new item of a dense class is merely close to many. It is
  computed twice, on whitened and on raw cosines of the same candidates (copies made by noise
  stand out in the whitened space, copies made by rescaling in the raw one), and the two are
  fused by the smaller of their p-values.
* **Null.** ``m`` distinct database items are held out one at a time and searched against the
  rest exactly as a query is (leave-one-out; an item's own duplicates are removed with it).
  Their statistics are a sample of what a new item *from the same distribution* that has no
  copy in the database scores, so a p-value is the conformal rank
  :math:`(1 + \#\{T_i \ge T\}) / (m + 1)`. For a query exchangeable with the database items
  the rate of declared matches at level :math:`\alpha` is at most :math:`\alpha` up to
  :math:`O(1/m)` (the held-out items search ``n - 1`` items, a query ``n``; the whitening is
  fitted in-sample) — the top-1 correction is built in: the statistic is that of the best
  item.
* **Resolution.** Below the rank floor :math:`1/(m+1)` the p-value continues with an
  exponential tail fitted to the top :math:`\approx\sqrt m` held-out statistics (a stated
  extrapolation), so an item identical to the query (:math:`1 - s_c \to 0`,
  :math:`T \to \infty`) gets a p-value that vanishes: it is a match at every level.

Every candidate's p-value is at least its query's (a non-best candidate has a smaller
statistic than the best), so a declared match anywhere in a query's list is controlled by the
query's p-value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = [
    "NeighbourNull",
    "TailRank",
    "neighbour_ratio",
    "held_out_cosines",
    "distinct_candidates",
    "N_REFERENCE",
    "N_CANDIDATES",
]

N_REFERENCE = 10  # K: the next-best items a candidate is compared with
N_CANDIDATES = 32  # distinct candidates per query the statistic looks at (>= K + 1)
# 1 - s below float32's resolution of a cosine near 1 is "identical"
_DELTA_FLOOR = 2.0**-24


def reference_size(n_distinct: int) -> tuple[int, int]:
    """``(K, C)`` for a database of ``n_distinct`` items (a held-out item sees one less)."""
    c = int(min(N_CANDIDATES, n_distinct - 1))
    return int(min(N_REFERENCE, c - 1)), c


@dataclass(frozen=True, eq=False)
class TailRank:
    r"""Conformal p-values of a statistic (large = extreme) with an exponential tail.

    ``sf(t) = (1 + #{sample >= t}) / (m + 1)`` up to the sample's maximum; beyond it
    ``exp(-(t - max) / scale) / (m + 1)``, where ``scale`` is the mean excess of the top
    :math:`k \approx \sqrt m` values over the :math:`k`-th largest (the maximum-likelihood scale
    of an exponential tail). ``loo_sf`` gives the held-out items' own p-values
    (``#{sample >= t} / m``: the rank among the other ``m - 1``).

    Parameters
    ----------
    sample : ndarray of shape (m,), float64
        Sorted ascending, finite.
    """

    sample: np.ndarray

    @property
    def m(self) -> int:
        return int(self.sample.shape[0])

    @cached_property
    def scale(self) -> float:
        m = self.m
        k = int(min(max(round(math.sqrt(m)), 10), m - 1))
        if k < 1:
            return 0.0
        top = self.sample[m - k :]
        return float(np.mean(top - self.sample[m - k - 1]))

    def _count_ge(self, t: np.ndarray) -> np.ndarray:
        return self.m - np.searchsorted(self.sample, t, side="left")

    def sf(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        p = (1.0 + self._count_ge(t)) / (self.m + 1.0)
        top = self.sample[-1]
        beyond = t > top
        if beyond.any():
            with np.errstate(over="ignore", invalid="ignore"):
                tail = (np.exp(-(t[beyond] - top) / self.scale) if self.scale > 0
                        else np.zeros(int(beyond.sum())))  # fmt: skip
            p[beyond] = np.nan_to_num(tail, nan=0.0) / (self.m + 1.0)
        p[np.isnan(t)] = 1.0
        return p

    def loo_sf(self, t: np.ndarray) -> np.ndarray:
        return self._count_ge(np.asarray(t, dtype=np.float64)) / float(self.m)


def distinct_candidates(
    ids: np.ndarray, groups: np.ndarray, width: int, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``width`` candidates of each row that are distinct items.

    ``ids``: search results sorted by similarity (``-1`` for missing); a candidate whose
    duplicate group (``groups[id]``) already appeared earlier in the row, or equals
    ``exclude[row]`` (a held-out item's own group), is skipped.

    Returns
    -------
    kept_ids, kept_pos : ndarrays of shape (m, width), int64
        The kept candidates' ids and their columns in ``ids`` (``-1`` padding).
    column_rank : ndarray of the shape of ``ids``, int64
        For every input column, the rank among the kept candidates of its duplicate group
        (so copies share their group's entry), ``-1`` when the group was not kept.
    """
    m, w = ids.shape
    g = np.where(ids >= 0, groups[np.maximum(ids, 0)], -1)
    valid = ids >= 0
    if exclude is not None:
        valid &= g != exclude[:, None]
    gk = np.where(valid, g, -1)
    # first occurrence of each group in a row: sort by (group, column), compare with the previous
    cols = np.broadcast_to(np.arange(w), (m, w))
    order = np.lexsort((cols, gk), axis=1)
    gs = np.take_along_axis(gk, order, axis=1)
    starts = np.ones((m, w), dtype=bool)
    starts[:, 1:] = gs[:, 1:] != gs[:, :-1]
    first = np.zeros((m, w), dtype=bool)
    np.put_along_axis(first, order, starts, axis=1)
    keep = valid & first
    rank = np.cumsum(keep, axis=1) - 1
    keep &= rank < width
    out_ids = np.full((m, width), -1, dtype=np.int64)
    out_pos = np.full((m, width), -1, dtype=np.int64)
    r, c = np.nonzero(keep)
    out_ids[r, rank[r, c]] = ids[r, c]
    out_pos[r, rank[r, c]] = c
    # every column -> the first column of its group (in sorted order, the run's start)
    run_start = np.maximum.accumulate(np.where(starts, np.arange(w), 0), axis=1)
    first_col_sorted = np.take_along_axis(order, run_start, axis=1)
    first_col = np.empty_like(first_col_sorted)
    np.put_along_axis(first_col, order, first_col_sorted, axis=1)
    rows = np.arange(m)[:, None]
    column_rank = np.where(valid & keep[rows, first_col], rank[rows, first_col], -1)
    return out_ids, out_pos, column_rank


def held_out_cosines(
    cos: np.ndarray, norm_self: np.ndarray, norm_cand: np.ndarray, n: int, shrinkage: float
) -> np.ndarray:
    r"""Whitened cosines of a database item as if the whitening had not seen it.

    A held-out item must be scored like a query, which the fitted Gaussian never saw; but the
    database's Gaussian was fitted with the item in it, and an in-sample item is less extreme
    in the whitened space than a new point (by a leverage of order ``d / n``), which makes
    held-out statistics light and the null liberal. Removing item :math:`i` changes the mean
    by :math:`-(x_i-\mu)/(n-1)` and the covariance, in the fitted whitened coordinates
    :math:`z`, to :math:`\propto I - eta z_i z_i^	op` with
    :math:`eta = (1-
ho)\,n/(n-1)^2` (:math:`
ho` = ``shrinkage``; an isotropic change of
    order :math:`1/n`, the same for every point, is dropped). Sherman–Morrison then gives the
    held-out inner products :math:`\langle a, b
angle + c\,(z_i\cdot a)(z_i\cdot b)`,
    :math:`c = eta / (1 - eta |z_i|^2)`, from the fitted cosines and norms alone
    (``O(C)`` per item). Exact for full-rank whitening of the unshrunk covariance up to the
    dropped term; first order otherwise.

    Parameters
    ----------
    cos : ndarray of shape (m, C)
        Fitted whitened cosines of each held-out item with its candidates (NaN: missing).
    norm_self : ndarray of shape (m,)
        Whitened norms :math:`|z_i|` of the held-out items.
    norm_cand : ndarray of shape (m, C)
        Whitened norms of the candidates.
    n : int
        Rows the Gaussian was fitted on.
    shrinkage : float
        Shrinkage intensity :math:`
ho` (0 for none).
    """
    ri = np.asarray(norm_self, dtype=np.float64)[:, None]
    rj = np.asarray(norm_cand, dtype=np.float64)
    zz = np.asarray(cos, dtype=np.float64) * ri * rj  # z_i . z_j
    beta = (1.0 - float(shrinkage)) / (n - 1.0)
    c = beta / np.maximum(1.0 - beta * ri**2, 1e-12)
    a = 1.0 / (n - 1.0)
    # z'_i = z_i n/(n-1), z'_j = z_j + z_i/(n-1)
    zi_zj = zz + a * ri**2  # z_i . z'_j
    ii = (1.0 + a) ** 2 * ri**2 * (1.0 + c * ri**2)  # <z'_i, z'_i>_A
    jj = rj**2 + 2.0 * a * zz + a**2 * ri**2 + c * zi_zj**2  # <z'_j, z'_j>_A
    ij = (1.0 + a) * (zi_zj + c * ri**2 * zi_zj)  # <z'_i, z'_j>_A
    with np.errstate(invalid="ignore", divide="ignore"):
        out = ij / np.sqrt(ii * jj)
    return np.clip(out, -1.0, 1.0)


def neighbour_ratio(similarities: np.ndarray, n_reference: int) -> np.ndarray:
    r"""The neighbour ratio :math:`T(c)` of every candidate (module notes).

    Parameters
    ----------
    similarities : ndarray of shape (m, C)
        Cosines of each row's distinct candidates, any order, NaN for missing ones.
    n_reference : int
        ``K``; rows need at least ``K + 1`` candidates (fewer: the missing ones count as
        maximally far, ``1 - s = 2``).

    Returns
    -------
    ndarray of shape (m, C), float64
        NaN where the candidate is missing.
    """
    s = np.asarray(similarities, dtype=np.float64)
    delta = np.where(np.isnan(s), 2.0, np.maximum(1.0 - s, _DELTA_FLOOR))
    K = int(n_reference)
    srt = np.sort(delta, axis=1)
    if srt.shape[1] < K + 1:
        srt = np.pad(srt, ((0, 0), (0, K + 1 - srt.shape[1])), constant_values=2.0)
    first = srt[:, : K + 1].sum(axis=1)  # the K + 1 closest
    kth = srt[:, K]  # the (K+1)-th closest: the one that stays when c is among the K + 1
    inside = delta <= kth[:, None]
    # c among the K + 1 closest: its K others are those minus c; else the K closest
    ref = np.where(inside, first[:, None] - delta, (first - kth)[:, None]) / K
    with np.errstate(divide="ignore"):
        t = np.log(np.maximum(ref, _DELTA_FLOOR) / delta)
    t[np.isnan(s)] = np.nan
    return t


@dataclass(frozen=True, eq=False)
class NeighbourNull:
    r"""The same-item null of a database (module notes).

    Parameters
    ----------
    whitened : ndarray of shape (m,)
        Sorted neighbour ratios of the held-out items on whitened cosines.
    raw : ndarray of shape (m,) or None
        The same on raw cosines (None when the search space is the raw one).
    fused : ndarray of shape (m,) or None
        Sorted :math:`-\log \min(p_w, p_r)` of the held-out items (None with ``raw``).
    n_reference : int
        ``K``.
    n_candidates : int
        ``C``, distinct candidates per query.
    """

    whitened: np.ndarray
    raw: np.ndarray | None
    fused: np.ndarray | None
    n_reference: int
    n_candidates: int

    @property
    def n_null(self) -> int:
        """Held-out items behind the null (``m``)."""
        return int(self.whitened.shape[0])

    @cached_property
    def _laws(self) -> tuple[TailRank, TailRank | None, TailRank | None]:
        return (TailRank(self.whitened), None if self.raw is None else TailRank(self.raw),
                None if self.fused is None else TailRank(self.fused))  # fmt: skip

    @property
    def resolution(self) -> float:
        """``1 / (m + 1)``: the smallest rank p-value; below it the tail is extrapolated."""
        return 1.0 / (self.n_null + 1.0)

    def pvalues(self, whitened: np.ndarray, raw: np.ndarray | None = None) -> np.ndarray:
        """p-values (small = the same item) of each row's distinct candidates.

        Parameters
        ----------
        whitened, raw : ndarrays of shape (m, C)
            Whitened and raw cosines of each row's distinct candidates (NaN for missing);
            ``raw`` is needed when the null was fitted with it.

        Returns
        -------
        ndarray of shape (m, C), float64
            1 for missing candidates.
        """
        law_w, law_r, law_f = self._laws
        pw = law_w.sf(neighbour_ratio(whitened, self.n_reference))
        if law_r is None:
            return pw
        if raw is None:
            raise ValueError("this null needs the raw cosines of the candidates")
        pr = law_r.sf(neighbour_ratio(raw, self.n_reference))
        with np.errstate(divide="ignore"):
            return law_f.sf(-np.log(np.minimum(pw, pr)))


def fit_neighbour_null(
    whitened: np.ndarray, raw: np.ndarray | None, n_reference: int
) -> NeighbourNull:
    """The null from held-out items' candidate cosines (rows: items, columns: candidates).

    Each held-out item's statistic is that of its best candidate (the largest neighbour ratio,
    which is the most similar candidate's).
    """
    n_candidates = int(whitened.shape[1])
    tw = np.nanmax(neighbour_ratio(whitened, n_reference), axis=1)
    law_w = TailRank(np.sort(tw))
    if raw is None:
        return NeighbourNull(law_w.sample, None, None, int(n_reference), n_candidates)
    tr = np.nanmax(neighbour_ratio(raw, n_reference), axis=1)
    law_r = TailRank(np.sort(tr))
    with np.errstate(divide="ignore"):
        fused = -np.log(np.maximum(np.minimum(law_w.loo_sf(tw), law_r.loo_sf(tr)), 1e-300))
    return NeighbourNull(law_w.sample, law_r.sample, np.sort(fused), int(n_reference),
                         n_candidates)  # fmt: skip
