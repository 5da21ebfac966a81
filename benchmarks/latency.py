"""Compatibility shim: this benchmark is :mod:`infogauss.bench.latency`.

Run it as ``infogauss bench latency`` or ``python -m infogauss.bench.latency``.
This file only re-exports that module, for scripts that import it from ``benchmarks/``
(``gpu_paper_run.py``).
"""

from infogauss.bench.latency import *  # noqa: F403
from infogauss.bench.latency import main

if __name__ == "__main__":
    raise SystemExit(main())
