"""Compatibility shim: this benchmark is :mod:`infogauss.bench.report`.

Run it as ``infogauss bench report`` or ``python -m infogauss.bench.report``.
This file only re-exports that module, for scripts that import it from ``benchmarks/``
(``gpu_paper_run.py``).
"""

from infogauss.bench.report import *  # noqa: F403
from infogauss.bench.report import main

if __name__ == "__main__":
    raise SystemExit(main())
