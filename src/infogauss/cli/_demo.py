"""``infogauss demo [--out DIR] [--quick] [--no-plots]``: :func:`infogauss.demo.main`.

Writes ``DIR/report.json``, ``DIR/report.md`` and (unless ``--no-plots``, and with matplotlib)
``DIR/digits_*.png``. Human output: the demo's report; ``--json``: one object with the outputs
and the report. Step lines go to stderr (``--no-progress`` hides them). Needs torch (the
``train`` extra); faiss for the retrieval part.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path

from ._common import check_out, emit, positive_int, progress_on


def configure_demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_output", metavar="DIR",
                        help="output directory [demo_output]")
    parser.add_argument("--quick", action="store_true", help="tiny settings (seconds)")
    parser.add_argument("--no-plots", action="store_true", help="write no plots")
    parser.add_argument("--epochs", type=positive_int, default=60, help="InfoNCE epochs on digits [60]")
    parser.add_argument("--synthetic-epochs", type=positive_int, default=30,
                        help="InfoNCE epochs of the synthetic part [30]")
    parser.add_argument("--seed", type=int, default=0, help="seed [0]")


def run_demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"`--out` must be a directory, got the file {args.out!r}")
    for name in ("report.json", "report.md"):
        check_out(out / name, [])
    import infogauss.contrastive  # noqa: F401  (a missing torch: exit 1 before any work)

    from .. import demo

    argv = ["--out", str(out), "--epochs", str(args.epochs),
            "--synthetic-epochs", str(args.synthetic_epochs), "--seed", str(args.seed)]
    argv += ["--quick"] * args.quick + ["--no-plots"] * args.no_plots
    argv += [] if progress_on(args) else ["--no-progress"]
    if not getattr(args, "json", None):
        return demo.main(argv)
    with contextlib.redirect_stdout(io.StringIO()):  # the human report; stdout is the JSON
        status = demo.main(argv)
    if status:
        return status
    report = json.loads((out / "report.json").read_text())
    plots = report.get("digits", {}).get("plots", [])
    emit(args, {"outputs": {"report": str(out / "report.json"), "markdown": str(out / "report.md"),
                            "plots": plots}, "seconds": report.get("seconds"), "report": report}, "")
    return 0
