r"""Mixture of shrunk Gaussians on k-means components, as an OOD detector."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning

from .. import gaussian as core
from .. import persistence
from .._validation import check_positive_int
from ._base import CalibratedDetector, warn_offset
from ._fitting import _pooled_stats

__all__ = ["GaussianMixtureOOD", "MIXTURE_SCORES"]

MIXTURE_SCORES = ("logsumexp", "max")
_LOG_2PI = math.log(2.0 * math.pi)


def _log_gaussian(m2: np.ndarray, d: int, logdet: float | np.ndarray) -> np.ndarray:
    """``log N(x)`` from the squared distance: ``-(d log 2π + log det Σ + m²) / 2``."""
    return -0.5 * (d * _LOG_2PI + logdet + m2)


class GaussianMixtureOOD(CalibratedDetector):
    r"""OOD detector scoring with a mixture of shrunk Gaussians fitted on k-means components.

    ``fit`` clusters the fitting rows with k-means, fits one shrunk Gaussian per cluster (or
    one pooled within-cluster covariance, ``tied=True``) with weights the cluster shares, and
    scores by the mixture log-density. It is the density a Gaussian mixture model would give
    after one hard assignment step: cheap for many components, exact shrinkage per component,
    and no EM iterations to converge.

    Parameters
    ----------
    n_components : int, default=10
        Number of k-means components (each needs at least 3 rows unless ``tied``).
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
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray of shape (n_components, n_features, n_features)
        Component covariances; shape (n_features, n_features) when ``tied``.
    cholesky_ : ndarray, the shape of ``covariances_``
        Lower Cholesky factors (the only factorisation, done in ``fit``).
    weights_ : ndarray of shape (n_components,)
        Component shares of the fitting rows (sum to 1).
    shrinkage_ : ndarray of shape (n_components,) (one value when tied)
        Intensities used (NaN for ``"diagonal"``).
    kmeans_ : sklearn.cluster.KMeans
        The clustering (not saved: a fit-time by-product).
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
        n_components: int = 10,
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
        self.shrinkage = shrinkage
        self.tied = tied
        self.aggregate = aggregate
        self.contamination = contamination
        self.calibration = calibration
        self.calibration_size = calibration_size
        self.chunk_size = chunk_size
        self.random_state = random_state

    def _validate_params_(self) -> None:
        check_positive_int(self.n_components, "n_components")
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
        return self.n_components

    # ------------------------------------------------------------------ fitting
    def _fit_state(self, X: np.ndarray, y: Any, rng: Any) -> dict:
        from sklearn.cluster import KMeans

        n, K = X.shape[0], self.n_components
        if K > n:
            raise ValueError(f"`n_components` must be <= n_samples ({n}), got {K}")
        total = core.stats_from_array(X, chunk_size=self.chunk_size)  # refuses over/underflow
        warn_offset(total.mean, np.diag(total.scatter) / n)
        km = KMeans(n_clusters=K, n_init="auto", random_state=self.random_state)
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
        if not self.tied and (counts < 3).any():
            j = int(np.flatnonzero(counts < 3)[0])
            raise ValueError(
                f"k-means component {j} holds {int(counts[j])} row(s); a component's own "
                "covariance needs at least 3 (two points span one direction and get no "
                "Ledoit-Wolf shrinkage): use tied=True (one pooled covariance), a smaller "
                "`n_components`, or more rows"
            )
        if self.tied:
            pooled, means = _pooled_stats(X, codes, K, self.chunk_size)
            cov, s = core.covariance_from_stats(pooled, self.shrinkage)
            chol = core.cholesky_factor(cov, name="tied covariance")
            shrink = np.array([np.nan if s is None else s])
        else:
            means = np.empty((K, X.shape[1]))
            cov = np.empty((K, X.shape[1], X.shape[1]))
            chol = np.empty_like(cov)
            shrink = np.empty(K)
            for j in range(K):
                stats = core.stats_from_array(X[codes == j], chunk_size=self.chunk_size)
                means[j] = stats.mean
                cov[j], s = core.covariance_from_stats(stats, self.shrinkage)
                chol[j] = core.cholesky_factor(cov[j], name=f"covariance of component {j}")
                shrink[j] = np.nan if s is None else s
        return {"means_": means, "covariances_": cov, "cholesky_": chol,
                "weights_": counts / n, "shrinkage_": shrink, "kmeans_": km,
                "n_samples_seen_": int(n)}  # fmt: skip

    def _prepare_scoring(self) -> None:
        center = self.weights_ @ self.means_
        if self.tied:
            self._factors = [core.ScoringFactor(self.cholesky_, self.means_, center)]
        else:
            self._factors = [core.ScoringFactor(L, m[None, :], m)
                             for L, m in zip(self.cholesky_, self.means_)]  # fmt: skip
        self._log_weights = np.log(self.weights_)

    # ------------------------------------------------------------------ scoring
    def _component_log_density(self, X: np.ndarray) -> np.ndarray:
        d = self.means_.shape[1]
        if self.tied:
            f = self._factors[0]
            m2 = core.mahalanobis_sq_to_means(X, f.means, f.chol, center=f.center,
                                              chunk_size=self.chunk_size, factor=f,
                                              dtype=np.float64)  # fmt: skip
            return _log_gaussian(m2, d, f.logdet)
        out = np.empty((X.shape[0], len(self._factors)))
        for j, f in enumerate(self._factors):
            m2 = core.mahalanobis_sq(X, f.center, f.chol, chunk_size=self.chunk_size, factor=f,
                                     dtype=np.float64)  # fmt: skip
            out[:, j] = _log_gaussian(m2, d, f.logdet)
        return out

    def component_log_density(self, X: Any) -> np.ndarray:
        """Weighted log-densities ``log w_k + log N(x; μ_k, Σ_k)`` of every component.

        Returns
        -------
        ndarray of shape (n_samples, n_components), float64
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
        return {}, {"means_": self.means_, "covariances_": self.covariances_,
                    "cholesky_": self.cholesky_, "weights_": self.weights_,
                    "shrinkage_": self.shrinkage_}  # fmt: skip

    def _restore(self, path: Any, attrs: dict, arrays: dict) -> None:
        err = persistence.ModelFileError
        K, d = self.n_components, self.n_features_in_
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
