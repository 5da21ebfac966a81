"""One reader for every supported dataset path: :func:`read_dataset` (no torch)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["DATASET_FORMATS", "detect_format", "read_dataset"]

#: Values of ``format`` accepted by :func:`read_dataset` (``"auto"`` detects one of the others).
DATASET_FORMATS = ("auto", "cifar10", "cifar10-zip", "svhn", "folder", "arrays")


def _is_cifar10_zip(path: Path, split: str) -> bool:
    if not (path.is_file() and zipfile.is_zipfile(path)):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.startswith(f"{split}/airplane/") for n in zf.namelist()[:50000])


def detect_format(path: str | os.PathLike, split: str = "train") -> str:
    """The format :func:`read_dataset` uses for ``path`` with ``format="auto"``.

    ``.npz``/``.npy`` → ``"arrays"``; a directory with ``batches.meta`` or
    ``cifar-10-batches-py/`` → ``"cifar10"``; a directory with ``*_32x32.mat`` → ``"svhn"``;
    a zip with ``<split>/airplane/`` members → ``"cifar10-zip"``; anything else → ``"folder"``
    (an image folder or zip of class folders).
    """
    p = Path(path)
    if p.suffix in (".npz", ".npy"):
        return "arrays"
    if p.is_dir() and ((p / "batches.meta").exists() or (p / "cifar-10-batches-py").exists()):
        return "cifar10"
    if p.is_dir() and any(p.glob("*_32x32.mat")):
        return "svhn"
    if _is_cifar10_zip(p, split):
        return "cifar10-zip"
    return "folder"


def read_dataset(
    path: str | os.PathLike | None,
    format: str = "auto",  # noqa: A002  (the CLI's --format)
    split: str = "train",
    *,
    name: str = "path",
) -> tuple[np.ndarray, np.ndarray]:
    """Images or vectors and their labels from any supported dataset path.

    Parameters
    ----------
    path : str or path-like
        A CIFAR-10 ``cifar-10-batches-py`` directory, the CIFAR-10 JPEG zip, an SVHN directory
        (``<split>_32x32.mat``), an image folder or zip of class folders, or a ``.npz``/``.npy``
        file of arrays (:func:`~infogauss.datasets.load_arrays`).
    format : {"auto", "cifar10", "cifar10-zip", "svhn", "folder", "arrays"}, default="auto"
        ``"auto"``: :func:`detect_format`.
    split : str, default="train"
        ``"train"`` or ``"test"`` (CIFAR-10, SVHN; SVHN also ``"extra"``).
    name : str, default="path"
        How ``path`` is named in error messages (a command passes its flag, ``--data``).

    Returns
    -------
    x : ndarray
        uint8 images of shape (n, 3, H, W), or float32 C-contiguous vectors of shape
        (n, n_features) for a float ``.npy``.
    labels : ndarray of shape (n,), int64
        -1 where the source has no labels.

    Raises
    ------
    ValueError
        If ``path`` is None or does not exist, or ``format`` is unknown (and every reader's
        own errors for malformed or unsafe data).

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.ones((4, 3)))
    >>> x, y = read_dataset(path)
    >>> x.shape, x.dtype.name, y.tolist()
    ((4, 3), 'float32', [-1, -1, -1, -1])
    """
    from . import formats, images

    if path is None:
        raise ValueError(f"`{name}` must be given (a dataset path), got None")
    p = Path(path)
    if not p.exists():
        raise ValueError(f"`{name}` must be an existing file or directory, got {str(p)!r}")
    if format not in DATASET_FORMATS:
        raise ValueError(f"`format` must be one of {'|'.join(DATASET_FORMATS)}, got {format!r}")
    fmt = detect_format(p, split) if format == "auto" else format
    if fmt == "arrays":
        if p.suffix == ".npy":
            try:
                x = np.load(p, allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:  # corrupt, truncated, or a pickle
                raise ValueError(
                    f"`{name}` {str(p)!r} is not a readable .npy file of numbers (truncated, "
                    f"corrupt, or holding pickled objects, which are never loaded): "
                    f"{type(exc).__name__}"
                ) from None
            if x.ndim == 0:
                raise ValueError(f"`{name}` must hold an array of rows, got a 0-d array in {str(p)!r}")
            if x.dtype.kind not in "biuf":
                raise TypeError(
                    f"`{name}` must hold numbers (uint8 images or float vectors), got dtype "
                    f"{x.dtype} in {str(p)!r}"
                )
            if x.dtype != np.uint8:
                with np.errstate(over="ignore"):
                    out = np.ascontiguousarray(x, dtype=np.float32)
                if x.dtype.kind == "f" and x.dtype != np.float32 and not np.isfinite(out).all() \
                        and np.isfinite(x).all():
                    raise ValueError(f"`{name}` {str(p)!r} has values too large for float32")
                return out, np.full(len(x), -1, np.int64)
        d = formats.load_arrays(p)
    elif fmt == "cifar10":
        d = formats.load_cifar10(p, split)
    elif fmt == "cifar10-zip":
        d = images.load_cifar10_zip(p, split)
    elif fmt == "svhn":
        d = formats.load_svhn(p, split)
    else:
        d = images.load_image_folder(p)
    return d.images, d.labels
