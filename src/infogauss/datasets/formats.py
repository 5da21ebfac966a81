"""Official on-disk formats: CIFAR-10 python pickles, SVHN ``.mat``, ``.npz``/``.npy`` arrays."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ._common import CIFAR10_CLASSES, LabeledImages, check_images, missing

__all__ = ["load_cifar10", "load_svhn", "load_arrays", "CIFAR10_LAYOUT", "SVHN_LAYOUT"]

CIFAR10_LAYOUT = """  <root>/cifar-10-batches-py/
    data_batch_1 ... data_batch_5   (train, 10,000 images each)
    test_batch                      (test, 10,000 images)
    batches.meta
  (<root> may also be the cifar-10-batches-py directory itself)"""
SVHN_LAYOUT = """  <root>/train_32x32.mat   (X: 32x32x3xN uint8, y: Nx1, label 10 = digit 0)
  <root>/test_32x32.mat
  <root>/extra_32x32.mat   (optional)"""
_CIFAR_HOW = ("infogauss.datasets.download_cifar10(root) or fetch "
              "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and extract it into <root>")
_SVHN_HOW = ("infogauss.datasets.download_svhn(root, split) or fetch "
             "http://ufldl.stanford.edu/housenumbers/<split>_32x32.mat into <root>")


def _cifar_dir(root: Path) -> Path:
    return root if (root / "batches.meta").exists() or root.name == "cifar-10-batches-py" \
        else root / "cifar-10-batches-py"


def load_cifar10(root, split: str = "train") -> LabeledImages:
    """CIFAR-10 from the official ``cifar-10-batches-py`` pickles.

    The official python version is a set of pickles (read with ``encoding="bytes"``); images
    come out in the official order as uint8 (N, 3, 32, 32).

    Parameters
    ----------
    root : str or Path
        Directory holding ``cifar-10-batches-py`` (or that directory itself).
    split : {"train", "test"}

    Returns
    -------
    LabeledImages
    """
    if split not in ("train", "test"):
        raise ValueError(f"`split` must be 'train' or 'test', got {split!r}")
    d = _cifar_dir(Path(root))
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    xs, ys = [], []
    for name in names:
        f = d / name
        if not f.is_file():
            raise missing(f"CIFAR-10 file {name!r}", f, CIFAR10_LAYOUT, _CIFAR_HOW)
        try:
            with open(f, "rb") as fh:
                batch = pickle.load(fh, encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            labels = np.asarray(batch[b"labels"], dtype=np.int64)
        except Exception as exc:  # noqa: BLE001 - any failure here means a corrupt file
            raise missing(f"CIFAR-10 file {name!r} (corrupt: {exc})", f, CIFAR10_LAYOUT, _CIFAR_HOW) from exc
        if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
            raise missing(f"CIFAR-10 file {name!r} (unexpected shape {data.shape})", f,
                          CIFAR10_LAYOUT, _CIFAR_HOW)
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    return LabeledImages(np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys), CIFAR10_CLASSES)


def load_svhn(root, split: str = "train") -> LabeledImages:
    """SVHN (cropped digits) from the official ``<split>_32x32.mat``; label 10 becomes 0.

    Parameters
    ----------
    root : str or Path
        Directory holding the ``.mat`` files.
    split : {"train", "test", "extra"}

    Returns
    -------
    LabeledImages with images (N, 3, 32, 32) uint8 and classes "0" ... "9".
    """
    if split not in ("train", "test", "extra"):
        raise ValueError(f"`split` must be 'train', 'test' or 'extra', got {split!r}")
    from scipy.io import loadmat

    f = Path(root) / f"{split}_32x32.mat"
    if not f.is_file():
        raise missing(f"SVHN {split} file", f, SVHN_LAYOUT, _SVHN_HOW)
    try:
        mat = loadmat(f)
        x, y = mat["X"], mat["y"]
    except Exception as exc:  # noqa: BLE001
        raise missing(f"SVHN {split} file (corrupt: {exc})", f, SVHN_LAYOUT, _SVHN_HOW) from exc
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != y.size:
        raise missing(f"SVHN {split} file (X has shape {x.shape}, y {y.shape})", f, SVHN_LAYOUT, _SVHN_HOW)
    images = np.ascontiguousarray(np.asarray(x, dtype=np.uint8).transpose(3, 2, 0, 1))
    labels = np.asarray(y, dtype=np.int64).ravel() % 10
    return LabeledImages(images, labels, tuple(str(i) for i in range(10)))


def load_arrays(path, images_key: str = "images", labels_key: str = "labels") -> LabeledImages:
    """Images (and labels) from a ``.npz`` (keys ``images``/``labels``, or ``x``/``y``) or a
    ``.npy`` of images. Channels-last (N, H, W, 3) uint8 is transposed to (N, 3, H, W).

    Returns
    -------
    LabeledImages (labels -1 when absent).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"`path` must be an existing .npz or .npy file, got {str(path)!r}")
    keys: set = set()
    try:
        if path.suffix == ".npy":
            x, y = np.load(path, allow_pickle=False), None
        else:
            with np.load(path, allow_pickle=False) as z:
                keys = set(z.files)
                xk = images_key if images_key in keys else "x" if "x" in keys else None
                yk = labels_key if labels_key in keys else "y" if "y" in keys else None
                x = z[xk] if xk else None
                y = z[yk] if yk else None
    except Exception as exc:  # noqa: BLE001 - unreadable, truncated or pickled content
        raise ValueError(f"`path` {str(path)!r} is not a readable .npz/.npy file: {exc}") from exc
    if x is None:
        raise ValueError(f"`path` {str(path)!r} must hold an array named {images_key!r} or 'x', "
                         f"got keys {sorted(keys)}")
    if x.ndim == 4 and x.shape[-1] == 3 and x.shape[1] != 3:
        x = x.transpose(0, 3, 1, 2)
    x = check_images(x, "images")
    if y is None:
        y = np.full(len(x), -1, np.int64)
    y = np.asarray(y).astype(np.int64).ravel()
    if len(y) != len(x):
        raise ValueError(f"`labels` must have {len(x)} entries (one per image), got {len(y)}")
    n_classes = int(y.max()) + 1 if y.size and y.max() >= 0 else 0
    return LabeledImages(x, y, tuple(str(i) for i in range(n_classes)))
