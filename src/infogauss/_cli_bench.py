"""``infogauss bench NAME [ARGS...]``: run a benchmark script of a source checkout.

The scripts live in ``benchmarks/`` next to ``src/`` (they are thin layers over the public
API and write JSON under ``benchmarks/results/``); they are not part of an installed wheel.
Aliases: ``ood`` → ``ood_cifar10``, ``retrieval`` → ``retrieval_cifar10``, ``table1`` →
``paper_table1``, ``speed`` → ``scoring_speed``, ``train`` → ``train_cifar10``,
``throughput`` → ``train_throughput``, ``scale`` → ``scale``.
"""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

ALIASES = {
    "ood": "ood_cifar10",
    "retrieval": "retrieval_cifar10",
    "table1": "paper_table1",
    "speed": "scoring_speed",
    "train": "train_cifar10",
    "throughput": "train_throughput",
    "scale": "scale",
}


def benchmarks_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "benchmarks"


def available() -> list[str]:
    d = benchmarks_dir()
    return sorted(p.stem for p in d.glob("*.py") if not p.stem.startswith("_")) if d.is_dir() else []


def configure_bench(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help=f"benchmark: one of {sorted(ALIASES)} or a script name")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")


def run_bench(args: argparse.Namespace) -> int:
    name = ALIASES.get(args.name, args.name)
    script = benchmarks_dir() / f"{name}.py"
    if not script.is_file():
        have = ", ".join(available()) or "none (benchmarks/ ships with the source checkout only)"
        print(f"infogauss bench: error: no benchmark {args.name!r}; available: {have}", file=sys.stderr)
        return 2
    argv = list(args.args)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [str(script), *argv]
    sys.path.insert(0, str(script.parent))
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        return (
            int(exc.code or 0)
            if not isinstance(exc.code, str)
            else (print(exc.code, file=sys.stderr) or 1)
        )
    finally:
        sys.argv, sys.path[:] = old_argv, old_path
    return 0
