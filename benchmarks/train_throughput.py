"""Compatibility shim: this benchmark is :mod:`infogauss.bench.train_throughput`.

Run it as ``infogauss bench throughput`` or ``python -m infogauss.bench.train_throughput``.
This file only re-exports that module, for scripts that import it from ``benchmarks/``
(``gpu_paper_run.py``).
"""

from infogauss.bench.train_throughput import *  # noqa: F403
from infogauss.bench.train_throughput import main

if __name__ == "__main__":
    raise SystemExit(main())
