"""File writing for the whole package: atomic, never over an input, with ordinary permissions.

Every file infogauss writes (model files, scores, reports, JSON, embeddings, checkpoints) goes
through :func:`atomic_write`: the bytes go to a temporary file in the destination's directory,
are flushed to disk and renamed over the destination in one step, so a reader sees the old file
or the new one, never half of one, and a failed write leaves nothing behind. The file gets the
mode a plain ``open(path, "w")`` would give (``0o666`` less the process umask, i.e. ``0644``
under the usual umask ``022``), not the ``0600`` of :func:`tempfile.mkstemp`.

Commands pass the files they read as ``inputs``; a destination that is one of them (the same
path, or another name of the same file) is refused before anything is written.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "atomic_write",
    "write_bytes",
    "write_text",
    "write_json",
    "save_npy",
    "check_output",
    "same_file",
    "json_default",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name the same existing file (links and relative paths too)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def check_output(
    path: str | os.PathLike,
    *,
    name: str = "out",
    inputs: Iterable[str | os.PathLike | None] = (),
    directory_ok: bool = False,
    make_parents: bool = False,
) -> Path:
    """Check that ``path`` can be written without destroying anything; return it as a Path.

    Raises
    ------
    ValueError
        If ``path`` is one of ``inputs`` (it would overwrite what the command reads), or is an
        existing directory (unless ``directory_ok``).
    FileNotFoundError
        If the directory that should hold ``path`` does not exist (named by the user's path)
        and ``make_parents`` is false; with ``make_parents`` it is created.
    """
    path = Path(path)
    for src in inputs:
        if src is not None and Path(src).exists() and same_file(path, src):
            raise ValueError(
                f"`{name}` must not be an input file: {str(path)!r} is also read by this "
                "command and would be overwritten; choose another output path"
            )
    if path.is_dir() and not directory_ok:
        raise ValueError(f"`{name}` must be a file path, got the directory {str(path)!r}")
    parent = path.parent if str(path.parent) else Path(".")
    if make_parents and not parent.exists():
        parent.mkdir(parents=True, exist_ok=True)
    if parent.exists() and not parent.is_dir():
        raise NotADirectoryError(
            f"`{name}`: {str(parent)!r}, which should hold {str(path)!r}, is a file, not a "
            "directory"
        )
    if not parent.is_dir():
        raise FileNotFoundError(
            f"`{name}`: the directory {str(parent)!r} of {str(path)!r} does not exist; "
            "create it first"
        )
    return path


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[IO[bytes]], Any],
    *,
    name: str = "out",
    inputs: Iterable[str | os.PathLike | None] = (),
) -> Path:
    """Write a file atomically: ``write(fh)`` fills a temporary file that replaces ``path``.

    Parameters
    ----------
    path : str or path-like
        Destination. Its directory must exist.
    write : callable
        Called with a binary file object open for writing.
    name : str
        How the destination is named in error messages (the argument or flag).
    inputs : iterable of path-like
        Files the caller reads; ``path`` may not be one of them.

    Returns
    -------
    Path
        ``path``.
    """
    path = check_output(path, name=name, inputs=inputs)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_bytes(path: str | os.PathLike, data: bytes, **kwargs: Any) -> Path:
    """:func:`atomic_write` of ``data``."""
    return atomic_write(path, lambda fh: fh.write(data), **kwargs)


def write_text(path: str | os.PathLike, text: str, **kwargs: Any) -> Path:
    """:func:`atomic_write` of ``text`` encoded as UTF-8."""
    return write_bytes(path, text.encode("utf-8"), **kwargs)


def json_default(o: Any) -> Any:
    """JSON encoding of numpy scalars and arrays and of paths (for ``json.dumps(default=)``)."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path: str | os.PathLike, obj: Any, **kwargs: Any) -> Path:
    """:func:`atomic_write` of ``obj`` as indented JSON with a final newline."""
    return write_text(path, json.dumps(obj, indent=2, default=json_default) + "\n", **kwargs)


def save_npy(path: str | os.PathLike, arr: np.ndarray, **kwargs: Any) -> Path:
    """:func:`atomic_write` of ``arr`` as a ``.npy`` file (never pickled)."""
    return atomic_write(path, lambda fh: np.save(fh, arr, allow_pickle=False), **kwargs)
