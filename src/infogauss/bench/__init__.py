"""The benchmarks: configuration plus a loop over the public API, one module each.

Run one as ``infogauss bench NAME [ARGS]`` (``NAME`` a module below or one of its
:data:`ALIASES`) or ``python -m infogauss.bench.<module>``; ``--help`` lists its options.

=================  ======================  ====================================================
alias              module                  what it measures
=================  ======================  ====================================================
``ood``            ``ood_cifar10``         OOD detectors on an embedding set, with baselines
``ood_suite``      ``ood_suite``           every detector vs strong baselines on every set
``retrieval``      ``retrieval_cifar10``   calibrated retrieval vs raw and whitened cosine
``table1``         ``paper_table1``        the paper's Table 1 next to null-aware diagnostics
``speed``          ``scoring_speed``       fit and scoring throughput against the GEMM rate
``train``          ``train_cifar10``       InfoNCE (or cross-entropy) training on CIFAR-10
``throughput``     ``train_throughput``    training-step img/s per encoder and precision
``scale``          ``scale``               out-of-core and Dask fits, a projection to 10⁹ rows
``latency``        ``latency``             small-batch scoring latency against a numpy floor
``calibration``    ``calibration``         nominal vs observed false-alarm rates
``near_dup``       ``near_duplicates``     near-duplicate search: false-match rate and recall
``route2``         ``route2``              the route-2 regulariser runs side by side
``sets``           ``embedding_sets``      builds the non-CIFAR embedding sets
(none)             ``embed_cifar10``       embeds CIFAR-10 and the OOD image sets
``report``         ``report``              BENCHMARKS.md and README's results block
=================  ======================  ====================================================

Every benchmark writes one results file in the schema of :func:`infogauss._io.write_results`
(``{"benchmark", "schema", "config", "environment", ...}``) to ``--out``. Without ``--out``
it writes into ``benchmarks/results/`` of the source checkout it is run from (the current
directory or a parent of it holding ``benchmarks/results/``); outside a checkout into
``./runs/benchmarks/``. Smoke-sized runs (``--quick``, ``--preset smoke``) write under
``runs/benchmarks/`` (untracked) either way. Reusable parts live here, tested once: the
baseline detectors (:mod:`infogauss.bench._baselines`), the markdown renderers
(:mod:`infogauss.bench._render`) and logging (:mod:`infogauss.bench._env`). Modules import
torch, faiss, pyod and dask inside the functions that need them, so ``--help`` works without.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ALIASES", "checkout_root", "results_dir", "scratch_dir", "output_path",
           "shared_data_dir", "write_outputs"]

#: Short names of ``infogauss bench NAME`` -> module of this package.
ALIASES: dict[str, str] = {
    "ood": "ood_cifar10",
    "ood_suite": "ood_suite",
    "retrieval": "retrieval_cifar10",
    "table1": "paper_table1",
    "speed": "scoring_speed",
    "train": "train_cifar10",
    "throughput": "train_throughput",
    "scale": "scale",
    "latency": "latency",
    "calibration": "calibration",
    "near_dup": "near_duplicates",
    "route2": "route2",
    "sets": "embedding_sets",
    "report": "report",
}


def checkout_root(start: str | os.PathLike | None = None) -> Path | None:
    """The source checkout containing ``start`` (default: the current directory), or None.

    A checkout is recognised by its ``benchmarks/results/`` directory, in ``start`` or one of
    its parents.
    """
    here = Path.cwd() if start is None else Path(start)
    here = here.resolve()
    for d in (here, *here.parents):
        if (d / "benchmarks" / "results").is_dir():
            return d
    return None


def results_dir() -> Path:
    """Where results go by default: ``<checkout>/benchmarks/results``, else ``./runs/benchmarks``."""
    root = checkout_root()
    return root / "benchmarks" / "results" if root else Path.cwd() / "runs" / "benchmarks"


def scratch_dir() -> Path:
    """Untracked output of smoke runs: ``<checkout or .>/runs/benchmarks``."""
    return (checkout_root() or Path.cwd()) / "runs" / "benchmarks"


def output_path(out: str | os.PathLike | None, filename: str, *, scratch: bool = False) -> Path:
    """``out`` when given, else ``filename`` in :func:`results_dir` (:func:`scratch_dir`)."""
    if out is not None:
        return Path(out)
    return (scratch_dir() if scratch else results_dir()) / filename


def write_outputs(out: str | os.PathLike, payload: dict, render) -> tuple[Path, Path]:
    """Write a benchmark's results file ``out`` (JSON) and, beside it, ``render(payload)`` as
    its Markdown table (``out`` with the suffix ``.md``); returns both paths."""
    from infogauss import _io

    out = Path(out)
    _io.write_results(out, payload)
    md = _io.write_text(out.with_suffix(".md"), render(payload))
    return out, Path(md)


def shared_data_dir() -> Path:
    """The real image data (``../shared/data`` next to the checkout, or the current directory)."""
    return (checkout_root() or Path.cwd()) / ".." / "shared" / "data"
