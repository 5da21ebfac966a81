"""Official on-disk formats: CIFAR-10 python pickles, SVHN ``.mat``, ``.npz``/``.npy`` arrays."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ._archive import MAX_BYTES, MAX_MEMBERS, MAX_RATIO, check_sizes, make_limits, open_zip
from ._common import CIFAR10_CLASSES, LabeledImages, UnsafeDataError, check_images, missing
from ._unpickle import restricted_loads

__all__ = ["load_cifar10", "load_cifar_batch", "load_svhn", "load_arrays", "CIFAR10_LAYOUT",
           "SVHN_LAYOUT"]

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


_LABEL_KEYS = ("labels", "fine_labels", "coarse_labels")


def _key(batch: dict, name: str):
    """The official files use bytes keys (Python 2 str); re-pickled copies often use str."""
    return name.encode() if name.encode() in batch else name


def _int_labels(labels, key: str, where: str) -> np.ndarray:
    if isinstance(labels, np.ndarray):
        ok = labels.ndim == 1 and (labels.dtype.kind in "iu" or labels.size == 0)
        out = labels.astype(np.int64) if ok else None
    else:
        ok = isinstance(labels, list) and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in labels)
        out = np.array(labels, dtype=np.int64) if ok else None
    if out is None:
        raise ValueError(f"{where}: {key!r} must be a list of ints, got {type(labels).__name__}"
                         + (f" of dtype {labels.dtype}" if isinstance(labels, np.ndarray) else ""))
    if out.size and out.min() < 0:
        raise ValueError(f"{where}: {key!r} must be non-negative, got {int(out.min())}")
    return out


def load_cifar_batch(path) -> dict:
    """Read one CIFAR-10 or CIFAR-100 python batch (or ``batches.meta``/``meta``) safely.

    The official files are pickles. They are read with a restricted unpickler that builds only
    dicts, lists, str/bytes, numbers and numpy arrays of numbers rebuilt from raw bytes; any
    other global (``os.system``, ``builtins.eval``, object arrays, ...) is refused before it
    is called. Pickles written by Python 2 or 3, with any protocol, load bit-identically to
    ``pickle.load(f, encoding="bytes")``.

    Parameters
    ----------
    path : str or Path
        A batch file (``data_batch_1`` ... ``test_batch``, CIFAR-100 ``train``/``test``) or a
        meta file.

    Returns
    -------
    dict
        The pickled dict, keys as written (bytes in the official files). When it holds
        ``data``, that is uint8 of shape (N, 3072) (red, green, blue planes of 32x32), and every
        of ``labels``, ``fine_labels``, ``coarse_labels`` present is an int64 ndarray of shape
        (N,).

    Raises
    ------
    UnsafeDataError
        The pickle names a global or opcode outside the format (nothing was run).
    ValueError
        The file is not a pickled dict, or ``data``/labels have the wrong type or shape.

    Examples
    --------
    >>> import pathlib, pickle, tempfile, numpy as np
    >>> with tempfile.TemporaryDirectory() as d:
    ...     f = pathlib.Path(d, "data_batch_1")
    ...     _ = f.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 5]}))
    ...     batch = load_cifar_batch(f)
    >>> batch[b"data"].shape, batch[b"labels"].tolist()
    ((2, 3072), [3, 5])
    """
    where = str(path)
    batch = restricted_loads(Path(path).read_bytes(), where)
    if not isinstance(batch, dict):
        raise ValueError(f"{where}: a CIFAR batch must be a pickled dict, got {type(batch).__name__}")
    n = None
    if (k := _key(batch, "data")) in batch:
        data = batch[k]
        if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
                and data.shape[1] == 3072):
            got = (f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray)
                   else type(data).__name__)
            raise ValueError(f"{where}: 'data' must be a uint8 array of shape (N, 3072), got {got}")
        n = len(data)
    for name in _LABEL_KEYS:
        if (k := _key(batch, name)) in batch:
            batch[k] = labels = _int_labels(batch[k], name, where)
            if n is not None and len(labels) != n:
                raise ValueError(f"{where}: {name!r} must have {n} entries (one per image), "
                                 f"got {len(labels)}")
    return batch


def load_cifar10(root, split: str = "train") -> LabeledImages:
    """CIFAR-10 from the official ``cifar-10-batches-py`` pickles.

    Each batch is read with :func:`load_cifar_batch` (a restricted unpickler: a crafted batch
    cannot run code); images come out in the official order as uint8 (N, 3, 32, 32).

    Parameters
    ----------
    root : str or Path
        Directory holding ``cifar-10-batches-py`` (or that directory itself).
    split : {"train", "test"}

    Returns
    -------
    LabeledImages

    Raises
    ------
    UnsafeDataError
        A batch names a global outside the CIFAR format (nothing in it was run).
    ValueError
        A batch is missing, truncated or of the wrong shape.
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
            batch = load_cifar_batch(f)
        except UnsafeDataError as exc:
            raise UnsafeDataError(f"{exc}. The official batches hold only dicts, lists, bytes, ints "
                                  f"and uint8 arrays; get a clean copy with {_CIFAR_HOW}") from None
        except (OSError, ValueError) as exc:
            raise missing(f"CIFAR-10 file {name!r} (corrupt: {exc})", f, CIFAR10_LAYOUT, _CIFAR_HOW) from exc
        kd, kl = _key(batch, "data"), _key(batch, "labels")
        if kd not in batch or kl not in batch:
            raise missing(f"CIFAR-10 file {name!r} (corrupt: no 'data' and 'labels', got keys "
                          f"{sorted(map(str, batch))})", f, CIFAR10_LAYOUT, _CIFAR_HOW)
        labels = batch[kl]
        if labels.size and labels.max() >= len(CIFAR10_CLASSES):
            raise missing(f"CIFAR-10 file {name!r} (corrupt: label {int(labels.max())} is not in 0..9)",
                          f, CIFAR10_LAYOUT, _CIFAR_HOW)
        xs.append(batch[kd].reshape(-1, 3, 32, 32))
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


def load_arrays(path, images_key: str = "images", labels_key: str = "labels", *,
                max_bytes: int | None = MAX_BYTES, max_ratio: float | None = MAX_RATIO) -> LabeledImages:
    """Images (and labels) from a ``.npz`` (keys ``images``/``labels``, or ``x``/``y``) or a
    ``.npy`` of images. Channels-last (N, H, W, 3) uint8 is transposed to (N, 3, H, W).

    Read with ``allow_pickle=False``, so object arrays are refused. An ``.npz`` is a zip: its
    directory is first checked as in :func:`load_image_folder` (member names, total
    uncompressed size ``max_bytes``, compression ratio ``max_ratio``; ``None`` = no limit).

    Returns
    -------
    LabeledImages (labels -1 when absent).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"`path` must be an existing .npz or .npy file, got {str(path)!r}")
    limits = make_limits("load_arrays", MAX_MEMBERS, max_bytes, None, max_ratio)
    if path.suffix != ".npy" and zipfile.is_zipfile(path):
        try:
            zf = open_zip(path, limits)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ValueError(f"`path` {str(path)!r} is not a readable .npz/.npy file: {exc}") from exc
        with zf:
            check_sizes(path, zf.infolist(), limits)
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
