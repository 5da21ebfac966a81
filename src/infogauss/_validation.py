"""Input checks shared by the functional core and the estimators.

Errors name the argument and say what was expected and what came, e.g.
"`X` must be a 2-D array of shape (n_samples, n_features), got an array of shape (5,)".
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

FLOAT_DTYPES = (np.float64, np.float32)


class PrecisionWarning(UserWarning):
    """A result may not keep its documented accuracy (a large offset, an ill-conditioned
    covariance); the message names the remedy."""


def is_dask_collection(X: Any) -> bool:
    """A dask collection, recognised by its type's module without importing dask."""
    return type(X).__module__.split(".")[0] == "dask"


def is_plain_float_matrix(X: Any, estimator: Any) -> bool:
    """True for input that needs no conversion to score with a fitted ``estimator``: a plain
    (not subclassed) 2-D float32/float64 ndarray of its width, when it has no feature names."""
    return (
        type(X) is np.ndarray
        and X.ndim == 2
        and X.dtype in FLOAT_DTYPES
        and X.shape[1] == getattr(estimator, "n_features_in_", -1)
        and not hasattr(estimator, "feature_names_in_")
        and X.dtype.isnative
    )


def reject_device_tensor(X: Any, name: str = "X") -> None:
    """Refuse an accelerator tensor (torch/cupy/jax on a GPU) or a lazy dask array with a clear
    TypeError.

    numpy estimators never copy data off a device, nor compute a lazy (possibly larger than
    memory) array, behind the user's back.
    """
    if is_dask_collection(X):
        raise TypeError(
            f"`{name}` is a lazy {type(X).__module__}.{type(X).__name__}; infogauss's estimators "
            "do not load a dask array into memory behind your back: fit a GaussianModel on it "
            "exactly with `infogauss.distributed.fit_dask(model, X)` and score it lazily with "
            "`infogauss.distributed.score_samples(model, X)` (or `mahalanobis`, `pvalues`, "
            "`transform`), or pass `X.compute()` if it fits in memory"
        )
    if isinstance(X, (list, tuple)) and X and all(isinstance(r, (list, tuple, np.ndarray))
                                                  for r in X):  # fmt: skip
        lengths = [len(r) for r in X]
        if len(set(lengths)) > 1:
            bad = next(i for i, n in enumerate(lengths) if n != lengths[0])
            raise ValueError(
                f"`{name}` must be a rectangular 2-D array (n_samples, n_features), but its rows "
                f"have different lengths: row 0 has {lengths[0]} values, row {bad} has "
                f"{lengths[bad]}"
            )
    device = getattr(X, "device", None)
    if device is None or isinstance(X, np.ndarray):
        return
    kind = getattr(device, "type", None) or str(device)
    if str(kind).lower() not in ("cpu", "tfrt_cpu_0"):
        raise TypeError(
            f"`{name}` is a {type(X).__module__}.{type(X).__name__} on device {device!s}; "
            "infogauss's Gaussian estimators take CPU arrays: move it first "
            "(e.g. `x.detach().cpu().numpy()`; `infogauss.contrastive.embed` returns such arrays)"
        )
    dtype = getattr(X, "dtype", None)
    if type(X).__module__.split(".")[0] == "torch" and str(dtype) in _TORCH_NOT_NUMPY:
        raise TypeError(
            f"`{name}` is a torch tensor of dtype {dtype}, which numpy cannot hold: convert it "
            "first, e.g. `x.float().numpy()` (exact for bfloat16 and float16)"
        )


# torch dtypes without a numpy equivalent (np.asarray of such a tensor fails)
_TORCH_NOT_NUMPY = ("torch.bfloat16", "torch.float8_e4m3fn", "torch.float8_e5m2",
                    "torch.float8_e4m3fnuz", "torch.float8_e5m2fnuz")  # fmt: skip


def too_few_rows(name: str, n: int, minimum: int) -> ValueError:
    """The one wording of "too few samples" (keeps scikit-learn's "N sample(s)" phrase)."""
    return ValueError(
        f"`{name}` has {n} sample(s) (rows), but a minimum of {minimum} is required"
    )


