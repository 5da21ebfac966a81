"""The embedding-set directory: precomputed embeddings of one dataset and its OOD sets.

What ``infogauss embed --set DIR`` writes and every benchmark reads. Layout (all arrays
``.npy``, never pickled)::

    DIR/<prefix>_train.npy          float32 (N, D)   in-distribution embeddings to fit on
    DIR/<prefix>_train_labels.npy   int64   (N,)     (-1 for unlabelled rows)
    DIR/<prefix>_test.npy           float32 (M, D)   new in-distribution embeddings
    DIR/<prefix>_test_labels.npy    int64   (M,)
    DIR/ood_<name>.npy              float32 (K, D)   one file per OOD set (tin_resize, svhn, ...)
    DIR/meta.json                   provenance (checkpoint, layer, preprocessing, ...) and
                                    ``prefix``

``prefix`` names the in-distribution dataset (``cifar10`` unless told otherwise) and is
recorded in ``meta.json``, so a reader need not be told it. :func:`write_embedding_set` writes
a whole set; :func:`write_embedding_part` adds or replaces one part (``train``, ``test`` or
``ood:<name>``), checking that it has the dimension of the parts already there;
:func:`read_embedding_set` reads and checks a set (dtypes, shapes, label counts, one common
dimension, finite values). Every file is written atomically.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import _io

__all__ = ["EmbeddingSet", "read_embedding_set", "write_embedding_part", "write_embedding_set"]

DEFAULT_PREFIX = "cifar10"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class EmbeddingSet:
    """Embeddings of one in-distribution dataset (train and test splits) and its OOD sets.

    Attributes
    ----------
    train, test : ndarray of shape (n, d), float
        In-distribution embeddings (``train`` to fit on, ``test`` new data).
    train_labels, test_labels : ndarray of shape (n,), int64
        Their labels (-1 for unlabelled rows).
    ood : dict of str to ndarray of shape (k, d)
        One array per out-of-distribution set.
    meta : dict
        The contents of ``meta.json``.
    directory : Path or None
        Where the set was read from.
    prefix : str
        The in-distribution file prefix.
    """

    train: np.ndarray
    train_labels: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    ood: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    directory: Path | None = None
    prefix: str = DEFAULT_PREFIX

    @property
    def dim(self) -> int:
        """The embedding dimension ``d``."""
        return int(self.train.shape[1])

    def summary(self) -> dict[str, Any]:
        """Directory, dimension, row counts, classes and OOD set sizes (JSON-ready)."""
        return {
            "directory": str(self.directory) if self.directory else None,
            "dim": self.dim,
            "n_train": int(self.train.shape[0]),
            "n_test": int(self.test.shape[0]),
            "n_classes": int(np.unique(self.train_labels).shape[0]),
            "ood": {k: int(v.shape[0]) for k, v in self.ood.items()},
        }


def _features(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[0] == 0 or a.dtype.kind not in "fiu":
        raise ValueError(f"`{name}` must be a non-empty 2-D numeric array, got shape {a.shape}, "
                         f"dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float32)


def _labels(y: Any, n: int, name: str) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1 or a.shape[0] != n or a.dtype.kind not in "iu":
        raise ValueError(f"`{name}` must be a 1-D integer array of length {n}, got shape "
                         f"{a.shape}, dtype {a.dtype}")
    return a.astype(np.int64)


def _check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not _NAME.match(prefix):
        raise ValueError(f"`prefix` must match {_NAME.pattern}, got {prefix!r}")
    return prefix


def _read_meta(directory: Path) -> dict[str, Any]:
    path = directory / "meta.json"
    if not path.exists():
        return {}
    meta = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(meta, dict):
        raise ValueError(f"{str(path)!r} must hold a JSON object, got {type(meta).__name__}")
    return meta


def _write_meta(directory: Path, meta: Mapping[str, Any]) -> None:
    text = json.dumps(dict(meta), indent=2, sort_keys=True, default=str)
    _io.write_text(directory / "meta.json", text, name="directory")


def set_prefix(directory: str | os.PathLike, prefix: str | None = None) -> str:
    """The in-distribution prefix to use for the set in ``directory``.

    ``prefix`` when given (it must then agree with the set's ``meta.json``, if any), else the
    set's own, else ``cifar10``.
    """
    d = Path(directory)
    have = _read_meta(d).get("prefix") if d.is_dir() else None
    if prefix is None:
        return _check_prefix(have or DEFAULT_PREFIX)
    if have is not None and prefix != have:
        raise ValueError(f"`prefix` must be the set's own {have!r} (meta.json), got {prefix!r}")
    return _check_prefix(prefix)


def part_files(part: str, prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    """File names of one part of a set: ``{"embeddings": ..., "labels": ...}`` (no labels for
    an OOD set).

    ``part`` is ``train``, ``test`` or ``ood:<name>``.
    """
    _check_prefix(prefix)
    if part in ("train", "test"):
        return {"embeddings": f"{prefix}_{part}.npy", "labels": f"{prefix}_{part}_labels.npy"}
    if isinstance(part, str) and part.startswith("ood:"):
        name = part[len("ood:"):]
        if not _NAME.match(name):
            raise ValueError(f"OOD set name must match {_NAME.pattern}, got {name!r}")
        return {"embeddings": f"ood_{name}.npy"}
    raise ValueError(f"`part` must be 'train', 'test' or 'ood:<name>', got {part!r}")


def write_embedding_set(
    directory: str | os.PathLike,
    *,
    train: Any,
    train_labels: Any,
    test: Any,
    test_labels: Any,
    ood: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> Path:
    """Write a whole embedding set (see the module docstring); returns the directory.

    Parameters
    ----------
    directory : path-like
        Created if missing. Files of the same names are replaced; ``meta.json`` is rewritten
        from ``meta`` (with ``prefix`` added).
    train, test : array-like of shape (n, d)
        In-distribution embeddings, stored as float32.
    train_labels, test_labels : array-like of shape (n,), integer
    ood : mapping of str to array-like of shape (k, d)
        OOD sets; names match ``[A-Za-z0-9][A-Za-z0-9_.-]*``.
    meta : mapping, optional
        Provenance to store in ``meta.json`` (values that are not JSON become strings).
    prefix : str
        The in-distribution file prefix.

    Raises
    ------
    ValueError
        On a non-2-D or empty array, label counts that differ from the rows, a bad name, or
        arrays of different dimensions.
    """
    out = Path(directory)
    _check_prefix(prefix)
    tr, te = _features(train, "train"), _features(test, "test")
    arrays = {
        f"{prefix}_train": tr,
        f"{prefix}_train_labels": _labels(train_labels, tr.shape[0], "train_labels"),
        f"{prefix}_test": te,
        f"{prefix}_test_labels": _labels(test_labels, te.shape[0], "test_labels"),
    }
    for name, x in ood.items():
        if not _NAME.match(name):
            raise ValueError(f"OOD set name must match {_NAME.pattern}, got {name!r}")
        arrays[f"ood_{name}"] = _features(x, f"ood[{name!r}]")
    dims = {k: v.shape[1] for k, v in arrays.items() if v.ndim == 2}
    if len(set(dims.values())) != 1:
        raise ValueError(f"all embeddings must share one dimension, got {dims}")
    out.mkdir(parents=True, exist_ok=True)
    for key, arr in arrays.items():
        _io.save_npy(out / f"{key}.npy", arr, name="directory")
    _write_meta(out, {**dict(meta or {}), "prefix": prefix})
    return out


def _dims_present(directory: Path, skip: set[str]) -> dict[str, int]:
    """Dimension of every 2-D embedding array already in ``directory`` (headers only)."""
    dims = {}
    for path in sorted(directory.glob("*.npy")):
        if path.name in skip or path.name.endswith("_labels.npy"):
            continue
        a = np.load(path, mmap_mode="r", allow_pickle=False)
        if a.ndim == 2:
            dims[path.name] = int(a.shape[1])
    return dims


def write_embedding_part(
    directory: str | os.PathLike,
    part: str,
    embeddings: Any,
    labels: Any = None,
    *,
    prefix: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Add (or replace) one part of an embedding set; returns the files written.

    Parameters
    ----------
    directory : path-like
        The set; created if missing.
    part : str
        ``train``, ``test`` or ``ood:<name>``.
    embeddings : array-like of shape (n, d)
        Stored as float32.
    labels : array-like of shape (n,), integer, optional
        Required for ``train`` and ``test`` (-1 for unlabelled rows); refused for OOD sets.
    prefix : str, optional
        The in-distribution prefix; by default the set's (``meta.json``), else ``cifar10``.
    meta : mapping, optional
        Provenance of this part, stored in ``meta.json`` under ``parts[part]``.

    Returns
    -------
    dict
        ``embeddings``, ``labels`` (train/test only) and ``meta``: the paths written.

    Raises
    ------
    ValueError
        On a bad part, missing or extra labels, a prefix other than the set's, or a dimension
        other than that of the parts already in the directory.
    """
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"`directory` must be a directory, got the file {str(out)!r}")
    current = _read_meta(out) if out.is_dir() else {}
    prefix = set_prefix(out, prefix)
    files = part_files(part, prefix)
    z = _features(embeddings, "embeddings")
    if "labels" in files:
        if labels is None:
            raise ValueError(f"`labels` must be given for the {part!r} part, got None")
        y = _labels(labels, z.shape[0], "labels")
    elif labels is not None:
        raise ValueError(f"`labels` must be None for an OOD set ({part!r}): the layout stores "
                         "none")
    if out.is_dir():
        dims = _dims_present(out, skip={files["embeddings"]})
        other = {k: v for k, v in dims.items() if v != z.shape[1]}
        if other:
            raise ValueError(f"`embeddings` has dimension {z.shape[1]}, but the set in "
                             f"{str(out)!r} holds {other}: all parts must come from the same "
                             "encoder layer")
    out.mkdir(parents=True, exist_ok=True)
    written = {"embeddings": _io.save_npy(out / files["embeddings"], z, name="directory")}
    if "labels" in files:
        written["labels"] = _io.save_npy(out / files["labels"], y, name="directory")
    parts = dict(current.get("parts") or {})
    parts[part] = {"rows": int(z.shape[0]), "dim": int(z.shape[1]), **dict(meta or {})}
    _write_meta(out, {**current, "prefix": prefix, "parts": parts})
    written["meta"] = out / "meta.json"
    return written


