"""Compatibility shim: this benchmark is :mod:`infogauss.bench.paper_table1`.

Run it as ``infogauss bench table1`` or ``python -m infogauss.bench.paper_table1``.
This file only re-exports that module, for scripts that import it from ``benchmarks/``
(``gpu_paper_run.py``).
"""

from infogauss.bench.paper_table1 import *  # noqa: F403
from infogauss.bench.paper_table1 import main

if __name__ == "__main__":
    raise SystemExit(main())
