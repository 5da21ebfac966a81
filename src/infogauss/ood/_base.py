"""The protocol shared by the detectors beside :class:`~infogauss.ood.MahalanobisOOD`.

:class:`CalibratedDetector` holds what every one of them does the same way, so that it is
written once: the split-conformal calibration done by ``fit`` (``calibration="split"``: hold
out ``calibration_size`` of ``X``, fit on the rest, set ``offset_`` to the conformal threshold
of the held-out scores), :meth:`calibrate`, ``decision_function``, ``predict`` (+1 / -1, or
at a level ``alpha``), conformal ``pvalues``, and the model file (``save`` / ``load``). A
subclass supplies the model: how to validate input, fit on the fitting rows and score.
The laws themselves live in :mod:`infogauss.calibration`.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import calibration, persistence
from .._validation import (
    all_finite,
    atomic_fit,
    check_calibration_params,
    check_matrix_like,
    check_probability,
    is_plain_float_matrix,
    nonfinite_error,
    reject_device_tensor,
    too_few_rows,
)
from ._fitting import ConformalCalibrationMixin

__all__ = ["CalibratedDetector"]

# attributes fit sets that are not re-derived from the model (restored from a model file)
_COMMON_ATTRS = ("offset_", "n_samples_seen_", "n_features_in_", "n_calibration_")


class CalibratedDetector(ConformalCalibrationMixin, OutlierMixin, BaseEstimator):
    """Base class: split-conformal calibration, decisions, p-values and model files.

    Subclasses implement ``_validate_params_``, ``_fit_state(X_fit, y_fit, rng)`` (a dict of
    fitted attributes), ``_scores(X)`` (higher = more in-distribution, on validated input),
    ``_state_arrays()`` / ``_restore(path, attrs, arrays)`` for the model file, and may
    override ``_prepare_scoring`` (caches built from the fitted attributes), ``_min_fit``
    (fewest fitting rows the split must leave) and the input hooks. ``_fitted_attr`` names the
    attribute whose presence means "fitted".
    """

    _fitted_attr = "offset_"
    _uses_y = False  # whether fit passes labels to the model
    _n_features_required = True  # False for detectors of several views

    # ------------------------------------------------------------------ parameters
    def _check_protocol_params(self) -> None:
        c = check_probability(self.contamination, "contamination", open_right=False)
        if c > 0.5:
            raise ValueError(f"`contamination` must lie in (0, 0.5], got {self.contamination!r}")
        check_calibration_params(self.calibration, self.calibration_size)

    def _min_fit(self) -> int:
        return 2

    # ------------------------------------------------------------------ input hooks
    def _validate_fit_X(self, X: Any) -> Any:
        check_matrix_like(X, "X", min_samples=2)
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2,
                          ensure_all_finite=False)  # fmt: skip
        check_finite(X, "X")
        return X

    def _check_X(self, X: Any) -> Any:
        """Validated scoring input (fitted state and width checked; finiteness is checked by
        the subclass, on the way or on its output)."""
        self._check_fitted()
        if is_plain_float_matrix(X, self):
            if X.shape[0] == 0:
                raise too_few_rows("X", 0, 1)
            return X
        check_matrix_like(X, "X")
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32],
                             ensure_all_finite=False)  # fmt: skip

    @staticmethod
    def _n_rows(data: Any) -> int:
        return int(data.shape[0])

    @staticmethod
    def _take(data: Any, idx: np.ndarray) -> Any:
        return data[idx]

    def _fit_scores(self, X: Any) -> np.ndarray:
        """Scores of the fitting rows that set ``offset_`` when ``calibration=None`` (a
        detector whose training rows would score themselves overrides this)."""
        return self._scores(X)

    def _prepare_scoring(self) -> None:
        """Build scoring caches from the fitted attributes (after fit and after load)."""

    # ------------------------------------------------------------------ fitting
    def _labels(self, y: Any, n: int) -> np.ndarray | None:
        if y is None or not self._uses_y:
            return None
        reject_device_tensor(y, "y")
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != n:
            raise ValueError(f"`y` must have one label per row of X ({n}), got shape {y.shape}")
        return y

    @atomic_fit
    def fit(self, X: Any, y: Any = None) -> CalibratedDetector:
        """Fit the detector on in-distribution training data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            In-distribution training points (at least 2).
        y : None
            Ignored (unless the detector documents labels).

        Returns
        -------
        self
            With ``calibration="split"``: fitted on ``1 - calibration_size`` of ``X`` and
            calibrated on the rest (``offset_``, ``calibration_scores_``).
        """
        self._fit(X, y)
        return self

    @atomic_fit
    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit on ``X``, then label its rows (+1 inlier, -1 outlier).

        With ``calibration=None`` the labels are those of the scores that set ``offset_``
        (leave-one-out for the detectors whose rows would otherwise score themselves:
        :class:`KernelDensityOOD`, :class:`LocalGaussianOOD`), so that ``contamination`` of
        ``X`` is flagged, up to ties — scikit-learn's convention for outlier detection on the
        training set. With ``calibration="split"``, ``fit(X, y).predict(X)``.
        """
        scores = self._fit(X, y)
        if scores is None:
            return self.predict(X)
        return np.where(scores - self.offset_ < 0, -1, 1)

    def _fit(self, X: Any, y: Any) -> np.ndarray | None:
        """The fit; returns the scores of the fitting rows that set ``offset_`` when
        ``calibration=None`` (else None)."""
        self._validate_params_()
        data = self._validate_fit_X(X)
        n = self._n_rows(data)
        labels = self._labels(y, n)
        rng = check_random_state(self.random_state)
        fit_idx, cal_idx = self._split(n, rng)
        fit_data = self._take(data, fit_idx)
        state = self._fit_state(fit_data, None if labels is None else labels[fit_idx], rng)
        self._replace_state(state)
        self._prepare_scoring()
        if cal_idx is None:
            scores = self._fit_scores(fit_data)
            self.offset_ = float(np.percentile(scores, 100.0 * self.contamination))
            return scores
        self._set_calibration(self._scores(self._take(data, cal_idx)))
        return None

    def _split(self, n: int, rng: Any) -> tuple[np.ndarray, Any]:
        if self.calibration is None:
            return np.arange(n), None
        return calibration.holdout_split(
            n, self.contamination, self.calibration_size, rng, min_fit=self._min_fit(),
            what="`offset_`",
        )  # fmt: skip

    def _replace_state(self, state: dict) -> None:
        """Forget every fitted attribute of a previous fit, then set ``state``."""
        keep = ("n_features_in_", "feature_names_in_")
        for key in [k for k in self.__dict__ if k.endswith("_") and not k.startswith("_")]:
            if key not in keep:
                del self.__dict__[key]
        self.__dict__.update(state)

    @atomic_fit
    def calibrate(self, X: Any) -> CalibratedDetector:
        """Store split-conformal calibration scores from held-out in-distribution data.

        Parameters
        ----------
        X : array-like of shape (n_calibration, n_features)
            In-distribution points **not** used in :meth:`fit`; at least
            ``ceil(1/contamination) - 1`` of them
            (:func:`~infogauss.calibration.min_calibration_size`).

        Returns
        -------
        self
            ``calibration_scores_`` and ``offset_`` replaced, so that ``predict(X)`` is the
            conformal decision at level ``contamination`` and ``pvalues`` use this set.
        """
        self._set_calibration(self._scores(self._check_X(X)))
        return self

    # ------------------------------------------------------------------ scoring
    def _check_fitted(self) -> None:
        if self._fitted_attr not in self.__dict__:
            check_is_fitted(self, self._fitted_attr)

    def _check_calibrated(self) -> None:
        self._check_fitted()
        if "calibration_scores_" not in self.__dict__:
            raise NotFittedError(
                f"This {type(self).__name__} is not calibrated yet: call "
                "calibrate(X_heldout_in_distribution) before conformal p-values or "
                "predict(X, alpha=...)"
            )

    def score_samples(self, X: Any) -> np.ndarray:
        """In-distribution score of each sample (higher = more in-distribution).

        Returns
        -------
        ndarray of shape (n_samples,), float64
            See the class's Notes for the formula; each row is scored on its own.
        """
        return self._scores(self._check_X(X))

    def decision_function(self, X: Any) -> np.ndarray:
        """``score_samples(X) - offset_``: negative = flagged as out-of-distribution."""
        return self.score_samples(X) - self.offset_

    def pvalues(self, X: Any) -> np.ndarray:
        """Split-conformal p-values of "this point is in-distribution".

        Returns
        -------
        ndarray of shape (n_samples,)
            ``(1 + #{calibration scores <= score(x)}) / (n_calibration + 1)``, in (0, 1];
            small = evidence of out-of-distribution. For a point exchangeable with the
            calibration set, ``P(p <= alpha) <= alpha``.
        """
        X = self._check_X(X)
        self._check_calibrated()
        return calibration.conformal_pvalues(self.calibration_scores_, self._scores(X))

    def predict(self, X: Any, alpha: float | None = None) -> np.ndarray:
        """+1 for in-distribution, -1 for out-of-distribution.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        alpha : float in (0, 1), optional
            Flag points whose conformal p-value is <= ``alpha`` (needs a calibration set of
            at least ``ceil(1/alpha) - 1`` points). None: ``decision_function(X) < 0``.

        Returns
        -------
        ndarray of shape (n_samples,), int
        """
        return self._conformal_predict(X, alpha)

    # ------------------------------------------------------------------ persistence
    def _saved_params(self) -> dict:
        params = self.get_params(deep=False)
        if not isinstance(params.get("random_state"), (numbers.Integral, type(None))):
            params["random_state"] = None
        elif params.get("random_state") is not None:
            params["random_state"] = int(params["random_state"])
        return params

    def save(self, path: Any) -> Any:
        """Write the fitted detector, calibration included, to a model file (no pickle).

        The format is :mod:`infogauss.persistence`'s; read it back with :meth:`load` or
        :func:`infogauss.load`: scores, thresholds and p-values of the loaded detector equal
        the saved one's bit for bit. A ``random_state`` that is not an int is saved as None.
        Returns the path written.
        """
        self._check_fitted()
        attrs, arrays = self._state_arrays()
        for key in _COMMON_ATTRS:
            if key in self.__dict__:
                value = getattr(self, key)
                attrs[key] = value.item() if isinstance(value, np.generic) else value
        if "calibration_scores_" in self.__dict__:
            arrays["calibration_scores_"] = self.calibration_scores_
        if hasattr(self, "feature_names_in_"):
            attrs["feature_names_in_"] = [str(f) for f in self.feature_names_in_]
        return persistence.save_state(path, type(self).__name__, self._saved_params(), attrs, arrays)

    @classmethod
    def load(cls, path: Any) -> CalibratedDetector:
        """Read a detector written by :meth:`save` (raises
        :class:`~infogauss.persistence.ModelFileError` for a corrupt or foreign file)."""
        meta, arrays = persistence.read_state(path, cls.__name__)
        return cls._from_state(path, meta, arrays)

    @classmethod
    def _new_from_params(cls, path: Any, params: dict) -> CalibratedDetector:
        err = persistence.ModelFileError
        unknown = sorted(set(params) - set(cls._get_param_names()))
        if unknown:
            raise err(path, f"has parameters {unknown} that {cls.__name__} does not take")
        try:
            det = cls(**params)
            det._validate_params_()
        except (TypeError, ValueError) as exc:
            raise err(path, f"has invalid parameters: {exc}") from exc
        return det

    @classmethod
    def _instance_from_state(cls, path: Any, meta: dict, arrays: dict) -> CalibratedDetector:
        """The unfitted detector of a model file (its parameters checked)."""
        return cls._new_from_params(path, dict(meta["params"]))

    @classmethod
    def _from_state(cls, path: Any, meta: dict, arrays: dict) -> CalibratedDetector:
        err = persistence.ModelFileError
        det = cls._instance_from_state(path, meta, arrays)
        attrs, arrays = dict(meta["attrs"]), dict(arrays)
        _restore_common(det, path, attrs, arrays)
        det._restore(path, attrs, arrays)  # consumes its own attrs and arrays
        if attrs:
            raise err(path, f"has attributes {sorted(attrs)} that {cls.__name__} does not know")
        if arrays:
            raise err(path, f"has arrays {sorted(arrays)} that {cls.__name__} does not know")
        det._prepare_scoring()
        return det


