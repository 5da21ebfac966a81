"""``infogauss ood fit`` and ``infogauss ood score``: the Mahalanobis OOD detector on ``.npy`` files.

::

    infogauss ood fit EMBEDDINGS.npy --out detector.npz
                      [--method global|class|cluster|relative|kde|mixture]
                      [--labels LABELS.npy] [--contamination 0.05] [--statistic distance|typicality]
                      [--calibration split|none] [--calibration-size 0.2] [--n-clusters 10]
                      [--shrinkage ledoit_wolf] [--bandwidth loo] [--n-components auto]
                      [--n-restarts 10] [--seed 0]
    infogauss ood select EMBEDDINGS.npy --out detector.npz [--labels LABELS.npy]
                      [--report choice.json] [--max-rows 4000] [--n-groups 5] [--seed 0]
    infogauss ood score DETECTOR.npz EMBEDDINGS.npy --out scores.npy
                      [--kind score|pvalue|label] [--alpha A] [--chunk-size ROWS]

``fit`` trains :class:`~infogauss.MahalanobisOOD` on in-distribution embeddings (by default it
holds out 20% of them to calibrate the threshold, split-conformal) and writes the detector file
(:meth:`MahalanobisOOD.save`); ``--method kde`` fits :class:`~infogauss.ood.KernelDensityOOD`
instead (a Gaussian kernel density, ``--bandwidth loo`` by leave-one-out likelihood), and
``--method mixture`` :class:`~infogauss.ood.GaussianMixtureOOD` (tied covariance; the component
count by held-out likelihood, ``--n-components auto``; ``--n-restarts`` k-means runs averaged).
``select`` chooses among infogauss's detectors by leave-group-out validation on the
in-distribution embeddings alone
(:func:`infogauss.ood.select_detector`), refits the choice (calibrated) and writes it.
``score`` reads any OOD detector file and writes one value per row of ``EMBEDDINGS``:
``score``: ``score_samples`` (float64, higher = more in-distribution); ``pvalue``: conformal
p-values (float64 in (0, 1], small = evidence of OOD); ``label``: ``predict`` (int64, +1
in-distribution, -1 out; at ``--alpha`` when given, else at the detector's contamination).
Needs numpy, scipy and scikit-learn only.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ..ood import OOD_METHODS, OOD_STATISTICS
from ._common import (
    add_common_flags,
    as_arguments,
    check_out,
    embeddings_header,
    emit,
    estimator_file,
    fraction,
    load_estimator,
    positive_int,
    progress_on,
    read_embeddings,
    read_labels,
)
from ._gaussian import add_chunk_size, add_shrinkage

KINDS = ("score", "pvalue", "label")


def _calibration_size(value: str) -> float | int:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number.is_integer() and number >= 1 and "." not in value:
        return int(number)
    if 0.0 < number < 1.0:
        return number
    raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1) or a count >= 1, got {value!r}")


def _bandwidth(value: str) -> str | float:
    if value == "loo":
        return value
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if number > 0 and np.isfinite(number):
        return number
    raise argparse.ArgumentTypeError(f"must be 'loo' or a positive number, got {value!r}")


def _n_components(value: str) -> str | int:
    if value == "auto":
        return value
    try:
        return positive_int(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be 'auto' or an integer >= 1, got {value!r}") from None


def configure_ood(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="ood_command", metavar="ACTION", required=True)
    fit = sub.add_parser("fit", help="fit a detector to in-distribution embeddings",
                         description="Fit a Mahalanobis OOD detector to in-distribution "
                         "embeddings and write it (.npz model file).")
    add_common_flags(fit)
    fit.set_defaults(_command="ood fit", _run=run_ood_fit)
    fit.add_argument("embeddings", metavar="EMBEDDINGS",
                     help="in-distribution training embeddings, 2-D float .npy")
    fit.add_argument("--out", required=True, help="detector file to write (.npz)")
    fit.add_argument("--method", choices=(*OOD_METHODS, "kde", "mixture"), default="global",
                     help="global: one Gaussian (default); class: class means, tied covariance "
                     "(needs --labels); cluster: k-means pseudo-classes; relative: class (or "
                     "cluster) distance minus a background Gaussian's; kde: a Gaussian kernel "
                     "density (one shrunk Gaussian per row, KernelDensityOOD); mixture: a "
                     "mixture of shrunk Gaussians with one tied covariance (GaussianMixtureOOD)")
    fit.add_argument("--labels", metavar="LABELS.npy",
                     help="one label per row (1-D .npy; e.g. the Z.labels.npy of `infogauss "
                     "embed`): needed by --method class, optional for relative")
    fit.add_argument("--statistic", choices=OOD_STATISTICS, default="distance",
                     help="distance: minus the squared distance (default); typicality: two-sided")
    fit.add_argument("--contamination", type=fraction(0.0, 0.5, closed_high=True), default=0.05,
                     help="share of new in-distribution inputs flagged, in (0, 0.5] [0.05]")
    fit.add_argument("--calibration", choices=("split", "none"), default="split",
                     help="split: hold out --calibration-size of the rows to calibrate the "
                     "threshold and p-values (default); none: training quantile, no p-values")
    fit.add_argument("--calibration-size", type=_calibration_size, default=0.2,
                     help="fraction in (0, 1) or number of rows held out [0.2]")
    fit.add_argument("--n-clusters", type=positive_int, default=None,
                     help="k-means clusters (cluster; relative without labels) [10]")
    add_shrinkage(fit)
    fit.add_argument("--bandwidth", type=_bandwidth, default="loo",
                     help="--method kde: kernel standard deviation in whitened units, or loo "
                     "(leave-one-out likelihood) [loo]")
    fit.add_argument("--n-components", type=_n_components, default=None,
                     help="--method mixture: components per k-means run, or auto (held-out "
                     "likelihood) [auto]")
    fit.add_argument("--n-restarts", type=positive_int, default=None,
                     help="--method mixture: k-means runs whose mixtures are averaged [10]")
    fit.add_argument("--seed", type=int, default=0, help="seed of the split and k-means [0]")

    configure_select(sub)
    score = sub.add_parser("score", help="score embeddings with a fitted detector",
                           description="Score embeddings with a detector written by `infogauss "
                           "ood fit`.")
    add_common_flags(score)
    score.set_defaults(_command="ood score", _run=run_ood_score)
    score.add_argument("detector", metavar="DETECTOR", help="file written by `infogauss ood fit`")
    score.add_argument("embeddings", metavar="EMBEDDINGS", help="2-D float .npy to score")
    score.add_argument("--out", required=True, help="values to write (.npy, one per row)")
    score.add_argument("--kind", choices=KINDS, default="score",
                       help="score: higher = more in-distribution (default); pvalue: conformal "
                       "p-value, small = OOD; label: +1 in-distribution, -1 OOD")
    score.add_argument("--alpha", type=fraction(0.0, 1.0), default=None,
                       help="with --kind label: flag rows whose conformal p-value is <= alpha "
                       "(default: the detector's contamination threshold)")
    add_chunk_size(score)


def configure_select(sub: Any) -> None:
    sel = sub.add_parser("select", help="choose a detector from in-distribution data alone",
                         description="Choose among infogauss's OOD detectors by leave-group-out "
                         "validation on in-distribution embeddings (classes with --labels, else "
                         "k-means groups), refit the choice with split-conformal calibration and "
                         "write it (.npz model file).")
    add_common_flags(sel)
    sel.set_defaults(_command="ood select", _run=run_ood_select)
    sel.add_argument("embeddings", metavar="EMBEDDINGS",
                     help="in-distribution embeddings, 2-D float .npy")
    sel.add_argument("--out", required=True, help="detector file to write (.npz)")
    sel.add_argument("--labels", metavar="LABELS.npy",
                     help="one class label per row (1-D .npy): the held-out groups are the classes")
    sel.add_argument("--report", default=None,
                     help="also write the validation AUROC of every candidate (.json)")
    sel.add_argument("--max-rows", type=positive_int, default=4000,
                     help="rows used for the validation [4000]")
    sel.add_argument("--n-groups", type=positive_int, default=5,
                     help="k-means groups without --labels [5]")
    sel.add_argument("--rule", choices=("one_se", "best"), default="one_se",
                     help="one_se: the first candidate within one standard error of the best "
                     "(default); best: the best validation AUROC")
    sel.add_argument("--seed", type=int, default=0, help="seed [0]")


def run_ood_select(args: argparse.Namespace) -> int:
    from .. import _io
    from ..ood import select_detector

    out = check_out(args.out, [args.embeddings, args.labels])
    report = None if args.report is None else check_out(args.report, [args.embeddings,
                                                                       args.labels], "--report")
    X = read_embeddings(args.embeddings, "EMBEDDINGS")
    y = None if args.labels is None else read_labels(args.labels, "--labels", X.shape[0],
                                                     "EMBEDDINGS")  # fmt: skip
    with as_arguments(X="EMBEDDINGS", y="--labels", n_groups="--n-groups",
                      max_rows="--max-rows"):  # fmt: skip
        res = select_detector(np.asarray(X), y, n_groups=args.n_groups, max_rows=args.max_rows,
                              rule=args.rule, random_state=args.seed)  # fmt: skip
    path = res.estimator.save(out) or out
    summary = {"outputs": {"detector": str(path)}, "choice": res.best, "rule": res.rule,
               "top": res.top, "within_one_se": list(res.within_one_se), "groups": res.groups,
               "validation_auroc": res.scores, "errors": res.errors,
               "n_samples": int(X.shape[0]), "n_features": int(X.shape[1])}  # fmt: skip
    if report is not None:
        _io.write_results(report, {"benchmark": "ood_select", "config": vars_of(args),
                                   "environment": _io.environment(), "result": summary})  # fmt: skip
        summary["outputs"]["report"] = str(report)
    emit(args, summary,
         f"chose {res.best} ({'first within one standard error of the best; ' if res.best != res.top else ''}"
         f"leave-{'class' if res.groups == 'labels' else 'cluster'}-out AUROC "
         f"{res.scores[res.best]:.3f}; " + ", ".join(f"{k} {v:.3f}" for k, v in res.scores.items()
                                                     if k != res.best)
         + f"); refitted on {X.shape[0]} rows, calibrated; wrote {path}")  # fmt: skip
    return 0


def vars_of(args: argparse.Namespace) -> dict:
    return {k: v for k, v in vars(args).items() if not k.startswith("_") and
            isinstance(v, (str, int, float, bool, type(None)))}  # fmt: skip


class _AnyOODDetector:
    """Loads any OOD detector file (MahalanobisOOD or one of the detectors beside it)."""

    @staticmethod
    def load(path: Any) -> Any:
        from .. import persistence
        from ..ood import MahalanobisOOD
        from ..ood._base import CalibratedDetector

        det = persistence.load(path)
        if not isinstance(det, (MahalanobisOOD, CalibratedDetector)):
            raise ValueError(
                f"{str(path)!r} is a {type(det).__name__} model file, not an OOD detector (write one "
                "with `infogauss ood fit` or `infogauss ood select`)"
            )
        return det


def run_ood(args: argparse.Namespace) -> int:
    return args._run(args)


def _require(cls: type, method: str) -> None:
    if not hasattr(cls, method):
        raise RuntimeError(f"{cls.__name__}.{method} is not available in this infogauss version")


_KINDS = {"kde": "kernel density", "mixture": "Gaussian mixture"}


def run_ood_fit(args: argparse.Namespace) -> int:
    from ..ood import MahalanobisOOD

    out = check_out(args.out, [args.embeddings, args.labels])
    X = read_embeddings(args.embeddings, "EMBEDDINGS")
    y = None
    if args.labels is not None:
        if args.method in ("global", "cluster", "kde", "mixture"):
            raise ValueError(
                f"`--labels` is used by --method class or relative only, got --method "
                f"{args.method}; drop --labels or choose --method class"
            )
        y = read_labels(args.labels, "--labels", X.shape[0], "EMBEDDINGS")
        if y.dtype.kind in "iu" and (y == -1).any():
            raise ValueError(
                f"`--labels` marks {int((y == -1).sum())} rows as unlabelled (-1); "
                "give labelled data, or use --method cluster"
            )
    elif args.method == "class":
        raise ValueError("`--labels` must be given with --method class (a 1-D .npy of one label "
                         "per row), got none; or use --method cluster")
    _require(MahalanobisOOD, "save")  # before the work, not after it
    size = args.calibration_size
    calib = None if args.calibration == "none" else args.calibration
    if args.method in ("kde", "mixture") and args.n_clusters is not None:
        raise ValueError(f"`--n-clusters` is used by --method cluster or relative only, got "
                         f"--method {args.method}"
                         + ("; the mixture's count is --n-components" if args.method == "mixture" else ""))
    for flag, value in (("--n-components", args.n_components), ("--n-restarts", args.n_restarts)):
        if value is not None and args.method != "mixture":
            raise ValueError(f"`{flag}` is used by --method mixture only, got --method "
                             f"{args.method}")
    if args.method in ("kde", "mixture") and args.statistic != "distance":
        raise ValueError(f"`--statistic` {args.statistic} is for the Mahalanobis methods; "
                         f"--method {args.method} scores a density (drop --statistic)")
    if args.method != "kde" and args.bandwidth != "loo":
        raise ValueError(f"`--bandwidth` is used by --method kde only, got --method {args.method}")
    if args.method == "mixture":
        from ..ood import GaussianMixtureOOD

        det = GaussianMixtureOOD(
            n_components="auto" if args.n_components is None else args.n_components,
            n_restarts=10 if args.n_restarts is None else args.n_restarts, tied=True,
            shrinkage=args.shrinkage, contamination=args.contamination, calibration=calib,
            calibration_size=size, random_state=args.seed,
        )  # fmt: skip
    elif args.method == "kde":
        from ..ood import KernelDensityOOD

        det = KernelDensityOOD(bandwidth=args.bandwidth, shrinkage=args.shrinkage,
                               contamination=args.contamination, calibration=calib,
                               calibration_size=size, random_state=args.seed)  # fmt: skip
    else:
        det = MahalanobisOOD(
            method=args.method, statistic=args.statistic, n_clusters=10 if args.n_clusters is None else args.n_clusters,
            contamination=args.contamination, calibration=calib,
            calibration_size=size, shrinkage=args.shrinkage, random_state=args.seed,
        )  # fmt: skip
    with as_arguments(X="EMBEDDINGS", y="--labels"):
        det.fit(np.asarray(X), y)
    path = det.save(out) or out
    n_cal = int(getattr(det, "n_calibration_", 0) or 0) if args.calibration == "split" else 0
    held = (f"{n_cal} held out to calibrate at contamination {args.contamination:g}" if n_cal
            else f"threshold at the training {100 * args.contamination:g}% quantile")
    emit(
        args,
        {
            "outputs": {"detector": str(path)},
            "method": args.method, "statistic": args.statistic,
            "n_samples": int(X.shape[0]), "n_features": int(X.shape[1]),
            "n_fit": int(det.n_samples_seen_), "n_calibration": n_cal,
            "contamination": args.contamination, "threshold": float(det.offset_),
            "calibration_size": size if args.calibration == "split" else None,
            **({"n_components": int(det.n_components_), "n_restarts": int(det.n_restarts)}
               if args.method == "mixture" else {}),
        },
        f"fitted a {_KINDS.get(args.method, args.method + ' Mahalanobis')} "
        f"OOD detector to {X.shape[0]} x {X.shape[1]} "
        f"embeddings ({det.n_samples_seen_} fit, {held}); wrote {path}",
    )
    return 0


def run_ood_score(args: argparse.Namespace) -> int:
    from .. import _io
    from .._progress import progress
    from ..ood import MahalanobisOOD
    from ..streaming import iter_npy_chunks

    if args.alpha is not None and args.kind != "label":
        raise ValueError(f"`--alpha` is used with --kind label only, got --kind {args.kind}")
    inputs = [args.detector, args.embeddings]
    out = check_out(args.out, inputs)
    estimator_file(args.detector, "DETECTOR")  # the arguments in order
    header = embeddings_header(args.embeddings, "EMBEDDINGS")
    _require(MahalanobisOOD, "load")
    det = load_estimator(_AnyOODDetector, args.detector, "DETECTOR")
    if header.n_features != det.n_features_in_:
        raise ValueError(
            f"`EMBEDDINGS` has {header.n_features} features, but the detector in "
            f"{str(args.detector)!r} is expecting {det.n_features_in_}"
        )
    calibrated = hasattr(det, "calibration_scores_")
    if (args.kind == "pvalue" or args.alpha is not None) and not calibrated:
        raise ValueError(
            f"`DETECTOR` {str(args.detector)!r} is not calibrated (fitted with --calibration "
            "none), so it has no conformal p-values; refit it with --calibration split"
        )
    blocks = []
    with progress(total=header.n_rows, enabled=progress_on(args), desc="scoring",
                  unit="rows") as bar:  # fmt: skip
        for block in iter_npy_chunks(header, args.chunk_size):
            with as_arguments(X="EMBEDDINGS", alpha="--alpha"):
                if args.kind == "score":
                    blocks.append(det.score_samples(block))
                elif args.kind == "pvalue":
                    blocks.append(det.pvalues(block))
                else:
                    blocks.append(det.predict(block, alpha=args.alpha))
            bar.update(block.shape[0])
    values = np.concatenate(blocks)
    path = _io.save_npy(out, values, name="--out", inputs=inputs)
    payload: dict = {"outputs": {"scores": str(path)}, "kind": args.kind,
                     "n_samples": int(values.shape[0]), "detector": type(det).__name__,
                     "method": getattr(det, "method", None)}
    text = f"wrote {args.kind} values of {values.shape[0]} embeddings to {path}"
    flagged = None
    if args.kind == "label":
        flagged = int((values == -1).sum())
    elif args.kind == "score":
        flagged = int((values - det.offset_ < 0).sum())
    if flagged is not None:
        rule = f"p-value <= {args.alpha:g}" if args.alpha is not None else "the detector's threshold"
        payload.update(flagged=flagged, flagged_fraction=flagged / max(1, values.shape[0]))
        text += f"; {flagged} flagged as out-of-distribution ({rule})"
    emit(args, payload, text)
    return 0
