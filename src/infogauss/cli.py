"""The ``infogauss`` command line.

Each sub-command lives next to the code it drives and is imported lazily, so that
``infogauss fit`` works without torch and ``infogauss train`` is the only command that
needs it. A command module exposes ``configure(parser)`` and ``run(args) -> int`` and lets
its errors propagate: :func:`main` is the one place that turns them into a one-line message
and an exit status (2 for bad input or usage, 1 for other failures; no tracebacks unless
``-v``). No command writes over a file it reads (:mod:`infogauss._io`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# name -> (module, attribute prefix, one-line help)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": (
        "infogauss.contrastive.cli",
        "train",
        "train an encoder with InfoNCE (or its supervised twin)",
    ),
    "embed": ("infogauss.contrastive.cli", "embed", "embed a dataset with a trained encoder"),
    "fit": (
        "infogauss._cli_gaussian",
        "fit",
        "fit a Gaussian model to embeddings (.npy), streaming",
    ),
    "score": ("infogauss._cli_gaussian", "score", "score embeddings with a fitted Gaussian model"),
    "diagnose": ("infogauss._cli_diagnose", "diagnose", "how Gaussian are these embeddings?"),
    "bench": ("infogauss._cli_bench", "bench", "run a benchmark (ood, retrieval, table1, ...)"),
}


def _load(name: str):
    module_name, prefix, _ = _COMMANDS[name]
    module = importlib.import_module(module_name)
    return getattr(module, f"configure_{prefix}"), getattr(module, f"run_{prefix}")


# Errors a user can fix (bad arguments, unreadable or wrong files): exit 2, one line, no traceback.
_BAD_INPUT = (ValueError, TypeError, FileNotFoundError, FileExistsError,
              IsADirectoryError, NotADirectoryError, PermissionError)  # fmt: skip
# Everything else that is expected to go wrong at run time (a missing extra, a full disk, a
# failed computation): exit 1, one line, no traceback (``-v`` adds it).
_FAILURE = (ImportError, OSError, RuntimeError, MemoryError, ArithmeticError)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _version() -> str:
    from . import __version__

    return f"infogauss {__version__}"


def _common_flags() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: the flag works before or after the sub-command without one resetting the other
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log at INFO level (and show tracebacks of errors)")
    return common


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="infogauss",
        description="Gaussian models of contrastive embeddings: train, diagnose, fit, score.",
        epilog="Exit status: 0 success, 1 failure, 2 bad input or usage.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", default=False,
                        help="log at INFO level (and show tracebacks of errors)")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, _, help_) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_, parents=[_common_flags()])
        if name == command:
            configure, _ = _load(name)
            configure(p)
    return parser


def _report(command: str, exc: BaseException, verbose: bool) -> None:
    if verbose:
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    message = str(exc) or type(exc).__name__
    sys.stderr.write(f"infogauss {command}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    """Run the ``infogauss`` command line; returns the exit status (0, 1 failure, 2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if a in _COMMANDS), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)  # usage errors exit 2 through argparse
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    verbose = bool(getattr(args, "verbose", False))
    if args.command != "bench":  # a benchmark script configures its own logging
        logging.basicConfig(
            level=logging.INFO if verbose else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
        )
    _, run = _load(args.command)
    try:
        return int(run(args) or 0)
    except KeyboardInterrupt:
        sys.stderr.write(f"infogauss {args.command}: interrupted\n")
        return 130
    except _BAD_INPUT as exc:
        _report(args.command, exc, verbose)
        return EXIT_USAGE
    except _FAILURE as exc:
        _report(args.command, exc, verbose)
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
