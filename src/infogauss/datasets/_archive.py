"""Limits on what an image zip or folder may make a reader do; no decoding here.

Every check runs on the zip's central directory (or on ``stat``) before a byte is
decompressed, so a refused archive costs nothing; reads are then bounded by the sizes the
directory declares.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from ._common import UnsafeDataError

MAX_MEMBERS = 2_000_000          # ImageNet-1k train + val is 1.33 M files
MAX_BYTES = 256 * 2**30          # total uncompressed bytes read
MAX_MEMBER_BYTES = 2**30         # one member is read into memory whole
MAX_RATIO = 200.0                # JPEG/PNG deflate barely; ZIP_STORED is 1; deflate's ceiling ~1032
RATIO_FLOOR = 16 * 2**20         # a ratio is judged only on this many uncompressed bytes or more

_DRIVE = re.compile(r"[A-Za-z]:")


class Limits(NamedTuple):
    """Validated limits, and the reader to name in an error (``None`` = no limit)."""

    reader: str
    max_members: int | None = MAX_MEMBERS
    max_bytes: int | None = MAX_BYTES
    max_member_bytes: int | None = MAX_MEMBER_BYTES
    max_ratio: float | None = MAX_RATIO


def make_limits(reader: str, max_members, max_bytes, max_member_bytes, max_ratio) -> Limits:
    for name, v in (("max_members", max_members), ("max_bytes", max_bytes),
                    ("max_member_bytes", max_member_bytes)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"`{name}` must be a positive int or None (no limit), got {v!r}")
    if max_ratio is not None and (isinstance(max_ratio, bool) or not isinstance(max_ratio, (int, float))
                                  or not max_ratio >= 1):
        raise ValueError(f"`max_ratio` must be a number >= 1 or None (no limit), got {max_ratio!r}")
    return Limits(reader, max_members, max_bytes, max_member_bytes, max_ratio)


def _over(where, what: str, got, kw: str, limit, limits: Limits) -> UnsafeDataError:
    return UnsafeDataError(
        f"{where}: {what} ({got:,}) exceeds the limit `{kw}={limit:,}`; if you trust this data, "
        f"pass a larger `{kw}=` (or `{kw}=None` for no limit) to {limits.reader}")


def check_name(where, name: str) -> None:
    """Refuse member names that are absolute, carry a drive letter or a ``..`` component."""
    parts = re.split(r"[\\/]", name)
    if (name.startswith(("/", "\\")) or _DRIVE.match(name) or ".." in parts or "\x00" in name):
        raise UnsafeDataError(f"{where}: member {name!r}: unsafe path (absolute, drive letter or "
                              "'..' component); the archive is refused")


def open_zip(path: Path, limits: Limits) -> zipfile.ZipFile:
    """Open a zip and check its member count and every member name.

    Raises ``zipfile.BadZipFile``/``OSError`` for an unreadable file (the caller words those),
    :class:`UnsafeDataError` for a limit or a name.
    """
    zf = zipfile.ZipFile(path)
    try:
        infos = zf.infolist()
        if limits.max_members is not None and len(infos) > limits.max_members:
            raise _over(path, "number of members", len(infos), "max_members", limits.max_members, limits)
        for info in infos:
            check_name(path, info.filename)
    except BaseException:
        zf.close()
        raise
    return zf


def check_sizes(path: Path, infos: list, limits: Limits) -> None:
    """Check the members about to be read against the size and compression-ratio limits.

    The ratio (uncompressed / compressed) is judged for each member and, against the archive's
    size on disk, for all of them together (members of a crafted zip may share compressed
    data), but only on ``RATIO_FLOOR`` bytes or more: below that no expansion can do harm.
    """
    total = 0
    for info in infos:
        size = info.file_size
        if limits.max_member_bytes is not None and size > limits.max_member_bytes:
            raise _over(path, f"member {info.filename!r}: uncompressed size", size, "max_member_bytes",
                        limits.max_member_bytes, limits)
        if (limits.max_ratio is not None and size >= RATIO_FLOOR
                and size > limits.max_ratio * max(info.compress_size, 1)):
            ratio = round(size / max(info.compress_size, 1))
            raise _over(path, f"member {info.filename!r}: compression ratio (a zip bomb?)", ratio,
                        "max_ratio", limits.max_ratio, limits)
        total += size
    if limits.max_bytes is not None and total > limits.max_bytes:
        raise _over(path, "total uncompressed size", total, "max_bytes", limits.max_bytes, limits)
    on_disk = max(path.stat().st_size, 1)
    if limits.max_ratio is not None and total >= RATIO_FLOOR and total > limits.max_ratio * on_disk:
        raise _over(path, "uncompressed size / archive size (a zip bomb?)", round(total / on_disk),
                    "max_ratio", limits.max_ratio, limits)


def read_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Read one member, never more than the size its directory entry declares."""
    try:
        with zf.open(info) as f:
            raw = f.read(info.file_size + 1)
    except Exception as exc:  # noqa: BLE001 - bad CRC, zlib, truncation, encryption, ...
        raise ValueError(f"{path}: member {info.filename!r}: cannot read: "
                         f"{type(exc).__name__}: {exc}") from exc
    if len(raw) != info.file_size:
        got = f"more than {info.file_size:,}" if len(raw) > info.file_size else f"{len(raw):,}"
        raise UnsafeDataError(f"{path}: member {info.filename!r}: expands to {got} bytes where the "
                              f"directory declares {info.file_size:,} (corrupt or crafted)")
    return raw


def folder_files(root: Path, suffixes: tuple, limits: Limits) -> list[tuple[PurePosixPath, Path]]:
    """Sorted (relative posix path, path) of the files under ``root`` with one of ``suffixes``.

    Symbolic links to directories are not followed; a symbolic link to a file outside ``root``
    is refused. Every entry walked counts towards ``max_members``; image sizes (from ``stat``)
    count towards ``max_bytes`` and ``max_member_bytes``.
    """
    real_root = root.resolve()
    out, n, total = [], 0, 0
    for dirpath, dirnames, filenames in os.walk(root):  # followlinks=False
        n += len(dirnames) + len(filenames)
        if limits.max_members is not None and n > limits.max_members:
            raise _over(root, "number of entries (at least)", n, "max_members", limits.max_members, limits)
        for fn in filenames:
            p = Path(dirpath, fn)
            if p.suffix.lower() not in suffixes:
                continue
            rel = PurePosixPath(p.relative_to(root).as_posix())
            if p.is_symlink():
                target = p.resolve()
                if not target.is_relative_to(real_root):
                    raise UnsafeDataError(f"{root}: member {str(rel)!r}: a symbolic link to {str(target)!r}, "
                                          "outside the folder; the folder is refused")
            size = p.stat().st_size if p.exists() else 0
            if limits.max_member_bytes is not None and size > limits.max_member_bytes:
                raise _over(root, f"member {str(rel)!r}: size", size, "max_member_bytes",
                            limits.max_member_bytes, limits)
            total += size
            out.append((rel, p))
    if limits.max_bytes is not None and total > limits.max_bytes:
        raise _over(root, "total size of the images", total, "max_bytes", limits.max_bytes, limits)
    out.sort(key=lambda e: e[0])
    return out
