"""A restricted unpickler for data pickles such as the CIFAR-10/100 python batches.

The full unpickler calls whatever a pickle names, so a crafted file runs code as it is read.
This one builds only what a data pickle holds: dicts, lists, tuples, str, bytes, int, float,
bool, None, and numpy arrays and scalars of booleans or numbers rebuilt from their raw bytes.

Three independent gates, each enough on its own to stop the classic ``os.system`` payload:

1. a scan of the opcode stream (:mod:`pickletools`) before anything is built: opcodes that
   import or instantiate without naming a global (``INST``, ``OBJ``, ``NEWOBJ``, ``EXT*``,
   persistent ids, out-of-band buffers) are refused, every ``GLOBAL`` is checked against the
   allow-list, and every length field must fit in the data (no allocation larger than the file);
2. ``find_class`` resolves only the globals in ``_ALLOWED``, and none of them to the real numpy
   or builtin object: each maps to a small local function that validates its arguments
   (numeric dtype, integer shape, raw bytes of exactly the right length) and returns an inert
   placeholder;
3. a walk over the result admits only the plain types above and turns the placeholders into
   fresh, writeable numpy arrays in native byte order.
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools
import re

import numpy as np

from ._common import UnsafeDataError

__all__ = ["restricted_loads"]

_REFUSED_OPCODES = frozenset({
    "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX",     # instantiate a class
    "EXT1", "EXT2", "EXT4",                   # globals through the copyreg extension registry
    "PERSID", "BINPERSID",                    # persistent ids
    "NEXT_BUFFER", "READONLY_BUFFER",         # out-of-band buffers
})
_MAX_DEPTH = 64
_MAX_NDIM = 32
_DTYPE_SPEC = re.compile(r"[biufc](1|2|4|8|16)")  # bool, ints, floats, complex; never "O", "V", "S"
_WHAT = ("only dicts, lists, tuples, str, bytes, numbers, None and numpy arrays of numbers "
         "are allowed")


def _refuse(msg: str) -> UnsafeDataError:
    return UnsafeDataError(f"{msg}; {_WHAT}")


def _text(x, what: str) -> str:
    """Python 2 pickles read with ``encoding="bytes"`` give bytes where Python 3 gives str."""
    if isinstance(x, bytes):
        x = x.decode("latin-1")
    if not isinstance(x, str):
        raise _refuse(f"{what} must be a string, got {type(x).__name__}")
    return x


def _shape(shape) -> tuple:
    if (not isinstance(shape, tuple) or len(shape) > _MAX_NDIM
            or not all(type(s) is int and s >= 0 for s in shape)):
        raise _refuse(f"an array shape must be a tuple of at most {_MAX_NDIM} non-negative ints, "
                      f"got {shape!r}"[:300])
    return shape


def _raw(raw, n_bytes: int) -> bytes:
    if isinstance(raw, str):  # numpy's own setstate accepts latin-1 text for Python 2 pickles
        raw = raw.encode("latin-1")
    if not isinstance(raw, (bytes, bytearray)):
        raise _refuse(f"array data must be raw bytes, got {type(raw).__name__}")
    if len(raw) != n_bytes:
        raise _refuse(f"array data holds {len(raw)} bytes where its shape and dtype need {n_bytes}")
    return raw


class _DType:
    """Placeholder for ``numpy.dtype(spec)``; ``__setstate__`` takes numpy's state tuple."""

    __slots__ = ("spec", "byteorder")

    def __init__(self, spec: str):
        self.spec, self.byteorder = spec, None

    def __setstate__(self, state):
        # numpy writes (3, byteorder, subarray, names, fields, elsize, alignment, flags)
        # and appends the metadata as a 9th item (version 4) only when there is some.
        if self.byteorder is not None:
            raise _refuse("a dtype was given its state twice")
        ok = (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)
              and state[2:5] == (None, None, None) and state[5:7] == (-1, -1)
              and type(state[7]) is int and (len(state) == 8 or state[8] is None))
        if not ok:
            raise _refuse(f"dtype state {state!r}"[:200] + " is not that of a plain numeric dtype")
        order = _text(state[1], "a dtype byte order")
        if order not in ("<", ">", "|", "="):
            raise _refuse(f"dtype byte order must be one of < > | =, got {order!r}")
        self.byteorder = order

    def resolve(self) -> np.dtype:
        dt = np.dtype(self.spec)
        return dt.newbyteorder(self.byteorder) if self.byteorder in ("<", ">") else dt


