"""Compatibility shim: this benchmark is :mod:`infogauss.bench.embedding_sets`.

Run it as ``infogauss bench sets`` or ``python -m infogauss.bench.embedding_sets``.
This file only re-exports that module, for scripts that import it from ``benchmarks/``
(``gpu_paper_run.py``).
"""

from infogauss.bench.embedding_sets import *  # noqa: F403
from infogauss.bench.embedding_sets import main

if __name__ == "__main__":
    raise SystemExit(main())
