"""``infogauss diagnose EMBEDDINGS.npy [--out report.json] [--markdown MD] [--plots DIR]``.

Human output: the markdown summary (verdict and reasons first; ``--quiet``: the verdict line
only), with the paths written on stderr so that stdout stays the report. ``--json``: one
object with the verdict, the outputs and the full report. Exit status 0 whatever the verdict
(the verdict is a report, not a failure); 2 on bad input.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ._common import (
    as_arguments,
    check_out,
    emit,
    fraction,
    non_negative_int,
    positive_int,
    read_embeddings,
)

logger = logging.getLogger(__name__)


def configure_diagnose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("embeddings", metavar="EMBEDDINGS",
                        help="embeddings, a .npy array of shape (n_samples, n_features)")
    parser.add_argument("--out", metavar="JSON", help="write the full report as JSON here")
    parser.add_argument("--markdown", metavar="MD", help="also write the markdown summary here")
    parser.add_argument("--plots", metavar="DIR", help="write PNG plots here (needs matplotlib)")
    parser.add_argument("--baseline", metavar="NPY",
                        help="negative control, e.g. the untrained encoder's embeddings (.npy)")
    parser.add_argument("--max-samples", type=non_negative_int, default=5000,
                        help="rows used (seeded subsample; 0 = all) [5000]")
    parser.add_argument("--n-projections", type=positive_int, default=None,
                        help="random orthonormal projections tested [min(d, 256)]")
    parser.add_argument("--heldout-fraction", type=fraction(0.0, 1.0), default=0.5,
                        help="share of rows held out from the fit for whitened/joint checks [0.5]")
    parser.add_argument("--seed", type=int, default=0, help="seed [0]")
    parser.add_argument("--quiet", action="store_true", help="print only the verdict")


def run_diagnose(args: argparse.Namespace) -> int:
    from .. import _io
    from ..diagnostics import diagnose

    inputs = [args.embeddings, args.baseline]
    for path, flag in ((args.out, "--out"), (args.markdown, "--markdown")):
        if path is not None:
            check_out(path, inputs, name=flag)
    if args.out and args.markdown and _io.same_file(args.out, args.markdown):
        raise ValueError("`--out` and `--markdown` must be different files")
    if args.plots is not None:
        if Path(args.plots).exists() and not Path(args.plots).is_dir():
            raise ValueError(f"`--plots` must be a directory, got the file {args.plots!r}")
        from ..plotting import _mpl  # noqa: F401  (fail now, not after the work, without matplotlib)
    X = read_embeddings(args.embeddings, "EMBEDDINGS")
    base = read_embeddings(args.baseline, "--baseline") if args.baseline else None
    with as_arguments(X="EMBEDDINGS", baseline="--baseline"):
        report = diagnose(
            X,
            baseline=base,
            max_samples=args.max_samples or None,
            n_projections=args.n_projections,
            heldout_fraction=args.heldout_fraction,
            seed=args.seed,
        )
    report.settings["input"] = str(args.embeddings)
    if args.baseline:
        report.settings["baseline_input"] = str(args.baseline)
    outputs: dict[str, object] = {}
    if args.out:
        outputs["report"] = str(_io.write_text(args.out, report.to_json(), name="--out",
                                               inputs=inputs))
    md = report.to_markdown()
    if args.markdown:
        outputs["markdown"] = str(_io.write_text(args.markdown, md, name="--markdown",
                                                 inputs=inputs))
    if args.plots:
        from ..plotting.diagnostics import plot_report

        Path(args.plots).mkdir(parents=True, exist_ok=True)
        paths = plot_report(report, args.plots)
        if report.baseline is not None:
            paths += plot_report(report.baseline, args.plots, prefix="baseline_")
        outputs["plots"] = [str(p) for p in paths]
    emit(
        args,
        {"outputs": outputs, "verdict": report.verdict, "reasons": report.reasons,
         "report": report.to_dict()},
        f"Verdict: {report.verdict}" if args.quiet else md,
    )
    if not getattr(args, "json", None):
        for path in (*(v for k, v in outputs.items() if k != "plots"), *outputs.get("plots", [])):
            print(f"wrote {path}", file=sys.stderr)
    return 0
