"""A directory of precomputed embeddings, shared by the benchmarks.

Layout (all arrays ``.npy``, no pickle)::

    DIR/cifar10_train.npy          float32 (N, D)   in-distribution training embeddings
    DIR/cifar10_train_labels.npy   int64   (N,)
    DIR/cifar10_test.npy           float32 (M, D)   in-distribution test embeddings
    DIR/cifar10_test_labels.npy    int64   (M,)
    DIR/ood_<name>.npy             float32 (K, D)   one file per OOD set (tin_resize, svhn, ...)
    DIR/meta.json                  free-form provenance (checkpoint, layer, preprocessing, ...)

The in-distribution prefix (``cifar10``) is a parameter, so other benchmarks can reuse the
layout. :func:`write_embeddings` writes it (atomically per file); :func:`load_embeddings`
reads and checks it (dtypes, shapes, label lengths, one common dimension, finite values).

How the embedding step plugs in: whatever produces the arrays (``infogauss embed`` /
``infogauss.contrastive.embed`` on CIFAR-10 and the OOD image sets) calls
:func:`write_embeddings` with float32 C-contiguous CPU arrays and a ``meta`` dict naming the
checkpoint, layer, image preprocessing (resize/crop rule, JPEG quality) and dataset sources.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EmbeddingSet", "load_embeddings", "write_embeddings"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class EmbeddingSet:
    """Embeddings of one in-distribution dataset and its OOD sets."""

    train: np.ndarray
    train_labels: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    ood: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    directory: Path | None = None

    @property
    def dim(self) -> int:
        return int(self.train.shape[1])

    def summary(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory) if self.directory else None,
            "dim": self.dim,
            "n_train": int(self.train.shape[0]),
            "n_test": int(self.test.shape[0]),
            "n_classes": int(np.unique(self.train_labels).shape[0]),
            "ood": {k: int(v.shape[0]) for k, v in self.ood.items()},
        }


def _atomic_save(path: Path, array: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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


def write_embeddings(
    directory: str | os.PathLike,
    *,
    train: Any,
    train_labels: Any,
    test: Any,
    test_labels: Any,
    ood: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
    prefix: str = "cifar10",
) -> Path:
    """Write an embeddings directory (see the module docstring). Returns the directory."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
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
    for key, arr in arrays.items():
        _atomic_save(out / f"{key}.npy", arr)
    text = json.dumps(dict(meta or {}), indent=2, sort_keys=True, default=str)
    (out / "meta.json").write_text(text)
    return out


def load_embeddings(
    directory: str | os.PathLike, *, prefix: str = "cifar10", mmap: bool = False
) -> EmbeddingSet:
    """Read and check an embeddings directory.

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
    ood = {
        p.stem[len("ood_"):]: feats(p.stem, dim)
        for p in sorted(d.glob("ood_*.npy"))
    }
    if not ood:
        raise FileNotFoundError(f"no ood_<name>.npy file in {str(d)!r} (found: {present[:20]})")
    meta_path = d / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return EmbeddingSet(
        train=train,
        train_labels=labels(f"{prefix}_train_labels", train.shape[0]),
        test=test,
        test_labels=labels(f"{prefix}_test_labels", test.shape[0]),
        ood=ood,
        meta=meta,
        directory=d,
    )
