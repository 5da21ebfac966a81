r"""Mahalanobis out-of-distribution detection with calibrated (split-conformal) decisions.

:class:`MahalanobisOOD` scores embeddings by their squared Mahalanobis distance to a Gaussian
model of the in-distribution training embeddings (built on :class:`~infogauss.GaussianModel`
and the functional core :mod:`infogauss.gaussian`), in one of four ways:

* ``"global"`` — one Gaussian on all training points (label-free; the default);
* ``"class"`` — one mean per class and a tied (pooled within-class) covariance, the score is
  the distance to the closest class mean (Lee et al., 2018); needs labels;
* ``"cluster"`` — as ``"class"`` with k-means pseudo-labels (label-free, as SSD: Sehwag et al.,
  2021);
* ``"relative"`` — the class (or cluster) distance minus the distance under a background
  Gaussian fitted to all training points (relative Mahalanobis distance, Ren et al., 2021).

``statistic="typicality"`` replaces the distance by a two-sided typicality score: how far the
squared distance lies from the value held-out in-distribution points get under the fitted
model. In high dimension almost no in-distribution point lies near the mode, so a point
*too close* to the mean is as suspicious as one too far.

Calibrated by default: ``fit(X)`` holds out a random 20% of ``X`` and turns the score into
split-conformal p-values on it (Bates et al., 2023), so ``fit(X).predict(X_new)`` flags at
most ``contamination`` of new in-distribution inputs in expectation, whatever the embedding
distribution. ``calibrate(X_heldout)`` recalibrates on an external set;
``calibration=None`` fits on every row with scikit-learn's training-quantile threshold.

The squared distances to many means sharing one Cholesky factor are computed by
:func:`mahalanobis_sq_to_means` (one triangular solve per block of rows, whatever the number
of means).
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from . import calibration
from . import gaussian as core
from ._validation import check_positive_int, check_probability, reject_device_tensor
from .model import GaussianModel

__all__ = [
    "MahalanobisOOD",
    "CALIBRATIONS",
    "OOD_METHODS",
    "OOD_STATISTICS",
    "mahalanobis_sq_to_means",
    "conformal_pvalues",
    "min_calibration_size",
]

OOD_METHODS = ("global", "class", "cluster", "relative")
OOD_STATISTICS = ("distance", "typicality")
CALIBRATIONS = ("split", None)
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
class MahalanobisOOD(OutlierMixin, BaseEstimator):
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
        if self.calibration not in CALIBRATIONS:
            raise ValueError(
                f"`calibration` must be one of {CALIBRATIONS}, got {self.calibration!r}"
            )
        size = self.calibration_size
        if isinstance(size, bool) or not isinstance(size, numbers.Real):
            raise TypeError(f"`calibration_size` must be a float in (0, 1) or an int, got {size!r}")
        if isinstance(size, numbers.Integral):
            check_positive_int(size, "calibration_size")
        elif not 0.0 < float(size) < 1.0:
            raise ValueError(f"`calibration_size` must be a float in (0, 1) or an int >= 1, got {size!r}")

    def _gaussian(self) -> GaussianModel:
        return GaussianModel(shrinkage=self.shrinkage, dtype=self.dtype, chunk_size=self.chunk_size)

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
        reject_device_tensor(X, "X")
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
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
        cf = None if codes is None else codes[fit_idx]
        state = self._fit_state(Xf, cf, classes_)
        state["n_samples_seen_"] = int(Xf.shape[0])
        d = X.shape[1]
        state["law_"] = "f" if Xf.shape[0] > d + 4 else "chi2"
        if self.statistic == "typicality":
            c, sd = self._heldout_moments(Xf, cf, state, rng)
            state["typicality_center_"], state["typicality_scale_"] = c, sd
        # all computed: replace the old fitted state in one step
        for attr in ("calibration_scores_", "n_calibration_", "background_", "kmeans_",
                     "typicality_center_", "typicality_scale_"):  # fmt: skip
            if hasattr(self, attr):
                delattr(self, attr)
        self.__dict__.update(state)
        if cal_idx is None:
            self.offset_ = float(np.percentile(self._scores(Xf), 100.0 * self.contamination))
        else:
            self._set_calibration(self._scores(X[cal_idx]))
        return self

    def _split(self, n: int, codes: np.ndarray | None, rng: Any) -> tuple[np.ndarray, Any]:
        """Indices to fit on and to calibrate on (None without ``calibration="split"``)."""
        everything = np.arange(n)
        if self.calibration is None:
            return everything, None
        need = min_calibration_size(self.contamination)
        size = self.calibration_size
        want = int(size) if isinstance(size, numbers.Integral) else math.ceil(float(size) * n)
        n_cal = max(want, need)
        # fit on at least as many rows as are held out (and enough for the clusters)
        min_fit = max(2, n_cal, self.n_clusters if self.method in ("cluster", "relative") else 2)
        if codes is not None:
            min_fit = max(min_fit, int(codes.max()) + 1)
        if n - n_cal < min_fit:
            warnings.warn(
                f"calibration='split' would hold out {n_cal} of the {n} rows of X "
                f"(contamination={self.contamination} needs at least {need} held-out points) "
                f"and fit on the rest, which needs at least {min_fit} rows: too few rows, so "
                "the detector is fitted on all of X and `offset_` is the training-score "
                "quantile, WITHOUT the false-alarm guarantee. Pass more data, or call "
                "calibrate() on held-out in-distribution data",
                UserWarning,
                stacklevel=3,
            )
            return everything, None
        if codes is None:
            perm = rng.permutation(n)
            return np.sort(perm[n_cal:]), np.sort(perm[:n_cal])
        return _stratified_split(codes, n_cal, rng)

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
            state["kmeans_"] = km.fit(X)
            codes = km.labels_.astype(np.intp)
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

    def _set_calibration(self, scores: np.ndarray) -> None:
        scores = np.sort(scores)
        offset = calibration.conformal_threshold(scores, self.contamination, name="contamination")
        self.calibration_scores_ = scores
        self.n_calibration_ = int(scores.shape[0])
        self.offset_ = offset

    def fit_predict(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        """``fit(X, y, **kwargs).predict(X)`` (+1 inlier, -1 outlier)."""
        return self.fit(X, y, **kwargs).predict(X)

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
        check_is_fitted(self, "model_")
        reject_device_tensor(X, "X")
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32])

    def _class_distances(self, X: np.ndarray) -> np.ndarray:
        if self.method == "global":
            return self.model_._mahalanobis(X)[:, None]
        return mahalanobis_sq_to_means(
            X, self.means_, self.model_.cholesky_, center=self.model_.location_,
            dtype=self.dtype, chunk_size=self.chunk_size,
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
        if alpha is None:
            flagged = self.decision_function(X) < 0
        else:
            a = check_probability(alpha, "alpha")
            self._check_calibrated()
            calibration.check_calibration_size(self.n_calibration_, a, "alpha")
            flagged = self.pvalues(X) <= a
        return np.where(flagged, -1, 1)

    def _check_calibrated(self) -> None:
        check_is_fitted(self, "model_")
        if not hasattr(self, "calibration_scores_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not calibrated yet: call "
                "calibrate(X_heldout_in_distribution) before conformal p-values or "
                "predict(X, alpha=...); analytic p-values need no calibration "
                "(pvalues(X, method='f'))"
            )


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------

def _stratified_split(codes: np.ndarray, n_cal: int, rng: Any) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``n_cal`` rows, in proportion to each class, keeping >= 1 row of every class."""
    n = codes.shape[0]
    counts = np.bincount(codes)
    room = np.maximum(counts - 1, 0)
    if room.sum() < n_cal:
        raise ValueError(
            f"calibration='split' needs {n_cal} held-out rows while keeping one row of each "
            f"class to fit on, but only {int(room.sum())} can be held out; pass more data or "
            "calibration=None"
        )
    share = n_cal * counts / n
    take = np.minimum(np.floor(share).astype(int), room)
    for k in np.argsort(-(share - np.floor(share)), kind="stable"):  # largest remainders first
        while take.sum() < n_cal and take[k] < room[k] and take[k] < np.ceil(share[k]):
            take[k] += 1
    for k in np.argsort(-room, kind="stable"):  # then wherever there is room
        while take.sum() < n_cal and take[k] < room[k]:
            take[k] += 1
    cal = np.concatenate([rng.permutation(np.flatnonzero(codes == k))[: take[k]]
                          for k in range(counts.shape[0])])  # fmt: skip
    mask = np.zeros(n, dtype=bool)
    mask[cal] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def _encode_labels(y: Any, n: int, classes: Any) -> tuple[np.ndarray, np.ndarray]:
    """Classes and integer codes of ``y``; refuses wrong length, NaN and empty classes."""
    reject_device_tensor(y, "y")
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"`y` must be a 1-D array of class labels, got shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"`y` must have one label per row of X ({n}), got {y.shape[0]}")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError("`y` contains NaN or infinity; class labels must be finite")
    if y.dtype.kind not in "biufUSO":
        raise TypeError(f"`y` must hold class labels (ints or strings), got dtype {y.dtype}")
    present, codes = np.unique(y, return_inverse=True)
    if classes is None:
        return present, codes.astype(np.intp)
    classes = np.asarray(classes)
    if classes.ndim != 1 or classes.shape[0] == 0:
        raise ValueError(f"`classes` must be a non-empty 1-D array of labels, got {classes!r}")
    if np.unique(classes).shape[0] != classes.shape[0]:
        raise ValueError("`classes` must not repeat a label")
    unknown = np.setdiff1d(present, classes)
    if unknown.size:
        raise ValueError(
            f"`y` holds labels not in `classes`: {unknown[:10].tolist()}"
        )
    empty = np.setdiff1d(classes, present)
    if empty.size:
        raise ValueError(
            f"`y` has no samples of class(es) {empty[:10].tolist()} (an empty class): a class "
            "mean needs at least one sample; drop the class from `classes` or add its samples"
        )
    order = np.argsort(classes)
    codes = order[np.searchsorted(classes[order], y)]
    return classes, codes.astype(np.intp)


def _pooled_stats(
    X: np.ndarray, codes: np.ndarray, n_classes: int, chunk_size: int | None
) -> tuple[core.GaussianStats, np.ndarray]:
    """Within-class (tied) statistics and class means.

    The scatter, third and fourth moments are sums over classes of the moments about each
    class mean, so the shrinkage intensities are those of the pooled residuals; the
    location is the overall mean.
    """
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_classes + 1))
    parts = [
        core.stats_from_array(X[order[bounds[k] : bounds[k + 1]]], chunk_size=chunk_size)
        for k in range(n_classes)
    ]
    total = parts[0]
    for p in parts[1:]:
        total = core.merge_stats(total, p)
    pooled = core.GaussianStats(
        n=total.n,
        mean=total.mean,
        scatter=sum(p.scatter for p in parts),
        third=sum(p.third for p in parts),
        fourth=float(sum(p.fourth for p in parts)),
    )
    return pooled, np.stack([p.mean for p in parts])
