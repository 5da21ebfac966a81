"""Shared plumbing of the benchmark scripts: provenance (versions, git commit and whether the
tree was dirty, machine, BLAS threads), logging to stderr, progress switches and JSON output.

Provenance schema, written by :func:`environment` into every results file as ``"environment"``::

    {"timestamp_utc": ..., "git": {"sha": ..., "dirty": ..., "modified": [...],
     "modified_outputs": [...]}, "versions": {...}, "machine": {...}}

``dirty`` is true when a tracked file other than a committed benchmark output differs from the
commit ``sha`` (staged or not; untracked files do not count); ``modified`` lists those files.
Committed outputs (``OUTPUT_PATHS``: results files, checkpoint configs and logs, the generated
BENCHMARKS.md) cannot change what a benchmark computes, so they are listed apart in
``modified_outputs`` and leave ``dirty`` false. :func:`provenance` reads this schema and the
older ones found in committed results files.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: Tracked paths (relative to the repository root) that benchmarks and make_report write.
OUTPUT_PATHS = ("benchmarks/results/", "benchmarks/checkpoints/", "BENCHMARKS.md")

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_log = logging.getLogger("benchmarks")

_DISTRIBUTIONS = {
    "infogauss": ("infogauss",), "numpy": ("numpy",), "scipy": ("scipy",),
    "sklearn": ("scikit-learn",), "torch": ("torch",),
    "faiss": ("faiss-cpu", "faiss-gpu", "faiss"), "pyod": ("pyod",), "dask": ("dask",),
    "matplotlib": ("matplotlib",),
}  # fmt: skip


# ----------------------------------------------------------------------------- logging
def setup_logging(name: str, *, library: bool = True) -> logging.Logger:
    """The logger ``benchmarks.<name>``; its INFO records (and the library's) are shown.

    Run as a script (no logging configured yet) this logs to stderr with timestamps, other
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


# ----------------------------------------------------------------------------- provenance
def _version(name: str) -> str | None:
    """Installed version from package metadata (importing torch or faiss just to ask is slow)."""
    for dist in _DISTRIBUTIONS.get(name, (name,)):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _is_output(path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in OUTPUT_PATHS)


def git_state() -> dict[str, Any]:
    """The commit checked out and the tracked files that differ from it.

    Returns
    -------
    dict
        ``sha`` (full SHA-1, or None outside a git checkout), ``dirty`` (bool, None outside a
        checkout), ``modified`` (tracked files changed, staged or not, outside
        ``OUTPUT_PATHS``) and ``modified_outputs`` (changed files under ``OUTPUT_PATHS``).
    """
    head = _git("rev-parse", "--verify", "HEAD")
    changed = _git("diff", "--name-only", "--no-renames", "HEAD", "--") if head else None
    if head is None or changed is None:
        return {"sha": None, "dirty": None, "modified": [], "modified_outputs": []}
    files = sorted(set(changed.splitlines()) - {""})
    modified = [f for f in files if not _is_output(f)]
    return {
        "sha": head.strip(),
        "dirty": bool(modified),
        "modified": modified,
        "modified_outputs": [f for f in files if _is_output(f)],
    }


def warn_if_dirty(git: dict[str, Any], logger: logging.Logger | None = None) -> None:
    """Log a warning when ``git`` (from :func:`git_state`) is dirty or unknown."""
    logger = logger or _log
    if git["sha"] is None:
        logger.warning("not a git checkout (or git is missing): results record no commit")
    elif git["dirty"]:
        files = git["modified"]
        shown = ", ".join(files[:10]) + (f", … ({len(files) - 10} more)" if len(files) > 10 else "")
        logger.warning(
            "DIRTY TREE: %d tracked file(s) differ from commit %s: %s. The results will be "
            "marked \"dirty\": true; commit first for results that a commit reproduces",
            len(files), git["sha"][:12], shown,
        )


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_avg_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for p in threadpool_info()
        ]
    except Exception:  # noqa: BLE001
        pass
    return info


def environment(git: dict[str, Any] | None = None) -> dict:
    """Provenance of a run (the module docstring gives the schema); call it at the start.

    ``git`` is a :func:`git_state` taken (and warned about) earlier; by default it is taken
    now and a dirty tree is logged as a warning.
    """
    if git is None:
        git = git_state()
        warn_if_dirty(git)
    return {
        "timestamp_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git": git,
        "versions": {"python": platform.python_version(),
                     **{k: _version(k) for k in _DISTRIBUTIONS}},
        "machine": machine(),
    }


def provenance(payload: dict) -> dict[str, Any]:
    """Commit, dirtiness, time and machine of a results payload, whatever schema wrote it.

    Reads :func:`environment`'s schema and the older ones: ``git_sha`` strings ending in
    ``+dirty``, a top-level ``git`` dict, top-level ``machine``. ``dirty`` is None when unknown;
    ``modified`` is empty where the file does not say.
    """
    env = payload.get("environment") or payload.get("provenance") or payload
    git = env.get("git") if isinstance(env.get("git"), dict) else payload.get("git")
    if isinstance(git, dict):
        sha, dirty, modified = git.get("sha"), git.get("dirty"), list(git.get("modified") or [])
    else:
        sha = env.get("git_sha") or payload.get("git_sha")
        dirty = None if sha is None else str(sha).endswith("+dirty")
        sha = None if sha is None else str(sha).removesuffix("+dirty")
        modified = []
    mach = env.get("machine") if isinstance(env.get("machine"), dict) else None
    mach = mach or payload.get("machine") or env
    return {
        "sha": sha,
        "dirty": dirty,
        "modified": modified,
        "timestamp_utc": env.get("timestamp_utc", ""),
        "cpu": mach.get("cpu") or mach.get("cpu_model") or mach.get("processor") or "",
        "cores": mach.get("cores") or mach.get("cpu_count") or "",
    }


def describe_commit(payload: dict, width: int = 12) -> str:
    """``abc123def456``, with a visible mark when the results came from a dirty tree."""
    p = provenance(payload)
    sha = "unknown commit" if not p["sha"] else str(p["sha"])[:width]
    if p["dirty"]:
        n = len(p["modified"])
        sha += " ⚠ DIRTY TREE" + (f" ({n} modified file{'s' if n != 1 else ''})" if n else "")
    return sha


# ----------------------------------------------------------------------------- output
def write_json(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` atomically (a ``.tmp`` file renamed over ``path``); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=_default) + "\n")
    os.replace(tmp, path)
    return path


def _default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
