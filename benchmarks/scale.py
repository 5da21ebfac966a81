"""Compatibility shim: this benchmark is :mod:`infogauss.bench.scale`.

Run it as ``infogauss bench scale`` or ``python -m infogauss.bench.scale``.
This file only re-exports that module, for scripts that import it from ``benchmarks/``
(``gpu_paper_run.py``).
"""

from infogauss.bench.scale import *  # noqa: F403
from infogauss.bench.scale import main

if __name__ == "__main__":
    raise SystemExit(main())
