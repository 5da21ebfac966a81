"""Model files of :class:`~infogauss.Gaussianizer` (format: :mod:`infogauss.persistence`).

``state`` returns ``(params, attrs, arrays)`` so that another estimator can nest a
Gaussianizer in its own file (with :func:`infogauss.persistence.prefixed`); ``from_state``
rebuilds one and checks that its arrays are ones ``fit`` could have produced.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import persistence
from . import _power as pw

_STREAM_KEYS = ("max_abs", "raw_mean", "raw_m2", "mean", "m2")
# the per-column transforms each method may choose (besides "identity" for dead columns)
_LABELS = {
    "auto": {"box-cox", "yeo-johnson"},
    "yeo-johnson": {"yeo-johnson"},
    "box-cox": {"box-cox"},
    "power": {"power"},
    "quantile": {"quantile"},
    "rbig": {"rbig"},
}
_ORTHO_TOL = 1e-10
_ATTRS = {"n_features_in_", "n_samples_seen_", "feature_names_in_", "n_quantile_samples_",
          "stream_n"}  # fmt: skip


def state(g: Any) -> tuple[dict, dict, dict]:
    params = g.get_params()
    if not isinstance(params["random_state"], (int, type(None))):
        params["random_state"] = None  # a RandomState instance is not data; it seeded the fit
    attrs: dict[str, Any] = {
        "n_features_in_": int(g.n_features_in_),
        "n_samples_seen_": int(g.n_samples_seen_),
        "feature_names_in_": [str(f) for f in getattr(g, "feature_names_in_", [])] or None,
    }
    arrays = {
        "transforms_": g.transforms_,
        "dead_features_": g.dead_features_,
        "mean_": g.mean_,
        "scale_": g.scale_,
    }
    if hasattr(g, "lambdas_"):
        arrays.update(lambdas_=g.lambdas_, prescale_=g.prescale_, zero_values_=g.zero_values_)
    if hasattr(g, "quantiles_"):
        arrays.update(quantiles_=g.quantiles_, tails_=g.tails_)
        attrs["n_quantile_samples_"] = int(g.n_quantile_samples_)
    if hasattr(g, "rotations_"):
        arrays["rotations_"] = g.rotations_
    if hasattr(g, "_stream"):
        attrs["stream_n"] = int(g._stream["n"])
        arrays.update({f"stream_{k}": g._stream[k] for k in _STREAM_KEYS})
    return params, attrs, arrays


def _expected_arrays(method: str, d: int, n_live: int, params: dict) -> dict[str, tuple]:
    """Array name -> (shape or None for "3-D, checked below", dtype kind)."""
    out: dict[str, tuple] = {
        "transforms_": ((d,), "U"), "dead_features_": ((d,), "b"),
        "mean_": ((d,), "f"), "scale_": ((d,), "f"),
    }  # fmt: skip
    if method in ("auto", "yeo-johnson", "box-cox", "power"):
        out.update(lambdas_=((d,), "f"), prescale_=((d,), "f"), zero_values_=((d,), "f"))
    else:
        rounds = params["n_iterations"] if method == "rbig" else 1
        out.update(quantiles_=((rounds, None, n_live), "f"), tails_=((rounds, 2, n_live), "f"))
        if method == "rbig":
            out["rotations_"] = ((rounds, n_live, n_live), "f")
    if method == "power":
        out.update({f"stream_{k}": ((d,), "f") for k in _STREAM_KEYS})
    return out


def from_state(cls: type, path: Any, meta: dict, arrays: dict) -> Any:
    err = persistence.ModelFileError
    params = persistence.check_params(path, cls, dict(meta["params"]))
    attrs = dict(meta["attrs"])
    try:
        g = cls(**params)
        g._validate_params_()
    except (TypeError, ValueError) as exc:
        raise err(path, f"has invalid parameters: {exc}") from exc
    unknown = sorted(set(attrs) - _ATTRS)
    if unknown:
        raise err(path, f"has attributes {unknown} that Gaussianizer does not know")
    d, n = attrs.get("n_features_in_"), attrs.get("n_samples_seen_")
    for name, value in (("n_features_in_", d), ("n_samples_seen_", n)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise err(path, f"has an invalid {name} {value!r}")
    dead = arrays.get("dead_features_")
    if dead is None or dead.shape != (d,) or dead.dtype != np.bool_:
        raise err(path, f"dead_features_ is missing or is not a boolean array of shape ({d},)")
    n_live = int((~dead).sum())
    expected = _expected_arrays(g.method, d, n_live, params)
    unknown, missing = sorted(set(arrays) - set(expected)), sorted(set(expected) - set(arrays))
    if unknown or missing:
        raise err(path, f"has arrays {unknown} it should not and lacks {missing} (method "
                  f"{g.method!r})")  # fmt: skip
    for key, (shape, kind) in expected.items():
        a = arrays[key]
        ok_shape = a.ndim == len(shape) and all(s is None or s == t for s, t in zip(shape, a.shape))
        ok_kind = a.dtype.kind == kind and (kind != "f" or a.dtype == np.float64)
        if not (ok_shape and ok_kind):
            raise err(path, f"array {key} has shape {a.shape} and dtype {a.dtype}, expected "
                      f"{shape} of kind {kind!r}")  # fmt: skip
        nan_ok = key in ("lambdas_", "zero_values_")
        if kind == "f" and not np.all(np.isfinite(a[~np.isnan(a)] if nan_ok else a)):
            raise err(path, f"array {key} holds non-finite values")
    _check_columns(path, g, arrays, dead)
    _check_maps(path, g, params, attrs, arrays)
    for key in expected:
        if not key.startswith("stream_"):
            setattr(g, key, arrays[key])
    if g.method == "power":
        if attrs.get("stream_n") != n:
            raise err(path, "its streaming count does not match n_samples_seen_")
        if np.any(arrays["stream_m2"] < 0) or np.any(arrays["stream_raw_m2"] < 0):
            raise err(path, "its streaming sums of squares are negative")
        g._stream = {"n": n, **{k: arrays[f"stream_{k}"] for k in _STREAM_KEYS}}
    if "quantiles_" in expected:
        g.n_quantile_samples_ = int(attrs["n_quantile_samples_"])
    g.n_features_in_, g.n_samples_seen_ = d, n
    g._n_features_out = d
    if attrs.get("feature_names_in_"):
        names = attrs["feature_names_in_"]
        if not isinstance(names, list) or len(names) != d:
            raise err(path, "feature_names_in_ does not match n_features_in_")
        g.feature_names_in_ = np.asarray(names, dtype=object)
    return g


def _check_columns(path: Any, g: Any, arrays: dict, dead: np.ndarray) -> None:
    err = persistence.ModelFileError
    labels = arrays["transforms_"]
    allowed = _LABELS[g.method]
    if not (np.all(labels[dead] == "identity") and all(str(t) in allowed for t in labels[~dead])):
        raise err(path, f"transforms_ {sorted(set(labels.tolist()))} do not fit method "
                  f"{g.method!r} and dead_features_")  # fmt: skip
    mean, scale = arrays["mean_"], arrays["scale_"]
    if np.any(scale <= 0) or np.any(mean[dead] != 0) or np.any(scale[dead] != 1):
        raise err(path, "mean_ / scale_ are not a valid standardisation")
    if not g.standardize and (np.any(mean != 0) or np.any(scale != 1)):
        raise err(path, "has a standardisation although standardize=False")
    if "lambdas_" not in arrays:
        return
    lam, pre = arrays["lambdas_"], arrays["prescale_"]
    if not (np.all(np.isnan(lam[dead])) and np.all(np.isfinite(lam[~dead]))):
        raise err(path, "lambdas_ must be NaN exactly on the dead columns")
    if np.any(np.abs(lam[~dead]) > pw.LAMBDA_MAX) or np.any(pre <= 0):
        raise err(path, f"lambdas_ outside [-{pw.LAMBDA_MAX}, {pw.LAMBDA_MAX}] or a prescale_ <= 0")
    if g.method == "power" and np.any(lam[~dead] != float(g.power)):
        raise err(path, "lambdas_ differ from the fixed power")
    if g.method == "auto" and np.any(lam[labels == "box-cox"] < pw.LAMBDA_MIN_ZERO):
        raise err(path, f"an 'auto' Box–Cox column has λ < {pw.LAMBDA_MIN_ZERO}")
    if np.any(pre[labels != "yeo-johnson"] != 1) or (g.method != "auto" and np.any(pre != 1)):
        raise err(path, "prescale_ is not 1 where it must be")
    zeros, bc = arrays["zero_values_"], labels == "box-cox"
    has_zero = bc & (np.nan_to_num(lam, nan=-1.0) > 0)
    if not (np.all(np.isnan(zeros[~has_zero])) and np.all(np.isfinite(zeros[has_zero]))):
        raise err(path, "zero_values_ must be finite exactly on the Box–Cox columns with λ > 0")
    if np.any(zeros[has_zero] > -1.0 / lam[has_zero]):
        raise err(path, "a zero_values_ entry lies above its column's censoring point -1/λ")


def _check_maps(path: Any, g: Any, params: dict, attrs: dict, arrays: dict) -> None:
    err = persistence.ModelFileError
    if "quantiles_" not in arrays:
        return
    m = attrs.get("n_quantile_samples_")
    if not isinstance(m, int) or isinstance(m, bool) or m < 2:
        raise err(path, f"has an invalid n_quantile_samples_ {m!r}")
    q = arrays["quantiles_"]
    if q.shape[1] != max(2, min(int(params["n_quantiles"]), m)):
        raise err(path, f"quantiles_ has {q.shape[1]} quantiles; n_quantiles and "
                  f"n_quantile_samples_ say {max(2, min(int(params['n_quantiles']), m))}")  # fmt: skip
    if np.any(np.diff(q, axis=1) < 0):
        raise err(path, "quantiles_ are not non-decreasing")
    if np.any(arrays["tails_"] <= 0):
        raise err(path, "tails_ must be positive slopes")
    if "rotations_" in arrays:
        R = arrays["rotations_"]
        eye = np.eye(R.shape[1])
        if R.shape[1] and max(np.abs(r.T @ r - eye).max() for r in R) > _ORTHO_TOL:
            raise err(path, "rotations_ are not orthogonal")
