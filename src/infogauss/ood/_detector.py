"""The Mahalanobis OOD detector (see :mod:`infogauss.ood`)."""


from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import calibration, persistence
from .. import gaussian as core
from .._validation import (
    CALIBRATIONS,
    all_finite,
    atomic_fit,
    check_calibration_params,
    check_matrix_like,
    check_positive_int,
    check_probability,
    is_plain_float_matrix,
    nonfinite_error,
    too_few_rows,
)
from ..model import GaussianModel
from . import _persist
from ._fitting import ConformalCalibrationMixin, _encode_labels, _pooled_stats

__all__ = ["MahalanobisOOD", "CALIBRATIONS", "OOD_METHODS", "OOD_STATISTICS"]

OOD_METHODS = ("global", "class", "cluster", "relative")
OOD_STATISTICS = ("distance", "typicality")
_TYPICALITY_FOLDS = 5
_PVALUE_METHODS = ("conformal", "f", "chi2")


# --------------------------------------------------------------------------------------
# Functional helpers
# --------------------------------------------------------------------------------------
mahalanobis_sq_to_means = core.mahalanobis_sq_to_means  # re-exported (lives in the core)


# The calibration laws live in infogauss.calibration; re-exported here (public import paths).
min_calibration_size = calibration.min_calibration_size
conformal_pvalues = calibration.conformal_pvalues


