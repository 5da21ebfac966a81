r"""Gaussian kernel density OOD scoring: a mixture of one shrunk Gaussian per reference row.

The functional core (:func:`kernel_log_density`, :func:`loo_bandwidth`) works on whitened
rows; :class:`KernelDensityOOD` whitens with a shrunk covariance of the reference set, picks
the bandwidth by leave-one-out likelihood and calibrates as every detector of
:mod:`infogauss.ood` does.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

from .. import gaussian as core
from .. import persistence
from .._validation import check_positive_int, nonfinite_error
from ._base import CalibratedDetector, check_finite, warn_offset

__all__ = ["KernelDensityOOD", "kernel_log_density", "loo_bandwidth", "whiten_rows", "BANDWIDTHS"]

BANDWIDTHS = ("loo",)
_LOG_2PI = math.log(2.0 * math.pi)
_EPS64 = float(np.finfo(np.float64).eps)
_BLOCK_BYTES = 1 << 25  # working memory of one block of squared distances
_WHITEN_ROWS = 64  # rows per whitening product (fixed: a row rounds the same in any batch)
_LOG_TINY = -700.0  # exp of this is a normal float64 (no subnormal arithmetic)
_N_EXACT = 32  # nearest rows per query whose squared distances are direct differences


# --------------------------------------------------------------------------------------
# functional core
# --------------------------------------------------------------------------------------
def _block_rows(n_ref: int, chunk_size: int | None) -> int:
    if chunk_size is not None:
        return int(chunk_size)
    return max(1, _BLOCK_BYTES // (8 * max(n_ref, 1)))


def squared_distances(Zq: np.ndarray, Z: np.ndarray, z_sq: np.ndarray) -> np.ndarray:
    r"""Squared Euclidean distances of each query row to every reference row (float64, ≥ 0).

    :math:`\lVert q\rVert^2-2q\cdot z+\lVert z\rVert^2` with one matrix product; the rounding
    error of an entry is at most about :math:`4(d+2)\varepsilon(\lVert q\rVert^2+\lVert
    z\rVert^2)` (negative values from rounding are set to 0).
    """
    q_sq = np.einsum("ij,ij->i", Zq, Zq)
    D = Zq @ Z.T
    D *= -2.0
    D += q_sq[:, None]
    D += z_sq[None, :]
    np.maximum(D, 0.0, out=D)
    return D


def whiten_rows(X: np.ndarray, location: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``(X - location) @ W`` in float64, each row the same in any batch.

    The products run on blocks of exactly :data:`_WHITEN_ROWS` rows (the last one padded with
    zeros): a matrix product rounds a row differently with the number of rows per call, and
    the kernel density magnifies the error of a whitened row by ``‖z − z_i‖/h²``.
    """
    n = X.shape[0]
    out = np.empty((n, W.shape[1]))
    block = np.zeros((_WHITEN_ROWS, X.shape[1]))
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is caught by the caller
        for start in range(0, n, _WHITEN_ROWS):
            m = min(_WHITEN_ROWS, n - start)
            block[:m] = X[start : start + m]
            block[:m] -= location
            block[m:] = 0.0
            out[start : start + m] = (block @ W)[:m]
    return out


