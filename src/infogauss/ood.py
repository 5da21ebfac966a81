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
squared distance lies from the value its reference law (F, or χ² when ``n`` is too small)
expects. In high dimension almost no in-distribution point lies near the mode, so a point
*too close* to the mean is as suspicious as one too far.

``calibrate(X_heldout)`` turns any of these scores into split-conformal p-values
(Bates et al., 2023) so that ``predict(X, alpha)`` flags at most ``alpha`` of in-distribution
inputs in expectation, whatever the embedding distribution.

The squared distances to many means sharing one Cholesky factor are computed by
:func:`mahalanobis_sq_to_means` (one triangular solve per block of rows, whatever the number
of means).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted, validate_data

from . import calibration
from . import gaussian as core
from ._validation import check_positive_int, check_probability, reject_device_tensor
from .model import GaussianModel

__all__ = [
    "MahalanobisOOD",
    "OOD_METHODS",
    "OOD_STATISTICS",
    "mahalanobis_sq_to_means",
    "conformal_pvalues",
    "min_calibration_size",
]

OOD_METHODS = ("global", "class", "cluster", "relative")
OOD_STATISTICS = ("distance", "typicality")
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
        ``"typicality"``: ``score_samples = -|m² - E[m²]| / SD[m²]`` under the reference
        law of a new in-distribution point (F for ``n > d + 4``, else χ²): two-sided, so
        points atypically *close* to a mean score low too. Not for ``"relative"``.
        The law assumes Gaussian data and an empirical covariance: shrinkage (the default)
        makes new points' squared distances smaller than ``E[m²]``, which miscentres the
        score (calibrated decisions stay valid; ranking power may suffer).
    n_clusters : int, default=10
        Number of k-means clusters (``"cluster"``, and ``"relative"`` without labels).
    contamination : float in (0, 0.5], default=0.05
        Target fraction of in-distribution inputs that ``predict(X)`` flags. After ``fit``
        the threshold ``offset_`` is the training-score quantile (scikit-learn's convention;
        optimistic, since training points score better than new ones); after
        :meth:`calibrate` it is the split-conformal threshold, with the guarantee.
    shrinkage : str or float, default="ledoit_wolf"
        Covariance estimator, as :class:`~infogauss.GaussianModel`.
    dtype : {None, "float32", "float64"}, default=None
        Scoring precision, as :class:`~infogauss.GaussianModel`.
    chunk_size : int, optional
        Rows per scoring block.
    random_state : int, RandomState instance or None, default=None
        Seeds k-means (``"cluster"``, ``"relative"`` without labels).

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
        Sorted ``score_samples`` of the calibration set (after :meth:`calibrate`).
    law_ : {"f", "chi2"}
        Reference law of the typicality score (``"f"`` when ``n > d + 4``).
    n_samples_seen_, n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from infogauss.ood import MahalanobisOOD
    >>> rng = np.random.default_rng(0)
    >>> det = MahalanobisOOD().fit(rng.normal(size=(500, 4)))
    >>> det = det.calibrate(rng.normal(size=(200, 4)))
    >>> det.predict(np.array([[0.0, 0.0, 0.0, 0.0], [9.0, 9.0, 9.0, 9.0]]), alpha=0.05).tolist()
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
        shrinkage: str | float = "ledoit_wolf",
        dtype: Any = None,
        chunk_size: int | None = None,
        random_state: Any = None,
    ) -> None:
        self.method = method
        self.statistic = statistic
        self.n_clusters = n_clusters
        self.contamination = contamination
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
        for attr in ("calibration_scores_", "n_calibration_", "background_", "kmeans_"):
            if hasattr(self, attr):
                delattr(self, attr)
        use_labels = self.method == "class" or (self.method == "relative" and y is not None)
        if self.method == "global":
            self.model_ = self._gaussian()._fit_array(X)
            self.means_ = self.model_.location_[None, :].copy()
            self.classes_ = np.array([0])
        else:
            if use_labels:
                if y is None:
                    raise ValueError(
                        "method='class' needs class labels: call fit(X, y) "
                        "(or use method='cluster' for k-means pseudo-labels)"
                    )
                classes_, codes = _encode_labels(y, n, classes)
            else:
                if self.n_clusters > n:
                    raise ValueError(
                        f"`n_clusters` must be <= n_samples ({n}), got {self.n_clusters}"
                    )
                from sklearn.cluster import KMeans

                self.kmeans_ = KMeans(
                    n_clusters=self.n_clusters, n_init="auto", random_state=self.random_state
                ).fit(X)
                codes = self.kmeans_.labels_.astype(np.intp)
                classes_ = np.arange(self.n_clusters)
            pooled, means = _pooled_stats(X, codes, len(classes_), self.chunk_size)
            self.model_ = self._gaussian().fit_stats(pooled)
            self.means_ = means
            self.classes_ = classes_
            if self.method == "relative":
                self.background_ = self._gaussian()._fit_array(X)
        self.n_samples_seen_ = n
        d = X.shape[1]
        self.law_ = "f" if n > d + 4 else "chi2"
        self.offset_ = float(np.percentile(self._scores(X), 100.0 * self.contamination))
        return self

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
        scores = np.sort(self._scores(self._check_X(X)))
        offset = calibration.conformal_threshold(scores, self.contamination, name="contamination")
        self.calibration_scores_ = scores
        self.n_calibration_ = int(scores.shape[0])
        self.offset_ = offset
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
        mean, var = self._law_moments()
        return -np.abs(m2 - mean) / math.sqrt(var)

    def _law_moments(self) -> tuple[float, float]:
        law = core.distance_law(self.n_samples_seen_, self.n_features_in_, self.law_)
        mean, var = law.stats(moments="mv")
        return float(mean), float(var)

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
