"""Optional download of CIFAR-10 and SVHN from their official URLs, checksum-verified.

Nothing is downloaded implicitly: the readers raise an error that points here. Files are
streamed to a temporary name, hashed while written, and moved into place only if the checksum
matches.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.request
from pathlib import Path

__all__ = ["download_url", "download_cifar10", "download_svhn", "CIFAR10_URL", "SVHN_URLS"]

CIFAR10_URL = ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
               "c58f30108f718f92721af3b95e74349a")  # md5 published on the CIFAR page
SVHN_URLS = {
    "train": ("http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
              "e26dedcc434d2e4c54c9b2d4a06d8373"),
    "test": ("http://ufldl.stanford.edu/housenumbers/test_32x32.mat",
             "eb5a983be6a315427106f1b164d9cef3"),
    "extra": ("http://ufldl.stanford.edu/housenumbers/extra_32x32.mat",
              "a93ce644f1a588dc4d68dda5feec44a7"),
}


def download_url(url: str, dest, md5: str | None = None, sha256: str | None = None,
                 timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` and verify its md5 and/or sha256.

    Raises
    ------
    ValueError
        On a checksum mismatch (nothing is left at ``dest``) or when no checksum is given.
    OSError
        On network errors.
    """
    if not (md5 or sha256):
        raise ValueError("`md5` or `sha256` must be given to verify the download, got neither")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    h_md5, h_sha = hashlib.md5(), hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:  # noqa: S310
            while chunk := r.read(1 << 20):
                f.write(chunk)
                h_md5.update(chunk)
                h_sha.update(chunk)
        for name, want, h in (("md5", md5, h_md5), ("sha256", sha256, h_sha)):
            if want and h.hexdigest() != want.lower():
                raise ValueError(f"checksum mismatch for {url}: expected {name} {want}, "
                                 f"got {h.hexdigest()}")
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


def download_cifar10(root, url: str = CIFAR10_URL[0], md5: str | None = CIFAR10_URL[1],
                     sha256: str | None = None) -> Path:
    """Fetch and extract ``cifar-10-python.tar.gz`` into ``root``; return the batches dir.

    Skips the download when ``root/cifar-10-batches-py`` already holds every batch.
    """
    root = Path(root)
    out = root / "cifar-10-batches-py"
    want = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    if all((out / w).is_file() for w in want):
        return out
    archive = download_url(url, root / "cifar-10-python.tar.gz", md5=md5, sha256=sha256)
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.name.startswith("cifar-10-batches-py")]
        if not members:
            raise ValueError(f"`url` {url} did not hold a cifar-10-batches-py archive")
        tmpdir = root / f".extract.{os.getpid()}"
        try:
            tar.extractall(tmpdir, members=members, filter="data")
            if out.exists():
                shutil.rmtree(out)
            os.replace(tmpdir / "cifar-10-batches-py", out)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
    archive.unlink()
    return out


def download_svhn(root, split: str = "train", url: str | None = None, md5: str | None = None,
                  sha256: str | None = None) -> Path:
    """Fetch ``<split>_32x32.mat`` into ``root`` (skipped when present); return its path."""
    if split not in SVHN_URLS:
        raise ValueError(f"`split` must be one of {sorted(SVHN_URLS)}, got {split!r}")
    dest = Path(root) / f"{split}_32x32.mat"
    if dest.is_file():
        return dest
    default_url, default_md5 = SVHN_URLS[split]
    if url is None:
        url, md5 = default_url, md5 or default_md5
    return download_url(url, dest, md5=md5, sha256=sha256)
