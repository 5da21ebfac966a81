"""Compatibility module: provenance and logging of the benchmarks, now in the package.

Provenance (:func:`environment`, :func:`git_state`, ...) is :mod:`infogauss._io`'s, logging
:mod:`infogauss.bench._env`'s. This file re-exports them for scripts that import ``_env``
from ``benchmarks/`` (``gpu_paper_run.py``), with the checkout's paths.
"""

from functools import partial
from pathlib import Path

from infogauss._io import (  # noqa: F401
    OUTPUT_PATHS,
    environment,
    git_state,
    machine,
    read_results,
    warn_if_dirty,
    write_results,
)
from infogauss._io import write_json as _write_json
from infogauss.bench._env import setup_logging, show_progress  # noqa: F401
from infogauss.bench._render import describe_commit  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

#: ``write_json(path, payload)``: atomic, creating the missing parent directories.
write_json = partial(_write_json, make_parents=True)
