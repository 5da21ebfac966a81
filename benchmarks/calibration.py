"""Compatibility shim: this benchmark is :mod:`infogauss.bench.calibration`.

Run it as ``infogauss bench calibration`` or ``python -m infogauss.bench.calibration``.
This file only re-exports that module, for scripts that import it from ``benchmarks/``
(``gpu_paper_run.py``).
"""

from infogauss.bench.calibration import *  # noqa: F403
from infogauss.bench.calibration import main

if __name__ == "__main__":
    raise SystemExit(main())
