"""Image folders and zip archives of them; the only module that imports Pillow.

Images are decoded once and cached as ``.npy`` (uint8, channels first) under
:func:`~infogauss.datasets.cache_dir`; later loads memory-map nothing and take well under a
second.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from ._common import (
    CIFAR10_CLASSES,
    LabeledImages,
    atomic_save_npy,
    cache_dir,
    check_images,
    file_key,
    missing,
)

__all__ = [
    "load_image_folder", "load_cifar10_zip", "load_tinyimagenet_zip", "jpeg_roundtrip",
    "IMAGE_SUFFIXES",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".webp", ".tif", ".tiff")

_CIFAR_ZIP_LAYOUT = """  cifar10_jpeg.zip
    train/<class>/<index>.jpg   (50,000; <index> = position in data_batch_1..5)
    test/<class>/<index>.jpg    (10,000; <index> = position in test_batch)
  <class> in airplane automobile bird cat deer dog frog horse ship truck"""
_TINY_LAYOUT = """  tinyimagenet_test_jpeg.zip
    test/test_<n>.JPEG   (n = 0..9999, 64x64 RGB or greyscale)"""
_FOLDER_LAYOUT = """  root/<class_a>/<image>.jpg|png|...
  root/<class_b>/...          (a directory, or a .zip archive with the same members)"""


def _pil():
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover
        raise ImportError("reading image files needs Pillow: pip install 'infogauss[train]'") from exc
    return Image


def _decode(raw: bytes, size: int | None, resample: str = "box"):
    Image = _pil()
    with Image.open(io.BytesIO(raw)) as im:
        im = im.convert("RGB")
        if size is not None and im.size != (size, size):
            im = im.resize((size, size), Image.BOX if resample == "box" else Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


def _stack(arrays: list, where) -> np.ndarray:
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"images under {str(where)!r} have different sizes {sorted(shapes)[:4]}; "
                         "pass `size=` to resize them")
    return np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))


def _cached(key: str, build) -> tuple[np.ndarray, np.ndarray]:
    d = cache_dir()
    fi, fl = d / f"{key}-images.npy", d / f"{key}-labels.npy"
    if fi.exists() and fl.exists():
        try:
            return np.load(fi), np.load(fl)
        except (OSError, ValueError):
            pass  # a damaged cache entry is rebuilt
    images, labels = build()
    atomic_save_npy(fi, images)
    atomic_save_npy(fl, labels)
    return images, labels


def _members(path: Path) -> list[tuple[PurePosixPath, object]]:
    """(relative posix path, reader) for every image file in a directory or a zip."""
    if path.is_dir():
        return [(PurePosixPath(p.relative_to(path).as_posix()), p.read_bytes)
                for p in sorted(path.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
    zf = zipfile.ZipFile(path)
    return [(PurePosixPath(n), (lambda n=n: zf.read(n))) for n in sorted(zf.namelist())
            if PurePosixPath(n).suffix.lower() in IMAGE_SUFFIXES]


def load_image_folder(path, size: int | None = None, cache: bool = True) -> LabeledImages:
    """Read an ImageFolder tree (``root/<class>/<image>``), as a directory or a zip archive.

    Classes are the sorted sub-folder names (torchvision's convention) and images are ordered
    by path, for directories and zips alike; a zip may wrap the tree
    in one top folder. Images are converted to RGB, optionally resized to ``size`` x ``size``
    (Pillow BOX filter), decoded once and cached.

    Parameters
    ----------
    path : str or Path
        Directory or ``.zip``.
    size : int, optional
        Resize every image to ``size`` x ``size``; needed when sizes differ.
    cache : bool, default=True

    Returns
    -------
    LabeledImages
    """
    path = Path(path)
    if not (path.is_dir() or (path.is_file() and zipfile.is_zipfile(path))):
        raise missing("image folder", path, _FOLDER_LAYOUT, "point `path` at the folder or zip")
    entries = _members(path)
    if entries and all(len(p.parts) >= 3 for p, _ in entries) and len({p.parts[0] for p, _ in entries}) == 1:
        entries = [(PurePosixPath(*p.parts[1:]), r) for p, r in entries]
    entries = [(p, r) for p, r in entries if len(p.parts) == 2]
    if not entries:
        raise missing("images", path, _FOLDER_LAYOUT, "one sub-folder of images per class")
    classes = tuple(sorted({p.parts[0] for p, _ in entries}))
    index = {c: i for i, c in enumerate(classes)}

    def build():
        imgs = [_decode(r(), size) for _, r in entries]
        return _stack(imgs, path), np.array([index[p.parts[0]] for p, _ in entries], np.int64)

    if not cache:
        images, labels = build()
    else:
        images, labels = _cached(f"folder-{path.stem}-{file_key(path, size)}", build)
    return LabeledImages(images, labels, classes)


def load_cifar10_zip(path, split: str = "train", cache: bool = True) -> LabeledImages:
    """CIFAR-10 from the shared JPEG zip (``cifar10_jpeg.zip``), in the official order.

    Members ``<split>/<class>/<index>.jpg`` are sorted by ``<index>`` (the position in the
    official batches); labels follow the standard class order airplane ... truck.

    Parameters
    ----------
    path : str or Path
    split : {"train", "test"}
    cache : bool, default=True
        Decode once (about 10-20 s) and keep uint8 ``.npy`` files in the cache directory.

    Returns
    -------
    LabeledImages with images (N, 3, 32, 32) uint8.
    """
    if split not in ("train", "test"):
        raise ValueError(f"`split` must be 'train' or 'test', got {split!r}")
    path = Path(path)
    how = "copy the shared cifar10_jpeg.zip (../shared/data) or use load_cifar10 on the official pickles"
    if not path.is_file():
        raise missing("CIFAR-10 zip", path, _CIFAR_ZIP_LAYOUT, how)
    try:
        zf = zipfile.ZipFile(path)
        names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise missing("CIFAR-10 zip", path, _CIFAR_ZIP_LAYOUT, how) from exc
    index = {c: i for i, c in enumerate(CIFAR10_CLASSES)}
    rows = []
    for n in names:
        p = PurePosixPath(n)
        if len(p.parts) == 3 and p.parts[0] == split and p.parts[1] in index and p.stem.isdigit():
            rows.append((int(p.stem), index[p.parts[1]], n))
    if not rows:
        raise missing(f"CIFAR-10 {split} images", path, _CIFAR_ZIP_LAYOUT, how)
    rows.sort()

    def build():
        imgs = [_decode(zf.read(n), None) for _, _, n in rows]
        return _stack(imgs, path), np.array([y for _, y, _ in rows], np.int64)

    if not cache:
        images, labels = build()
    else:
        images, labels = _cached(f"cifar10zip-{split}-{file_key(path)}", build)
    return LabeledImages(images, labels, CIFAR10_CLASSES)


def load_tinyimagenet_zip(path, mode: str = "resize", seed: int = 0, cache: bool = True) -> LabeledImages:
    """The Tiny ImageNet test images at 32x32, the classic CIFAR-10 OOD sets.

    Parameters
    ----------
    path : str or Path
        ``tinyimagenet_test_jpeg.zip`` (members ``test/test_<n>.JPEG``).
    mode : {"resize", "crop"}
        ``resize``: 64 -> 32 with Pillow's BOX filter (a 2x2 average); ``crop``: a random 32x32
        crop per image, offsets from ``numpy.random.default_rng(seed)``.
    seed : int, default=0
        Used by ``crop`` only.

    Returns
    -------
    LabeledImages with labels all -1 and classes ``()``, images sorted by ``<n>``.
    """
    if mode not in ("resize", "crop"):
        raise ValueError(f"`mode` must be 'resize' or 'crop', got {mode!r}")
    path = Path(path)
    how = "copy the shared tinyimagenet_test_jpeg.zip (../shared/data)"
    try:
        zf = zipfile.ZipFile(path)
        names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise missing("Tiny ImageNet zip", path, _TINY_LAYOUT, how) from exc
    rows = []
    for n in names:
        stem = PurePosixPath(n).stem
        is_image = PurePosixPath(n).suffix.lower() in IMAGE_SUFFIXES
        if is_image and stem.startswith("test_") and stem[5:].isdigit():
            rows.append((int(stem[5:]), n))
    if not rows:
        raise missing("Tiny ImageNet test images", path, _TINY_LAYOUT, how)
    rows.sort()

    def build():
        if mode == "resize":
            imgs = [_decode(zf.read(n), 32, "box") for _, n in rows]
        else:
            rng = np.random.default_rng(seed)
            imgs = []
            for _, n in rows:
                full = _decode(zf.read(n), None)
                h, w = full.shape[:2]
                i, j = rng.integers(0, h - 32 + 1), rng.integers(0, w - 32 + 1)
                imgs.append(full[i:i + 32, j:j + 32])
        return _stack(imgs, path), np.full(len(rows), -1, np.int64)

    key = f"tinyimagenet-{mode}-{seed if mode == 'crop' else 0}-{file_key(path)}"
    images, labels = build() if not cache else _cached(key, build)
    return LabeledImages(images, labels, ())


def jpeg_roundtrip(images, quality: int = 75) -> np.ndarray:
    """Re-encode uint8 images (N, 3, H, W) as JPEG at ``quality`` and decode them again.

    Used to give a lossless OOD set the same compression artefacts as the JPEG copy of
    CIFAR-10 in ``../shared/data`` (quality about 75), so that a detector cannot separate the
    sets by compression alone. Pillow's encoder, 4:2:0 chroma subsampling (its default).

    Returns
    -------
    ndarray of uint8, shape (N, 3, H, W)
    """
    images = check_images(images)
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ValueError(f"`quality` must be an integer in [1, 100], got {quality!r}")
    Image = _pil()
    out = np.empty_like(images)
    for i, img in enumerate(images.transpose(0, 2, 3, 1)):
        buf = io.BytesIO()
        Image.fromarray(img, mode="RGB").save(buf, format="JPEG", quality=int(quality))
        out[i] = _decode(buf.getvalue(), None).transpose(2, 0, 1)
    return out