def kernel_log_density(
    Zq: np.ndarray,
    Z: np.ndarray,
    bandwidth: float,
    *,
    logdet: float = 0.0,
    leave_out: np.ndarray | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    r"""Log-density of each query under the Gaussian kernel density of the reference rows.

    Parameters
    ----------
    Zq : ndarray of shape (n_queries, d)
        Queries, in the whitened coordinates of the reference rows.
    Z : ndarray of shape (n, d)
        Reference rows (whitened).
    bandwidth : float > 0
        The kernel's standard deviation ``h`` in whitened units: each reference row carries
        :math:`N(z_i, h^2 I)`.
    logdet : float, default=0
        :math:`\log\det\Sigma` of the whitening (so that the result is the log-density of the
        unwhitened rows under :math:`\tfrac1n\sum_i N(x_i, h^2\Sigma)`).
    leave_out : ndarray of shape (n_queries,) of int, optional
        For each query, a reference row left out of its sum (leave-one-out: query ``j`` is
        reference row ``leave_out[j]``); the sum then averages over ``n - 1`` rows.
    chunk_size : int, optional
        Queries per block (default: blocks of about 32 MiB of distances).

    Returns
    -------
    ndarray of shape (n_queries,), float64
        :math:`\log\frac1n\sum_i N(z;z_i,h^2I)-\tfrac12\log\det\Sigma`.

    Notes
    -----
    All squared distances come from one matrix product (:func:`squared_distances`), whose
    rounding error grows with the squared norms, not with the distance; divided by
    :math:`2h^2` it would dominate the score at small bandwidths. So the 32 nearest rows of
    each query — the terms that carry the sum when :math:`h` is small — are recomputed as
    sums of squared differences (rounding relative to the distance itself), and the others
    enter with weights below theirs: the score is accurate, and a row scores the same in any
    batch, to :data:`infogauss.gaussian.BATCH_RTOL`.
    """
    Zq = np.asarray(Zq, dtype=np.float64)
    Z = np.asarray(Z, dtype=np.float64)
    n, d = Z.shape
    h2 = float(bandwidth) ** 2
    z_sq = np.einsum("ij,ij->i", Z, Z)
    n_sum = n if leave_out is None else n - 1
    const = -math.log(n_sum) - 0.5 * (d * (_LOG_2PI + math.log(h2)) + logdet)
    out = np.empty(Zq.shape[0])
    c = min(n, _N_EXACT)
    for sl in core.iter_chunks(Zq.shape[0], _block_rows(n, chunk_size)):
        D = squared_distances(Zq[sl], Z, z_sq)
        if c < n:  # the terms that dominate the sum, by direct differences (see Notes)
            if leave_out is not None:
                D[np.arange(D.shape[0]), leave_out[sl]] = np.inf
            idx = np.argpartition(D, c - 1, axis=1)[:, :c]
        else:
            idx = np.broadcast_to(np.arange(n), D.shape)
        diff = Z[idx] - Zq[sl][:, None, :]
        np.put_along_axis(D, idx, np.einsum("bci,bci->bc", diff, diff), axis=1)
        D *= -0.5 / h2
        if leave_out is not None:
            D[np.arange(D.shape[0]), leave_out[sl]] = -np.inf
        top = D.max(axis=1)  # log-sum-exp in place: the largest term is exp(0)
        D -= top[:, None]
        # terms below e^-700 (relative to the largest) count as e^-700: subnormal results of
        # exp are 100 times slower, and n of them change the sum by less than 1e-290
        np.maximum(D, _LOG_TINY, out=D)
        np.exp(D, out=D)
        out[sl] = top + np.log(D.sum(axis=1)) + const
    return out


def loo_bandwidth(
    Z: np.ndarray,
    rows: np.ndarray,
    *,
    n_nearest: int = 256,
    chunk_size: int | None = None,
) -> tuple[float, float]:
    r"""The kernel bandwidth that maximises the leave-one-out log-likelihood of ``rows``.

    Parameters
    ----------
    Z : ndarray of shape (n, d)
        Reference rows (whitened), at least two distinct.
    rows : ndarray of int
        The rows whose leave-one-out likelihood is maximised (each against all others).
    n_nearest : int, default=256
        Each held-out row's sum runs over its ``n_nearest`` nearest other rows (see Notes).

    Returns
    -------
    bandwidth : float
        ``h`` (the kernel's standard deviation in whitened units).
    loglik : float
        The mean leave-one-out log-likelihood per row at ``h`` (whitened units, natural log).

    Notes
    -----
    Row :math:`i` is scored under :math:`\frac{1}{n_i}\sum_{j}N(z_i;z_j,h^2I)` over the other
    rows :math:`j` — rows equal to it (squared distance within rounding of 0) are left out with
    it, else a duplicated row would drive :math:`h` to 0 and the likelihood to infinity. With
    :math:`t=\log h^2`, the mean log-likelihood
    :math:`g(t)=\overline{\operatorname{lse}_j(-D_{ij}e^{-t}/2)}-\tfrac d2t+c` has
    :math:`g'(t)=\overline{\sum_jw_{ij}D_{ij}}/(2h^2)-d/2` with softmax weights :math:`w`,
    so every maximiser lies in :math:`[\min_iD_{i,(1)},\max_iD_{i,(T)}]/d` (nearest and
    farthest kept squared distances): a 48-point grid on that interval, then Brent's method
    around its best point. The terms beyond the ``n_nearest`` nearest are dropped from the
    search (a lower bound of the likelihood, tight at the optimum, where the kernel reaches
    only the nearest few rows); the density itself (:func:`kernel_log_density`) always sums
    over every row.
    """
    Z = np.asarray(Z, dtype=np.float64)
    n, d = Z.shape
    z_sq = np.einsum("ij,ij->i", Z, Z)
    T = int(min(n - 1, n_nearest))
    near = np.empty((rows.size, T))
    counts = np.empty(rows.size)
    for sl in core.iter_chunks(rows.size, _block_rows(n, chunk_size)):
        r = rows[sl]
        D = squared_distances(Z[r], Z, z_sq)
        tol = 4.0 * (d + 2) * _EPS64 * (z_sq[r][:, None] + z_sq[None, :])
        D[D <= tol] = np.inf  # the row itself and its exact duplicates
        counts[sl] = np.isfinite(D).sum(axis=1)
        near[sl] = np.sort(np.partition(D, T - 1, axis=1)[:, :T], axis=1)
    keep = counts > 0
    if not keep.any():
        raise ValueError(
            "`X` has no two distinct rows among the bandwidth rows: a kernel density needs "
            "rows that differ"
        )
    near, counts = near[keep], counts[keep]
    finite = np.isfinite(near)
    lo = float(near[:, 0].min()) / d
    hi = float(np.max(np.where(finite, near, 0.0))) / d
    log_n = np.log(counts)

    def neg(t: float) -> float:
        ll = logsumexp(np.where(finite, -0.5 * near * math.exp(-t), -np.inf), axis=1)
        return -float(np.mean(ll - log_n) - 0.5 * d * t)

    if hi <= lo:
        t_best = math.log(lo)
    else:
        grid = np.linspace(math.log(lo), math.log(hi), 48)
        vals = np.array([neg(t) for t in grid])
        j = int(np.argmin(vals))
        a, b = grid[max(j - 1, 0)], grid[min(j + 1, grid.size - 1)]
        res = minimize_scalar(neg, bounds=(a, b), method="bounded",
                              options={"xatol": 1e-6})  # fmt: skip
        t_best = float(res.x) if res.fun <= vals[j] else float(grid[j])
    loglik = -neg(t_best) - 0.5 * d * _LOG_2PI
    return math.exp(0.5 * t_best), loglik


# --------------------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------------------
class KernelDensityOOD(CalibratedDetector):
    r"""OOD detector scoring with a Gaussian kernel density: one shrunk Gaussian per row.

    The density is :math:`\hat p(x)=\frac1n\sum_i N(x;x_i,h^2\Sigma)`: a mixture with one
    component on every reference row, all sharing the shrunk covariance :math:`\Sigma` of the
    reference set scaled by :math:`h^2`. It is the limit of a mixture of shrunk Gaussians with
    as many components as rows — local like a k-nearest-neighbour distance (at a small
    bandwidth the nearest rows dominate), but in the Mahalanobis metric of the fitted Gaussian,
    smooth, and with the bandwidth chosen by leave-one-out likelihood on the in-distribution
    data alone. Scoring is exact: every reference row enters the sum, with blocked matrix
    products (the cost of a brute-force kNN search).

    Parameters
    ----------
    bandwidth : "loo" or float > 0, default="loo"
        Kernel standard deviation :math:`h` in whitened units (:math:`h^2\Sigma` is each
        kernel's covariance). ``"loo"``: maximise the leave-one-out log-likelihood of up to
        ``n_bandwidth_rows`` reference rows (:func:`loo_bandwidth`).
    shrinkage : {"ledoit_wolf", "oas", "empirical", "diagonal"} or float in [0, 1], default="ledoit_wolf"
        Covariance :math:`\Sigma` of the kernels (:func:`infogauss.gaussian.covariance_from_stats`
        of the reference rows). ``1.0`` gives isotropic kernels (:math:`\Sigma=\nu I`, the mean
        variance): a density in the plain Euclidean metric.
    n_bandwidth_rows : int, default=2000
        Reference rows (a random subset, seeded by ``random_state``) whose leave-one-out
        likelihood sets the bandwidth.
    contamination : float in (0, 0.5], default=0.05
    calibration : {"split", None}, default="split"
    calibration_size : float in (0, 1) or int, default=0.2
        As :class:`~infogauss.ood.MahalanobisOOD`: ``fit`` holds out ``calibration_size`` of
        ``X`` and sets the split-conformal threshold on it (held-out rows are not reference
        rows, exactly as new points). With ``calibration=None`` the reference set is all of
        ``X`` and ``offset_`` the ``contamination`` quantile of the **leave-one-out** scores of
        the training rows (a training row's own kernel left out of its sum).
    chunk_size : int, optional
        Queries per block (default: about 32 MiB of squared distances per block).
    random_state : int, RandomState instance or None, default=None
        Seeds the calibration split and the bandwidth rows.

    Attributes
    ----------
    reference_ : ndarray of shape (n_reference, n_features), float64
        The reference rows (the kernel centres).
    location_ : ndarray of shape (n_features,)
        Their mean (the whitening's centre).
    covariance_ : ndarray of shape (n_features, n_features)
        :math:`\Sigma`, the shrunk covariance of the reference rows.
    cholesky_ : ndarray of shape (n_features, n_features)
        Its lower Cholesky factor (whitening is a triangular solve).
    shrinkage_ : float
        The intensity used (NaN for ``"diagonal"``).
    bandwidth_ : float
        :math:`h` in use.
    bandwidth_loglik_ : float
        Mean leave-one-out log-density of the bandwidth rows at ``bandwidth_`` (in the units
        of ``X``, so comparable across ``shrinkage`` values; NaN when ``bandwidth`` was given).
    offset_, calibration_scores_, n_calibration_, n_samples_seen_, n_features_in_
        As :class:`~infogauss.ood.LocalGaussianOOD`.

    Examples
    --------
    >>> import numpy as np
    >>> from infogauss.ood import KernelDensityOOD
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.uniform(0, 2 * np.pi, 1000)
    >>> ring = np.c_[np.cos(theta), np.sin(theta)] + 0.05 * rng.normal(size=(1000, 2))
    >>> det = KernelDensityOOD(random_state=0).fit(ring)
    >>> det.predict(np.array([[1.0, 0.0], [0.0, 0.0]])).tolist()   # the ring's centre is out
    [1, -1]

    Notes
    -----
    ``score_samples(x)`` :math:`=\log\frac1n\sum_iN(x;x_i,h^2\Sigma)` (natural log, higher =
    more in-distribution) :math:`=\operatorname{lse}_i(-\lVert z-z_i\rVert^2/2h^2)-\log n
    -\tfrac d2\log(2\pi h^2)-\tfrac12\log\det\Sigma` with :math:`z=L^{-1}(x-\bar x)`. Exact up to
    the rounding of the squared distances (:func:`squared_distances`); each row is scored on
    its own (batches agree to :data:`infogauss.gaussian.BATCH_RTOL`). O(n·d) per query, like
    a brute-force kNN distance; ``reference_`` and its whitened copy are held in memory
    (2·n·d float64).

    As :math:`h\to0` the score ranks queries as the Mahalanobis distance to the nearest
    reference row (a 1-NN detector in the fitted Gaussian's metric); as :math:`h\to\infty` as
    the Mahalanobis distance to the mean (:class:`MahalanobisOOD`). The leave-one-out bandwidth
    is the one under which held-out in-distribution rows are most probable.
    """

    _fitted_attr = "reference_"

    def __init__(
        self,
        *,
        bandwidth: str | float = "loo",
        shrinkage: str | float = "ledoit_wolf",
        n_bandwidth_rows: int = 2000,
        contamination: float = 0.05,
        calibration: str | None = "split",
        calibration_size: float | int = 0.2,
        chunk_size: int | None = None,
        random_state: Any = None,
    ) -> None:
        self.bandwidth = bandwidth
        self.shrinkage = shrinkage
        self.n_bandwidth_rows = n_bandwidth_rows
        self.contamination = contamination
        self.calibration = calibration
        self.calibration_size = calibration_size
        self.chunk_size = chunk_size
        self.random_state = random_state

    # ------------------------------------------------------------------ parameters
    def _validate_params_(self) -> None:
        h = self.bandwidth
        if isinstance(h, str):
            if h not in BANDWIDTHS:
                raise ValueError(f"`bandwidth` must be 'loo' or a positive float, got {h!r}")
        elif isinstance(h, bool) or not isinstance(h, numbers.Real) or not (
            math.isfinite(float(h)) and float(h) > 0
        ):
            raise ValueError(f"`bandwidth` must be 'loo' or a positive float, got {h!r}")
        core._check_shrinkage(self.shrinkage)
        check_positive_int(self.n_bandwidth_rows, "n_bandwidth_rows", minimum=2)
        check_positive_int(self.chunk_size, "chunk_size", allow_none=True)
        self._check_protocol_params()

    # ------------------------------------------------------------------ input
    def _check_X(self, X: Any) -> np.ndarray:
        X = super()._check_X(X)
        check_finite(X, "X")
        return X

    # ------------------------------------------------------------------ fitting
    def _fit_state(self, X: np.ndarray, y: Any, rng: Any) -> dict:
        n, d = X.shape
        reference = np.array(X, dtype=np.float64, order="C", copy=True)
        if float(np.max(np.ptp(reference, axis=0))) == 0.0:
            raise ValueError("`X` has no variance (all reference rows are equal)")
        stats = core.stats_from_array(reference, chunk_size=self.chunk_size)
        warn_offset(stats.mean, np.diag(stats.scatter) / n)
        cov, s = core.covariance_from_stats(stats, self.shrinkage)
        chol = core.cholesky_factor(cov, name="kernel covariance")
        state = {"reference_": reference, "location_": stats.mean, "covariance_": cov,
                 "cholesky_": chol, "shrinkage_": float("nan") if s is None else float(s),
                 "n_samples_seen_": int(n)}  # fmt: skip
        Z = whiten_rows(reference, stats.mean, core.whitening_matrix(cov, chol, method="cholesky"))
        if self.bandwidth == "loo":
            m = min(n, int(self.n_bandwidth_rows))
            rows = np.sort(rng.permutation(n)[:m]) if m < n else np.arange(n)
            h, ll = loo_bandwidth(Z, rows, chunk_size=self.chunk_size)
            logdet = 2.0 * float(np.sum(np.log(np.diag(chol))))
            state["bandwidth_"], state["bandwidth_loglik_"] = h, ll - 0.5 * logdet
        else:
            state["bandwidth_"], state["bandwidth_loglik_"] = float(self.bandwidth), float("nan")
        return state

    def _fit_scores(self, X: np.ndarray) -> np.ndarray:
        """Leave-one-out scores of the reference rows (``calibration=None``'s offset)."""
        return kernel_log_density(self._Z, self._Z, self.bandwidth_, logdet=self._logdet,
                                  leave_out=np.arange(self._Z.shape[0]),
                                  chunk_size=self.chunk_size)  # fmt: skip

    def _prepare_scoring(self) -> None:
        self._logdet = 2.0 * float(np.sum(np.log(np.diag(self.cholesky_))))
        self._W = core.whitening_matrix(self.covariance_, self.cholesky_, method="cholesky")
        self._Z = whiten_rows(self.reference_, self.location_, self._W)

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())
        for key in ("_Z", "_W"):  # rebuilt from reference_ on unpickling
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if "reference_" in self.__dict__:
            self._prepare_scoring()

    # ------------------------------------------------------------------ scoring
    def _scores(self, X: np.ndarray) -> np.ndarray:
        Zq = whiten_rows(X, self.location_, self._W)
        q_sq = np.einsum("ij,ij->i", Zq, Zq)
        if not np.isfinite(q_sq).all():  # finite rows whose squared norms overflow
            raise nonfinite_error("X", int(np.flatnonzero(~np.isfinite(q_sq))[0]))
        return kernel_log_density(Zq, self._Z, self.bandwidth_, logdet=self._logdet,
                                  chunk_size=self.chunk_size)  # fmt: skip

    # ------------------------------------------------------------------ persistence
    def _state_arrays(self) -> tuple[dict, dict]:
        attrs = {"bandwidth_": float(self.bandwidth_),
                 "bandwidth_loglik_": float(self.bandwidth_loglik_),
                 "shrinkage_": float(self.shrinkage_)}  # fmt: skip
        return attrs, {"reference_": self.reference_, "location_": self.location_,
                       "covariance_": self.covariance_, "cholesky_": self.cholesky_}  # fmt: skip

    def _restore(self, path: Any, attrs: dict, arrays: dict) -> None:
        err = persistence.ModelFileError
        n, d = self.n_samples_seen_, self.n_features_in_
        expect = {"reference_": (n, d), "location_": (d,), "covariance_": (d, d),
                  "cholesky_": (d, d)}  # fmt: skip
        for key, shape in expect.items():
            a = arrays.pop(key, None)
            if a is None or a.shape != shape or a.dtype != np.float64:
                raise err(path, f"array {key} is missing or not {shape} float64")
            if not np.isfinite(a).all():
                raise err(path, f"array {key} holds non-finite values")
            setattr(self, key, a)
        for key in ("bandwidth_", "bandwidth_loglik_", "shrinkage_"):
            v = attrs.pop(key, None)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise err(path, f"has no numeric {key}")
            setattr(self, key, float(v))
        if not (math.isfinite(self.bandwidth_) and self.bandwidth_ > 0):
            raise err(path, f"bandwidth_ must be a positive number, got {self.bandwidth_!r}")
        if not isinstance(self.bandwidth, str) and self.bandwidth_ != float(self.bandwidth):
            raise err(path, "bandwidth_ is not the bandwidth parameter")
        if not core.is_cholesky_factor(self.cholesky_, self.covariance_):
            raise err(path, "cholesky_ is not the Cholesky factor of covariance_")
        mean = self.reference_.mean(axis=0)
        tol = 1e-9 * max(float(np.max(np.abs(self.reference_))), np.finfo(float).tiny)
        if np.max(np.abs(mean - self.location_)) > tol:
            raise err(path, "location_ is not the mean of reference_")