def check_matrix_like(X: Any, name: str = "X", *, min_samples: int = 1) -> None:
    """Refuse input that cannot be a 2-D numeric matrix, with a message naming ``name``.

    Run by the estimators at their public boundary before scikit-learn's ``validate_data``
    (whose own messages name neither the argument nor the fix): device tensors, lazy dask
    arrays and ragged rows (:func:`reject_device_tensor`); ``None``, strings and dicts
    (TypeError); complex data (ValueError, "Complex data not supported"), strings and objects
    that are not numbers (TypeError); not 2-D, no columns, fewer than ``min_samples`` rows
    (ValueError). Sparse input is left to ``validate_data`` (its message names ``X`` and the
    fix). Numeric arrays and data frames are only inspected (dtype and shape); object arrays,
    non-numeric data-frame columns and plain lists are converted once to check them.
    """
    reject_device_tensor(X, name)
    if type(X).__module__.startswith("scipy.sparse"):
        return
    if X is None or isinstance(X, (str, bytes, dict)) or np.isscalar(X):
        raise TypeError(
            f"`{name}` must be a 2-D array of shape (n_samples, n_features), got "
            f"{type(X).__name__}" + (f" {X!r}" if isinstance(X, numbers.Number) else "")
        )
    frame_dtypes = getattr(X, "dtypes", None)
    if hasattr(frame_dtypes, "items") and getattr(X, "ndim", None) == 2:  # a data frame
        for column, dt in frame_dtypes.items():
            if getattr(dt, "kind", "O") not in "biuf":
                check_numbers(np.asarray(X[column]), f"{name}[{column!r}]")
        arr_dtype, shape = None, tuple(X.shape)
    elif hasattr(X, "dtype") and hasattr(X, "shape"):
        arr_dtype, shape = X.dtype, tuple(X.shape)
    else:
        try:
            arr = np.asarray(X)
        except (ValueError, TypeError):  # validate_data says what is wrong
            return
        arr_dtype, shape = arr.dtype, arr.shape
    if isinstance(arr_dtype, np.dtype):
        if arr_dtype.kind == "c":
            raise ValueError(
                f"`{name}` must be real-valued, got complex dtype {arr_dtype} (Complex data not "
                f"supported): pass {name}.real or np.abs({name})"
            )
        if arr_dtype.kind in "OUSVMm":
            check_numbers(X if isinstance(X, np.ndarray) else np.asarray(X), name)
    if len(shape) != 2:
        got = "a scalar" if not shape else f"an array of shape {shape}"
        raise ValueError(
            f"`{name}` must be a 2-D array of shape (n_samples, n_features), got {got}"
            + (
                ". Reshape your data: x.reshape(1, -1) for a single sample, x.reshape(-1, 1) "
                "for a single feature"
                if len(shape) == 1
                else ""
            )
        )
    if shape[1] == 0:
        raise ValueError(
            f"`{name}` has no features (columns): found 0 feature(s) (shape={shape}) while a "
            "minimum of 1 is required."
        )
    if shape[0] < min_samples:
        raise too_few_rows(name, shape[0], min_samples)


def check_numbers(arr: np.ndarray, name: str) -> None:
    """Refuse string, bytes, date and object arrays that do not convert to float."""
    if arr.dtype.kind in "biufc":
        return
    if arr.dtype.kind in "USVMm":
        raise TypeError(
            f"`{name}` must hold numbers (a numeric dtype), got dtype {arr.dtype}; encode or "
            "convert it first"
        )
    try:
        np.asarray(arr, dtype=np.float64)
    except TypeError as exc:  # e.g. a dict inside: "float() argument must be a string or a ..."
        raise TypeError(f"`{name}` must hold numbers, but an element is not one ({exc})") from None
    except ValueError as exc:  # e.g. a string inside: "could not convert string to float: 'a'"
        raise TypeError(f"`{name}` must hold numbers, but an element is not one ({exc})") from None


