"""``infogauss fit`` and ``infogauss score``: stream ``.npy`` embeddings with bounded memory.

::

    infogauss fit EMBEDDINGS.npy --out model.npz [--shrinkage ledoit_wolf] [--chunk-size N]
    infogauss score model.npz EMBEDDINGS.npy --out scores.npy [--kind logpdf|mahalanobis|pvalue]

Both read the embeddings block by block (:mod:`infogauss.streaming`), so files larger than
memory work; ``score`` writes its output ``.npy`` incrementally. Needs numpy, scipy and
scikit-learn only.
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import gaussian as core

logger = logging.getLogger(__name__)


def _shrinkage(value: str) -> str | float:
    if value in core.SHRINKAGE_METHODS:
        return value
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be one of {', '.join(core.SHRINKAGE_METHODS)} or a float in [0, 1], "
            f"got {value!r}"
        ) from None
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {value!r}")
    return number


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value!r}")
    return number


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--chunk-size", type=_positive_int, default=None, metavar="ROWS",
        help="rows read per block (default: about 32 MiB of float64 per block)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def configure_fit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("embeddings", help="2-D float .npy file (n_samples, n_features), C order")
    parser.add_argument("--out", required=True, help="model file to write (.npz)")
    parser.add_argument(
        "--shrinkage", type=_shrinkage, default="ledoit_wolf",
        help="covariance estimator: ledoit_wolf (default), oas, empirical, diagonal, "
        "or a fixed intensity in [0, 1]",
    )  # fmt: skip
    parser.add_argument(
        "--whiten", choices=core.WHITENING_METHODS, default="zca",
        help="whitening stored in the model for transform (default: zca)",
    )  # fmt: skip
    _common(parser)


def run_fit(args: argparse.Namespace) -> int:
    from . import _io
    from .model import GaussianModel
    from .streaming import fit_npy

    out = _io.check_output(args.out, name="--out", inputs=[args.embeddings], make_parents=True)
    model = GaussianModel(shrinkage=args.shrinkage, whiten=args.whiten)
    fit_npy(model, args.embeddings, chunk_size=args.chunk_size, progress=not args.no_progress)
    path = model.save(out)
    shrink = "none" if model.shrinkage_ is None else f"{model.shrinkage_:.4g}"
    logger.info("fitted %s to %d samples", type(model).__name__, model.n_samples_seen_)
    sys.stdout.write(
        f"fitted a Gaussian to {model.n_samples_seen_} x {model.n_features_in_} embeddings "
        f"(shrinkage {args.shrinkage}: {shrink}); wrote {path}\n"
    )
    return 0


def configure_score(parser: argparse.ArgumentParser) -> None:
    from .streaming import SCORE_KINDS

    parser.add_argument("model", help="model file written by `infogauss fit` (.npz)")
    parser.add_argument("embeddings", help="2-D float .npy file with the model's width")
    parser.add_argument("--out", required=True, help="scores to write (.npy, float64, 1-D)")
    parser.add_argument(
        "--kind", choices=SCORE_KINDS, default="logpdf",
        help="logpdf: log-density, higher = more normal (default); mahalanobis: squared "
        "distance, higher = more abnormal; pvalue: upper-tail p-value, small = atypical",
    )  # fmt: skip
    parser.add_argument(
        "--pvalue-method", choices=core.PVALUE_METHODS, default="f",
        help="law for --kind pvalue: f (new points, default), beta (the fitted points), chi2",
    )  # fmt: skip
    _common(parser)


def run_score(args: argparse.Namespace) -> int:
    from . import _io
    from .model import GaussianModel
    from .streaming import score_npy

    out = _io.check_output(args.out, name="--out", inputs=[args.model, args.embeddings],
                           make_parents=True)
    model = GaussianModel.load(args.model)
    path = score_npy(
        model, args.embeddings, out, kind=args.kind, chunk_size=args.chunk_size,
        pvalue_method=args.pvalue_method, progress=not args.no_progress,
    )  # fmt: skip
    sys.stdout.write(f"wrote {args.kind} scores to {path}\n")
    return 0
