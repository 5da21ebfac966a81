"""Image folders and zip archives of them; the only module that imports Pillow.

Images are decoded once and cached as ``.npy`` (uint8, channels first) under
:func:`~infogauss.datasets.cache_dir`; later loads memory-map nothing and take well under a
second.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from ._archive import (
    MAX_BYTES,
    MAX_MEMBER_BYTES,
    MAX_MEMBERS,
    MAX_RATIO,
    check_sizes,
    folder_files,
    make_limits,
    open_zip,
    read_member,
)
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
# Pillow picks a decoder by content, not by name; only these may run (EPS, for one, would start
# Ghostscript on a file that merely claims to be a .jpg).
_PIL_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "PPM", "WEBP", "TIFF")

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


def _decode(raw: bytes, size: int | None, resample: str = "box", where="<bytes>", name: str = ""):
    """Decode one image to uint8 (H, W, 3); any failure names ``where`` and the member ``name``.

    Pillow's decompression-bomb warning (more than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels) is an
    error here; the global setting itself is left as the user has it.
    """
    Image = _pil()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw), formats=_PIL_FORMATS) as im:
                im = im.convert("RGB")
                if size is not None and im.size != (size, size):
                    im = im.resize((size, size), Image.BOX if resample == "box" else Image.BILINEAR)
                return np.asarray(im, dtype=np.uint8)
    except Exception as exc:  # noqa: BLE001 - Pillow's plugins raise many types on bad input
        hint = ""
        if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
            hint = "; if you trust it, raise PIL.Image.MAX_IMAGE_PIXELS"
        raise ValueError(f"{where}: member {name!r}: cannot decode image: "
                         f"{type(exc).__name__}: {exc}{hint}") from exc


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
            return np.load(fi, allow_pickle=False), np.load(fl, allow_pickle=False)
        except (OSError, ValueError):
            pass  # a damaged cache entry is rebuilt
    images, labels = build()
    atomic_save_npy(fi, images)
    atomic_save_npy(fl, labels)
    return images, labels


def _read_file(root: Path, rel: PurePosixPath, p: Path) -> bytes:
    try:
        return p.read_bytes()
    except OSError as exc:
        raise ValueError(f"{root}: member {str(rel)!r}: cannot read: {exc}") from exc


def load_image_folder(path, size: int | None = None, cache: bool = True, *,
                      max_members: int | None = MAX_MEMBERS, max_bytes: int | None = MAX_BYTES,
                      max_member_bytes: int | None = MAX_MEMBER_BYTES,
                      max_ratio: float | None = MAX_RATIO) -> LabeledImages:
    """Read an ImageFolder tree (``root/<class>/<image>``), as a directory or a zip archive.

    Classes are the sorted sub-folder names (torchvision's convention) and images are ordered
    by path, for directories and zips alike; a zip may wrap the tree
    in one top folder. Images are converted to RGB, optionally resized to ``size`` x ``size``
    (Pillow BOX filter), decoded once and cached.

    Archives are read defensively: member names that are absolute or hold ``..`` are refused,
    symbolic links out of a folder are refused (links to directories are not followed), the
    limits below are checked first, and a member that does not decode raises a ValueError
    naming the archive and the member.

    Parameters
    ----------
    path : str or Path
        Directory or ``.zip``.
    size : int, optional
        Resize every image to ``size`` x ``size``; needed when sizes differ.
    cache : bool, default=True
    max_members, max_bytes, max_member_bytes, max_ratio : int, float or None
        Safety limits, checked before anything is decoded (``None`` = no limit): entries in the
        archive or folder (default 2,000,000), total and per-member uncompressed bytes of the
        images read (256 GiB, 1 GiB), and a zip's compression ratio, per member and overall, on
        16 MiB or more (200). See ``docs/security.md``.

    Returns
    -------
    LabeledImages

    Raises
    ------
    UnsafeDataError
        A limit is exceeded, a member name escapes the archive, or a link leaves the folder.
    ValueError
        A member cannot be read or decoded (the message names the archive and the member).
    """
    path = Path(path)
    limits = make_limits("load_image_folder", max_members, max_bytes, max_member_bytes, max_ratio)
    if path.is_dir():
        files = folder_files(path, IMAGE_SUFFIXES, limits)
        entries = [(rel, str(rel), (lambda rel=rel, p=p: _read_file(path, rel, p))) for rel, p in files]
        return _image_folder(path, entries, size, cache)
    if not (path.is_file() and zipfile.is_zipfile(path)):
        raise missing("image folder", path, _FOLDER_LAYOUT, "point `path` at the folder or zip")
    try:
        zf = open_zip(path, limits)
    except (zipfile.BadZipFile, OSError) as exc:
        raise missing("image folder", path, _FOLDER_LAYOUT, "point `path` at the folder or zip") from exc
    with zf:
        infos = sorted((i for i in zf.infolist() if not i.is_dir()
                        and PurePosixPath(i.filename).suffix.lower() in IMAGE_SUFFIXES),
                       key=lambda i: i.filename)
        return _image_folder(path, [(PurePosixPath(i.filename), i.filename, i) for i in infos],
                             size, cache, zf=zf, limits=limits)


def _image_folder(path: Path, entries: list, size, cache: bool, zf=None, limits=None) -> LabeledImages:
    """``entries``: (relative path, member name, reader) for a folder; for a zip the third item
    is the ZipInfo, checked against ``limits`` once the images to read are known."""
    tops = {p.parts[0] for p, _, _ in entries}
    if entries and all(len(p.parts) >= 3 for p, _, _ in entries) and len(tops) == 1:
        entries = [(PurePosixPath(*p.parts[1:]), n, r) for p, n, r in entries]
    entries = [(p, n, r) for p, n, r in entries if len(p.parts) == 2]
    if not entries:
        raise missing("images", path, _FOLDER_LAYOUT, "one sub-folder of images per class")
    if zf is not None:
        check_sizes(path, [info for _, _, info in entries], limits)
        entries = [(p, n, (lambda info=info: read_member(path, zf, info))) for p, n, info in entries]
    classes = tuple(sorted({p.parts[0] for p, _, _ in entries}))
    index = {c: i for i, c in enumerate(classes)}

    def build():
        imgs = [_decode(r(), size, where=path, name=n) for _, n, r in entries]
        return _stack(imgs, path), np.array([index[p.parts[0]] for p, _, _ in entries], np.int64)

    if not cache:
        images, labels = build()
    else:
        images, labels = _cached(f"folder-{path.stem}-{file_key(path, size)}", build)
    return LabeledImages(images, labels, classes)


def _open(path: Path, what: str, layout: str, how: str, limits) -> zipfile.ZipFile:
    try:
        return open_zip(path, limits)
    except (zipfile.BadZipFile, OSError) as exc:
        raise missing(what, path, layout, how) from exc


def load_cifar10_zip(path, split: str = "train", cache: bool = True, *,
                     max_members: int | None = MAX_MEMBERS, max_bytes: int | None = MAX_BYTES,
                     max_member_bytes: int | None = MAX_MEMBER_BYTES,
                     max_ratio: float | None = MAX_RATIO) -> LabeledImages:
    """CIFAR-10 from the shared JPEG zip (``cifar10_jpeg.zip``), in the official order.

    Members ``<split>/<class>/<index>.jpg`` are sorted by ``<index>`` (the position in the
    official batches); labels follow the standard class order airplane ... truck. The archive
    is checked as in :func:`load_image_folder`.

    Parameters
    ----------
    path : str or Path
    split : {"train", "test"}
    cache : bool, default=True
        Decode once and keep uint8 ``.npy`` files in the cache directory.
    max_members, max_bytes, max_member_bytes, max_ratio : int, float or None
        Safety limits, as in :func:`load_image_folder`.

    Returns
    -------
    LabeledImages with images (N, 3, 32, 32) uint8.
    """
    if split not in ("train", "test"):
        raise ValueError(f"`split` must be 'train' or 'test', got {split!r}")
    path = Path(path)
    limits = make_limits("load_cifar10_zip", max_members, max_bytes, max_member_bytes, max_ratio)
    how = "copy the shared cifar10_jpeg.zip (../shared/data) or use load_cifar10 on the official pickles"
    if not path.is_file():
        raise missing("CIFAR-10 zip", path, _CIFAR_ZIP_LAYOUT, how)
    index = {c: i for i, c in enumerate(CIFAR10_CLASSES)}
    with _open(path, "CIFAR-10 zip", _CIFAR_ZIP_LAYOUT, how, limits) as zf:
        rows = []
        for info in zf.infolist():
            p = PurePosixPath(info.filename)
            if len(p.parts) == 3 and p.parts[0] == split and p.parts[1] in index and p.stem.isdigit():
                rows.append((int(p.stem), index[p.parts[1]], info))
        if not rows:
            raise missing(f"CIFAR-10 {split} images", path, _CIFAR_ZIP_LAYOUT, how)
        rows.sort(key=lambda r: (r[0], r[1], r[2].filename))
        check_sizes(path, [info for _, _, info in rows], limits)

        def build():
            imgs = [_decode(read_member(path, zf, info), None, where=path, name=info.filename)
                    for _, _, info in rows]
            return _stack(imgs, path), np.array([y for _, y, _ in rows], np.int64)

        if not cache:
            images, labels = build()
        else:
            images, labels = _cached(f"cifar10zip-{split}-{file_key(path)}", build)
    return LabeledImages(images, labels, CIFAR10_CLASSES)


def load_tinyimagenet_zip(path, mode: str = "resize", seed: int = 0, cache: bool = True, *,
                          max_members: int | None = MAX_MEMBERS, max_bytes: int | None = MAX_BYTES,
                          max_member_bytes: int | None = MAX_MEMBER_BYTES,
                          max_ratio: float | None = MAX_RATIO) -> LabeledImages:
    """The Tiny ImageNet test images at 32x32, the classic CIFAR-10 OOD sets.

    Parameters
    ----------
    path : str or Path
        ``tinyimagenet_test_jpeg.zip`` (members ``test/test_<n>.JPEG``), checked as in
        :func:`load_image_folder`.
    mode : {"resize", "crop"}
        ``resize``: 64 -> 32 with Pillow's BOX filter (a 2x2 average); ``crop``: a random 32x32
        crop per image, offsets from ``numpy.random.default_rng(seed)``.
    seed : int, default=0
        Used by ``crop`` only.
    cache : bool, default=True
    max_members, max_bytes, max_member_bytes, max_ratio : int, float or None
        Safety limits, as in :func:`load_image_folder`.

    Returns
    -------
    LabeledImages with labels all -1 and classes ``()``, images sorted by ``<n>``.
    """
    if mode not in ("resize", "crop"):
        raise ValueError(f"`mode` must be 'resize' or 'crop', got {mode!r}")
    path = Path(path)
    limits = make_limits("load_tinyimagenet_zip", max_members, max_bytes, max_member_bytes, max_ratio)
    how = "copy the shared tinyimagenet_test_jpeg.zip (../shared/data)"
    with _open(path, "Tiny ImageNet zip", _TINY_LAYOUT, how, limits) as zf:
        rows = []
        for info in zf.infolist():
            stem = PurePosixPath(info.filename).stem
            is_image = PurePosixPath(info.filename).suffix.lower() in IMAGE_SUFFIXES
            if is_image and stem.startswith("test_") and stem[5:].isdigit():
                rows.append((int(stem[5:]), info))
        if not rows:
            raise missing("Tiny ImageNet test images", path, _TINY_LAYOUT, how)
        rows.sort(key=lambda r: (r[0], r[1].filename))
        check_sizes(path, [info for _, info in rows], limits)

        def decode(info, size):
            return _decode(read_member(path, zf, info), size, "box", where=path, name=info.filename)

        def build():
            if mode == "resize":
                imgs = [decode(info, 32) for _, info in rows]
            else:
                rng = np.random.default_rng(seed)
                imgs = []
                for _, info in rows:
                    full = decode(info, None)
                    h, w = full.shape[:2]
                    if h < 32 or w < 32:
                        raise ValueError(f"{path}: member {info.filename!r}: {w}x{h} is smaller than "
                                         "the 32x32 crop")
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
        decoded = _decode(buf.getvalue(), None, where="jpeg_roundtrip", name=f"image {i}")
        out[i] = decoded.transpose(2, 0, 1)
    return out
