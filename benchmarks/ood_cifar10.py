"""Compatibility shim: this benchmark is :mod:`infogauss.bench.ood_cifar10`.

Run it as ``infogauss bench ood`` or ``python -m infogauss.bench.ood_cifar10``.
This file only re-exports that module, for scripts that import it from ``benchmarks/``
(``gpu_paper_run.py``).
"""

from infogauss.bench.ood_cifar10 import *  # noqa: F403
from infogauss.bench.ood_cifar10 import main

if __name__ == "__main__":
    raise SystemExit(main())
