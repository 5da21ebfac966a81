"""The ``infogauss`` command line.

Each sub-command lives next to the code it drives and is imported lazily, so that
``infogauss fit`` works without torch and ``infogauss train`` is the only command that
needs it. A command module exposes ``configure(parser)`` and ``run(args) -> int``.
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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="infogauss",
        description="Gaussian models of contrastive embeddings: train, diagnose, fit, score.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, _, help_) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == command:
            configure, _ = _load(name)
            configure(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if a in _COMMANDS), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    _, run = _load(args.command)
    return int(run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
