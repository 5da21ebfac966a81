"""What every command shares: the parser, the common flags, the stdout convention, reading inputs.

The dialect (house rule 18): outputs go to ``--out``; stdout carries a human summary, or with
``--json`` exactly one JSON object (``{"command": ..., "outputs": {...}, ...}``, strict JSON:
non-finite floats become ``null``); ``--no-progress`` hides progress bars; ``-v`` logs at INFO
and shows tracebacks. Errors are raised, never printed: :func:`infogauss.cli.main` turns them
into one line and an exit status. Every output path is checked with
:func:`infogauss._io.check_output` against the command's inputs before any work.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (exit 2), like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def add_common_flags(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """``-v``, ``--json`` and ``--no-progress``: accepted before or after any (sub-)command.

    On sub-command parsers the defaults are SUPPRESSed, so a flag given at one level is not
    reset by another; the top-level parser holds the defaults (``None`` = not given, so a TOML
    value can still decide ``no_progress`` for ``train``).
    """
    default = None if top else argparse.SUPPRESS
    parser.add_argument("-v", "--verbose", action="store_true",
                        default=False if top else argparse.SUPPRESS,
                        help="log at INFO level (and show tracebacks of errors)")
    parser.add_argument("--json", action="store_true", default=default,
                        help="print one JSON object on stdout instead of the human summary")
    parser.add_argument("--no-progress", dest="no_progress", action="store_true", default=default,
                        help="hide progress bars and step lines (stderr)")


def progress_on(args: argparse.Namespace) -> bool:
    return not getattr(args, "no_progress", None)


# ------------------------------------------------------------------ argument types
def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value!r}")
    return number


def non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value!r}")
    return number


def fraction(low: float, high: float, *, closed_high: bool = False):
    """An argparse type for a float in ``(low, high)`` (or ``(low, high]``)."""
    bracket = "]" if closed_high else ")"

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        ok = low < number < high or (closed_high and number == high)
        if not ok:
            raise argparse.ArgumentTypeError(
                f"must be a number in ({low:g}, {high:g}{bracket}, got {value!r}"
            )
        return number

    return parse


# ------------------------------------------------------------------ errors that name the argument
def named(name: str, exc: Exception) -> Exception:
    """``exc`` with its message prefixed by the argument it concerns (same builtin type)."""
    message = f"`{name}`: {exc}"
    cls = type(exc)
    if cls in (ValueError, TypeError, FileNotFoundError, PermissionError, IsADirectoryError):
        return cls(message)
    return ValueError(message) if isinstance(exc, ValueError) else TypeError(message)


@contextmanager
def as_arguments(**names: str) -> Iterator[None]:
    """Errors of the library calls inside name the command's arguments, not the library's.

    ``as_arguments(X="EMBEDDINGS", y="--labels")``: a ValueError or TypeError whose message
    names `` `X` `` (the library's argument) is raised again naming `` `EMBEDDINGS` `` (the
    argument the user typed); other errors pass unchanged.
    """
    try:
        yield
    except (ValueError, TypeError) as exc:
        message = str(exc)
        for lib, cli in names.items():
            message = message.replace(f"`{lib}`", f"`{cli}`").replace(f"`{lib}[", f"`{cli}[")
        if message == str(exc):
            raise
        cls = type(exc) if type(exc) in (ValueError, TypeError) else (
            ValueError if isinstance(exc, ValueError) else TypeError)
        raise cls(message) from exc


# ------------------------------------------------------------------ inputs
def embeddings_header(path: str | os.PathLike, name: str):
    """Check a 2-D float ``.npy`` file (header only) and return its :class:`NpyHeader`."""
    from ..streaming import read_npy_header

    if not Path(path).is_file():
        raise FileNotFoundError(f"`{name}`: no .npy file at {str(path)!r}")
    try:
        return read_npy_header(path)
    except (ValueError, TypeError) as exc:
        raise named(name, exc) from None


def read_embeddings(path: str | os.PathLike, name: str) -> np.ndarray:
    """A 2-D float ``.npy`` file, memory-mapped (rows are read when used)."""
    header = embeddings_header(path, name)
    return np.load(header.path, mmap_mode="r", allow_pickle=False)


def read_labels(path: str | os.PathLike, name: str, n_rows: int, rows_of: str) -> np.ndarray:
    """A 1-D ``.npy`` of ``n_rows`` labels (ints or strings; never unpickled)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"`{name}`: no .npy file at {str(p)!r}")
    try:
        y = np.load(p, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"`{name}` must be a .npy file of labels, got {str(p)!r}: {exc}") from None
    if y.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-D array of labels, got shape {y.shape}")
    if y.shape[0] != n_rows:
        raise ValueError(
            f"`{name}` must have one label per row of {rows_of} ({n_rows}), got {y.shape[0]}"
        )
    if y.dtype.kind not in "iuU":
        raise TypeError(f"`{name}` must hold integer or string labels, got dtype {y.dtype}")
    return y


def estimator_file(path: str | os.PathLike, name: str) -> Path:
    """Check that a model file exists (the loader then checks its contents)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"`{name}`: no model file at {str(p)!r}")
    return p


def load_estimator(cls: type, path: str | os.PathLike, name: str) -> Any:
    """``cls.load(path)`` after checking the file exists; a class without ``load`` is a failure."""
    p = estimator_file(path, name)
    if not hasattr(cls, "load"):
        raise RuntimeError(f"{cls.__name__}.load is not available in this infogauss version")
    try:
        return cls.load(p)
    except (ValueError, TypeError) as exc:  # a corrupt file, or one of another kind
        raise named(name, exc) from exc


def save_estimator(estimator: Any, path: Path) -> Path:
    if not hasattr(type(estimator), "save"):
        raise RuntimeError(
            f"{type(estimator).__name__}.save is not available in this infogauss version"
        )
    return Path(estimator.save(path) or path)


def check_out(path: str | os.PathLike, inputs: Iterable[Any], name: str = "--out") -> Path:
    """``--out`` may not be an input; its missing parent directories are created."""
    from .. import _io

    return _io.check_output(path, name=name, inputs=list(inputs), make_parents=True)


# ------------------------------------------------------------------ stdout
def _strict(obj: Any) -> Any:
    from .. import _io

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    if isinstance(obj, (np.generic, np.ndarray, Path)):
        return _strict(_io.json_default(obj))
    return obj


def emit(args: argparse.Namespace, payload: dict, text: str) -> None:
    """Print ``text`` (human) or, with ``--json``, ``payload`` as one strict JSON object."""
    if getattr(args, "json", None):
        body = {"command": args._command, **payload}
        sys.stdout.write(json.dumps(_strict(body), allow_nan=False, default=str) + "\n")
    else:
        sys.stdout.write(text.rstrip("\n") + "\n")
    sys.stdout.flush()
