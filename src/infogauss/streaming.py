r"""Out-of-core fitting and scoring on one machine (numpy only).

Embeddings that do not fit in RAM arrive either as an iterator of 2-D blocks or as a
``.npy`` file. This module reads such a file **block by block with explicit file reads**
(the ``.npy`` header is parsed with :mod:`numpy.lib.format`, then each block is read with
``readinto`` into a fresh buffer), so the process's resident memory stays at a few blocks
whatever the file size. ``np.load(path, mmap_mode="r")`` is deliberately *not* used: pages
of a memory map stay mapped into the process once touched and count in its RSS, so a single
pass over a 10 GB memmap shows up as a 10 GB resident set.

The maths is not here: statistics come from :func:`infogauss.gaussian.stats_from_chunks`
(exact Chan merge, so the streamed fit equals the in-memory fit up to float64 rounding) and
scores from the :class:`~infogauss.GaussianModel` methods.

Examples
--------
>>> import numpy as np, os, tempfile
>>> from infogauss.streaming import fit_npy, score_npy
>>> path = os.path.join(tempfile.mkdtemp(), "emb.npy")
>>> np.save(path, np.random.default_rng(0).normal(size=(1000, 4)).astype(np.float32))
>>> model = fit_npy(None, path, chunk_size=256)
>>> model.n_samples_seen_
1000
>>> score_npy(model, path, chunk_size=256).shape
(1000,)
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _io
from . import gaussian as core
from ._progress import progress as _progress
from ._validation import check_positive_int

__all__ = [
    "NpyHeader",
    "SCORE_KINDS",
    "read_npy_header",
    "read_npy_rows",
    "iter_npy_chunks",
    "stats_from_npy",
    "fit_chunks",
    "fit_npy",
    "score_npy",
]

SCORE_KINDS = ("logpdf", "mahalanobis", "pvalue")
_FLOAT_SIZES = (2, 4, 8)  # float16, float32, float64 (either byte order)


@dataclass(frozen=True)
class NpyHeader:
    """Layout of a 2-D ``.npy`` file of floats.

    Attributes
    ----------
    path : Path
    shape : tuple of int
        ``(n_rows, n_features)``.
    dtype : numpy.dtype
        Dtype as stored in the file (byte order included).
    offset : int
        Byte offset of the first value (the header size).
    """

    path: Path
    shape: tuple[int, int]
    dtype: np.dtype
    offset: int

    @property
    def n_rows(self) -> int:
        return self.shape[0]

    @property
    def n_features(self) -> int:
        return self.shape[1]

    @property
    def row_bytes(self) -> int:
        return self.shape[1] * self.dtype.itemsize


def read_npy_header(path: str | os.PathLike) -> NpyHeader:
    """Parse and check the header of a ``.npy`` file of embeddings (no data is read).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    NpyHeader

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a ``.npy`` file, is not 2-D, has no rows or columns, is stored in
        Fortran order (rows are not contiguous, so it cannot be read block by block), or is
        shorter than its header says (truncated).
    TypeError
        If the values are not floats (float16, float32 or float64).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no .npy file at {str(path)!r}")
    fmt = np.lib.format
    with open(path, "rb") as fh:
        try:
            version = fmt.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(fh, max_header_size=1 << 20)
            else:  # 2.0 and 3.0 share the layout; float headers are ASCII in both
                shape, fortran, dtype = fmt.read_array_header_2_0(fh, max_header_size=1 << 20)
        except ValueError as exc:
            raise ValueError(f"{str(path)!r} is not a valid .npy file: {exc}") from exc
        offset = fh.tell()
    if dtype.kind != "f" or dtype.itemsize not in _FLOAT_SIZES:
        raise TypeError(
            f"{str(path)!r} holds dtype {dtype}, but embeddings must be float32 or float64 "
            "(float16 is accepted too); convert the file, e.g. "
            "np.save(out, np.load(path).astype(np.float32))"
        )
    if len(shape) != 2:
        raise ValueError(
            f"{str(path)!r} holds an array of shape {shape}, but embeddings must be 2-D "
            "(n_samples, n_features)"
        )
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{str(path)!r} holds an empty array of shape {shape}")
    if fortran and shape[1] > 1 and shape[0] > 1:
        raise ValueError(
            f"{str(path)!r} is stored in Fortran (column-major) order, so its rows are not "
            "contiguous and cannot be streamed block by block; rewrite it in C order, e.g. "
            "np.save(out, np.ascontiguousarray(np.load(path)))"
        )
    header = NpyHeader(path=path, shape=(int(shape[0]), int(shape[1])), dtype=dtype, offset=offset)
    size = path.stat().st_size
    needed = offset + header.n_rows * header.row_bytes
    if size < needed:
        raise ValueError(
            f"{str(path)!r} is truncated: its header announces shape {shape} ({needed} bytes "
            f"with the header), but the file has {size} bytes"
        )
    return header


