"""``infogauss bench NAME [ARGS...]``: run a benchmark.

A benchmark is a module of the installed package, ``infogauss.bench.<name>`` (its
``main(argv) -> int``; ``NAME`` may be one of :data:`infogauss.bench.ALIASES`: ``ood``,
``retrieval``, ``table1``, ``speed``, ``train``, ``throughput``, ``scale``, ``latency``,
``calibration``, ``sets``, ``report``), so it runs from an installed wheel. A name that is no
module of the package is looked up as a script ``benchmarks/<name>.py`` of the source
checkout (run as ``__main__``). Benchmarks write their results (JSON) themselves; ``ARGS`` go
to the benchmark unchanged. With ``--json`` (given before ``NAME``) the benchmark's own stdout
goes to stderr and stdout holds one object with its name, what ran and its exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import re
import runpy
import sys
from collections.abc import Callable
from pathlib import Path

from ..bench import ALIASES
from ._common import emit

PACKAGE = "infogauss.bench"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def benchmarks_dir() -> Path:
    """``benchmarks/`` of the source checkout this package is imported from."""
    return Path(__file__).resolve().parents[3] / "benchmarks"


def available() -> list[str]:
    """Benchmarks that can run: modules of :data:`PACKAGE` and scripts of the checkout."""
    names: set[str] = set()
    try:
        package = importlib.import_module(PACKAGE)
    except ImportError:
        pass
    else:
        import pkgutil

        modules = pkgutil.iter_modules(package.__path__)
        names |= {m.name for m in modules if not m.name.startswith("_")}
    d = benchmarks_dir()
    if d.is_dir():
        names |= {p.stem for p in d.glob("*.py") if not p.stem.startswith("_")}
    return sorted(names)


def _package_main(name: str) -> Callable[[list[str]], int] | None:
    """``infogauss.bench.<name>.main``, or None when that module does not exist."""
    target = f"{PACKAGE}.{name}"
    try:
        module = importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name in (PACKAGE, target, "infogauss.bench"):
            return None
        raise
    main = getattr(module, "main", None)
    if not callable(main):
        raise RuntimeError(f"benchmark module {target} has no main(argv)")
    return main


def _exit_status(exc: SystemExit) -> int:
    if exc.code is None or isinstance(exc.code, int):
        return int(exc.code or 0)
    print(exc.code, file=sys.stderr)  # sys.exit("message"): the script's own error line
    return 1


def _run_script(script: Path, argv: list[str]) -> int:
    old_argv = sys.argv
    sys.argv = [str(script), *argv]
    try:
        runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        return _exit_status(exc)
    finally:
        sys.argv = old_argv
    return 0


def configure_bench(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME",
                        help=f"benchmark: one of {sorted(ALIASES)} or a module/script name")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")


def run_bench(args: argparse.Namespace) -> int:
    name = ALIASES.get(args.name, args.name)
    argv = list(args.args)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    main = _package_main(name) if _NAME.match(name) else None
    script = benchmarks_dir() / f"{name}.py"
    if main is None and not script.is_file():
        have = ", ".join(available()) or "none"
        raise ValueError(f"`NAME` must be a benchmark, got {args.name!r}; available: {have}")
    target = f"{PACKAGE}.{name}" if main is not None else str(script)
    quiet = bool(getattr(args, "json", None))
    with contextlib.redirect_stdout(sys.stderr) if quiet else contextlib.nullcontext():
        if main is not None:
            old_argv = sys.argv
            sys.argv = [f"infogauss bench {args.name}", *argv]  # argparse's prog in --help
            try:
                status = int(main(argv) or 0)
            except SystemExit as exc:
                status = _exit_status(exc)
            finally:
                sys.argv = old_argv
        else:
            status = _run_script(script, argv)
    if quiet:
        emit(args, {"name": name, "ran": target, "exit_status": status}, "")
    return status
