"""Logging and progress switches of the benchmarks (provenance is :mod:`infogauss._io`'s)."""

from __future__ import annotations

import logging
import sys

__all__ = ["setup_logging", "show_progress"]

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(name: str, *, library: bool = True) -> logging.Logger:
    """The logger ``benchmarks.<name>``; its INFO records (and the library's) are shown.

    Run as a module (no logging configured yet) this logs to stderr with timestamps, other
    libraries at WARNING. Run by ``infogauss bench`` (whose root logger shows warnings only
    unless ``-v``) the benchmark's own INFO records, and with ``library=True`` those of
    ``infogauss`` (e.g. one line per training epoch), still reach the root handlers: long work
    is never silent.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format=_LOG_FORMAT, stream=sys.stderr)
    for parent in ("benchmarks", "infogauss") if library else ("benchmarks",):
        lg = logging.getLogger(parent)
        if lg.getEffectiveLevel() > logging.INFO:
            lg.setLevel(logging.INFO)
    return logging.getLogger(f"benchmarks.{name}")


def show_progress(no_progress: bool = False) -> bool:
    """Whether to draw progress bars: not with ``--no-progress``, nor when stderr is no TTY."""
    isatty = getattr(sys.stderr, "isatty", None)
    return not no_progress and bool(isatty and isatty())
