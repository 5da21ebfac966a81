"""Real text that ships with the machine: Debian package descriptions (no download).

``apt-cache dumpavail`` lists every package the machine's apt lists know (after
``apt-get update``) with its ``Section`` and ``Description``. Sections make natural in- and
out-of-distribution groups for text embeddings (e.g. ``python`` vs ``fonts``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable

__all__ = ["debian_package_descriptions"]

_SECTION = re.compile(r"^Section: (?:\S+/)?(\S+)$", re.MULTILINE)
_DESCRIPTION = re.compile(r"^Description(?:-en)?: (.+(?:\n .+)*)", re.MULTILINE)


def debian_package_descriptions(
    sections: Iterable[str] | None = None, *, long: bool = False, timeout: float = 300.0
) -> dict[str, list[str]] | None:
    """Unique package descriptions by section, from ``apt-cache dumpavail``.

    Parameters
    ----------
    sections : iterable of str, optional
        Keep only these sections (``python``, ``fonts``, ...; the ``contrib/`` or
        ``non-free/`` prefix is dropped). Default: every section.
    long : bool, default=False
        False: the one-line synopsis; True: synopsis and long description as one paragraph.
    timeout : float
        Seconds allowed for ``apt-cache``.

    Returns
    -------
    dict of str to list of str, or None
        Sorted unique descriptions per section; None when ``apt-cache`` is not installed or
        fails (e.g. no package lists: run ``apt-get update``).
    """
    if shutil.which("apt-cache") is None:
        return None
    try:
        dump = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True,
                              timeout=timeout, check=True).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    keep = None if sections is None else set(sections)
    out: dict[str, set[str]] = {}
    for stanza in dump.split("\n\n"):
        section, desc = _SECTION.search(stanza), _DESCRIPTION.search(stanza)
        if not (section and desc) or (keep is not None and section.group(1) not in keep):
            continue
        lines = desc.group(1).splitlines()
        text = " ".join(x.strip() for x in (lines if long else lines[:1]) if x.strip() != ".")
        out.setdefault(section.group(1), set()).add(text.strip())
    return {k: sorted(v) for k, v in out.items()} or None
