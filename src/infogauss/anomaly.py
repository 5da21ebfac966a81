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
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from . import calibration, persistence
from ._validation import (
    all_finite,
    atomic_fit,
    check_calibration_params,
    check_matrix_like,
    check_probability,
    is_plain_float_matrix,
    nonfinite_error,
)
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
        With the default ``calibration="split"``: the rate at which new *normal* points are
        labelled anomalies (a false-alarm rate, guaranteed for new data exchangeable with the
        training data): ``threshold_`` is the split-conformal threshold of a held-out part of
        the training data. With ``calibration=None``: PyOD's own meaning — the expected
        fraction of anomalies in the training data, ``threshold_`` the ``1 - contamination``
        quantile of ``decision_scores_``.
    calibration : {"split", None}, default="split"
        ``"split"``: fit the Gaussian on ``1 - calibration_size`` of ``X`` (at random) and set
        ``threshold_`` from the scores of the rest; ``None``: fit on all of ``X`` and threshold
        at the training quantile (PyOD's convention). Falls back to ``None`` with a warning when
        ``X`` is too small to hold out ``ceil(1/contamination) - 1`` points.
    calibration_size : float in (0, 1) or int, default=0.2
        Share (float) or number (int) of ``X`` held out by ``calibration="split"``.
    random_state : int or None, default=None
        Seeds the calibration split.
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
        ``decision_function(X_train)`` (every row, held-out ones included).
    threshold_ : float
        Scores above it are labelled anomalies.
    n_calibration_ : int
        Rows held out to set ``threshold_`` (0 with ``calibration=None``).
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
        calibration: str | None = "split",
        calibration_size: float | int = 0.2,
        random_state: int | None = None,
    ) -> None:
        self.contamination = contamination
        self.statistic = statistic
        self.shrinkage = shrinkage
        self.dtype = dtype
        self.calibration = calibration
        self.calibration_size = calibration_size
        self.random_state = random_state

    @atomic_fit
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
        check_calibration_params(self.calibration, self.calibration_size)
        check_matrix_like(X, "X", min_samples=2)
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2,
                          ensure_all_finite=False)  # fmt: skip
        if not all_finite(X):
            raise nonfinite_error("X", int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0]))
        self._set_n_classes(y)
        rng = check_random_state(self.random_state)
        if self.calibration is None:
            fit_idx, cal_idx = np.arange(X.shape[0]), None
        else:
            fit_idx, cal_idx = calibration.holdout_split(
                X.shape[0], c, self.calibration_size, rng, what="`threshold_`"
            )
        model = GaussianModel(shrinkage=self.shrinkage, dtype=self.dtype)._fit_array(X[fit_idx])
        model._warn_precision(X.dtype)  # large offsets, ill-conditioning
        self.model_ = model
        self.decision_scores_ = self._raw_scores(X)
        if cal_idx is None:
            self.n_calibration_ = 0
            self._process_decision_scores()  # PyOD: the training quantile
        else:
            # in-distribution score = -anomaly score: flag iff anomaly score > -threshold
            cal = self.decision_scores_[cal_idx]
            self.threshold_ = -calibration.conformal_threshold(-cal, c, name="contamination")
            self.labels_ = (self.decision_scores_ > self.threshold_).astype(int).ravel()
            self.n_calibration_ = int(cal_idx.shape[0])
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
        if not is_plain_float_matrix(X, self) or X.shape[0] == 0:
            check_matrix_like(X, "X")
            X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32],
                              ensure_all_finite=False)  # non-finite rows: refused by the core
        return self._raw_scores(X)

    # ------------------------------------------------------------------ persistence
    def save(self, path: Any) -> Any:
        """Write the fitted detector to a model file (:mod:`infogauss.persistence`; no pickle).

        ``decision_scores_``, ``threshold_`` and ``labels_`` travel with the Gaussian, so a
        loaded detector predicts, and gives PyOD's probabilities, exactly as the saved one.
        """
        check_is_fitted(self, "model_")
        params = self.get_params()
        if params["dtype"] is not None:
            params["dtype"] = str(np.dtype(params["dtype"]))
        m_params, m_attrs, m_arrays = self.model_._state()
        attrs = {
            "model_": {"params": m_params, "attrs": m_attrs},
            "threshold_": float(self.threshold_),
            "n_calibration_": int(self.n_calibration_),
            "n_features_in_": int(self.n_features_in_),
        }
        arrays = {**persistence.prefixed("model_.", m_arrays),
                  "decision_scores_": self.decision_scores_, "labels_": self.labels_}  # fmt: skip
        return persistence.save_state(path, "GaussianLikelihoodDetector", params, attrs, arrays)

    @classmethod
    def load(cls, path: Any) -> GaussianLikelihoodDetector:
        """Read a detector written by :meth:`save` (raises
        :class:`~infogauss.persistence.ModelFileError` for a corrupt or foreign file)."""
        meta, arrays = persistence.read_state(path, "GaussianLikelihoodDetector")
        return cls._from_state(path, meta, arrays)

    @classmethod
    def _from_state(cls, path: Any, meta: dict, arrays: dict) -> GaussianLikelihoodDetector:
        err = persistence.ModelFileError
        attrs = dict(meta["attrs"])
        try:
            det = cls(**persistence.check_params(path, cls, dict(meta["params"])))
        except (TypeError, ValueError) as exc:
            raise err(path, f"has invalid parameters: {exc}") from exc
        unknown = sorted(set(attrs) - {"model_", "threshold_", "n_calibration_", "n_features_in_"})
        if unknown or not isinstance(attrs.get("model_"), dict):
            raise err(path, f"has unknown or missing attributes {unknown or ['model_']}")
        det.model_ = GaussianModel._from_state(
            path, attrs["model_"], persistence.sub_state("model_.", arrays)
        )
        scores, labels = arrays.get("decision_scores_"), arrays.get("labels_")
        if scores is None or labels is None or scores.ndim != 1 or labels.shape != scores.shape:
            raise err(path, "decision_scores_ and labels_ are missing or of different shapes")
        det.threshold_ = attrs.get("threshold_")
        if not isinstance(det.threshold_, float) or not np.array_equal(
            labels, (scores > det.threshold_).astype(labels.dtype)
        ):
            raise err(path, "labels_ do not follow from decision_scores_ and threshold_")
        det.decision_scores_, det.labels_ = scores, labels
        det.n_calibration_ = attrs.get("n_calibration_")
        det.n_features_in_ = attrs.get("n_features_in_")
        if det.n_features_in_ != det.model_.n_features_in_:
            raise err(path, "n_features_in_ does not match the model's width")
        det._set_n_classes(None)
        return det
