"""Input conversion for retrieval: the one place arrays become the float32 rows faiss needs.

:func:`as_float32_rows` converts a free-standing array; the estimator converts through
:func:`refuse_ambiguous`, scikit-learn's ``validate_data`` (shape, dtype, sample and feature
counts, feature names) and :func:`to_float32` (finiteness in the input's precision, then
float32), so both paths raise the same errors. numpy and scikit-learn only (no faiss).
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.utils import check_array

from .._validation import all_finite, check_numbers, reject_device_tensor

__all__ = ["as_float32_rows"]

# Bytes of working memory for one block of similarities / gathered neighbour vectors.
BLOCK_BYTES = 1 << 26
FLOAT_DTYPES = [np.float32, np.float64]


def refuse_ambiguous(X: Any, name: str) -> Any:
    """Refuse input whose meaning would be a guess; return it as an ndarray (2-D or not).

    Device tensors, lazy dask arrays, sparse matrices and arrays, ``None``/strings/dicts,
    ragged sequences and string arrays raise a TypeError naming ``name`` (ragged lists of rows
    a ValueError naming the first short row, from :func:`~infogauss._validation.reject_device_tensor`);
    an array that is not 2-D a ValueError (reshape hint). Everything else is left to
    scikit-learn's ``check_array``.
    """
    reject_device_tensor(X, name)
    if sparse.issparse(X):  # before the dict test: dok_array is a dict
        raise TypeError(
            f"`{name}` is a sparse {type(X).__name__}; sparse input is not supported (faiss "
            "searches dense vectors): densify it with .toarray()"
        )
    if X is None or isinstance(X, (str, bytes, dict)):
        raise TypeError(f"`{name}` must be a 2-D array of numbers, got {type(X).__name__}")
    try:
        arr = np.asarray(X)
    except ValueError as exc:  # ragged nested sequences
        raise TypeError(
            f"`{name}` must be a 2-D array of numbers, got a ragged sequence (rows of different "
            f"lengths): {exc}"
        ) from exc
    if arr.dtype.kind in "USV":
        raise TypeError(f"`{name}` must hold numbers (a numeric dtype), got dtype {arr.dtype}")
    if arr.dtype.kind == "c":
        raise ValueError(
            f"`{name}` must be real-valued, got complex dtype {arr.dtype} (Complex data not "
            f"supported): pass {name}.real or np.abs({name})"
        )
    check_numbers(arr, name)  # an object array: every element must be a number
    if arr.ndim != 2:
        raise ValueError(
            f"`{name}` must be a 2-D array of shape (n_samples, n_features), got an array of "
            f"shape {arr.shape}" + (" (reshape one sample with x.reshape(1, -1))" if arr.ndim == 1 else "")
        )
    return arr


def check_float32_range(arr: np.ndarray, name: str) -> None:
    """Finite in the input's precision, and representable in float32 (no overflow to inf, no
    nonzero value underflowing to 0): faiss stores float32 vectors."""
    if not all_finite(arr):
        raise ValueError(f"`{name}` contains NaN or infinity; remove or impute them first")
    if arr.dtype == np.float32:
        return
    with np.errstate(over="ignore"):  # overflow to inf is reported just below
        out = arr.astype(np.float32)
    if not all_finite(out):
        raise ValueError(
            f"`{name}` has values too large for float32 (faiss works in float32); rescale it"
        )
    if np.count_nonzero(out) != np.count_nonzero(arr):
        raise ValueError(
            f"`{name}` has nonzero values too small for float32 (they underflow to 0; faiss "
            "works in float32); rescale it, e.g. X / np.abs(X).max()"
        )


def to_float32(arr: np.ndarray, name: str) -> np.ndarray:
    """:func:`check_float32_range`, then C-contiguous float32."""
    check_float32_range(arr, name)
    return np.ascontiguousarray(arr, dtype=np.float32)


def unit32(Z: np.ndarray, name: str) -> np.ndarray:
    """Unit rows (:func:`unit_rows`, in ``Z``'s precision, in place), then C-contiguous float32."""
    return np.ascontiguousarray(unit_rows(Z, name), dtype=np.float32)


def as_float32_rows(
    X: Any, name: str = "X", *, n_features: int | None = None, min_rows: int = 1
) -> np.ndarray:
    """Return ``X`` as the C-contiguous float32 ``(n, d)`` array faiss needs.

    Lists, object arrays of numbers and integer/boolean/float64 arrays are converted
    (unambiguous); sparse and string input is refused with a TypeError; ragged rows, wrong
    ndim, complex data, too few rows, a feature-count mismatch and NaN or infinity (also
    values that overflow float32) with a ValueError. The same checks as
    :meth:`CalibratedRetriever.fit` and :meth:`~CalibratedRetriever.search`.

    Examples
    --------
    >>> as_float32_rows([[1, 2], [3, 4]]).dtype
    dtype('float32')
    """
    arr = check_array(
        refuse_ambiguous(X, name),
        dtype=FLOAT_DTYPES,
        ensure_all_finite=False,
        ensure_min_samples=min_rows,
        input_name=name,
    )
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"`{name}` has {arr.shape[1]} features, but {n_features} are expected")
    return to_float32(arr, name)


def check_labels(labels: Any, n: int, name: str) -> np.ndarray | None:
    """One label per row (integers, strings or finite floats), or None."""
    if labels is None:
        return None
    reject_device_tensor(labels, name)
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(
            f"`{name}` must be a 1-D array with one label per row ({n}), got shape {arr.shape}"
        )
    if arr.dtype.kind == "c":
        raise TypeError(f"`{name}` must hold integer or string labels, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"`{name}` contains NaN or infinity")
    return arr


def check_k(k: Any, n_database: int) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"`k` must be an integer in [1, {n_database}], got {k!r}")
    if not (1 <= int(k) <= n_database):
        raise ValueError(f"`k` must be an integer in [1, n_database={n_database}], got {k!r}")
    return int(k)


def unit_rows(Z: np.ndarray, name: str) -> np.ndarray:
    """Divide each row by its L2 norm, in place (norms in float64, so no overflow)."""
    zero_rows = 0
    step = max(1, BLOCK_BYTES // (8 * max(Z.shape[1], 1)))
    for start in range(0, Z.shape[0], step):
        block = Z[start : start + step]
        norms = np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float64))
        zero = norms == 0
        zero_rows += int(zero.sum())
        norms[zero] = 1.0
        block /= norms[:, None].astype(Z.dtype)
    if zero_rows:
        warnings.warn(
            f"{zero_rows} row(s) of `{name}` have zero norm; their cosine similarity is set to "
            "0. Remove zero vectors (or use whitening) to get meaningful scores.",
            RuntimeWarning,
            stacklevel=4,
        )
    return Z


def gather_dot(Qu: np.ndarray, base: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``out[q, j] = Qu[q] . base[idx[q, j]]`` in blocks (NaN where ``idx < 0``)."""
    k = idx.shape[1]
    out = np.empty(idx.shape, dtype=np.float32)
    step = max(1, BLOCK_BYTES // (4 * k * max(Qu.shape[1], 1)))
    safe = np.maximum(idx, 0)
    for start in range(0, Qu.shape[0], step):
        sl = slice(start, start + step)
        out[sl] = np.einsum("bd,bkd->bk", Qu[sl], base[safe[sl]])
    out[idx < 0] = np.nan
    return out
