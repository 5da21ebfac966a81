"""Datasets as numpy arrays (no torch): images are uint8 (N, 3, H, W), labels int64.

Readers: :func:`load_cifar10` (official pickles, read with a restricted unpickler;
:func:`load_cifar_batch` reads one CIFAR-10/100 batch), :func:`load_svhn` (official ``.mat``),
:func:`load_image_folder` (directory or zip), :func:`load_cifar10_zip` and
:func:`load_tinyimagenet_zip` (the shared JPEG zips), :func:`load_arrays` (``.npz``/``.npy``);
:func:`read_dataset` picks the reader for any of these paths (what ``infogauss train --data`` does).
Generators: :func:`make_laplace`, :func:`make_gmm`, :func:`make_sparse_binary`.
Embedding sets (what ``infogauss embed --set`` writes and the benchmarks read):
:class:`EmbeddingSet`, :func:`read_embedding_set`, :func:`write_embedding_set`,
:func:`write_embedding_part`.
Downloads (explicit only): :func:`download_cifar10`, :func:`download_svhn`.
Untrusted data: readers refuse what could run code or exhaust memory with
:class:`UnsafeDataError` (a ValueError); see ``docs/security.md``.
"""

from ._common import CIFAR10_CLASSES, LabeledImages, UnsafeDataError, cache_dir, check_images
from .download import download_cifar10, download_svhn, download_url
from .embeddings import (
    EmbeddingSet,
    read_embedding_set,
    write_embedding_part,
    write_embedding_set,
)
from .formats import load_arrays, load_cifar10, load_cifar_batch, load_svhn
from .images import jpeg_roundtrip, load_cifar10_zip, load_image_folder, load_tinyimagenet_zip
from .read import DATASET_FORMATS, detect_format, read_dataset
from .synthetic import make_gmm, make_laplace, make_sparse_binary
from .text import debian_package_descriptions

__all__ = [
    "CIFAR10_CLASSES", "LabeledImages", "UnsafeDataError", "cache_dir", "check_images",
    "download_cifar10", "download_svhn", "download_url",
    "EmbeddingSet", "read_embedding_set", "write_embedding_part", "write_embedding_set",
    "load_arrays", "load_cifar10", "load_cifar_batch", "load_svhn",
    "jpeg_roundtrip", "load_cifar10_zip", "load_image_folder", "load_tinyimagenet_zip",
    "DATASET_FORMATS", "detect_format", "read_dataset",
    "make_gmm", "make_laplace", "make_sparse_binary",
    "debian_package_descriptions",
]