def read_embedding_set(
    directory: str | os.PathLike,
    *,
    prefix: str | None = None,
    mmap: bool = False,
    require_ood: bool = True,
) -> EmbeddingSet:
    """Read and check an embedding set.

    Parameters
    ----------
    directory : path-like
    prefix : str, optional
        The in-distribution prefix; by default ``meta.json``'s ``prefix``, else ``cifar10``.
    mmap : bool
        Memory-map the arrays (finiteness is then not checked).
    require_ood : bool
        Refuse a set without any ``ood_<name>.npy`` (what OOD benchmarks need).

    Raises
    ------
    FileNotFoundError
        If the directory or a required file is missing (the message lists what is there).
    ValueError
        On a wrong dtype/shape, a label count that differs from the rows, OOD sets of another
        dimension, or NaN/inf values.
    """
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"embeddings directory {str(d)!r} does not exist")
    present = sorted(p.name for p in d.iterdir())
    meta = _read_meta(d)
    prefix = _check_prefix(prefix or meta.get("prefix") or DEFAULT_PREFIX)

    def load(key: str) -> np.ndarray:
        path = d / f"{key}.npy"
        if not path.exists():
            raise FileNotFoundError(
                f"{str(path)!r} is missing; an embeddings directory holds {prefix}_train.npy, "
                f"{prefix}_train_labels.npy, {prefix}_test.npy, {prefix}_test_labels.npy, "
                f"ood_<name>.npy and meta.json (found: {present[:20]})"
            )
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)

    def feats(key: str, dim: int | None) -> np.ndarray:
        a = load(key)
        if a.ndim != 2 or a.dtype.kind != "f" or a.shape[0] == 0:
            raise ValueError(f"{key}.npy must be a non-empty float (N, D) array, got shape "
                             f"{a.shape}, dtype {a.dtype}")
        if dim is not None and a.shape[1] != dim:
            raise ValueError(f"{key}.npy has dimension {a.shape[1]}, but {prefix}_train.npy has "
                             f"{dim}: all embeddings must come from the same encoder layer")
        if not mmap and not np.isfinite(a).all():
            raise ValueError(f"{key}.npy contains NaN or infinity")
        return a

    def labels(key: str, n: int) -> np.ndarray:
        y = load(key)
        if y.ndim != 1 or y.shape[0] != n or y.dtype.kind not in "iu":
            raise ValueError(f"{key}.npy must be {n} integer labels, got shape {y.shape}, "
                             f"dtype {y.dtype}")
        return np.asarray(y, dtype=np.int64)

    train = feats(f"{prefix}_train", None)
    dim = train.shape[1]
    test = feats(f"{prefix}_test", dim)
    ood = {p.stem[len("ood_"):]: feats(p.stem, dim) for p in sorted(d.glob("ood_*.npy"))}
    if require_ood and not ood:
        raise FileNotFoundError(f"no ood_<name>.npy file in {str(d)!r} (found: {present[:20]})")
    return EmbeddingSet(
        train=train,
        train_labels=labels(f"{prefix}_train_labels", train.shape[0]),
        test=test,
        test_labels=labels(f"{prefix}_test_labels", test.shape[0]),
        ood=ood,
        meta=meta,
        directory=d,
        prefix=prefix,
    )
