r"""Local Gaussian OOD scoring: a shrunk Gaussian of each query's nearest reference rows.

faiss comes through :mod:`infogauss.retrieval._index` in :func:`_faiss` (optional: exact numpy
search is the fallback, and an ImportError naming the extra is raised only when
``search="faiss"`` is asked for).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .. import gaussian as core
from .. import persistence
from .._validation import check_positive_int, nonfinite_error
from ._base import CalibratedDetector, check_finite, warn_offset

__all__ = ["LocalGaussianOOD", "local_mahalanobis_sq", "SEARCHES", "METRICS"]

SEARCHES = ("auto", "numpy", "faiss")
METRICS = ("euclidean", "cosine")
_LOCAL_SHRINKAGE = ("ledoit_wolf", "oas", "empirical")
# variances below this share of the reference set's mean variance count as this share (only a
# neighbourhood of (near-)duplicate rows gets there: its Gaussian would be degenerate)
_VARIANCE_FLOOR = 1e-12
_BLOCK_BYTES = 1 << 25  # working memory per block of queries
_EPS64 = float(np.finfo(np.float64).eps)
_EPS32 = float(np.finfo(np.float32).eps)


def _faiss(required: bool) -> Any:
    """The faiss module, or None when it is not installed (ImportError if ``required``)."""
    try:  # through the package's one faiss module (the dependency fence)
        from ..retrieval._index import faiss
    except ImportError as exc:
        if required:
            raise ImportError(
                "LocalGaussianOOD(search='faiss') needs faiss, which is not installed: "
                "pip install 'infogauss[faiss]' (or install faiss-cpu); search='auto' falls "
                "back to exact numpy search"
            ) from exc
        return None
    return faiss


# --------------------------------------------------------------------------------------
# functional core
# --------------------------------------------------------------------------------------
def local_shrinkage(
    shrinkage: str | float, k: int, d: int, trace: np.ndarray, frob2: np.ndarray,
    fourth: np.ndarray,
) -> np.ndarray:
    r"""Shrinkage intensities of many k-row samples from their moments (vectorised).

    The intensities of :func:`infogauss.gaussian.covariance_from_stats` (scikit-learn's
    Ledoit–Wolf and OAS), written on the moments a k-row sample gives in O(k² d) without a
    d × d matrix: ``trace`` :math:`=\operatorname{tr}C`, ``frob2`` :math:`=\lVert C\rVert_F^2`
    (equal to :math:`\lVert YY^\top\rVert_F^2/k^2`) and ``fourth``
    :math:`=\sum_i\lVert y_i\rVert^4`, with :math:`C=Y^\top Y/k` the covariance of the centred
    rows :math:`Y`. Clipped to [0, 1].
    """
    trace, frob2, fourth = (np.asarray(a, dtype=np.float64) for a in (trace, frob2, fourth))
    if not isinstance(shrinkage, str):
        return np.full(trace.shape, float(shrinkage))
    if shrinkage == "empirical" or d == 1:
        return np.zeros(trace.shape)
    mu = trace / d
    with np.errstate(divide="ignore", invalid="ignore"):
        if shrinkage == "ledoit_wolf":
            beta = (fourth / k - frob2) / (d * k)
            delta = (frob2 - 2.0 * mu * trace + d * mu * mu) / d
            beta = np.minimum(beta, delta)
            s = np.where((beta == 0) | (delta <= 0), 0.0, beta / delta)
        else:  # oas
            alpha = frob2 / (d * d)
            num = alpha + mu * mu
            den = (k + 1) * (alpha - mu * mu / d)
            s = np.where(den == 0, 1.0, np.minimum(num / den, 1.0))
    return np.clip(s, 0.0, 1.0)


def local_mahalanobis_sq(
    neighbors: np.ndarray,
    X: np.ndarray,
    *,
    shrinkage: str | float = "ledoit_wolf",
    n_components: int | None = None,
    variance_floor: float = 0.0,
) -> np.ndarray:
    r"""Squared Mahalanobis distance of each query under the shrunk Gaussian of its neighbours.

    Parameters
    ----------
    neighbors : ndarray of shape (n_queries, k, n_features)
        The k reference rows of each query (any order).
    X : ndarray of shape (n_queries, n_features)
        The queries.
    shrinkage : {"ledoit_wolf", "oas", "empirical"} or float in [0, 1]
        Shrinkage of each local covariance toward :math:`\nu I`, :math:`\nu=\operatorname{tr}C/d`.
    n_components : int, optional
        Keep the ``n_components`` leading local principal directions and give the others one
        common variance (probabilistic PCA; see Notes). None: the full shrunk covariance.
    variance_floor : float, default=0
        Smallest variance any direction may get (guards neighbourhoods of duplicate rows).

    Returns
    -------
    ndarray of shape (n_queries,), float64
        **Squared** distances (larger = farther from the neighbourhood).

    Notes
    -----
    With :math:`\mu` the mean of the k neighbours, :math:`Y` the centred neighbours and
    :math:`C=Y^\top Y/k=\sum_j\lambda_j v_jv_j^\top` (its eigenpairs come from the smaller of
    :math:`YY^\top` and :math:`Y^\top Y`: O(k·d·min(k, d)), no d × d inverse), the covariance is
    :math:`\Sigma=\sum_{j\le q}\ell_j v_jv_j^\top+f\,(I-\sum_{j\le q}v_jv_j^\top)` with the shrunk
    eigenvalues :math:`\ell_j=(1-s)\lambda_j+s\nu` and the floor :math:`f=(1-s)\rho+s\nu`, where
    :math:`\rho=(\operatorname{tr}C-\sum_{j\le q}\lambda_j)/(d-q)` is the mean discarded variance
    (Tipping & Bishop's PPCA noise; :math:`\rho=0` and :math:`q=\operatorname{rank}C` without
    ``n_components``, so that :math:`\Sigma=(1-s)C+s\nu I` exactly). By Woodbury, with
    :math:`z_j=v_j^\top(x-\mu)`,
    :math:`m^2=\lVert x-\mu\rVert^2/f+\sum_{j\le q}z_j^2\,(1/\ell_j-1/f)`.
    """
    N = np.asarray(neighbors, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    b, k, d = N.shape
    mu = N.mean(axis=1)
    Y = N - mu[:, None, :]
    v = X - mu
    vv = np.einsum("bi,bi->b", v, v)
    sq = np.einsum("bki,bki->bk", Y, Y)
    trace = sq.sum(axis=1) / k
    fourth = np.einsum("bk,bk->b", sq, sq)
    if k <= d:  # Gram side: eigenpairs of Y Y^T (k x k), z_j = u_j^T Y v / sqrt(k lambda_j)
        G = np.matmul(Y, Y.transpose(0, 2, 1))
        src = np.einsum("bki,bi->bk", Y, v)
    else:  # covariance side: eigenpairs of Y^T Y (d x d), z_j = v_j^T v
        G = np.matmul(Y.transpose(0, 2, 1), Y)
        src = v
    frob2 = np.einsum("bij,bij->b", G, G) / (k * k)
    evals, vecs = np.linalg.eigh(G)
    evals, vecs = np.maximum(evals[:, ::-1], 0.0), vecs[:, :, ::-1]  # descending
    proj = np.einsum("bij,bi->bj", vecs, src)
    lam = evals / k
    m = lam.shape[1]
    q = m if n_components is None else min(int(n_components), m)
    lam, proj = lam[:, :q], proj[:, :q]
    if k <= d:
        # eigenvalues at rounding level carry no direction: they join the residual
        keep = lam > (100.0 * m * _EPS64) * lam[:, :1]
        z2 = np.where(keep, proj * proj / np.where(keep, k * lam, 1.0), 0.0)
    else:
        z2 = proj * proj
    s = local_shrinkage(shrinkage, k, d, trace, frob2, fourth)
    nu = trace / d
    ell = np.maximum((1.0 - s)[:, None] * lam + (s * nu)[:, None], variance_floor)
    if k > d and q == d:  # the directions span every dimension: no residual
        return np.einsum("bj,bj->b", z2, 1.0 / ell)
    rho = np.zeros(b) if n_components is None else (trace - lam.sum(axis=1)) / (d - q)
    f = np.maximum((1.0 - s) * np.maximum(rho, 0.0) + s * nu, variance_floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        return vv / f + np.einsum("bj,bj->b", z2, 1.0 / ell - (1.0 / f)[:, None])


# --------------------------------------------------------------------------------------
# estimator
# --------------------------------------------------------------------------------------
class LocalGaussianOOD(CalibratedDetector):
    r"""OOD detector scoring each query under a shrunk Gaussian of its k nearest reference rows.

    A "local" Mahalanobis distance (local whitening as in CLIDE, with shrinkage): the model
    adapts to curved or clustered embeddings where one global Gaussian is too coarse, and
    still gives a Gaussian's analytic structure per query.

    Parameters
    ----------
    n_neighbors : int >= 3, default=200
        Neighbours ``k`` per query; at most the number of reference rows (the fitting part of
        ``X`` with ``calibration="split"``). (Two points have a rank-one covariance whose
        Ledoit–Wolf intensity is 0.)
    n_components : int, optional
        Keep this many leading local principal directions (PPCA truncation: the others get
        their mean variance; see :func:`local_mahalanobis_sq`). At most ``n_neighbors - 1``
        and ``n_features``. None: the full shrunk local covariance.
    shrinkage : {"ledoit_wolf", "oas", "empirical"} or float in [0, 1], default="ledoit_wolf"
        Shrinkage of each local covariance toward its mean variance (intensity per query,
        scikit-learn's Ledoit–Wolf or OAS formula on the k rows). ``"empirical"`` (or 0) needs
        ``n_components`` or ``n_neighbors > n_features``: k rows span only k - 1 directions.
    metric : {"euclidean", "cosine"}, default="euclidean"
        ``"cosine"``: rows of the reference set and queries are L2-normalised first; the
        neighbours and the Gaussians are those of the unit vectors.
    contamination : float in (0, 0.5], default=0.05
        False-alarm rate of ``predict`` on new in-distribution data (guaranteed with
        ``calibration="split"``; see :class:`~infogauss.ood.MahalanobisOOD`).
    calibration : {"split", None}, default="split"
        ``"split"``: ``fit`` holds out ``calibration_size`` of ``X``, uses the rest as the
        reference set and calibrates on the held-out rows — which are not in the reference set,
        so a held-out row is never its own neighbour, exactly as for a new point. ``None``: the
        reference set is all of ``X`` and ``offset_`` the quantile of its rows' leave-one-out
        scores (each row under the Gaussian of its k nearest *other* rows, as a new point).
    calibration_size : float in (0, 1) or int, default=0.2
        Share or number of rows held out by ``calibration="split"``.
    search : {"auto", "numpy", "faiss"}, default="auto"
        Neighbour search. ``"numpy"``: exact blocked matrix products and ``argpartition``;
        ``"faiss"``: a flat (exact) faiss index proposes candidates (float32); ``"auto"``: faiss
        when installed. Either way the candidates are re-ranked by float64 distances, ties
        broken by reference row, with a proof that no row outside them can be nearer (else
        the query is searched exhaustively), so both give the same neighbours.
    chunk_size : int, optional
        Queries per block (default: blocks of about 32 MiB of working memory).
    random_state : int, RandomState instance or None, default=None
        Seeds the calibration split.

    Attributes
    ----------
    reference_ : ndarray of shape (n_reference, n_features), float64
        The reference rows (L2-normalised for ``metric="cosine"``).
    search_ : {"numpy", "faiss"}
        The search in use.
    offset_ : float
        ``decision_function = score_samples - offset_``.
    calibration_scores_ : ndarray of shape (n_calibration,)
        Sorted scores of the calibration set.
    n_calibration_ : int
    n_samples_seen_ : int
        Reference rows.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from infogauss.ood import LocalGaussianOOD
    >>> rng = np.random.default_rng(0)
    >>> det = LocalGaussianOOD(n_neighbors=50, random_state=0).fit(rng.normal(size=(500, 3)))
    >>> det.n_samples_seen_, det.n_calibration_
    (400, 100)
    >>> det.predict(np.array([[0.0, 0.0, 0.0], [6.0, 6.0, 6.0]])).tolist()
    [1, -1]

    Notes
    -----
    ``score_samples(x) = -m²(x)``, the **squared** Mahalanobis distance of ``x`` under
    :math:`N(\mu_k(x), \Sigma_k(x))` fitted on its k nearest reference rows
    (:func:`local_mahalanobis_sq`). Per query O(N·d) for the search and O(k·d·min(k, d) +
    min(k, d)³) for the Gaussian; queries are processed in blocks, each row on its own.

    A query the data surround on all sides at about the same distance (the centre of a ring
    or of a hollow sphere) gets neighbours all around it, whose Gaussian is wide and centred
    near it: such a point looks typical. k much smaller than the number of reference rows
    keeps neighbourhoods local.
    """

    _fitted_attr = "reference_"

    def __init__(
        self,
        *,
        n_neighbors: int = 200,
        n_components: int | None = None,
        shrinkage: str | float = "ledoit_wolf",
        metric: str = "euclidean",
        contamination: float = 0.05,
        calibration: str | None = "split",
        calibration_size: float | int = 0.2,
        search: str = "auto",
        chunk_size: int | None = None,
        random_state: Any = None,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.shrinkage = shrinkage
        self.metric = metric
        self.contamination = contamination
        self.calibration = calibration
        self.calibration_size = calibration_size
        self.search = search
        self.chunk_size = chunk_size
        self.random_state = random_state

    # ------------------------------------------------------------------ parameters
    def _validate_params_(self) -> None:
        k = check_positive_int(self.n_neighbors, "n_neighbors", minimum=3)
        q = check_positive_int(self.n_components, "n_components", allow_none=True)
        if q is not None and q > k - 1:
            raise ValueError(
                f"`n_components` must be <= n_neighbors - 1 = {k - 1} (k neighbours span at "
                f"most k - 1 directions), got {self.n_components}"
            )
        if isinstance(self.shrinkage, str) and self.shrinkage not in _LOCAL_SHRINKAGE:
            raise ValueError(
                f"`shrinkage` must be one of {_LOCAL_SHRINKAGE} or a float in [0, 1], got "
                f"{self.shrinkage!r} (a diagonal covariance has no low-rank form)"
            )
        core._check_shrinkage(self.shrinkage)
        if self.metric not in METRICS:
            raise ValueError(f"`metric` must be one of {METRICS}, got {self.metric!r}")
        if self.search not in SEARCHES:
            raise ValueError(f"`search` must be one of {SEARCHES}, got {self.search!r}")
        check_positive_int(self.chunk_size, "chunk_size", allow_none=True)
        self._check_protocol_params()
        if self.search == "faiss":
            _faiss(required=True)

    def _unshrunk(self) -> bool:
        return self.shrinkage == "empirical" or (
            isinstance(self.shrinkage, numbers.Real) and float(self.shrinkage) == 0.0
        )

    # ------------------------------------------------------------------ input
    def _normalise(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if self.metric != "cosine":
            return X
        norms = np.sqrt(np.einsum("ij,ij->i", X, X))
        zero = np.flatnonzero(norms == 0)
        if zero.size:
            raise ValueError(
                f"`X` has a row of zero norm (row {int(zero[0])}): metric='cosine' needs "
                "nonzero rows"
            )
        return X / norms[:, None]

    def _validate_fit_X(self, X: Any) -> np.ndarray:
        X = super()._validate_fit_X(X)
        if self.metric == "cosine" and X.shape[1] < 2:
            raise ValueError(
                "metric='cosine' needs at least 2 features (a direction in one dimension is "
                f"only a sign), got {X.shape[1]} feature(s)"
            )
        return self._normalise(X)

    def _check_X(self, X: Any) -> np.ndarray:
        X = super()._check_X(X)
        check_finite(X, "X")
        return self._normalise(X)

    # ------------------------------------------------------------------ fitting
    def _fit_state(self, X: np.ndarray, y: Any, rng: Any) -> dict:
        n, d = X.shape
        k = self.n_neighbors
        if self.calibration is None and k > n - 1:
            raise ValueError(
                f"`n_neighbors` must be <= the number of rows of X minus one, {n - 1}, with "
                f"calibration=None (offset_ comes from each row's k nearest *other* rows); got "
                f"{k}. Pass more rows or a smaller n_neighbors"
            )
        if k > n:
            held = "" if self.calibration is None else (
                " (the rows of X left after holding out the calibration part; calibration_size "
                f"= {self.calibration_size!r})"
            )
            raise ValueError(
                f"`n_neighbors` must be <= the number of reference rows, {n}{held}; got {k}. "
                "Pass more rows or a smaller n_neighbors"
            )
        if self.n_components is not None and self.n_components > d:
            raise ValueError(
                f"`n_components` must be <= the number of features, got n_components="
                f"{self.n_components} for {d} feature(s)"
            )
        if self._unshrunk() and self.n_components is None and k - 1 < d:
            raise ValueError(
                f"`shrinkage`={self.shrinkage!r} leaves the local covariance of "
                f"n_neighbors={k} rows singular in {d} features (k rows span k - 1 "
                "directions): use shrinkage='ledoit_wolf' (the default), set n_components, or "
                f"take n_neighbors > {d}"
            )
        reference = np.array(X, dtype=np.float64, order="C", copy=True)
        if float(np.max(np.ptp(reference, axis=0))) == 0.0:
            raise ValueError("`X` has no variance (all reference rows are equal)")
        mean = reference.mean(axis=0)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            dev = reference - mean
            colsq = np.einsum("ij,ij->j", dev, dev)
        if not np.isfinite(colsq).all() or np.any((colsq == 0) & np.any(dev != 0, axis=0)):
            core.stats_from_array(reference)  # squares over- or underflow: the core says so
        warn_offset(mean, colsq / n)
        return {"reference_": reference, "n_samples_seen_": int(n)}

    def _prepare_scoring(self) -> None:
        R = self.reference_
        self._center = R.mean(axis=0)
        Rc = R - self._center
        self._floor = _VARIANCE_FLOOR * float(np.einsum("ij,ij->", Rc, Rc)) / R.size
        self._r2max = float(np.max(np.einsum("ij,ij->i", Rc, Rc)))
        faiss = None if self.search == "numpy" else _faiss(required=self.search == "faiss")
        self.search_ = "numpy" if faiss is None else "faiss"
        self._index = None
        if faiss is None:
            self._ref_c, self._ref_sq = Rc, np.einsum("ij,ij->i", Rc, Rc)
        else:
            self._ref_c = self._ref_sq = None
            self._index = faiss.IndexFlatL2(R.shape[1])
            self._index.add(np.ascontiguousarray(Rc, dtype=np.float32))

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())  # a copy: the live estimator keeps its caches
        for key in ("_index", "_ref_c", "_ref_sq"):  # a faiss index does not pickle; all three
            state.pop(key, None)  # are rebuilt from reference_ on unpickling
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if "reference_" in self.__dict__:
            self._prepare_scoring()

    # ------------------------------------------------------------------ neighbours
    def _block_rows(self) -> int:
        if self.chunk_size is not None:
            return int(self.chunk_size)
        n, d = self.reference_.shape
        k = self.n_neighbors
        c = min(n, k + _margin(k))
        per_query = 8 * (n + c * d + k * d + min(k, d) ** 2 * 2 + d)
        return max(1, _BLOCK_BYTES // per_query)

    def _exact_sq(self, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """float64 squared distances from each query ``x[b]`` to reference rows ``idx[b]``."""
        D = self.reference_[idx] - x[:, None, :]
        return np.einsum("bci,bci->bc", D, D)

    def _rank(self, x: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest of the candidates: ordered by float64 distance, then row index."""
        e = self._exact_sq(x, cand)
        order = np.lexsort((cand, e), axis=-1)[:, :k]
        return np.take_along_axis(e, order, 1), np.take_along_axis(cand, order, 1)

    def _exhaustive(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest reference rows of one query by float64 distances to every row."""
        D = self.reference_ - x
        e = np.einsum("ci,ci->c", D, D)
        kth = np.partition(e, k - 1)[k - 1]
        cand = np.flatnonzero(e <= kth)
        return self._rank(x[None, :], cand[None, :], k)

    def _neighbors(self, X: np.ndarray, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Squared distances and indices of the k (default ``n_neighbors``) nearest reference
        rows (float64 order)."""
        n_ref, d = self.reference_.shape
        k = self.n_neighbors if k is None else k
        c = min(n_ref, k + _margin(k))
        Xc = X - self._center
        with np.errstate(over="ignore", invalid="ignore"):
            q2 = np.einsum("ij,ij->i", Xc, Xc)
        if not np.isfinite(q2).all():  # a finite query whose squared distances overflow
            raise nonfinite_error("X", int(np.flatnonzero(~np.isfinite(q2))[0]))
        if self.search_ == "faiss":
            D, cand = self._index.search(np.ascontiguousarray(Xc, dtype=np.float32), c)
            D, cand = D.astype(np.float64), cand.astype(np.intp)
            err = 4.0 * (d + 2) * _EPS32 * (q2 + self._r2max)
        else:
            D = q2[:, None] - 2.0 * (Xc @ self._ref_c.T) + self._ref_sq[None, :]
            err = 4.0 * (d + 2) * _EPS64 * (q2 + self._r2max)
            if c < n_ref:
                part = np.argpartition(D, (k - 1, c), axis=1)
                rows = np.arange(X.shape[0])
                bound = D[rows, part[:, c]]  # the (c+1)-th smallest: no row outside is nearer
                cand = part[:, :c]
            else:
                cand = np.broadcast_to(np.arange(n_ref), D.shape)
        dist, idx = self._rank(X, cand, k)
        if c < n_ref:
            # rows outside the candidates are at least `bound - err` away; the k-th found is at
            # most `dist[:, -1] + err`: closer ties or misses are only possible below that
            if self.search_ == "faiss":
                bound = D[:, -1]
            suspect = np.flatnonzero(bound - err <= dist[:, -1] + err)
            for i in suspect:
                dist[i], idx[i] = (a[0] for a in self._exhaustive(X[i], k))
        return dist, idx

    def kneighbors(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """The ``n_neighbors`` nearest reference rows of each query.

        Returns
        -------
        distances : ndarray of shape (n_samples, n_neighbors), float64
            Euclidean distances (between unit vectors for ``metric="cosine"``), increasing.
        indices : ndarray of shape (n_samples, n_neighbors)
            Rows of ``reference_``; equal distances are ordered by row.
        """
        X = self._check_X(X)
        dist = np.empty((X.shape[0], self.n_neighbors))
        idx = np.empty((X.shape[0], self.n_neighbors), dtype=np.intp)
        for sl in core.iter_chunks(X.shape[0], self._block_rows()):
            dist[sl], idx[sl] = self._neighbors(X[sl])
        return np.sqrt(dist), idx

    # ------------------------------------------------------------------ scoring
    def local_mahalanobis(self, X: Any) -> np.ndarray:
        """**Squared** Mahalanobis distance of each row under its local Gaussian.

        Returns
        -------
        ndarray of shape (n_samples,), float64
            Larger = less in-distribution; ``score_samples`` is minus this.
        """
        return -self._scores(self._check_X(X))

    def _scores(self, X: np.ndarray) -> np.ndarray:
        out = np.empty(X.shape[0])
        for sl in core.iter_chunks(X.shape[0], self._block_rows()):
            _, idx = self._neighbors(X[sl])
            out[sl] = -local_mahalanobis_sq(
                self.reference_[idx], X[sl], shrinkage=self.shrinkage,
                n_components=self.n_components, variance_floor=self._floor,
            )  # fmt: skip
        return out

    def _fit_scores(self, X: np.ndarray) -> np.ndarray:
        """Leave-one-out scores of the reference rows (``calibration=None``'s ``offset_``):
        each row under the Gaussian of its k nearest *other* reference rows, as a new point
        would be (a row among its own neighbours would look more typical than new data: with
        k = 50 on 384-dimensional text embeddings, a training-quantile threshold so set flagged
        nearly every new in-distribution row). With k = all rows, the other n - 1."""
        n = self.reference_.shape[0]
        if X.shape != self.reference_.shape:  # pragma: no cover - the base passes the fit rows
            raise RuntimeError("_fit_scores expects the reference rows")
        k = self.n_neighbors
        out = np.empty(n)
        for sl in core.iter_chunks(n, self._block_rows()):
            _, idx = self._neighbors(X[sl], min(k + 1, n))
            rows = np.arange(sl.start, sl.stop)
            own = idx == rows[:, None]
            # drop the row itself; when ties with duplicates keep it out of the k + 1, drop
            # the farthest (the same neighbourhood: the duplicates are at distance 0)
            drop = np.where(own.any(axis=1), own.argmax(axis=1), idx.shape[1] - 1)
            keep = np.ones(idx.shape, dtype=bool)
            keep[np.arange(idx.shape[0]), drop] = False
            others = idx[keep].reshape(idx.shape[0], idx.shape[1] - 1)
            out[sl] = -local_mahalanobis_sq(
                self.reference_[others], X[sl], shrinkage=self.shrinkage,
                n_components=self.n_components, variance_floor=self._floor,
            )  # fmt: skip
        return out

    # ------------------------------------------------------------------ persistence
    def _state_arrays(self) -> tuple[dict, dict]:
        return {}, {"reference_": self.reference_}

    def _restore(self, path: Any, attrs: dict, arrays: dict) -> None:
        err = persistence.ModelFileError
        R = arrays.pop("reference_", None)
        if R is None or R.ndim != 2 or R.dtype != np.float64 \
                or R.shape != (self.n_samples_seen_, self.n_features_in_):
            raise err(path, "reference_ is missing or does not match n_samples_seen_ and "
                            "n_features_in_")  # fmt: skip
        if not np.isfinite(R).all():
            raise err(path, "reference_ holds non-finite values")
        if self.n_neighbors > R.shape[0]:
            raise err(path, f"n_neighbors={self.n_neighbors} exceeds its {R.shape[0]} reference rows")
        if self.metric == "cosine" and not np.allclose(np.einsum("ij,ij->i", R, R), 1.0, atol=1e-12):
            raise err(path, "metric='cosine' but reference_ rows are not unit vectors")
        self.reference_ = R


def _margin(k: int) -> int:
    """Extra candidates fetched beyond k (re-ranked in float64)."""
    return max(16, k // 4)