def _as_header(source: str | os.PathLike | NpyHeader) -> NpyHeader:
    return source if isinstance(source, NpyHeader) else read_npy_header(source)


def _read_rows(fh: Any, header: NpyHeader, start: int, stop: int) -> np.ndarray:
    """Rows ``[start, stop)`` read from the open file ``fh`` into a fresh native-order array."""
    out = np.empty((stop - start, header.n_features), dtype=header.dtype)
    view = memoryview(out.reshape(-1).view(np.uint8))
    fh.seek(header.offset + start * header.row_bytes)
    done = 0
    while done < view.nbytes:
        got = fh.readinto(view[done:])
        if not got:
            raise ValueError(
                f"{str(header.path)!r} ended early while reading rows {start}:{stop} "
                "(was it truncated while being read?)"
            )
        done += got
    if not out.dtype.isnative:
        out = out.astype(out.dtype.newbyteorder("="))
    return out


def _check_range(header: NpyHeader, start: int, stop: int | None) -> tuple[int, int]:
    n = header.n_rows
    stop = n if stop is None else stop
    if isinstance(start, bool) or isinstance(stop, bool):
        raise TypeError("`start` and `stop` must be integers")
    start, stop = int(start), int(stop)
    if not (0 <= start <= stop <= n):
        raise ValueError(f"row range must satisfy 0 <= start <= stop <= {n}, got {start}:{stop}")
    return start, stop


def read_npy_rows(
    source: str | os.PathLike | NpyHeader, start: int = 0, stop: int | None = None
) -> np.ndarray:
    """Read rows ``[start, stop)`` of a 2-D ``.npy`` file (only those bytes are read).

    Parameters
    ----------
    source : path or NpyHeader
    start, stop : int
        Row range; ``stop=None`` means the end of the file.

    Returns
    -------
    ndarray of shape (stop - start, n_features)
        A fresh C-contiguous array in native byte order and the file's float dtype.
    """
    header = _as_header(source)
    start, stop = _check_range(header, start, stop)
    with open(header.path, "rb", buffering=0) as fh:
        return _read_rows(fh, header, start, stop)


