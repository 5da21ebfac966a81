"""``infogauss fit`` and ``infogauss score``: stream ``.npy`` embeddings with bounded memory.

::

    infogauss fit EMBEDDINGS.npy --out model.npz [--shrinkage ledoit_wolf] [--whiten zca]
                  [--chunk-size ROWS]
    infogauss score MODEL.npz EMBEDDINGS.npy --out scores.npy
                  [--kind logpdf|mahalanobis|pvalue] [--pvalue-method f|beta|chi2]

Both read the embeddings block by block (:mod:`infogauss.streaming`), so files larger than
memory work; ``score`` writes its output ``.npy`` incrementally. Needs numpy, scipy and
scikit-learn only.
"""

from __future__ import annotations

import argparse
import logging

from .. import gaussian as core
from ._common import (
    as_arguments,
    check_out,
    embeddings_header,
    emit,
    load_estimator,
    positive_int,
    progress_on,
)

logger = logging.getLogger(__name__)


def shrinkage(value: str) -> str | float:
    """An argparse type: a shrinkage method name or a fixed intensity in [0, 1]."""
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


def add_shrinkage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shrinkage", type=shrinkage, default="ledoit_wolf",
        help="covariance estimator: ledoit_wolf (default), oas, empirical, diagonal, "
        "or a fixed intensity in [0, 1]",
    )  # fmt: skip


def add_chunk_size(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--chunk-size", type=positive_int, default=None, metavar="ROWS",
        help="rows read per block (default: about 32 MiB of float64 per block)",
    )  # fmt: skip


def configure_fit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("embeddings", metavar="EMBEDDINGS",
                        help="2-D float .npy file (n_samples, n_features), C order")
    parser.add_argument("--out", required=True, help="model file to write (.npz)")
    add_shrinkage(parser)
    parser.add_argument(
        "--whiten", choices=core.WHITENING_METHODS, default="zca",
        help="whitening stored in the model for transform (default: zca)",
    )  # fmt: skip
    add_chunk_size(parser)


def run_fit(args: argparse.Namespace) -> int:
    from ..model import GaussianModel
    from ..streaming import fit_npy

    out = check_out(args.out, [args.embeddings])
    header = embeddings_header(args.embeddings, "EMBEDDINGS")
    model = GaussianModel(shrinkage=args.shrinkage, whiten=args.whiten)
    with as_arguments(X="EMBEDDINGS"):
        fit_npy(model, header.path, chunk_size=args.chunk_size, progress=progress_on(args))
    path = model.save(out)
    shrink = "none" if model.shrinkage_ is None else f"{model.shrinkage_:.4g}"
    logger.info("fitted %s to %d samples", type(model).__name__, model.n_samples_seen_)
    emit(
        args,
        {
            "outputs": {"model": str(path)},
            "n_samples": int(model.n_samples_seen_),
            "n_features": int(model.n_features_in_),
            "shrinkage": args.shrinkage,
            "shrinkage_intensity": model.shrinkage_,
            "whiten": args.whiten,
        },
        f"fitted a Gaussian to {model.n_samples_seen_} x {model.n_features_in_} embeddings "
        f"(shrinkage {args.shrinkage}: {shrink}); wrote {path}",
    )
    return 0


def configure_score(parser: argparse.ArgumentParser) -> None:
    from ..streaming import SCORE_KINDS

    parser.add_argument("model", metavar="MODEL", help="model file written by `infogauss fit` (.npz)")
    parser.add_argument("embeddings", metavar="EMBEDDINGS",
                        help="2-D float .npy file with the model's width")
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
    add_chunk_size(parser)


def run_score(args: argparse.Namespace) -> int:
    from ..model import GaussianModel
    from ..streaming import score_npy

    out = check_out(args.out, [args.model, args.embeddings])
    model = load_estimator(GaussianModel, args.model, "MODEL")  # the arguments in order
    header = embeddings_header(args.embeddings, "EMBEDDINGS")
    with as_arguments(X="EMBEDDINGS"):
        path = score_npy(
            model, header.path, out, kind=args.kind, chunk_size=args.chunk_size,
            pvalue_method=args.pvalue_method, progress=progress_on(args),
        )  # fmt: skip
    emit(
        args,
        {"outputs": {"scores": str(path)}, "kind": args.kind, "n_samples": header.n_rows},
        f"wrote {args.kind} scores of {header.n_rows} embeddings to {path}",
    )
    return 0
