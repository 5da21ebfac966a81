"""Shared helpers of :mod:`infogauss.datasets` (numpy only)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


class LabeledImages(NamedTuple):
    """Images and labels as returned by every image reader.

    Attributes
    ----------
    images : ndarray of uint8, shape (N, 3, H, W)
        Channels first, C-contiguous.
    labels : ndarray of int64, shape (N,)
        ``-1`` for unlabelled data.
    classes : tuple of str
        ``classes[k]`` names label ``k``.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple


class UnsafeDataError(ValueError):
    """A data file or archive was refused because reading it could be unsafe.

    Raised, before anything is decoded or executed, for a pickle that names a global outside
    the data format, an archive over a size, member-count or compression-ratio limit, a member
    name that escapes its archive, or a symbolic link that leaves its folder. A subclass of
    ValueError; see ``docs/security.md``.
    """


def cache_dir() -> Path:
    """The decoded-image cache: ``$INFOGAUSS_CACHE`` or ``~/.cache/infogauss``."""
    return Path(os.environ.get("INFOGAUSS_CACHE") or "~/.cache/infogauss").expanduser()


def file_key(path: Path, *extra) -> str:
    """A short key naming a file's identity (resolved path, size, mtime) plus ``extra``."""
    st = path.stat()
    blob = repr((str(path.resolve()), st.st_size, st.st_mtime_ns, extra)).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def atomic_save_npy(path: Path, arr: np.ndarray) -> None:
    """Write a cache array atomically (creating its directory): :func:`infogauss._io.save_npy`."""
    from .._io import check_output, save_npy

    check_output(path, name="cache", make_parents=True)
    save_npy(path, arr, name="cache")


def check_images(images, name: str = "images") -> np.ndarray:
    """Validate uint8 (N, 3, H, W) images; return them C-contiguous."""
    if not isinstance(images, np.ndarray):
        raise TypeError(f"`{name}` must be a numpy array, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise TypeError(f"`{name}` must be uint8 images of shape (N, 3, H, W), got dtype {images.dtype}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"`{name}` must have shape (N, 3, H, W) (channels first), got {images.shape}")
    if images.shape[0] == 0:
        raise ValueError(f"`{name}` must not be empty, got 0 images")
    return np.ascontiguousarray(images)


def missing(what: str, path, layout: str, how: str) -> ValueError:
    return ValueError(f"{what} not found or unreadable at {str(path)!r}.\nExpected layout:\n"
                      f"{layout}\nHow to get it: {how}")
