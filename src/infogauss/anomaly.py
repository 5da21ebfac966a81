"""A Gaussian-likelihood anomaly detector speaking PyOD's protocol (the only ``import pyod``).

:class:`GaussianLikelihoodDetector` subclasses :class:`pyod.models.base.BaseDetector`, so it
drops into PyOD workflows (``contamination``, ``decision_scores_``, ``threshold_``,
``labels_``, ``predict``, ``predict_proba``, ``predict_confidence``) while the Gaussian itself
is :class:`infogauss.GaussianModel` (shrinkage covariance, Cholesky scoring).

Unlike some PyOD detectors, scores are pure and per-sample: the score of a row never depends
on the other rows of the batch, and ``decision_scores_ == decision_function(X_train)``
exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validation import check_probability, reject_device_tensor
from .model import GaussianModel

try:
    from pyod.models.base import BaseDetector
except ImportError as exc:  # pragma: no cover - exercised by a test that hides pyod
    raise ImportError(
        "infogauss.anomaly needs PyOD: pip install 'infogauss[pyod]'"
    ) from exc

__all__ = ["GaussianLikelihoodDetector", "ANOMALY_STATISTICS"]

ANOMALY_STATISTICS = ("nll", "mahalanobis")


class GaussianLikelihoodDetector(BaseDetector):
    """Anomaly scores from a multivariate Gaussian fitted to (embedding) data, PyOD protocol.

    Parameters
    ----------
    contamination : float in (0, 0.5], default=0.1
        Expected fraction of anomalies in the training data; sets ``threshold_`` (the
        ``1 - contamination`` quantile of ``decision_scores_``), as every PyOD detector.
    statistic : {"nll", "mahalanobis"}, default="nll"
        ``"nll"``: negative Gaussian log-density in nats; ``"mahalanobis"``: **squared**
        Mahalanobis distance. Both rank points identically (they differ by a constant and a
        factor ½); ``"nll"`` is comparable across models of different covariance.
    shrinkage : str or float, default="ledoit_wolf"
        Covariance estimator (see :class:`infogauss.GaussianModel`).
    dtype : {None, "float32", "float64"}, default=None
        Scoring precision (see :class:`infogauss.GaussianModel`).

    Attributes
    ----------
    model_ : GaussianModel
        The fitted Gaussian.
    decision_scores_ : ndarray of shape (n_samples,)
        Anomaly scores of the training data (**higher = more abnormal**), equal to
        ``decision_function(X_train)``.
    threshold_ : float
        Scores above it are labelled anomalies.
    labels_ : ndarray of shape (n_samples,)
        0 = inlier, 1 = anomaly, for the training data.

    Examples
    --------
    >>> import numpy as np
    >>> from infogauss.anomaly import GaussianLikelihoodDetector
    >>> X = np.random.default_rng(0).normal(size=(200, 3))
    >>> det = GaussianLikelihoodDetector(contamination=0.05).fit(X)
    >>> det.predict(np.array([[0.0, 0.0, 0.0], [8.0, 8.0, 8.0]])).tolist()
    [0, 1]
    """

    def __init__(
        self,
        *,
        contamination: float = 0.1,
        statistic: str = "nll",
        shrinkage: str | float = "ledoit_wolf",
        dtype: Any = None,
    ) -> None:
        self.contamination = contamination
        self.statistic = statistic
        self.shrinkage = shrinkage
        self.dtype = dtype

    def fit(self, X: Any, y: Any = None) -> GaussianLikelihoodDetector:
        """Fit the Gaussian to ``X`` and set ``decision_scores_``, ``threshold_``, ``labels_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored (PyOD warns when it is given)

        Returns
        -------
        self
        """
        c = check_probability(self.contamination, "contamination", open_right=False)
        if c > 0.5:
            raise ValueError(f"`contamination` must lie in (0, 0.5], got {self.contamination!r}")
        if self.statistic not in ANOMALY_STATISTICS:
            raise ValueError(
                f"`statistic` must be one of {ANOMALY_STATISTICS}, got {self.statistic!r}"
            )
        reject_device_tensor(X, "X")
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        self._set_n_classes(y)
        self.model_ = GaussianModel(shrinkage=self.shrinkage, dtype=self.dtype)._fit_array(X)
        self.decision_scores_ = self._raw_scores(X)
        self._process_decision_scores()
        return self

    def _raw_scores(self, X: np.ndarray) -> np.ndarray:
        if self.statistic == "nll":
            return -self.model_._log_density(X)
        return self.model_._mahalanobis(X)

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly score of each row (**higher = more abnormal**).

        Returns
        -------
        ndarray of shape (n_samples,), float64
            Negative log-density (nats) for ``statistic="nll"``, squared Mahalanobis distance
            for ``statistic="mahalanobis"``. Each row is scored on its own.
        """
        check_is_fitted(self, "model_")
        reject_device_tensor(X, "X")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self._raw_scores(X)