def _is_int(value: Any, minimum: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _restore_common(det: CalibratedDetector, path: Any, attrs: dict, arrays: dict) -> None:
    """Restore and check the attributes every calibrated detector has (pops them)."""
    err = persistence.ModelFileError
    offset = attrs.pop("offset_", None)
    if not isinstance(offset, (int, float)) or isinstance(offset, bool) or np.isnan(offset):
        raise err(path, "has no numeric offset_")
    for key in ("n_samples_seen_", "n_features_in_"):
        value = attrs.pop(key, None)
        if value is None and key == "n_features_in_" and not det._n_features_required:
            continue
        if not _is_int(value):
            raise err(path, f"has an invalid {key} {value!r}")
        setattr(det, key, value)
    det.offset_ = float(offset)
    n_cal = attrs.pop("n_calibration_", None)
    cal = arrays.pop("calibration_scores_", None)
    if (n_cal is None) != (cal is None):
        raise err(path, "has calibration_scores_ without n_calibration_ (or the reverse)")
    if cal is not None:
        if not _is_int(n_cal) or cal.ndim != 1 or cal.shape[0] != n_cal \
                or cal.dtype != np.float64 or not np.all(np.diff(cal) >= 0):
            raise err(path, "calibration_scores_ do not match n_calibration_ (or are unsorted)")
        try:
            threshold = calibration.conformal_threshold(cal, det.contamination)
        except ValueError as exc:
            raise err(path, f"its calibration scores are unusable: {exc}") from exc
        if threshold != det.offset_:
            raise err(path, "offset_ is not the conformal threshold of its calibration scores")
        det.calibration_scores_, det.n_calibration_ = cal, n_cal
    names = attrs.pop("feature_names_in_", None)
    if names is not None:
        if not isinstance(names, list) or len(names) != det.n_features_in_ \
                or not all(isinstance(s, str) for s in names):
            raise err(path, "feature_names_in_ does not match n_features_in_")
        det.feature_names_in_ = np.asarray(names, dtype=object)


def check_finite(X: np.ndarray, name: str) -> None:
    """Refuse NaN and infinity with the house wording (naming the first bad row)."""
    if not all_finite(X):
        raise nonfinite_error(name, int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0]))


def warn_offset(mean: np.ndarray, variances: np.ndarray) -> None:
    """GaussianModel's PrecisionWarning when the data's mean is far larger than its spread
    (float64 scores then keep few digits), from the mean and per-feature variances."""
    from ..model import GaussianModel

    var = np.maximum(np.asarray(variances, dtype=np.float64), 0.0)
    probe = GaussianModel(dtype="float64")  # carries only what the check reads
    probe.location_ = np.asarray(mean, dtype=np.float64)
    probe.covariance_ = np.diag(var)
    probe.cholesky_ = np.diag(np.where(var > 0, np.sqrt(var), 1.0))
    probe._warn_precision(np.float64)
