"""Model files of the OOD detectors (format: :mod:`infogauss.persistence`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import calibration, persistence
from ..model import GaussianModel
from ._fitting import _savable_labels

_SCALARS = ("offset_", "n_samples_seen_", "n_features_in_", "law_", "n_calibration_",
            "typicality_center_", "typicality_scale_")  # fmt: skip


def save_detector(det: Any, path: Any) -> Any:
    """Write a fitted MahalanobisOOD (its Gaussians, means, calibration) to ``path``."""
    params = det.get_params(deep=False)
    if params["dtype"] is not None:
        params["dtype"] = str(np.dtype(params["dtype"]))
    if not isinstance(params["random_state"], (int, type(None))):
        params["random_state"] = None
    m_params, m_attrs, m_arrays = det.model_._state()
    attrs: dict[str, Any] = {"model_": {"params": m_params, "attrs": m_attrs}}
    arrays = {**persistence.prefixed("model_.", m_arrays), "means_": det.means_,
              "classes_": _savable_labels(det.classes_)}  # fmt: skip
    if hasattr(det, "background_"):
        b_params, b_attrs, b_arrays = det.background_._state()
        attrs["background_"] = {"params": b_params, "attrs": b_attrs}
        arrays.update(persistence.prefixed("background_.", b_arrays))
    if hasattr(det, "calibration_scores_"):
        arrays["calibration_scores_"] = det.calibration_scores_
    if hasattr(det, "gaussianizer_"):
        g_params, g_attrs, g_arrays = det.gaussianizer_._state()
        attrs["gaussianizer_"] = {"params": g_params, "attrs": g_attrs}
        arrays.update(persistence.prefixed("gaussianizer_.", g_arrays))
        if not isinstance(params["gaussianize"], str):  # an estimator: its parameters
            params["gaussianize"] = {"Gaussianizer": det.gaussianize.get_params()}
    for key in _SCALARS:
        if hasattr(det, key):
            value = getattr(det, key)
            attrs[key] = value.item() if isinstance(value, np.generic) else value
    if hasattr(det, "feature_names_in_"):
        attrs["feature_names_in_"] = [str(f) for f in det.feature_names_in_]
    return persistence.save_state(path, "MahalanobisOOD", params, attrs, arrays)


def detector_from_state(cls: type, path: Any, meta: dict, arrays: dict) -> Any:
    """Rebuild a MahalanobisOOD from a verified model file, checking its invariants."""
    err = persistence.ModelFileError
    attrs = dict(meta["attrs"])
    params = dict(meta["params"])
    if isinstance(params.get("gaussianize"), dict):
        from ..gaussianize import Gaussianizer

        try:
            params["gaussianize"] = Gaussianizer(**params["gaussianize"]["Gaussianizer"])
        except (KeyError, TypeError) as exc:
            raise err(path, f"has an invalid gaussianize parameter: {exc}") from exc
    params = persistence.check_params(path, cls, params)
    try:
        det = cls(**params)
        det._validate_params_()
    except (TypeError, ValueError) as exc:
        raise err(path, f"has invalid parameters: {exc}") from exc
    for key in ("model_", "background_"):
        if key in attrs:
            sub = attrs.pop(key)
            if not isinstance(sub, dict) or not {"params", "attrs"} <= set(sub):
                raise err(path, f"the metadata of {key} is malformed")
            sub_meta = {"params": sub["params"], "attrs": sub["attrs"]}
            setattr(det, key, GaussianModel._from_state(
                path, sub_meta, persistence.sub_state(key + ".", arrays)))  # fmt: skip
    if "gaussianizer_" in attrs:
        from ..gaussianize import Gaussianizer

        sub = attrs.pop("gaussianizer_")
        if not isinstance(sub, dict) or not {"params", "attrs"} <= set(sub):
            raise err(path, "the metadata of gaussianizer_ is malformed")
        det.gaussianizer_ = Gaussianizer._from_state(
            path, {"params": sub["params"], "attrs": sub["attrs"]},
            persistence.sub_state("gaussianizer_.", arrays),
        )  # fmt: skip
    if (det.gaussianize is None) == hasattr(det, "gaussianizer_"):
        raise err(path, "has a fitted Gaussianizer exactly when `gaussianize` is set must")
    if not hasattr(det, "model_"):
        raise err(path, "has no fitted Gaussian (model_)")
    if (det.method == "relative") != hasattr(det, "background_"):
        raise err(path, "has a background Gaussian exactly when method='relative' must")
    d = det.model_.n_features_in_
    means, classes = arrays.get("means_"), arrays.get("classes_")
    if means is None or classes is None or means.ndim != 2 or means.shape[1] != d \
            or means.shape[0] != classes.shape[0] or means.dtype != np.float64:
        raise err(path, "means_ and classes_ are missing or do not match the model's width")
    det.means_, det.classes_ = means, classes
    known = {*_SCALARS, "feature_names_in_"}
    unknown = sorted(set(attrs) - known)
    if unknown:
        raise err(path, f"has attributes {unknown} that MahalanobisOOD does not know")
    for key, value in attrs.items():
        setattr(det, key, value)
    if det.n_features_in_ != d:
        raise err(path, "n_features_in_ does not match the model's width")
    if "calibration_scores_" in arrays:
        cal = arrays["calibration_scores_"]
        if cal.ndim != 1 or cal.shape[0] != attrs.get("n_calibration_") \
                or not np.all(np.diff(cal) >= 0):
            raise err(path, "calibration_scores_ do not match n_calibration_ (or are unsorted)")
        det.calibration_scores_ = cal
        if calibration.conformal_threshold(cal, det.contamination) != det.offset_:
            raise err(path, "offset_ is not the conformal threshold of its calibration scores")
    if det.statistic == "typicality" and not (
        np.isfinite(attrs.get("typicality_scale_", np.nan))
        and attrs.get("typicality_scale_", 0) > 0
    ):
        raise err(path, "statistic='typicality' needs a positive typicality_scale_")
    if not isinstance(attrs.get("offset_"), (int, float)):
        raise err(path, "has no numeric offset_")
    if "feature_names_in_" in attrs:
        det.feature_names_in_ = np.asarray(attrs["feature_names_in_"], dtype=object)
    det._prepare_scoring()
    return det
