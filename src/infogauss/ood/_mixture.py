r"""Mixture of shrunk Gaussians on k-means components, as an OOD detector."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from .. import gaussian as core
from .. import persistence
from .._validation import check_positive_int
from ._base import CalibratedDetector, warn_offset
from ._fitting import _pooled_stats

__all__ = ["GaussianMixtureOOD", "MIXTURE_SCORES", "AUTO_MAX_COMPONENTS"]

MIXTURE_SCORES = ("logsumexp", "max")
_LOG_2PI = math.log(2.0 * math.pi)


def _log_gaussian(m2: np.ndarray, d: int, logdet: float | np.ndarray) -> np.ndarray:
    """``log N(x)`` from the squared distance: ``-(d log 2π + log det Σ + m²) / 2``."""
    return -0.5 * (d * _LOG_2PI + logdet + m2)


AUTO_MAX_COMPONENTS = 4096  # the largest count n_components="auto" tries


def _fit_components(X: np.ndarray, K: int, seed: Any, tied: bool, shrinkage: Any,
                    chunk_size: int | None) -> dict:  # fmt: skip
    """One k-means run of ``K`` components and their shrunk Gaussians (pooled moments when
    ``tied``); refuses empty components and, untied, components of fewer than 3 rows."""
    from sklearn.cluster import KMeans

    n = X.shape[0]
    km = KMeans(n_clusters=K, n_init="auto", random_state=seed)
    with warnings.catch_warnings():  # "fewer distinct clusters": refused below, clearly
        warnings.simplefilter("ignore", ConvergenceWarning)
        km.fit(X)
    codes = km.labels_.astype(np.intp)
    counts = np.bincount(codes, minlength=K)
    if (counts == 0).any():
        raise ValueError(
            f"k-means found only {int((counts > 0).sum())} distinct component(s) among the "
            f"{n} fitting rows for `n_components`={K} (are many rows duplicates?); use a "
            "smaller n_components"
        )
    if not tied and (counts < 3).any():
        j = int(np.flatnonzero(counts < 3)[0])
        raise ValueError(
            f"k-means component {j} holds {int(counts[j])} row(s); a component's own "
            "covariance needs at least 3 (two points span one direction and get no "
            "Ledoit-Wolf shrinkage): use tied=True (one pooled covariance), a smaller "
            "`n_components`, or more rows"
        )
    out: dict = {"kmeans": km, "counts": counts}
    if tied:
        out["pooled"], out["means"] = _pooled_stats(X, codes, K, chunk_size)
        return out
    d = X.shape[1]
    means, cov = np.empty((K, d)), np.empty((K, d, d))
    chol, shrink = np.empty_like(cov), np.empty(K)
    for j in range(K):
        stats = core.stats_from_array(X[codes == j], chunk_size=chunk_size)
        means[j] = stats.mean
        cov[j], s = core.covariance_from_stats(stats, shrinkage)
        chol[j] = core.cholesky_factor(cov[j], name=f"covariance of component {j}")
        shrink[j] = np.nan if s is None else s
    out.update(means=means, covariances=cov, cholesky=chol, shrinkage=shrink)
    return out


def _scoring_factors(means: np.ndarray, weights: np.ndarray, chol: np.ndarray,
                     tied: bool) -> list:  # fmt: skip
    """The prepared factors of a mixture: one for all components when tied, else one each."""
    if tied:
        return [core.ScoringFactor(chol, means, weights @ means)]
    return [core.ScoringFactor(L, m[None, :], m) for L, m in zip(chol, means)]


def _component_log_densities(X: np.ndarray, factors: list, tied: bool,
                             chunk_size: int | None) -> np.ndarray:  # fmt: skip
    """``log N(x; μ_k, Σ_k)`` of every component, shape (n_samples, n_components)."""
    d = X.shape[1]
    if tied:
        f = factors[0]
        m2 = core.mahalanobis_sq_to_means(X, f.means, f.chol, center=f.center,
                                          chunk_size=chunk_size, factor=f, dtype=np.float64)  # fmt: skip
        return _log_gaussian(m2, d, f.logdet)
    out = np.empty((X.shape[0], len(factors)))
    for j, f in enumerate(factors):
        m2 = core.mahalanobis_sq(X, f.center, f.chol, chunk_size=chunk_size, factor=f,
                                 dtype=np.float64)  # fmt: skip
        out[:, j] = _log_gaussian(m2, d, f.logdet)
    return out


def _mixture_log_density(X: np.ndarray, run: dict, tied: bool, shrinkage: Any,
                         chunk_size: int | None) -> np.ndarray:  # fmt: skip
    """``log Σ_k w_k N(x; μ_k, Σ_k)`` of one :func:`_fit_components` run (the held-out
    likelihood of ``n_components="auto"``)."""
    w = run["counts"] / run["counts"].sum()
    if tied:
        cov, _ = core.covariance_from_stats(run["pooled"], shrinkage)
        chol = core.cholesky_factor(cov, name="tied covariance")
    else:
        chol = run["cholesky"]
    factors = _scoring_factors(run["means"], w, chol, tied)
    return logsumexp(_component_log_densities(X, factors, tied, chunk_size) + np.log(w), axis=1)


class GaussianMixtureOOD(CalibratedDetector):
    r"""OOD detector scoring with a mixture of shrunk Gaussians fitted on k-means components.

    ``fit`` clusters the fitting rows with k-means, fits one shrunk Gaussian per cluster (or
    one pooled within-cluster covariance, ``tied=True``) with weights the cluster shares, and
    scores by the mixture log-density. It is the density a Gaussian mixture model would give
    after one hard assignment step: cheap for many components, exact shrinkage per component,
    and no EM iterations to converge.

    Parameters
    ----------
    n_components : int or "auto", default=10
        Number of k-means components (each needs at least 3 rows unless ``tied``).
        ``"auto"`` chooses it by held-out likelihood on the fitting rows alone: a fifth of
        them is held out, a mixture is fitted on the rest for each count on the grid
        1, 2, 4, 8, … (up to a quarter of the rows fitted on when ``tied``, a tenth otherwise, at most
        :data:`AUTO_MAX_COMPONENTS`; the search stops at the first count whose mean
        held-out log-density is below the best one's by more than two standard errors), and
        the count with the highest mean held-out log-density is refitted on all rows (or,
        should an untied component of that refit hold fewer than 3 rows, the next smaller
        count of the grid). The grid and its held-out log-likelihoods are kept in
        ``n_components_grid_`` / ``n_components_loglik_``.
    n_restarts : int >= 1, default=1
        Number of k-means runs (seeds drawn from ``random_state``) whose mixtures are averaged:
        the density is the mean of the ``n_restarts`` mixture densities, itself a mixture of
        ``n_restarts × n_components_`` components of weights ``w / n_restarts`` (with
        ``aggregate="max"``, the best of those components). One k-means partition of many components
        is one of many nearly equally good ones, and the detector's ranking varies with it
        (by about a point of AUROC on the text set of ``infogauss bench ood_suite`` with 100
        components); the average is a smoother density. With ``tied``, every component
        shares one covariance: the pooled within-cluster moments averaged over the runs.
    shrinkage : {"ledoit_wolf", "oas", "empirical", "diagonal"} or float in [0, 1], default="ledoit_wolf"
        Covariance estimator of each component (:func:`infogauss.gaussian.covariance_from_stats`).
    tied : bool, default=False
        One covariance for all components: the pooled within-cluster scatter (as
        ``MahalanobisOOD(method="cluster")``), so each component needs only one row.
    aggregate : {"logsumexp", "max"}, default="logsumexp"
        ``"logsumexp"``: the mixture log-density :math:`\log\sum_k w_k N(x;\mu_k,\Sigma_k)`;
        ``"max"``: the best weighted component, :math:`\max_k \log w_k N(x;\mu_k,\Sigma_k)`.
    contamination : float in (0, 0.5], default=0.05
    calibration : {"split", None}, default="split"
    calibration_size : float in (0, 1) or int, default=0.2
        As :class:`~infogauss.ood.MahalanobisOOD`: ``fit`` holds out ``calibration_size`` of
        ``X`` and sets the split-conformal threshold on it.
    chunk_size : int, optional
        Rows per scoring block.
    random_state : int, RandomState instance or None, default=None
        Seeds the calibration split and k-means.

    Attributes
    ----------
    n_components_ : int
        Components per k-means run (``n_components``, or the count ``"auto"`` chose).
    n_components_grid_, n_components_loglik_ : ndarray (``n_components="auto"`` only)
        The counts tried and their mean held-out log-densities (``-inf``: the count could
        not be fitted, e.g. k-means found fewer distinct components).
    means_ : ndarray of shape (n_restarts * n_components_, n_features)
        Component means, run after run.
    covariances_ : ndarray of shape (n_restarts * n_components_, n_features, n_features)
        Component covariances; shape (n_features, n_features) when ``tied``.
    cholesky_ : ndarray, the shape of ``covariances_``
        Lower Cholesky factors (the only factorisation, done in ``fit``).
    weights_ : ndarray of shape (n_restarts * n_components_,)
        Component shares of the fitting rows, divided by ``n_restarts`` (sum to 1).
    shrinkage_ : ndarray of shape (n_restarts * n_components_,) (one value when tied)
        Intensities used (NaN for ``"diagonal"``).
    kmeans_ : sklearn.cluster.KMeans
        The first run's clustering (not saved: a fit-time by-product).
    offset_, calibration_scores_, n_calibration_, n_samples_seen_, n_features_in_
        As :class:`~infogauss.ood.LocalGaussianOOD`.

    Examples
    --------
    >>> import numpy as np
    >>> from infogauss.ood import GaussianMixtureOOD
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(size=(300, 2)) - 4, rng.normal(size=(300, 2)) + 4]
    >>> det = GaussianMixtureOOD(n_components=2, random_state=0).fit(X)
    >>> det.weights_.round(1).tolist()
    [0.5, 0.5]
    >>> det.predict(np.array([[4.0, 4.0], [0.0, 0.0]])).tolist()   # between the modes: out
    [1, -1]

    Notes
    -----
    ``score_samples(x)`` is :math:`\log\sum_k w_k N(x;\mu_k,\Sigma_k)` (natural log, higher =
    more in-distribution; computed with log-sum-exp), or its ``aggregate="max"`` variant. Each component's
    log-density is :math:`-\tfrac12(d\log2\pi+\log\det\Sigma_k+m_k^2(x))` with the squared
    distance from triangular solves (:func:`infogauss.gaussian.mahalanobis_sq`; one solve for
    all components when tied).
    """

    _fitted_attr = "means_"

    def __init__(
        self,
        *,
        n_components: int | str = 10,
        n_restarts: int = 1,
        shrinkage: str | float = "ledoit_wolf",
        tied: bool = False,
        aggregate: str = "logsumexp",
        contamination: float = 0.05,
        calibration: str | None = "split",
        calibration_size: float | int = 0.2,
        chunk_size: int | None = None,
        random_state: Any = None,
    ) -> None:
        self.n_components = n_components
        self.n_restarts = n_restarts
        self.shrinkage = shrinkage
        self.tied = tied
        self.aggregate = aggregate
        self.contamination = contamination
        self.calibration = calibration
        self.calibration_size = calibration_size
        self.chunk_size = chunk_size
        self.random_state = random_state

    def _validate_params_(self) -> None:
        if not (isinstance(self.n_components, str) and self.n_components == "auto"):
            if isinstance(self.n_components, str):
                raise ValueError(
                    f"`n_components` must be a positive int or 'auto', got {self.n_components!r}"
                )
            check_positive_int(self.n_components, "n_components")
        check_positive_int(self.n_restarts, "n_restarts")
        core._check_shrinkage(self.shrinkage)
        if not isinstance(self.tied, (bool, np.bool_)):
            raise TypeError(f"`tied` must be True or False, got {self.tied!r}")
        if self.aggregate not in MIXTURE_SCORES:
            raise ValueError(
                f"`aggregate` must be one of {MIXTURE_SCORES}, got {self.aggregate!r}"
            )
        check_positive_int(self.chunk_size, "chunk_size", allow_none=True)
        self._check_protocol_params()

    def _min_fit(self) -> int:
        if self.n_components == "auto":
            return 2 if self.tied else 3
        return self.n_components

    # ------------------------------------------------------------------ fitting
    def _fit_state(self, X: np.ndarray, y: Any, rng: Any) -> dict:
        n = X.shape[0]
        total = core.stats_from_array(X, chunk_size=self.chunk_size)  # refuses over/underflow
        warn_offset(total.mean, np.diag(total.scatter) / n)
        state: dict = {}
        if self.n_components == "auto":
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
            K, grid, loglik = self._choose_n_components(X, seed)
            state.update(n_components_grid_=grid, n_components_loglik_=loglik)
        else:
            K = int(self.n_components)
            if K > n:
                raise ValueError(f"`n_components` must be <= n_samples ({n}), got {K}")
        if self.n_restarts == 1:
            seeds: list = [self.random_state]
        else:
            seeds = check_random_state(self.random_state).randint(
                np.iinfo(np.int32).max, size=self.n_restarts).tolist()
        while True:
            try:
                runs = [_fit_components(X, K, s, self.tied, self.shrinkage, self.chunk_size)
                        for s in seeds]  # fmt: skip
                break
            except ValueError:
                # "auto" chose K on one k-means run of 4/5 of the rows; a run on all of them
                # may leave an untied component too small: the next smaller count on the grid
                if self.n_components != "auto" or K == 1:
                    raise
                K //= 2
        R = len(runs)
        means = np.concatenate([r["means"] for r in runs])
        weights = np.concatenate([r["counts"] for r in runs]) / (n * R)
        if self.tied:
            pooled = runs[0]["pooled"]
            if R > 1:  # the runs' pooled within-cluster moments, averaged
                pooled = core.GaussianStats(
                    n=pooled.n, mean=pooled.mean,
                    scatter=sum(r["pooled"].scatter for r in runs) / R,
                    third=sum(r["pooled"].third for r in runs) / R,
                    fourth=float(sum(r["pooled"].fourth for r in runs)) / R,
                )
            cov, s = core.covariance_from_stats(pooled, self.shrinkage)
            chol = core.cholesky_factor(cov, name="tied covariance")
            shrink = np.array([np.nan if s is None else s])
        else:
            cov = np.concatenate([r["covariances"] for r in runs])
            chol = np.concatenate([r["cholesky"] for r in runs])
            shrink = np.concatenate([r["shrinkage"] for r in runs])
        state.update(n_components_=K, means_=means, covariances_=cov, cholesky_=chol,
                     weights_=weights, shrinkage_=shrink, kmeans_=runs[0]["kmeans"],
                     n_samples_seen_=int(n))  # fmt: skip
        return state

    def _choose_n_components(self, X: np.ndarray, seed: int) -> tuple[int, np.ndarray, np.ndarray]:
        """The held-out-likelihood choice of ``n_components="auto"`` (see the class notes).

        Columns constant on all rows are left out of the held-out likelihood: their shrunk
        variance falls as the components' mean variance does, and a held-out row that sits
        exactly on the constant would reward ever more components for nothing. When no count
        can be fitted (a handful of rows), one component."""
        n = X.shape[0]
        live = np.ptp(X, axis=0) > 0
        X = X[:, live] if live.any() else X
        perm = np.random.RandomState(seed).permutation(n)
        n_out = max(1, n // 5)
        held, fit_rows = X[perm[:n_out]], X[np.sort(perm[n_out:])]
        m = fit_rows.shape[0]
        cap = m // 4 if self.tied else m // 10
        cap = max(1, min(cap, AUTO_MAX_COMPONENTS))
        grid, loglik = [], []
        best, best_rows = 1, None
        K = 1
        while K <= cap:
            try:
                run = _fit_components(fit_rows, K, seed, self.tied, self.shrinkage,
                                      self.chunk_size)  # fmt: skip
                rows = _mixture_log_density(held, run, self.tied, self.shrinkage, self.chunk_size)
                if not np.isfinite(rows).all():
                    rows = None
            except (ValueError, np.linalg.LinAlgError):
                rows = None  # k-means found fewer components, a singular covariance, ...
            grid.append(K)
            loglik.append(-np.inf if rows is None else float(np.mean(rows)))
            if rows is not None and (best_rows is None or loglik[-1] > float(np.mean(best_rows))):
                best, best_rows = K, rows
            elif best_rows is not None:
                # stop at the first count clearly worse than the best: below it by more than
                # two standard errors of the best's held-out mean (an uneven, flat stretch,
                # where a few components fit no better than one, goes on)
                se = float(best_rows.std()) / math.sqrt(best_rows.size)
                if loglik[-1] < float(np.mean(best_rows)) - 2.0 * se:
                    break
            K *= 2
        return best, np.asarray(grid, dtype=np.int64), np.asarray(loglik)

    def _prepare_scoring(self) -> None:
        self._factors = _scoring_factors(self.means_, self.weights_, self.cholesky_, self.tied)
        self._log_weights = np.log(self.weights_)

    # ------------------------------------------------------------------ scoring
    def _component_log_density(self, X: np.ndarray) -> np.ndarray:
        return _component_log_densities(X, self._factors, self.tied, self.chunk_size)

    def component_log_density(self, X: Any) -> np.ndarray:
        """Weighted log-densities ``log w_k + log N(x; μ_k, Σ_k)`` of every component.

        Returns
        -------
        ndarray of shape (n_samples, n_restarts * n_components_), float64
            Columns follow ``means_``; higher = more typical of that component.
        """
        return self._component_log_density(self._check_X(X)) + self._log_weights

    def _scores(self, X: np.ndarray) -> np.ndarray:
        logp = self._component_log_density(X) + self._log_weights
        if self.aggregate == "max":
            return logp.max(axis=1)
        return logsumexp(logp, axis=1)

    # ------------------------------------------------------------------ persistence
    def _state_arrays(self) -> tuple[dict, dict]:
        arrays = {"means_": self.means_, "covariances_": self.covariances_,
                  "cholesky_": self.cholesky_, "weights_": self.weights_,
                  "shrinkage_": self.shrinkage_}  # fmt: skip
        if self.n_components == "auto":
            arrays.update(n_components_grid_=self.n_components_grid_,
                          n_components_loglik_=self.n_components_loglik_)  # fmt: skip
        return {"n_components_": int(self.n_components_)}, arrays

    def _restore(self, path: Any, attrs: dict, arrays: dict) -> None:
        err = persistence.ModelFileError
        # files written before n_components="auto" hold no n_components_: it is n_components
        k = attrs.pop("n_components_", None if self.n_components == "auto" else self.n_components)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1 or (
                self.n_components != "auto" and k != self.n_components):
            raise err(path, f"has an invalid n_components_ {k!r}")
        self.n_components_ = k
        if self.n_components == "auto":
            grid, ll = arrays.pop("n_components_grid_", None), arrays.pop("n_components_loglik_", None)
            if (grid is None or ll is None or grid.ndim != 1 or grid.shape != ll.shape
                    or grid.dtype != np.int64 or ll.dtype != np.float64 or k not in grid
                    or grid[0] < 1 or np.any(np.diff(grid) <= 0)
                    or np.isnan(ll).any() or np.isposinf(ll).any()):
                raise err(path, "n_components_grid_ / n_components_loglik_ are missing or invalid")
            self.n_components_grid_, self.n_components_loglik_ = grid, ll
        K, d = k * self.n_restarts, self.n_features_in_
        cov_shape = (d, d) if self.tied else (K, d, d)
        expect = {"means_": (K, d), "covariances_": cov_shape, "cholesky_": cov_shape,
                  "weights_": (K,), "shrinkage_": (1,) if self.tied else (K,)}  # fmt: skip
        for key, shape in expect.items():
            a = arrays.pop(key, None)
            if a is None or a.shape != shape or a.dtype != np.float64:
                raise err(path, f"array {key} is missing or not {shape} float64")
            setattr(self, key, a)
        w = self.weights_
        if not (np.all(w > 0) and abs(float(w.sum()) - 1.0) < 1e-12):
            raise err(path, "weights_ are not positive shares that sum to 1")
        if not (np.isfinite(self.means_).all() and np.isfinite(self.covariances_).all()):
            raise err(path, "holds non-finite means or covariances")
        covs = self.covariances_.reshape(-1, d, d)
        for j, (L, C) in enumerate(zip(self.cholesky_.reshape(-1, d, d), covs)):
            if not core.is_cholesky_factor(L, C):
                raise err(path, f"cholesky_[{j}] is not the Cholesky factor of covariances_[{j}]")
