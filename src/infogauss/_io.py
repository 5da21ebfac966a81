"""File writing for the whole package, and the provenance and results schema of benchmarks.

**Files.** Every file infogauss writes (model files, scores, reports, JSON, embeddings,
checkpoints) goes through :func:`atomic_write`: the bytes go to a temporary file in the
destination's directory, are flushed to disk and renamed over the destination in one step, so a
reader sees the old file or the new one, never half of one, and a failed write leaves nothing
behind. The file gets the mode a plain ``open(path, "w")`` would give (``0o666`` less the
process umask, i.e. ``0644`` under the usual umask ``022``), not the ``0600`` of
:func:`tempfile.mkstemp`.

Commands pass the files they read as ``inputs``; a destination that is one of them (the same
path, or another name of the same file) is refused before anything is written.

**Provenance.** :func:`environment` records where a result came from: UTC time, the git state
of the checkout the package is imported from (:func:`git_state`), the versions of the
libraries a benchmark may use (read from package metadata, without importing them) and the
machine (CPU, cores, platform, load, BLAS threads)::

    {"timestamp_utc": ..., "git": {"sha": ..., "dirty": ..., "modified": [...],
     "modified_outputs": [...]}, "versions": {...}, "machine": {...}}

``dirty`` is true when a tracked file other than a committed benchmark output differs from the
commit ``sha`` (staged or not; untracked files do not count); ``modified`` lists those files.
Committed outputs (:data:`OUTPUT_PATHS`: results files, checkpoint configs and logs, the
generated BENCHMARKS.md) cannot change what a benchmark computes, so they are listed apart in
``modified_outputs`` and leave ``dirty`` false. Imported from an installed wheel (not a
checkout) ``sha`` and ``dirty`` are None.

**Results schema.** Every benchmark writes one JSON object with :func:`write_results`::

    {"benchmark": NAME, "schema": 1, "config": {...}, "environment": {...}, ...results}

``benchmark`` names what wrote it, ``config`` holds every setting needed to rerun it (seed
included), ``environment`` is :func:`environment`'s record, and the benchmark's own keys
follow. :func:`read_results` reads that schema, and converts the older forms found in results
files committed before it existed (:func:`upgrade_results`).
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
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
    "OUTPUT_PATHS",
    "RESULTS_SCHEMA",
    "git_state",
    "warn_if_dirty",
    "machine",
    "versions",
    "environment",
    "write_results",
    "read_results",
    "upgrade_results",
]

_log = logging.getLogger(__name__)


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
    make_parents: bool = False,
) -> Path:
    """Write a file atomically: ``write(fh)`` fills a temporary file that replaces ``path``.

    Parameters
    ----------
    path : str or path-like
        Destination. Its directory must exist (see ``make_parents``).
    write : callable
        Called with a binary file object open for writing.
    name : str
        How the destination is named in error messages (the argument or flag).
    inputs : iterable of path-like
        Files the caller reads; ``path`` may not be one of them.
    make_parents : bool
        Create the missing directories above ``path`` (otherwise they must exist).

    Returns
    -------
    Path
        ``path``.
    """
    path = check_output(path, name=name, inputs=inputs, make_parents=make_parents)
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


# ------------------------------------------------------------------------------ provenance
#: Tracked paths (relative to the repository root) that benchmarks and their report write.
OUTPUT_PATHS = ("benchmarks/results/", "benchmarks/checkpoints/", "BENCHMARKS.md")

# import name -> distributions that provide it (metadata is read; nothing is imported)
_DISTRIBUTIONS = {
    "infogauss": ("infogauss",), "numpy": ("numpy",), "scipy": ("scipy",),
    "sklearn": ("scikit-learn",), "torch": ("torch",),
    "faiss": ("faiss-cpu", "faiss-gpu", "faiss"), "pyod": ("pyod",), "dask": ("dask",),
    "matplotlib": ("matplotlib",),
}  # fmt: skip


def _source_root() -> Path | None:
    """The source checkout this package is imported from (``<root>/src/infogauss``), or None."""
    package = Path(__file__).resolve().parent
    root = package.parents[1]
    if package.parent.name == "src" and (root / "pyproject.toml").is_file():
        return root
    return None


#: The checkout whose git state :func:`git_state` records by default (None for a wheel).
SOURCE_ROOT: Path | None = _source_root()


def _version(name: str) -> str | None:
    """Installed version from package metadata (importing torch or faiss just to ask is slow)."""
    for dist in _DISTRIBUTIONS.get(name, (name,)):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def versions() -> dict[str, str | None]:
    """Python's version and those of infogauss and the libraries benchmarks use (None: absent)."""
    return {"python": platform.python_version(), **{k: _version(k) for k in _DISTRIBUTIONS}}


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _is_output(path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in OUTPUT_PATHS)