class _Array:
    """Placeholder for an ndarray; holds the finished array once its state has been given."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray | None = None):
        self.array = array

    def __setstate__(self, state):
        # numpy writes (version, shape, dtype, is_fortran, rawdata); very old pickles omit version
        if self.array is not None:
            raise _refuse("an array was given its state twice")
        if isinstance(state, tuple) and len(state) == 5 and state[0] == 1:
            state = state[1:]
        if not (isinstance(state, tuple) and len(state) == 4):
            raise _refuse("array state must be (shape, dtype, is_fortran, data)")
        shape, dtype, fortran, raw = state
        if type(fortran) not in (bool, int) or fortran not in (0, 1):
            raise _refuse(f"array is_fortran must be a bool, got {fortran!r}"[:200])
        self.array = _build(raw, dtype, shape, "F" if fortran else "C")


def _build(raw, dtype, shape, order: str) -> np.ndarray:
    if not isinstance(dtype, _DType):
        raise _refuse(f"an array's dtype must be a numpy dtype, got {type(dtype).__name__}")
    dt, shape = dtype.resolve(), _shape(shape)
    raw = _raw(raw, math.prod(shape) * dt.itemsize)
    # a fresh, writeable array in native byte order (what ndarray.__setstate__ gives on numpy 2)
    return np.frombuffer(raw, dtype=dt).reshape(shape, order=order).astype(dt.newbyteorder("="), order="K")


def _dtype(spec, align=False, copy=True) -> _DType:
    spec = _text(spec, "a dtype")
    if not _DTYPE_SPEC.fullmatch(spec) or type(align) not in (bool, int) or type(copy) not in (bool, int):
        raise _refuse(f"dtype {spec!r} is not a plain numeric dtype (object, string and structured "
                      "dtypes are refused)")
    try:
        np.dtype(spec)
    except TypeError as exc:
        raise _refuse(f"dtype {spec!r} is not a numpy dtype") from exc
    return _DType(spec)


_NDARRAY = object()  # stands for numpy.ndarray; not callable, not a type


def _reconstruct(cls, shape, typecode) -> _Array:
    if cls is not _NDARRAY or shape != (0,) or typecode not in (b"b", "b"):
        raise _refuse("numpy _reconstruct may only make a plain ndarray")
    return _Array()


def _frombuffer(buf, dtype, shape, order) -> _Array:  # protocol 5, in-band buffer
    if order not in ("C", "F"):
        raise _refuse(f"array order must be 'C' or 'F', got {order!r}"[:200])
    return _Array(_build(buf, dtype, shape, order))


def _scalar(dtype, raw) -> _Array:
    if not isinstance(dtype, _DType):
        raise _refuse("a numpy scalar needs a numeric dtype")
    dt = dtype.resolve()
    return _Array(np.frombuffer(_raw(raw, dt.itemsize), dtype=dt).astype(dt.newbyteorder("="))[0])


def _encode(text, encoding="utf-8") -> bytes:  # how protocols 0-2 write bytes from Python 3
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _refuse("_codecs.encode may only turn text into bytes as latin-1")
    return text.encode("latin-1")


def _bytes(*args) -> bytes:  # how protocols 0-2 write b"" from Python 3
    if args:
        raise _refuse("bytes() may only make empty bytes")
    return b""


_ALLOWED = {
    ("numpy", "dtype"): _dtype,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,   # numpy 1.x
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # numpy 2.x
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): _encode,
    ("builtins", "bytes"): _bytes,
    ("__builtin__", "bytes"): _bytes,
}


def _global(module: str, name: str):
    try:
        return _ALLOWED[(module, name)]
    except (KeyError, TypeError):
        raise _refuse(f"global {module}.{name} is not allowed in a data pickle") from None


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        return _global(module, name)


_PLAIN = (str, bytes, int, float, bool, type(None))


def _finish(obj, depth: int, seen: dict, active: set):
    if isinstance(obj, _PLAIN):
        return obj
    key = id(obj)
    if key in seen:
        return seen[key]
    if key in active or depth > _MAX_DEPTH:
        raise _refuse(f"containers nested deeper than {_MAX_DEPTH} levels or holding themselves")
    if isinstance(obj, _Array):
        if obj.array is None:
            raise _refuse("an array was never given its data")
        out = obj.array
    elif type(obj) in (list, tuple, dict):
        active.add(key)
        if type(obj) is dict:
            out = {}
            for k, v in obj.items():
                if not isinstance(k, (str, bytes, int)):
                    raise _refuse(f"dict keys must be str, bytes or int, got {type(k).__name__}")
                out[k] = _finish(v, depth + 1, seen, active)
        else:
            out = type(obj)(_finish(v, depth + 1, seen, active) for v in obj)
        active.discard(key)
    else:
        raise _refuse(f"a {type(obj).__name__} is not part of a data pickle")
    seen[key] = out
    return out


def _scan(data: bytes) -> None:
    for op, arg, pos in pickletools.genops(data):
        if op.name in _REFUSED_OPCODES:
            raise _refuse(f"pickle opcode {op.name} (at byte {pos}) is not allowed in a data pickle")
        if op.name == "GLOBAL":
            module, _, name = arg.partition(" ")
            _global(module, name)


def restricted_loads(data: bytes, where: str):
    """Unpickle ``data`` admitting only plain containers, numbers, text and numeric arrays.

    Strings written by Python 2 come back as bytes (``encoding="bytes"``, as the CIFAR pickles
    need).

    Raises
    ------
    UnsafeDataError
        Naming ``where`` and the refused global, opcode or type; nothing was called.
    ValueError
        When ``data`` is not a complete pickle.
    """
    try:
        _scan(data)
        obj = _Unpickler(io.BytesIO(data), encoding="bytes").load()
        return _finish(obj, 0, {}, set())
    except UnsafeDataError as exc:
        raise UnsafeDataError(f"{where}: refused to unpickle: {exc}. Nothing in it was run") from None
    except Exception as exc:  # noqa: BLE001 - truncated or malformed streams raise many types
        raise ValueError(f"{where}: not a valid pickle: {type(exc).__name__}: {exc}") from exc
