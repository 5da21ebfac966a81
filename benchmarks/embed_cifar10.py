"""Compatibility shim: this benchmark is :mod:`infogauss.bench.embed_cifar10`.

Run it as ``infogauss bench embed_cifar10`` or ``python -m infogauss.bench.embed_cifar10``.
This file only re-exports that module, for scripts that import it from ``benchmarks/``
(``gpu_paper_run.py``).
"""

from pathlib import Path

from infogauss.bench.embed_cifar10 import *  # noqa: F403
from infogauss.bench.embed_cifar10 import main

#: ``../shared/data`` next to this checkout (what gpu_paper_run.py imports).
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"

if __name__ == "__main__":
    raise SystemExit(main())
