r"""Exact and near-exact duplicate rows of a set of unit vectors (numpy and scipy only).

A database that holds the same item twice breaks an empirical null: a pseudo-query's copy is
its "best non-match", at cosine 1, and every real match then looks ordinary. The retriever
finds the copies at fit time with :func:`find_duplicates`, reports them
(``CalibratedRetriever.duplicate_groups_``, a warning) and counts each group once in the null
and in the top-1 correction.

Two rows are near-exact duplicates when their cosine distance is at most ``tol``
(:math:`1 - \langle u_i, u_j\rangle \le` ``tol``); groups are the connected components of that
relation (so a chain of near-copies is one group). The search is complete — every pair within
``tol`` is found — and needs no all-pairs scan: bitwise-identical rows are merged by hashing,
then the rows are projected on a few fixed random directions and bucketed on a grid whose cells
are wider than the largest distance ``tol`` allows, so only rows in the same or adjacent cells
are compared. Cost: about ``O(n d)`` plus the pairs within neighbouring cells.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

from .._validation import check_probability

__all__ = ["find_duplicates", "duplicate_groups", "DUPLICATE_TOL"]

#: Default cosine distance at or below which two rows are near-exact duplicates: far above
#: float32 rounding (~1e-7), far below the distance of two independent whitened vectors in 8 or
#: more dimensions (the chance of a non-matching pair this close is below 1e-16).
DUPLICATE_TOL = 1e-5
_N_PROJECTIONS = 4
_PAIR_BLOCK = 1 << 20


def _grid_pairs(Z: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (i < j) of rows of ``Z`` within cosine distance ``tol`` (rows distinct)."""
    n, d = Z.shape
    if n < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    m = min(_N_PROJECTIONS, d)
    basis, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((d, m)))
    Y = Z.astype(np.float64) @ basis
    # ||u - v||^2 = |u|^2 + |v|^2 - 2 u.v <= 2 tol + (float32 norm error), and a projection on
    # a unit direction is at most that long: cells at least this wide hold a pair in the same
    # or adjacent cells
    width = math.sqrt(2.0 * tol + 1e-6)
    cells = np.floor(Y / width).astype(np.int64)
    cells -= cells.min(axis=0) - 1
    base = int(cells.max()) + 2
    powers = base ** np.arange(m, dtype=np.int64)
    keys = cells @ powers
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    rows_i, rows_j = [], []
    for offset in itertools.product((-1, 0, 1), repeat=m):
        if offset < (0,) * m:  # each unordered pair of cells once (the other half mirrors it)
            continue
        target = keys + np.asarray(offset, dtype=np.int64) @ powers
        lo = np.searchsorted(sorted_keys, target, side="left")
        hi = np.searchsorted(sorted_keys, target, side="right")
        counts = hi - lo
        if not counts.any():
            continue
        i = np.repeat(np.arange(n), counts)
        starts = np.repeat(lo - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
        j = order[np.arange(i.size) + starts]
        keep = i < j if not any(offset) else i != j
        i, j = i[keep], j[keep]
        for s in range(0, i.size, _PAIR_BLOCK):
            bi, bj = i[s : s + _PAIR_BLOCK], j[s : s + _PAIR_BLOCK]
            cos = np.einsum("ij,ij->i", Z[bi], Z[bj], dtype=np.float64)
            close = 1.0 - cos <= tol
            rows_i.append(bi[close])
            rows_j.append(bj[close])
    if not rows_i:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(rows_i), np.concatenate(rows_j)


def find_duplicates(vectors: Any, *, tol: float = DUPLICATE_TOL) -> np.ndarray:
    """Group the rows of ``vectors`` into sets of exact or near-exact duplicates.

    Parameters
    ----------
    vectors : array-like of shape (n, d)
        Unit-norm rows (e.g. the retriever's whitened, normalised database).
    tol : float in [0, 1), default=DUPLICATE_TOL
        Largest cosine distance ``1 - cos`` of two rows that are copies of one item
        (0: bitwise-identical rows only).

    Returns
    -------
    ndarray of shape (n,), int64
        ``groups[i]`` is the smallest row index of row ``i``'s group: ``groups[i] == i`` for
        the first row of each group (its representative) and for rows without copies.

    Examples
    --------
    >>> import numpy as np
    >>> u = np.eye(3, dtype="float32")[[0, 1, 0, 2, 1]]
    >>> find_duplicates(u).tolist()
    [0, 1, 0, 3, 1]
    """
    Z = np.ascontiguousarray(vectors)
    if Z.ndim != 2:
        raise ValueError(f"`vectors` must be a 2-D array, got shape {Z.shape}")
    if tol != 0:
        tol = check_probability(tol, "tol", open_left=False)
    n = Z.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.int64)
    # bitwise-identical rows first (hashing): large groups of exact copies cost O(n), not O(g^2)
    rows = Z.view(np.dtype((np.void, Z.dtype.itemsize * Z.shape[1]))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    i, j = (np.empty(0, np.int64), np.empty(0, np.int64))
    if tol > 0:
        i, j = _grid_pairs(Z[first], tol)
    n_unique = first.size
    graph = coo_array(
        (np.ones(i.size, dtype=np.int8), (i, j)), shape=(n_unique, n_unique)
    ).tocsr()
    _, component = connected_components(graph, directed=False)
    comp_of_row = component[inverse]
    smallest = np.full(int(comp_of_row.max()) + 1, n, dtype=np.int64)
    np.minimum.at(smallest, comp_of_row, np.arange(n, dtype=np.int64))
    return smallest[comp_of_row]


def duplicate_groups(groups: np.ndarray) -> list[np.ndarray]:
    """Rows of each group with more than one row (sorted), from :func:`find_duplicates`.

    Examples
    --------
    >>> [g.tolist() for g in duplicate_groups(np.array([0, 1, 0, 3, 1]))]
    [[0, 2], [1, 4]]
    """
    groups = np.asarray(groups)
    order = np.argsort(groups, kind="stable")
    ids, starts, sizes = np.unique(groups[order], return_index=True, return_counts=True)
    return [order[s : s + k] for s, k in zip(starts, sizes) if k > 1]


def merge_groups(groups: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """``groups`` after joining the groups of rows ``i[t]`` and ``j[t]`` (same convention)."""
    n = groups.shape[0]
    graph = coo_array(
        (np.ones(n + i.size, dtype=np.int8),
         (np.r_[np.arange(n), i], np.r_[groups, j])), shape=(n, n)
    ).tocsr()  # fmt: skip
    _, component = connected_components(graph, directed=False)
    smallest = np.full(int(component.max()) + 1, n, dtype=np.int64)
    np.minimum.at(smallest, component, np.arange(n, dtype=np.int64))
    return smallest[component]