# --------------------------------------------------------------------------------------
# Estimator
# --------------------------------------------------------------------------------------
class MahalanobisOOD(ConformalCalibrationMixin, OutlierMixin, BaseEstimator):
    """Mahalanobis out-of-distribution detector with split-conformal calibration.

    Parameters
    ----------
    method : {"global", "class", "cluster", "relative"}, default="global"
        ``"global"``: one Gaussian (label-free). ``"class"``: class means with a tied
        covariance, distance to the closest mean (Lee et al., 2018); ``fit(X, y)`` needs
        labels. ``"cluster"``: as ``"class"`` with k-means pseudo-labels (SSD). ``"relative"``:
        closest class distance minus the distance under a background Gaussian of all
        training points (Ren et al., 2021); uses ``y`` when given, else k-means clusters.
    statistic : {"distance", "typicality"}, default="distance"
        ``"distance"``: ``score_samples = -m²`` (minus the squared distance of the method).
        ``"typicality"``: ``score_samples = -|m² - c| / s``, two-sided, so points atypically
        *close* to a mean score low too; ``c`` and ``s`` are the mean and standard deviation
        of the squared distances of *held-out* in-distribution points under the fitted
        (shrunk) model, from 5-fold out-of-fold fits on the fitting data — the law the
        fitted model really gives new points, whatever the shrinkage and the data (the
        analytic F law is exact only for Gaussian data and an empirical covariance).
        Not for ``"relative"``.
    n_clusters : int, default=10
        Number of k-means clusters (``"cluster"``, and ``"relative"`` without labels).
    contamination : float in (0, 0.5], default=0.05
        Fraction of new in-distribution inputs that ``predict(X)`` may flag. With the default
        ``calibration="split"``, ``fit`` sets the split-conformal threshold ``offset_`` from a
        held-out part of ``X``, so this rate is guaranteed on new exchangeable data with no
        further step; :meth:`calibrate` replaces it from an external set. With
        ``calibration=None`` it is the fraction of the *training* points flagged
        (scikit-learn's convention: optimistic, since training points score better than new
        ones).
    calibration : {"split", None}, default="split"
        ``"split"``: ``fit`` holds out ``calibration_size`` of ``X`` (at random, stratified by
        class for ``"class"``), fits on the rest and calibrates on the held-out part — exact
        finite-sample guarantee for ``predict``, ``pvalues`` and ``decision_function``.
        ``None``: fit on all of ``X``, threshold at the training-score quantile, and no
        conformal p-values until :meth:`calibrate`.
    gaussianize : None, str or Gaussianizer, default=None
        Map the embeddings through a :class:`~infogauss.Gaussianizer` (fitted on the fitting
        rows only) before the Gaussian: a method name (``"auto"``, ``"quantile"``, ...) or an
        unfitted ``Gaussianizer`` (cloned). Every score, threshold and p-value then refers to
        the Gaussianized features; decisions stay calibrated either way.
    calibration_size : float in (0, 1) or int, default=0.2
        Share (float) or number (int) of ``X`` held out by ``calibration="split"``; raised to
        :func:`min_calibration_size` of ``contamination`` when smaller.
    shrinkage : str or float, default="ledoit_wolf"
        Covariance estimator, as :class:`~infogauss.GaussianModel`.
    dtype : {None, "float32", "float64"}, default=None
        Scoring precision, as :class:`~infogauss.GaussianModel`.
    chunk_size : int, optional
        Rows per scoring block.
    random_state : int, RandomState instance or None, default=None
        Seeds the calibration split, the typicality folds and k-means (``"cluster"``,
        ``"relative"`` without labels).

    Attributes
    ----------
    model_ : GaussianModel
        ``"global"``: the Gaussian. Otherwise the tied Gaussian: covariance of the pooled
        within-class (or within-cluster) deviations, location the overall mean.
    means_ : ndarray of shape (n_classes, n_features)
        Class or cluster means (``"global"``: the overall mean, one row).
    classes_ : ndarray of shape (n_classes,)
        Class labels (cluster indices for k-means pseudo-labels).
    background_ : GaussianModel
        Background Gaussian of all training points (``"relative"`` only).
    kmeans_ : sklearn.cluster.KMeans
        The clustering used for pseudo-labels (when clusters are used).
    offset_ : float
        ``decision_function = score_samples - offset_``; see ``contamination``.
    gaussianizer_ : Gaussianizer
        The fitted map (when ``gaussianize`` is set).
    calibration_scores_ : ndarray of shape (n_calibration,)
        Sorted ``score_samples`` of the calibration set (the held-out part of ``X``, or the
        set given to :meth:`calibrate`).
    n_calibration_ : int
    typicality_center_, typicality_scale_ : float
        ``c`` and ``s`` of the typicality score (``statistic="typicality"``).
    law_ : {"f", "chi2"}
        Analytic law of the squared distance used by ``pvalues(method="f" | "chi2")``.
    n_samples_seen_ : int
        Points the Gaussian was fitted on (without the held-out calibration part).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from infogauss.ood import MahalanobisOOD
    >>> rng = np.random.default_rng(0)
    >>> det = MahalanobisOOD(random_state=0).fit(rng.normal(size=(500, 4)))
    >>> det.n_samples_seen_, det.n_calibration_   # 20% held out to calibrate
    (400, 100)
    >>> det.predict(np.array([[0.0, 0.0, 0.0, 0.0], [9.0, 9.0, 9.0, 9.0]])).tolist()
    [1, -1]
    >>> det = det.calibrate(rng.normal(size=(200, 4)))   # or calibrate on an external set
    >>> det.predict(np.array([[0.0, 0.0, 0.0, 0.0], [9.0, 9.0, 9.0, 9.0]]), alpha=0.01).tolist()
    [1, -1]
    >>> p = det.pvalues(rng.normal(size=(3, 4)))   # split-conformal p-values
    >>> bool(((p > 0) & (p <= 1)).all())
    True

    Notes
    -----
    Conformal guarantee: if the calibration points and a new in-distribution point are
    exchangeable (i.i.d. from the same source, none used in ``fit``), then
    ``P(pvalue <= alpha) <= alpha`` — over the draw of both, for any model and score. The
    analytic p-values (``method="f"`` or ``"chi2"``) hold only for Gaussian data and an
    empirical covariance; see :func:`infogauss.gaussian.mahalanobis_pvalues`.
    """

    def __init__(
        self,
        *,
        method: str = "global",
        statistic: str = "distance",
        n_clusters: int = 10,
        contamination: float = 0.05,
        calibration: str | None = "split",
        calibration_size: float | int = 0.2,
        gaussianize: Any = None,
        shrinkage: str | float = "ledoit_wolf",
        dtype: Any = None,
        chunk_size: int | None = None,
        random_state: Any = None,
    ) -> None:
        self.method = method
        self.statistic = statistic
        self.n_clusters = n_clusters
        self.contamination = contamination
        self.calibration = calibration
        self.calibration_size = calibration_size
        self.gaussianize = gaussianize
        self.shrinkage = shrinkage
        self.dtype = dtype
        self.chunk_size = chunk_size
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def _validate_params_(self) -> None:
        if self.method not in OOD_METHODS:
            raise ValueError(f"`method` must be one of {OOD_METHODS}, got {self.method!r}")
        if self.statistic not in OOD_STATISTICS:
            raise ValueError(f"`statistic` must be one of {OOD_STATISTICS}, got {self.statistic!r}")
        if self.statistic == "typicality" and self.method == "relative":
            raise ValueError(
                "statistic='typicality' needs a squared distance with a known law; "
                "method='relative' is a difference of distances (use statistic='distance')"
            )
        check_positive_int(self.n_clusters, "n_clusters")
        c = check_probability(self.contamination, "contamination", open_right=False)
        if c > 0.5:
            raise ValueError(f"`contamination` must lie in (0, 0.5], got {self.contamination!r}")
        check_positive_int(self.chunk_size, "chunk_size", allow_none=True)
        check_calibration_params(self.calibration, self.calibration_size)

    def _gaussian(self) -> GaussianModel:
        return GaussianModel(shrinkage=self.shrinkage, dtype=self.dtype, chunk_size=self.chunk_size)

    @atomic_fit
    def fit(self, X: Any, y: Any = None, *, classes: Any = None) -> MahalanobisOOD:
        """Fit the detector on in-distribution training embeddings.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            In-distribution training points (at least 2).
        y : array-like of shape (n_samples,), optional
            Class labels: required by ``"class"``, used by ``"relative"`` when given,
            ignored by ``"global"`` and ``"cluster"``.
        classes : array-like, optional
            The classes ``y`` should contain (e.g. ``range(10)``); a class with no sample
            raises. Default: the labels present in ``y``.

        Returns
        -------
        self
        """
        self._validate_params_()
        check_matrix_like(X, "X", min_samples=2)
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2,
                          ensure_all_finite=False)  # fmt: skip
        if not all_finite(X):
            raise nonfinite_error("X", int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0]))
        n = X.shape[0]
        use_labels = self.method == "class" or (self.method == "relative" and y is not None)
        codes = classes_ = None
        if use_labels:
            if y is None:
                raise ValueError(
                    "method='class' needs class labels: call fit(X, y) "
                    "(or use method='cluster' for k-means pseudo-labels)"
                )
            classes_, codes = _encode_labels(y, n, classes)
        rng = check_random_state(self.random_state)
        fit_idx, cal_idx = self._split(n, codes, rng)
        Xf = X[fit_idx]
        gaussianizer = None
        if self.gaussianize is not None:  # fitted on the fitting rows only, like the Gaussian
            gaussianizer = _make_gaussianizer(self.gaussianize, self.random_state).fit(Xf)
            X = gaussianizer._transform_array(X)
            Xf = X[fit_idx]
        cf = None if codes is None else codes[fit_idx]
        state = self._fit_state(Xf, cf, classes_)
        if gaussianizer is not None:
            state["gaussianizer_"] = gaussianizer
        state["model_"]._warn_precision(Xf.dtype)  # large offsets, ill-conditioning
        state["n_samples_seen_"] = int(Xf.shape[0])
        d = X.shape[1]
        state["law_"] = "f" if Xf.shape[0] > d + 4 else "chi2"
        if self.statistic == "typicality":
            c, sd = self._heldout_moments(Xf, cf, state, rng)
            state["typicality_center_"], state["typicality_scale_"] = c, sd
        # all computed: replace the old fitted state in one step
        for attr in ("calibration_scores_", "n_calibration_", "background_", "kmeans_",
                     "typicality_center_", "typicality_scale_", "gaussianizer_"):  # fmt: skip
            if hasattr(self, attr):
                delattr(self, attr)
        self.__dict__.update(state)
        self._prepare_scoring()
        if cal_idx is None:
            self.offset_ = float(np.percentile(self._scores(Xf), 100.0 * self.contamination))
        else:
            self._set_calibration(self._scores(X[cal_idx]))
        return self

    def _fit_global_stats(self, stats: core.GaussianStats) -> MahalanobisOOD:
        """Fit ``method="global"`` from the statistics of its fitting rows (a seam for fits
        that do not hold the rows in memory: :func:`infogauss.distributed.fit_dask`). The
        caller calibrates with :meth:`_set_calibration` on held-out scores, if it splits."""
        self._validate_params_()
        if self.method != "global" or self.statistic != "distance":
            raise ValueError(
                "fitting from statistics supports method='global' with statistic='distance' "
                f"only (got method={self.method!r}, statistic={self.statistic!r}); fit the "
                "others on an in-memory array"
            )
        model = self._gaussian().fit_stats(stats)
        for attr in ("calibration_scores_", "n_calibration_", "background_", "kmeans_",
                     "typicality_center_", "typicality_scale_", "feature_names_in_"):  # fmt: skip
            if hasattr(self, attr):
                delattr(self, attr)
        self.model_ = model
        self.means_ = model.location_[None, :].copy()
        self.classes_ = np.array([0])
        self.n_samples_seen_ = int(stats.n)
        self.n_features_in_ = int(stats.n_features)
        self.law_ = "f" if stats.n > stats.n_features + 4 else "chi2"
        self._prepare_scoring()
        return self

    def _split(self, n: int, codes: np.ndarray | None, rng: Any) -> tuple[np.ndarray, Any]:
        """Indices to fit on and to calibrate on (None without ``calibration="split"``)."""
        if self.calibration is None:
            return np.arange(n), None
        min_fit = self.n_clusters if self.method in ("cluster", "relative") else 2
        return calibration.holdout_split(
            n, self.contamination, self.calibration_size, rng, min_fit=min_fit, codes=codes,
            what="`offset_`",
        )

    def _fit_state(self, X: np.ndarray, codes: np.ndarray | None, classes_: Any) -> dict:
        """The fitted attributes for training rows ``X`` (labels ``codes`` or None)."""
        state: dict[str, Any] = {}
        if self.method == "global":
            model = self._gaussian()._fit_array(X)
            state.update(model_=model, means_=model.location_[None, :].copy(),
                         classes_=np.array([0]))  # fmt: skip
            return state
        if codes is None:
            if self.n_clusters > X.shape[0]:
                raise ValueError(
                    f"`n_clusters` must be <= n_samples ({X.shape[0]}), got {self.n_clusters}"
                )
            from sklearn.cluster import KMeans

            km = KMeans(n_clusters=self.n_clusters, n_init="auto", random_state=self.random_state)
            with warnings.catch_warnings():  # its "fewer distinct clusters" warning: see below
                warnings.simplefilter("ignore", ConvergenceWarning)
                state["kmeans_"] = km.fit(X)
            codes = km.labels_.astype(np.intp)
            found = np.unique(codes).shape[0]
            if found < self.n_clusters:
                raise ValueError(
                    f"k-means found only {found} distinct cluster(s) among the {X.shape[0]} "
                    f"fitting rows for `n_clusters`={self.n_clusters} (are many rows duplicates?); "
                    "use a smaller `n_clusters` or method='global'"
                )
            classes_ = np.arange(self.n_clusters)
        pooled, means = _pooled_stats(X, codes, len(classes_), self.chunk_size)
        state.update(model_=self._gaussian().fit_stats(pooled), means_=means, classes_=classes_)
        if self.method == "relative":
            state["background_"] = self._gaussian()._fit_array(X)
        return state

    def _heldout_moments(
        self, X: np.ndarray, codes: Any, state: dict, rng: Any
    ) -> tuple[float, float]:
        """Mean and SD of out-of-fold squared distances: the law the fit gives new points.

        The folds keep the fit's labels (``codes``: classes, or the k-means clusters of the
        fit); each fold's Gaussian is fitted on the other folds and scores the fold.
        """
        n = X.shape[0]
        k = min(_TYPICALITY_FOLDS, n // 2)
        if self.method != "global" and codes is None:
            codes = state["kmeans_"].labels_.astype(np.intp)
        m2 = np.empty(n)
        try:
            if k < 2:
                raise ValueError(f"too few fitting rows ({n}) for out-of-fold distances")
            folds = np.array_split(rng.permutation(n), k)
            for fold in folds:
                rest = np.setdiff1d(np.arange(n), fold, assume_unique=True)
                m2[fold] = self._fold_distances(X[rest], None if codes is None else codes[rest],
                                                X[fold])  # fmt: skip
        except ValueError as exc:
            law = core.distance_law(n, X.shape[1], "f" if n > X.shape[1] + 4 else "chi2")
            mean, var = law.stats(moments="mv")
            warnings.warn(
                f"statistic='typicality' could not estimate the held-out law of the distances "
                f"({exc}); it uses the analytic law instead, exact only for Gaussian data and "
                "an empirical covariance. Fit on more data for a reliable score",
                UserWarning,
                stacklevel=3,
            )
            return float(mean), float(math.sqrt(var))
        sd = float(np.std(m2))
        return float(np.mean(m2)), (sd if sd > 0 else 1.0)

    def _fold_distances(self, X_fit: np.ndarray, codes: Any, X_out: np.ndarray) -> np.ndarray:
        if codes is None:
            g = self._gaussian()._fit_array(X_fit)
            return g._mahalanobis(X_out)
        present, codes = np.unique(codes, return_inverse=True)
        pooled, means = _pooled_stats(X_fit, codes.astype(np.intp), len(present), self.chunk_size)
        g = self._gaussian().fit_stats(pooled)
        return mahalanobis_sq_to_means(
            X_out, means, g.cholesky_, center=g.location_, dtype=self.dtype,
            chunk_size=self.chunk_size,
        ).min(axis=1)  # fmt: skip

    @atomic_fit
    def calibrate(self, X: Any) -> MahalanobisOOD:
        """Store split-conformal calibration scores from held-out in-distribution data.

        Parameters
        ----------
        X : array-like of shape (n_calibration, n_features)
            In-distribution points **not** used in :meth:`fit` (e.g. a random half of the
            test split). At least ``ceil(1/contamination) - 1`` points
            (:func:`min_calibration_size`).

        Returns
        -------
        self
            With ``calibration_scores_`` and ``offset_`` set so that ``predict(X)`` is the
            conformal decision at level ``contamination``.
        """
        self._set_calibration(self._scores(self._check_X(X)))
        return self

    # ------------------------------------------------------------------ scoring
    def _check_X(self, X: Any) -> np.ndarray:
        if "model_" not in self.__dict__:
            check_is_fitted(self, "model_")
        if is_plain_float_matrix(X, self):
            if X.shape[0] == 0:
                raise too_few_rows("X", 0, 1)
        else:
            check_matrix_like(X, "X")
            X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32],
                              ensure_all_finite=False)  # fmt: skip
        g = self.__dict__.get("gaussianizer_")
        if g is None:
            return X  # non-finite rows are refused by the core on the output blocks
        if not all_finite(X):
            bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
            raise nonfinite_error("X", int(bad[0]))
        return g._transform_array(X)

    def _prepare_scoring(self) -> None:
        """Solve the class/cluster means against the tied factor once (small-batch latency)."""
        self._means_factor = core.ScoringFactor(
            self.model_.cholesky_, self.means_, self.model_.location_
        )

    def _class_distances(self, X: np.ndarray) -> np.ndarray:
        if self.method == "global":
            return self.model_._mahalanobis(X)[:, None]
        return mahalanobis_sq_to_means(
            X, self.means_, self.model_.cholesky_, center=self.model_.location_,
            dtype=self.dtype, chunk_size=self.chunk_size, factor=self._means_factor,
        )  # fmt: skip

    def _distance(self, X: np.ndarray) -> np.ndarray:
        m2 = self._class_distances(X).min(axis=1)
        if self.method == "relative":
            m2 = m2 - self.background_._mahalanobis(X)
        return m2

    def _scores(self, X: np.ndarray) -> np.ndarray:
        m2 = self._distance(X)
        if self.statistic == "distance":
            return -m2
        return -np.abs(m2 - self.typicality_center_) / self.typicality_scale_

    def class_distances(self, X: Any) -> np.ndarray:
        """**Squared** Mahalanobis distances to every class (or cluster) mean.

        Returns
        -------
        ndarray of shape (n_samples, n_classes), float64
            Columns follow ``classes_`` (one column for ``"global"``); larger = farther.
        """
        return self._class_distances(self._check_X(X))

    def mahalanobis(self, X: Any) -> np.ndarray:
        """The method's squared-distance statistic (larger = less in-distribution).

        Returns
        -------
        ndarray of shape (n_samples,), float64
            ``"global"``: squared distance to the mean; ``"class"``/``"cluster"``: squared
            distance to the closest mean; ``"relative"``: that minus the squared distance
            under the background Gaussian (may be negative).
        """
        return self._distance(self._check_X(X))

    def score_samples(self, X: Any) -> np.ndarray:
        """In-distribution score of each sample (higher = more in-distribution).

        Returns
        -------
        ndarray of shape (n_samples,), float64
            ``statistic="distance"``: minus :meth:`mahalanobis` (a **squared** distance);
            ``statistic="typicality"``: minus the standardised deviation of that squared
            distance from its expected value. Each row is scored on its own (batch ==
            row by row).
        """
        return self._scores(self._check_X(X))

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples(X) - offset_``: negative = flagged as out-of-distribution."""
        return self.score_samples(X) - self.offset_

    def pvalues(self, X: Any, method: str = "conformal") -> np.ndarray:
        """p-values of the null hypothesis "this point is in-distribution".

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        method : {"conformal", "f", "chi2"}, default="conformal"
            ``"conformal"``: split-conformal p-values from :meth:`calibrate` (valid for any
            data, see Notes of the class). ``"f"``/``"chi2"``: analytic p-values of the
            squared distance (:func:`infogauss.gaussian.mahalanobis_pvalues`) — exact only
            for Gaussian data and an empirical fit; for ``"class"``/``"cluster"`` they test
            the distance to the closest mean with the one-Gaussian law of ``n`` points (an
            approximation: the closest mean is at most the own-class distance);
            with ``statistic="typicality"`` they are two-sided:
            ``P(|m² - E m²| >= observed)``. Not available for ``"relative"``.

        Returns
        -------
        ndarray of shape (n_samples,)
            In (0, 1]; small = evidence of out-of-distribution.
        """
        if method not in _PVALUE_METHODS:
            raise ValueError(f"`method` must be one of {_PVALUE_METHODS}, got {method!r}")
        X = self._check_X(X)
        if method == "conformal":
            self._check_calibrated()
            return conformal_pvalues(self.calibration_scores_, self._scores(X))
        if self.method == "relative":
            raise ValueError(
                "method='relative' has no analytic p-values (a difference of distances has no "
                "F/chi2 law); use pvalues(X, method='conformal') after calibrate()"
            )
        n, d = self.n_samples_seen_, self.n_features_in_
        m2 = self._distance(X)
        if self.statistic == "distance":
            return core.mahalanobis_pvalues(m2, n, d, method)
        law = "f" if method == "f" and n > d + 4 else method
        if law != method:
            raise ValueError(
                f"method='f' for statistic='typicality' needs n_samples > n_features + 4 "
                f"(n={n}, d={d}); use method='chi2' or 'conformal'"
            )
        mean, var = core.distance_law(n, d, law).stats(moments="mv")
        dev = np.abs(m2 - float(mean))
        upper = core.mahalanobis_pvalues(float(mean) + dev, n, d, method)
        lo = float(mean) - dev
        below = 1.0 - core.mahalanobis_pvalues(np.maximum(lo, 0.0), n, d, method)
        lower = np.where(lo > 0, below, 0.0)
        return np.clip(upper + lower, 0.0, 1.0)

    def predict(self, X: Any, alpha: float | None = None) -> np.ndarray:
        """+1 for in-distribution, -1 for out-of-distribution.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        alpha : float in (0, 1), optional
            Flag ``X`` when its conformal p-value is <= ``alpha``: at most ``alpha`` of
            in-distribution inputs are flagged in expectation (needs :meth:`calibrate`
            with at least ``ceil(1/alpha) - 1`` points). None: ``decision_function(X) < 0``
            (see ``contamination``).

        Returns
        -------
        ndarray of shape (n_samples,), int
        """
        return self._conformal_predict(X, alpha)

    # ------------------------------------------------------------------ persistence
    def save(self, path: Any) -> Any:
        """Write the fitted detector, calibration included, to a model file (no pickle).

        The format is :mod:`infogauss.persistence`'s; read it back with :meth:`load` or
        :func:`infogauss.load`. Scores, thresholds and p-values of the loaded detector equal
        the saved one's bit for bit. ``kmeans_`` (a fit-time by-product) is not saved: the
        cluster means used for scoring are in ``means_``; a ``random_state`` that is not an
        int is saved as None.
        """
        check_is_fitted(self, "model_")
        return _persist.save_detector(self, path)

    @classmethod
    def load(cls, path: Any) -> MahalanobisOOD:
        """Read a detector written by :meth:`save` (raises
        :class:`~infogauss.persistence.ModelFileError` for a corrupt or foreign file)."""
        meta, arrays = persistence.read_state(path, "MahalanobisOOD")
        return cls._from_state(path, meta, arrays)

    @classmethod
    def _from_state(cls, path: Any, meta: dict, arrays: dict) -> MahalanobisOOD:
        return _persist.detector_from_state(cls, path, meta, arrays)

    def _check_calibrated(self) -> None:
        check_is_fitted(self, "model_")
        if not hasattr(self, "calibration_scores_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not calibrated yet: call "
                "calibrate(X_heldout_in_distribution) before conformal p-values or "
                "predict(X, alpha=...); analytic p-values need no calibration "
                "(pvalues(X, method='f'))"
            )


def _make_gaussianizer(spec: Any, random_state: Any) -> Any:
    """An unfitted Gaussianizer from the ``gaussianize`` parameter."""
    from sklearn.base import clone

    from ..gaussianize import Gaussianizer

    if isinstance(spec, str):
        return Gaussianizer(method=spec, random_state=random_state)
    if isinstance(spec, Gaussianizer):
        return clone(spec)
    raise TypeError(
        f"`gaussianize` must be None, a Gaussianizer method name or a Gaussianizer, got "
        f"{type(spec).__name__}"
    )

