"""The ``infogauss`` command line: one tree, one set of flag names, one error handler.

::

    infogauss train     --data D --out RUN_DIR [--embed] ...     train an encoder (torch)
    infogauss embed     --checkpoint RUN --data D --out Z.npy     embeddings (+ Z.labels.npy)
    infogauss fit       EMBEDDINGS.npy --out model.npz            streaming Gaussian fit
    infogauss score     model.npz EMBEDDINGS.npy --out scores.npy
    infogauss diagnose  EMBEDDINGS.npy [--out report.json]        how Gaussian are they?
    infogauss ood       fit | score                               Mahalanobis OOD detector
    infogauss retrieve  fit | search                              calibrated retrieval (faiss)
    infogauss demo      [--out DIR]                               the whole pipeline, built-in data
    infogauss bench     NAME [ARGS...]                            a benchmark

Every command writes to ``--out``, prints a human summary on stdout or, with ``--json``, one
JSON object; ``--no-progress`` hides progress bars; ``-v`` (anywhere) logs at INFO and shows
tracebacks. Exit status: 0 success, 1 failure (a missing extra, a failed computation, a full
disk), 2 bad input or usage — always one line on stderr, ``infogauss CMD: error: ...``, naming
the argument. No command writes over a file it reads.

Each command group is a module of this package (``_gaussian``, ``_diagnose``, ``_train``,
``_ood``, ``_retrieve``, ``_demo``, ``_bench``) exposing ``configure_<name>(parser)`` and
``run_<name>(args) -> int``; only the module of the command being run is imported, so
``infogauss fit`` imports neither torch, faiss, pyod nor dask. Commands raise; :func:`main` is
the one place that turns errors into a message and an exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ._common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, Parser, add_common_flags

__all__ = ["main", "build_parser", "COMMANDS", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE"]

# name -> (module of this package, one-line help)
_COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("_train", "train an encoder with InfoNCE (or its supervised twin); needs torch"),
    "embed": ("_train", "embed a dataset with a trained encoder; needs torch"),
    "fit": ("_gaussian", "fit a Gaussian model to embeddings (.npy), streaming"),
    "score": ("_gaussian", "score embeddings with a fitted Gaussian model"),
    "diagnose": ("_diagnose", "how Gaussian are these embeddings?"),
    "ood": ("_ood", "out-of-distribution detection: `ood fit`, `ood score`"),
    "retrieve": ("_retrieve", "calibrated retrieval: `retrieve fit`, `retrieve search`; needs faiss"),
    "demo": ("_demo", "the whole pipeline on built-in data, in minutes on a CPU"),
    "bench": ("_bench", "run a benchmark (ood, retrieval, table1, ...)"),
}
#: The top-level commands, in the order of ``infogauss --help``.
COMMANDS: tuple[str, ...] = tuple(_COMMANDS)

# Errors a user can fix (bad arguments, unreadable or wrong files): exit 2, one line, no traceback.
_BAD_INPUT = (ValueError, TypeError, FileNotFoundError, FileExistsError,
              IsADirectoryError, NotADirectoryError, PermissionError)  # fmt: skip
# Everything else that is expected to go wrong at run time (a missing extra, a full disk, a
# failed computation): exit 1, one line, no traceback (``-v`` adds it).
_FAILURE = (ImportError, OSError, RuntimeError, MemoryError, ArithmeticError)


def _module(name: str):
    return importlib.import_module(f".{_COMMANDS[name][0]}", __name__)


def _version() -> str:
    from .._version import __version__

    return f"infogauss {__version__}"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``infogauss`` parser; the flags of ``command`` only are added (lazily imported)."""
    parser = Parser(
        prog="infogauss",
        description="Gaussian models of contrastive embeddings: train, embed, diagnose, fit, "
        "score, detect out-of-distribution inputs, retrieve.",
        epilog="Every command: --out for what it writes, --json for one JSON object on stdout, "
        "--no-progress, -v. Exit status: 0 success, 1 failure, 2 bad input or usage.",
    )
    add_common_flags(parser, top=True)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        add_common_flags(p)
        p.set_defaults(_command=name)
        if name == command:
            getattr(_module(name), f"configure_{name}")(p)
    return parser


def _report(command: str, exc: BaseException, verbose: bool) -> None:
    if verbose:
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    message = " ".join((str(exc) or type(exc).__name__).split())  # one line, whatever it held
    sys.stderr.write(f"infogauss {command}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    """Run the ``infogauss`` command line; returns the exit status (0, 1 failure, 2 bad input).

    Usage errors found by the parser raise ``SystemExit(2)`` after one line on stderr.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in _COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    verbose = bool(getattr(args, "verbose", False))
    if args.command != "bench":  # a benchmark configures its own logging
        logging.basicConfig(
            level=logging.INFO if verbose else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
        )
    run = getattr(_module(args.command), f"run_{args.command}")
    try:
        return int(run(args) or 0)
    except KeyboardInterrupt:
        sys.stderr.write(f"infogauss {args._command}: interrupted\n")
        return 130
    except _BAD_INPUT as exc:
        _report(args._command, exc, verbose)
        return EXIT_USAGE
    except _FAILURE as exc:
        _report(args._command, exc, verbose)
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