def iter_npy_chunks(
    source: str | os.PathLike | NpyHeader,
    chunk_size: int | None = None,
    *,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield consecutive row blocks of a 2-D ``.npy`` file, each a fresh in-memory array.

    Only one block is held by the iterator at a time, so memory is bounded by the block
    size (``chunk_size * n_features`` values) however large the file is.

    Parameters
    ----------
    source : path or NpyHeader
    chunk_size : int, optional
        Rows per block. Default: :func:`infogauss.gaussian.default_chunk_size` (blocks of
        about 32 MiB in float64).
    start, stop : int
        Row range to read (default: the whole file).

    Yields
    ------
    ndarray of shape (rows, n_features)
    """
    header = _as_header(source)
    chunk = check_positive_int(chunk_size, "chunk_size", allow_none=True)
    chunk = chunk or core.default_chunk_size(header.n_features)
    start, stop = _check_range(header, start, stop)
    with open(header.path, "rb", buffering=0) as fh:
        for sl in core.iter_chunks(stop - start, chunk):
            yield _read_rows(fh, header, start + sl.start, start + sl.stop)


def _counted(chunks: Iterable[Any], bar: Any) -> Iterator[Any]:
    for block in chunks:
        yield block
        bar.update(int(np.shape(block)[0]) if np.ndim(block) else 0)


def stats_from_npy(
    path: str | os.PathLike,
    *,
    chunk_size: int | None = None,
    progress: bool = False,
) -> core.GaussianStats:
    """Sufficient statistics of a 2-D ``.npy`` file, read block by block.

    Parameters
    ----------
    path : str or path-like
    chunk_size : int, optional
        Rows per block (see :func:`iter_npy_chunks`).
    progress : bool, default=False
        Show a progress bar (rows read).

    Returns
    -------
    GaussianStats
        Equal to ``stats_from_array(np.load(path))`` up to float64 rounding.
    """
    header = read_npy_header(path)
    chunk = check_positive_int(chunk_size, "chunk_size", allow_none=True)
    chunk = chunk or core.default_chunk_size(header.n_features)
    with _progress(total=header.n_rows, enabled=progress, unit="rows", unit_scale=True,
                   desc=f"fit {header.path.name}") as bar:
        try:
            return core.stats_from_chunks(
                _counted(iter_npy_chunks(header, chunk), bar), name=str(header.path)
            )
        except ValueError as exc:
            raise ValueError(f"{exc} (block [i] holds rows i*{chunk} to (i+1)*{chunk})") from exc


def _model_first(model: Any, source: Any, name: str, function: str) -> tuple[Any, Any]:
    """``(model, source)`` from the model-first call, or from the old source-first order.

    The old order (``fit_npy(path, model)``, ``fit_chunks(chunks, model)``) still works for now,
    with a DeprecationWarning; the two are told apart by which argument is an estimator.
    """
    if model is None or hasattr(model, "fit_stats"):
        if source is None:
            raise TypeError(f"{function}() needs `{name}`, got None")
        return model, source
    if source is None or hasattr(source, "fit_stats"):
        warnings.warn(
            f"{function}({name}, model) is deprecated: pass the model first, "
            f"{function}(model, {name}) (e.g. {function}(GaussianModel(), {name})), as "
            "everywhere in infogauss; the old order stops working in a future release",
            DeprecationWarning,
            stacklevel=3,
        )
        return source, model
    raise TypeError(
        f"`model` must be an estimator with a fit_stats method (e.g. GaussianModel) or None, "
        f"got {type(model).__name__}"
    )


def _default_model(model: Any) -> Any:
    if model is None:
        from .model import GaussianModel

        return GaussianModel()
    if not hasattr(model, "fit_stats"):
        raise TypeError(
            f"`model` must be an estimator with a fit_stats method (e.g. GaussianModel), "
            f"got {type(model).__name__}"
        )
    return model


def fit_chunks(
    model: Any = None,
    chunks: Iterable[Any] | None = None,
    *,
    progress: bool = False,
    total: int | None = None,
) -> Any:
    """Fit ``model`` (default: a new :class:`~infogauss.GaussianModel`) from an iterable
    of 2-D blocks, one block in memory at a time.

    Parameters
    ----------
    model : estimator with ``fit_stats``, or None
        None: a new :class:`~infogauss.GaussianModel`.
    chunks : iterable of array-like of shape (rows, n_features)
        All blocks must have the same number of columns and the same dtype; an
        inconsistent block raises an error naming its position.
    progress : bool, default=False
        Show a progress bar (rows seen).
    total : int, optional
        Total number of rows, for the progress bar.

    Returns
    -------
    model
        Fitted; equal to ``model.fit(np.concatenate(chunks))`` up to float64 rounding.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> fit_chunks(None, np.array_split(X, 4)).n_samples_seen_
    100
    """
    model, chunks = _model_first(model, chunks, "chunks", "fit_chunks")
    model = _default_model(model)
    with _progress(total=total, enabled=progress, unit="rows", unit_scale=True, desc="fit") as bar:
        stats = core.stats_from_chunks(_counted(chunks, bar))
    return model.fit_stats(stats)


def fit_npy(
    model: Any = None,
    path: str | os.PathLike | None = None,
    *,
    chunk_size: int | None = None,
    progress: bool = False,
) -> Any:
    """Fit ``model`` (default: a new :class:`~infogauss.GaussianModel`) to a ``.npy`` file
    larger than memory, reading it block by block.

    Parameters
    ----------
    model : estimator with ``fit_stats``, or None
        Its parameters (shrinkage, whitening, ...) are used; it is fitted in place. None: a
        new :class:`~infogauss.GaussianModel`.
    path : str or path-like
        2-D, C-order file of float16/32/64 embeddings.
    chunk_size : int, optional
        Rows per block read; peak extra memory is about ``4 * chunk_size * n_features``
        float64 values.
    progress : bool, default=False
        Show a progress bar.

    Returns
    -------
    model
        Fitted; equal to ``model.fit(np.load(path))`` up to float64 rounding.
    """
    model, path = _model_first(model, path, "path", "fit_npy")
    model = _default_model(model)
    return model.fit_stats(stats_from_npy(path, chunk_size=chunk_size, progress=progress))


def _score_block(model: Any, block: np.ndarray, kind: str, pvalue_method: str) -> np.ndarray:
    if kind == "logpdf":
        return model.score_samples(block)
    if kind == "mahalanobis":
        return model.mahalanobis(block)
    return model.pvalues(block, method=pvalue_method)


class _NpyWriter:
    """Writes a 1-D float64 ``.npy`` block by block into a temporary file, then renames it."""

    def __init__(self, path: Path, n: int) -> None:
        self.path = path
        self.n = n
        self.written = 0
        _io.check_output(path, name="out")
        directory = path.parent if str(path.parent) else Path(".")
        fd, self.tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        self.fh = os.fdopen(fd, "wb")
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f8")),
                  "fortran_order": False, "shape": (n,)}
        np.lib.format.write_array_header_1_0(self.fh, header)

    def write(self, values: np.ndarray) -> None:
        self.fh.write(np.ascontiguousarray(values, dtype="<f8").tobytes())
        self.written += values.shape[0]

    def commit(self) -> None:
        if self.written != self.n:  # pragma: no cover - guarded by construction
            raise RuntimeError(f"wrote {self.written} rows, expected {self.n}")
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        os.chmod(self.tmp, 0o666 & ~_io._umask())  # a plain file's mode, not mkstemp's 0600
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.fh.close()
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)


def score_npy(
    model: Any,
    path: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    kind: str = "logpdf",
    chunk_size: int | None = None,
    pvalue_method: str = "f",
    progress: bool = False,
) -> np.ndarray | Path:
    """Score every row of a ``.npy`` file with a fitted model, block by block.

    Parameters
    ----------
    model : fitted GaussianModel
    path : str or path-like
        2-D, C-order file of float embeddings with ``model.n_features_in_`` columns.
    out : str or path-like, optional
        Where to write the scores as a 1-D float64 ``.npy`` (written incrementally into a
        temporary file that is renamed at the end, so memory stays bounded and a failed run
        leaves no partial file). Without ``out`` the scores are returned in memory.
    kind : {"logpdf", "mahalanobis", "pvalue"}, default="logpdf"
        ``"logpdf"``: Gaussian log-density (higher = more normal); ``"mahalanobis"``:
        **squared** Mahalanobis distance (higher = more abnormal); ``"pvalue"``: upper-tail
        p-value of that distance (small = atypical), see :meth:`GaussianModel.pvalues`.
    chunk_size : int, optional
        Rows per block read.
    pvalue_method : {"f", "beta", "chi2"}, default="f"
        Law used when ``kind="pvalue"``.
    progress : bool, default=False
        Show a progress bar.

    Returns
    -------
    ndarray of shape (n_rows,) or Path
        The scores, or the path written when ``out`` is given. Equal to scoring
        ``np.load(path)`` in memory to :data:`infogauss.gaussian.BATCH_RTOL` of the compute
        dtype (BLAS rounds a row differently with the number of rows per call and the CPU
        kernel, so float32 results are not bit-identical across chunk sizes).
    """
    if kind not in SCORE_KINDS:
        raise ValueError(f"`kind` must be one of {SCORE_KINDS}, got {kind!r}")
    if kind == "pvalue" and pvalue_method not in core.PVALUE_METHODS:
        raise ValueError(
            f"`pvalue_method` must be one of {core.PVALUE_METHODS}, got {pvalue_method!r}"
        )
    n_features = getattr(model, "n_features_in_", None)
    if n_features is None:
        raise ValueError(f"`model` ({type(model).__name__}) is not fitted; fit it first")
    header = read_npy_header(path)
    if header.n_features != n_features:
        raise ValueError(
            f"{str(header.path)!r} has {header.n_features} features, but the model is "
            f"expecting {n_features}"
        )
    writer: _NpyWriter | None = None
    result: np.ndarray | None = None
    if out is None:
        result = np.empty(header.n_rows, dtype=np.float64)
    else:
        out = _io.check_output(out, name="out", inputs=[header.path])
        writer = _NpyWriter(out, header.n_rows)
    row = 0
    try:
        with _progress(total=header.n_rows, enabled=progress, unit="rows", unit_scale=True,
                       desc=f"score {header.path.name}") as bar:
            for block in iter_npy_chunks(header, chunk_size):
                try:
                    values = _score_block(model, block, kind, pvalue_method)
                except ValueError as exc:
                    stop = row + block.shape[0]
                    raise ValueError(f"{str(header.path)!r}, rows {row}:{stop}: {exc}") from exc
                if writer is not None:
                    writer.write(values)
                else:
                    result[row : row + values.shape[0]] = values
                row += values.shape[0]
                bar.update(values.shape[0])
        if writer is not None:
            writer.commit()
            return out
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return result