def git_state(root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The commit checked out in ``root`` and the tracked files that differ from it.

    Parameters
    ----------
    root : path-like, optional
        The checkout; by default :data:`SOURCE_ROOT`, the one this package is imported from.

    Returns
    -------
    dict
        ``sha`` (full SHA-1, or None outside a git checkout), ``dirty`` (bool, None outside a
        checkout), ``modified`` (tracked files changed, staged or not, outside
        :data:`OUTPUT_PATHS`) and ``modified_outputs`` (changed files under ``OUTPUT_PATHS``).
    """
    root = SOURCE_ROOT if root is None else Path(root)
    unknown = {"sha": None, "dirty": None, "modified": [], "modified_outputs": []}
    if root is None:
        return unknown
    head = _git(root, "rev-parse", "--verify", "HEAD")
    changed = _git(root, "diff", "--name-only", "--no-renames", "HEAD", "--") if head else None
    if head is None or changed is None:
        return unknown
    files = sorted(set(changed.splitlines()) - {""})
    modified = [f for f in files if not _is_output(f)]
    return {
        "sha": head.strip(),
        "dirty": bool(modified),
        "modified": modified,
        "modified_outputs": [f for f in files if _is_output(f)],
    }


def warn_if_dirty(git: Mapping[str, Any], logger: logging.Logger | None = None) -> None:
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


def machine() -> dict[str, Any]:
    """CPU model, core count, platform, Python, load average and BLAS thread pools."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
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
    except Exception:  # noqa: BLE001 - optional: a BLAS we cannot introspect is left out
        pass
    return info


def environment(git: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Provenance of a run (the module docstring gives the schema); call it at the start.

    ``git`` is a :func:`git_state` taken (and warned about) earlier; by default it is taken
    now and a dirty tree is logged as a warning.
    """
    if git is None:
        git = git_state()
        warn_if_dirty(git)
    return {
        "timestamp_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git": dict(git),
        "versions": versions(),
        "machine": machine(),
    }


# ------------------------------------------------------------------------------ results schema
#: Version of the results schema :func:`write_results` writes.
RESULTS_SCHEMA = 1
_HEAD = ("benchmark", "schema", "config", "environment")


def write_results(
    path: str | os.PathLike, payload: Mapping[str, Any], *, inputs: Iterable[Any] = ()
) -> Path:
    """Write a benchmark's results file in the one schema (see the module docstring).

    Parameters
    ----------
    path : path-like
        The JSON file; missing parent directories are created.
    payload : mapping
        ``benchmark`` (str), ``config`` (dict), ``environment`` (dict from :func:`environment`)
        and the benchmark's own keys. ``schema`` is set here.
    inputs : iterable of path-like
        Files the benchmark read; ``path`` may not be one of them.

    Returns
    -------
    Path
        ``path``.
    """
    if not isinstance(payload, Mapping):
        raise TypeError(f"`payload` must be a mapping, got {type(payload).__name__}")
    name = payload.get("benchmark")
    if not isinstance(name, str) or not name:
        raise ValueError(f"`payload['benchmark']` must be the benchmark's name, got {name!r}")
    for key in ("config", "environment"):
        if not isinstance(payload.get(key), Mapping):
            raise ValueError(f"`payload[{key!r}]` must be a dict, got "
                             f"{type(payload.get(key)).__name__}")
    missing = {"git", "versions", "machine", "timestamp_utc"} - set(payload["environment"])
    if missing:
        raise ValueError(f"`payload['environment']` must come from environment(); it lacks "
                         f"{sorted(missing)}")
    if payload.get("schema", RESULTS_SCHEMA) != RESULTS_SCHEMA:
        raise ValueError(f"`payload['schema']` must be {RESULTS_SCHEMA}, got {payload['schema']!r}")
    ordered = {"benchmark": name, "schema": RESULTS_SCHEMA, "config": dict(payload["config"]),
               "environment": dict(payload["environment"]),
               **{k: v for k, v in payload.items() if k not in _HEAD}}
    return write_json(path, ordered, name="--out", inputs=inputs, make_parents=True)


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """A results file, in the current schema (older files are converted in memory).

    Raises
    ------
    ValueError
        If the file is not a JSON object naming its benchmark, or was written by a newer
        schema than this version of infogauss reads.
    """
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"results file {str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("benchmark"), str):
        raise ValueError(f"results file {str(path)!r} must be a JSON object with a "
                         "'benchmark' name")
    return upgrade_results(payload)


def _legacy_git(sha: Any) -> dict[str, Any]:
    """``"<sha>"`` or ``"<sha>+dirty"`` (the older string form) as a git record."""
    if sha is None:
        return {"sha": None, "dirty": None, "modified": [], "modified_outputs": []}
    sha = str(sha)
    return {"sha": sha.removesuffix("+dirty"), "dirty": sha.endswith("+dirty"), "modified": [],
            "modified_outputs": []}


def upgrade_results(payload: Mapping[str, Any]) -> dict[str, Any]:
    """``payload`` in the current results schema.

    Results files committed before the schema existed record their provenance in one of four
    older forms; each becomes the ``environment`` of :func:`environment`:

    1. ``environment`` with ``git_sha`` (a string, ``+dirty`` appended for a dirty tree);
    2. top-level ``git_sha`` / ``timestamp_utc`` / ``versions`` / ``machine``;
    3. top-level ``git`` (a dict) / ``versions`` / ``machine``;
    4. a flat ``provenance`` dict (``git_sha``, ``cpu_model``, ``cpu_count``, versions).

    Where an older file does not say, ``modified`` is empty and ``timestamp_utc`` is ``""``.
    A payload already in the schema is returned as it is (a shallow copy).

    Raises
    ------
    ValueError
        If ``payload`` declares a schema newer than :data:`RESULTS_SCHEMA`.
    """
    schema = payload.get("schema")
    if schema is not None:
        if not isinstance(schema, int) or schema > RESULTS_SCHEMA:
            raise ValueError(f"results schema {schema!r} is newer than this infogauss reads "
                             f"({RESULTS_SCHEMA}): upgrade infogauss")
        return dict(payload)
    rest = dict(payload)
    env = rest.pop("environment", None)
    flat = rest.pop("provenance", None)
    if isinstance(env, Mapping) and isinstance(env.get("git"), Mapping):  # current, no schema key
        env = dict(env)
    elif isinstance(env, Mapping):  # form 1
        env = dict(env)
        env["git"] = _legacy_git(env.pop("git_sha", None))
    elif isinstance(flat, Mapping):  # form 4
        flat = dict(flat)
        vers = {k: flat.pop(k) for k in ("python", "numpy", "torch") if k in flat}
        mach = {"cpu": flat.pop("cpu_model", None) or flat.pop("processor", None) or "",
                "cores": flat.pop("cpu_count", None)}
        git = _legacy_git(flat.pop("git_sha", None))
        flat.pop("processor", None)
        if "machine" in flat:
            flat["architecture"] = flat.pop("machine")
        env = {"timestamp_utc": "", "git": git, "versions": vers, "machine": {**mach, **flat}}
    else:  # forms 2 and 3
        git = rest.pop("git", None)
        sha = rest.pop("git_sha", None)
        env = {"timestamp_utc": rest.pop("timestamp_utc", ""),
               "git": dict(git) if isinstance(git, Mapping) else _legacy_git(sha),
               "versions": rest.pop("versions", {}), "machine": rest.pop("machine", {})}
    env.setdefault("timestamp_utc", "")
    env.setdefault("versions", {})
    env.setdefault("machine", {})
    git = env["git"]
    git.setdefault("modified", [])
    git.setdefault("modified_outputs", [])
    return {"benchmark": rest.pop("benchmark", None), "schema": RESULTS_SCHEMA,
            "config": rest.pop("config", {}), "environment": env, **rest}
