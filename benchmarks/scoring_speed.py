"""Compatibility shim: this benchmark is :mod:`infogauss.bench.scoring_speed`.

Run it as ``infogauss bench speed`` or ``python -m infogauss.bench.scoring_speed``.
This file only re-exports that module, for scripts that import it from ``benchmarks/``
(``gpu_paper_run.py``).
"""

from infogauss.bench.scoring_speed import *  # noqa: F403
from infogauss.bench.scoring_speed import main

if __name__ == "__main__":
    raise SystemExit(main())