def check_float_array(
    X: Any,
    name: str = "X",
    *,
    ndim: int = 2,
    dtype: Any = None,
    min_rows: int = 1,
    n_features: int | None = None,
    finite: bool = True,
) -> np.ndarray:
    """Return ``X`` as a float32/float64 ndarray of the given ``ndim``.

    ``dtype=None`` keeps float32 and float64 and converts integers, booleans and other
    real types to float64. Complex, object and string data are refused. With
    ``finite=True`` NaN and infinity are refused too (checked block by block, so no
    array-sized temporary is made); callers that pass ``finite=False`` check their outputs.
    """
    reject_device_tensor(X, name)
    arr = np.asarray(X)
    if arr.dtype.kind == "c":
        raise TypeError(f"`{name}` must be real-valued, got complex dtype {arr.dtype}")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must hold numbers (a numeric dtype), got dtype {arr.dtype}")
    if arr.ndim != ndim:
        shape = "(n_samples, n_features)" if ndim == 2 else f"with {ndim} dimension(s)"
        raise ValueError(
            f"`{name}` must be a {ndim}-D array {shape}, got an array of shape {arr.shape}"
            + (
                " (reshape a single sample with x.reshape(1, -1))"
                if arr.ndim == 1 and ndim == 2
                else ""
            )
        )
    if dtype is None:
        target = arr.dtype if arr.dtype in FLOAT_DTYPES else np.float64
    else:
        target = np.dtype(dtype)
    arr = np.asarray(arr, dtype=target)
    if arr.shape[0] < min_rows:
        raise ValueError(
            f"`{name}` must have at least {min_rows} row(s) (samples), got {arr.shape[0]}"
        )
    if ndim == 2 and arr.shape[1] == 0:
        raise ValueError(f"`{name}` must have at least 1 feature (column), got 0")
    if n_features is not None and ndim == 2 and arr.shape[1] != n_features:
        raise ValueError(
            f"`{name}` has {arr.shape[1]} features, but the model is expecting {n_features}"
        )
    if finite and not all_finite(arr):
        raise ValueError(f"`{name}` contains NaN or infinity; remove or impute them first")
    return arr


def all_finite(arr: np.ndarray, block_rows: int = 65536) -> bool:
    """True when every value is finite (scans in row blocks to bound memory)."""
    if arr.dtype.kind in "biu":
        return True
    if arr.ndim < 2 or arr.shape[0] <= block_rows:
        return bool(np.isfinite(arr).all())
    return all(
        bool(np.isfinite(arr[i : i + block_rows]).all()) for i in range(0, arr.shape[0], block_rows)
    )


def nonfinite_error(name: str, row: int) -> ValueError:
    return ValueError(
        f"`{name}` contains NaN or infinity (first at row {row}), or values too large for the "
        "compute dtype; remove or impute them first"
    )


def check_probability(
    value: Any, name: str, *, open_left: bool = True, open_right: bool = True
) -> float:
    """Return ``value`` as a float inside (0, 1) (bounds open or closed as asked)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {type(value).__name__}")
    v = float(value)
    lo_ok = v > 0 if open_left else v >= 0
    hi_ok = v < 1 if open_right else v <= 1
    if not (lo_ok and hi_ok and np.isfinite(v)):
        lo = "(" if open_left else "["
        hi = ")" if open_right else "]"
        raise ValueError(f"`{name}` must lie in {lo}0, 1{hi}, got {value!r}")
    return v


def check_positive_int(
    value: Any, name: str, *, minimum: int = 1, allow_none: bool = False
) -> int | None:
    """Return ``value`` as an int >= ``minimum`` (or None when allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}")
    return int(value)


CALIBRATIONS = ("split", None)


def check_calibration_params(calibration: Any, size: Any) -> None:
    """``calibration`` in :data:`CALIBRATIONS`; ``calibration_size`` a float in (0, 1) or an
    int >= 1."""
    if calibration not in CALIBRATIONS:
        raise ValueError(f"`calibration` must be one of {CALIBRATIONS}, got {calibration!r}")
    if isinstance(size, bool) or not isinstance(size, numbers.Real):
        raise TypeError(f"`calibration_size` must be a float in (0, 1) or an int, got {size!r}")
    if isinstance(size, numbers.Integral):
        check_positive_int(size, "calibration_size")
    elif not 0.0 < float(size) < 1.0:
        raise ValueError(
            f"`calibration_size` must be a float in (0, 1) or an int >= 1, got {size!r}"
        )


_F = TypeVar("_F", bound=Callable[..., Any])


def atomic_fit(method: _F) -> _F:
    """Decorate ``fit``-like methods: when they raise, the estimator is left exactly as it was.

    The estimator's attributes are restored from a shallow snapshot, which is enough because
    fitting builds new arrays and sub-estimators instead of changing existing ones in place.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        saved = dict(self.__dict__)
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    return wrapper  # type: ignore[return-value]
