r"""CIFAR-10 OOD benchmark on precomputed embeddings.

Fits every detector on the CIFAR-10 *train* embeddings only and scores the CIFAR-10 test
embeddings (in-distribution) against each OOD set found in the embeddings directory
(``ood_<name>.npy``; the layout of :mod:`infogauss.datasets.embeddings`, which
``infogauss embed --set DIR`` writes)::

    infogauss bench ood --embeddings DIR [--out ood_cifar10.json] [--max-train N] [--seed 0]

Detectors (all scores are turned into "higher = more in-distribution"):

* ours — ``infogauss.MahalanobisOOD``: global, global on L2-normalised features, class (tied
  covariance, labels), cluster (k-means), cluster on L2-normalised features (the SSD recipe),
  relative (class-based, Ren et al. 2021), and the global two-sided typicality score;
* the baselines of :mod:`infogauss.bench._baselines`: deep kNN (k-th cosine neighbour,
  ``--k``), PyOD ECOD, IForest, KNN and LOF on a ``--baseline-max-train`` subsample (ECOD
  scored in batches of ``--ecod-batch`` rows), ``EllipticEnvelope`` (MCD) on the top
  ``--mcd-dims`` principal components of a ``--mcd-max-train`` subsample, and the feature norm.

Metrics per OOD set: AUROC, FPR@95TPR, AUPR-In/Out, detection error (``infogauss.metrics``).
Calibrated decisions: the CIFAR-10 test split is cut at random into a calibration part and an
evaluation part; split-conformal p-values at α ∈ {0.01, 0.05, 0.1} give the empirical FPR on
the evaluation part (mean ± sd over ``--splits`` random cuts, and a binomial interval for the
first cut) and the fraction of each OOD set flagged. For our detectors the analytic F and χ²
p-values are evaluated on the same test embeddings (how far from nominal they are).

Writes the results JSON (``--out``; by default ``ood_cifar10.json`` in the results directory,
see :mod:`infogauss.bench`), a markdown table next to it (``.md``, regenerable from the JSON
with ``--render JSON``) and ROC plots (``_roc_<set>.png``). Progress goes to stderr: one line
per detector as it starts and ends, the files written and a summary.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from infogauss import _io
from infogauss.bench import _render, output_path, write_outputs
from infogauss.bench._baselines import baselines, l2_normalize, subsample
from infogauss.bench._env import setup_logging
from infogauss.datasets import read_embedding_set
from infogauss.metrics import empirical_fpr, ood_report
from infogauss.ood import MahalanobisOOD, conformal_pvalues

__all__ = ["ALPHAS", "configure", "main", "run", "benchmark"]

log = logging.getLogger("benchmarks.ood_cifar10")

ALPHAS = (0.01, 0.05, 0.1)
OUT_NAME = "ood_cifar10.json"


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------
def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the benchmark's options to ``parser`` (also used by ``infogauss bench ood``)."""
    parser.add_argument("--embeddings", type=Path,
                        help="embedding-set directory (infogauss.datasets.read_embedding_set)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"JSON output path [{OUT_NAME} in the results directory]")
    parser.add_argument("--max-train", type=int, default=None,
                        help="random subsample of the training embeddings (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=50, help="deep kNN: k-th neighbour (Sun et al.)")
    parser.add_argument("--n-clusters", type=int, default=10, help="k-means clusters")
    parser.add_argument("--baseline-max-train", type=int, default=10_000,
                        help="training subsample for PyOD ECOD/IForest/KNN/LOF")
    parser.add_argument("--mcd-max-train", type=int, default=5_000,
                        help="training subsample for EllipticEnvelope (MCD)")
    parser.add_argument("--mcd-dims", type=int, default=64,
                        help="principal components kept for EllipticEnvelope")
    parser.add_argument("--ecod-batch", type=int, default=1_000, help="rows per ECOD scoring call")
    parser.add_argument("--calib-fraction", type=float, default=0.5,
                        help="fraction of CIFAR-10 test used to calibrate the conformal p-values")
    parser.add_argument("--splits", type=int, default=20,
                        help="random calibration/evaluation cuts for the calibrated FPR")
    parser.add_argument("--skip", nargs="*", default=[], help="detector names to skip")
    parser.add_argument("--no-plots", action="store_true", help="do not draw ROC curves")
    parser.add_argument("--render", type=Path, default=None,
                        help="only regenerate the markdown table from this JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = configure(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    args = parser.parse_args(argv)
    setup_logging("ood_cifar10")
    return run(args)


def run(args: argparse.Namespace) -> int:
    if args.render is not None:
        results = _io.read_results(args.render)
        md = _io.write_text(Path(args.render).with_suffix(".md"), _render.ood(results),
                            inputs=[args.render])
        log.info("wrote %s", md)
        return 0
    if args.embeddings is None:
        raise SystemExit("--embeddings DIR is required (or --render JSON)")
    out = args.out = output_path(args.out, OUT_NAME)  # the config records where it went
    results, scores = benchmark(args)
    _io.check_output(out, name="--out", make_parents=True)
    if not args.no_plots:
        results["plots"] = _plots(scores, out)
        for path in results["plots"]:
            log.info("wrote %s", path)
    _, md = write_outputs(out, results, _render.ood)
    log.info("wrote %s and %s", out, md)
    log.info("done in %.0f s: %s", results["runtime_seconds"], _summary(results))
    return 0


def _summary(results: dict[str, Any]) -> str:
    """One line: how many detectors ran, and the best AUROC per OOD set."""
    ok = [k for k, v in results["detectors"].items() if "error" not in v]
    failed = len(results["detectors"]) - len(ok)
    best = []
    for k, table in results["metrics"].items():
        if table:
            name = max(table, key=lambda m: table[m]["auroc"])
            best.append(f"{k} {name} {100 * table[name]['auroc']:.1f}")
    return (f"{len(ok)} detectors" + (f" ({failed} failed)" if failed else "")
            + f" on {len(results['metrics'])} OOD set(s); best AUROC: "
            + ("; ".join(best) or "none"))


# --------------------------------------------------------------------------------------
# Detectors
# --------------------------------------------------------------------------------------
def _ours(args, train, labels, classes) -> dict[str, tuple[Callable[[], Any], dict]]:
    """name -> (fit() returning (estimator, preprocess), notes)."""
    seed = args.seed

    def make(pre, **kw):
        def fit():
            # fitted on every training row, as the baselines are; the benchmark calibrates on
            # its own test splits (the default calibration="split" would hold out 20%)
            det = MahalanobisOOD(random_state=seed, calibration=None, **kw)
            X = pre(train)
            if kw.get("method") in ("class", "relative"):
                det.fit(X, labels, classes=classes)
            else:
                det.fit(X)
            return det, pre
        return fit

    ident, _l2 = np.asarray, l2_normalize
    return {
        "maha_global": (make(ident, method="global"), {"features": "raw"}),
        "maha_global_l2": (make(_l2, method="global"), {"features": "L2-normalised"}),
        "maha_class": (make(ident, method="class"), {"features": "raw", "labels": True}),
        "maha_cluster": (make(ident, method="cluster", n_clusters=args.n_clusters),
                         {"features": "raw", "n_clusters": args.n_clusters}),
        "maha_cluster_l2": (make(_l2, method="cluster", n_clusters=args.n_clusters),
                            {"features": "L2-normalised (SSD recipe)",
                             "n_clusters": args.n_clusters}),
        "maha_relative": (make(ident, method="relative"), {"features": "raw", "labels": True}),
        "maha_typicality": (make(ident, method="global", statistic="typicality"),
                            {"features": "raw", "statistic": "two-sided typicality"}),
    }


# --------------------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------------------
def _calibration(scores_test: np.ndarray, scores_ood: dict[str, np.ndarray], cuts) -> dict:
    """Split-conformal FPR (in-distribution) and OOD flag rates at each alpha."""
    res: dict[str, Any] = {}
    for a in ALPHAS:
        fprs = []
        first = None
        for j, (cal, ev) in enumerate(cuts):
            flagged = conformal_pvalues(scores_test[cal], scores_test[ev]) <= a
            fprs.append(float(flagged.mean()))
            if j == 0:
                first = empirical_fpr(flagged, a)
                first["ood_flagged"] = {
                    k: float((conformal_pvalues(scores_test[cal], v) <= a).mean())
                    for k, v in scores_ood.items()
                }
        res[str(a)] = {"fpr_mean": float(np.mean(fprs)), "fpr_sd": float(np.std(fprs, ddof=1))
                       if len(fprs) > 1 else 0.0, "fpr_splits": fprs, "first_split": first}
    return res


def benchmark(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """Run every detector; returns the results dict and the scores (method -> set -> array)."""
    t_start = time.perf_counter()
    env = _io.environment()  # at the start: the commit and the load before the run
    log.info("loading embeddings from %s", args.embeddings)
    emb = read_embedding_set(args.embeddings)
    seed = args.seed
    n_full = emb.train.shape[0]
    idx = subsample(n_full, args.max_train, seed, 0)
    train = np.ascontiguousarray(emb.train[idx], dtype=np.float32)
    labels = emb.train_labels[idx]
    classes = np.unique(emb.train_labels)
    test = np.ascontiguousarray(emb.test, dtype=np.float32)
    ood = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in emb.ood.items()}
    log.info("train %s, test %s, ood %s", train.shape, test.shape,
             {k: v.shape[0] for k, v in ood.items()})

    m = test.shape[0]
    n_cal = int(round(args.calib_fraction * m))
    if not (0 < n_cal < m):
        raise SystemExit(f"--calib-fraction {args.calib_fraction} leaves no calibration or "
                         f"evaluation points out of {m}")
    cuts = []
    for j in range(max(args.splits, 1)):
        perm = np.random.default_rng([seed, 100 + j]).permutation(m)
        cuts.append((np.sort(perm[:n_cal]), np.sort(perm[n_cal:])))

    detectors: dict[str, Any] = {}
    scores: dict[str, dict[str, np.ndarray]] = {}
    analytic: dict[str, Any] = {}
    api_check: dict[str, bool] = {}

    ours = {k: v for k, v in _ours(args, train, labels, classes).items() if k not in args.skip}
    registry = baselines(train, seed=seed, k=args.k, baseline_max_train=args.baseline_max_train,
                         mcd_max_train=args.mcd_max_train, mcd_dims=args.mcd_dims,
                         ecod_batch=args.ecod_batch)
    others = {k: v for k, v in registry.items() if k not in args.skip}
    total = len(ours) + len(others)
    log.info("%d detectors to fit and score (%d infogauss, %d baselines)", total, len(ours),
             len(others))
    for i, (name, (fit, notes)) in enumerate(ours.items(), 1):
        log.info("[%d/%d] %s: fitting and scoring", i, total, name)
        t0 = time.perf_counter()
        det, pre = fit()
        t1 = time.perf_counter()
        s_test = det.score_samples(pre(test))
        s_ood = {k: det.score_samples(pre(v)) for k, v in ood.items()}
        t2 = time.perf_counter()
        scores[name] = {"test": s_test, **s_ood}
        detectors[name] = {"family": "infogauss.MahalanobisOOD", "params": det.get_params(),
                           "fit_seconds": t1 - t0, "score_seconds": t2 - t1,
                           "n_train": int(train.shape[0]), **notes}
        # the estimator's own calibrate/predict must agree with the array-level conformal rule
        cal, ev = cuts[0]
        det.calibrate(pre(test[cal]))
        ok = all(
            np.array_equal(det.predict(pre(test[ev]), alpha=a) == -1,
                           conformal_pvalues(s_test[cal], s_test[ev]) <= a)
            for a in ALPHAS
        )
        api_check[name] = bool(ok)
        if det.method != "relative":
            analytic[name] = {}
            for law in ("f", "chi2"):
                try:
                    p = det.pvalues(pre(test), method=law)
                except ValueError as exc:
                    analytic[name][law] = {"error": str(exc)}
                    continue
                analytic[name][law] = {str(a): float(np.mean(p <= a)) for a in ALPHAS}
        log.info("[%d/%d] %s: fit %.1fs, score %.1fs", i, total, name, t1 - t0, t2 - t1)

    for i, (name, (fit, notes)) in enumerate(others.items(), len(ours) + 1):
        log.info("[%d/%d] %s: fitting and scoring", i, total, name)
        t0 = time.perf_counter()
        try:
            scorer, extra = fit()
            t1 = time.perf_counter()
            s_test = scorer(test)
            s_ood = {k: scorer(v) for k, v in ood.items()}
        except Exception as exc:  # a baseline failing is recorded, not fatal
            log.warning("[%d/%d] %s failed: %s", i, total, name, exc)
            detectors[name] = {"family": "baseline", "error": repr(exc), **notes}
            continue
        t2 = time.perf_counter()
        scores[name] = {"test": np.asarray(s_test, np.float64),
                        **{k: np.asarray(v, np.float64) for k, v in s_ood.items()}}
        detectors[name] = {"family": "baseline", "fit_seconds": t1 - t0,
                           "score_seconds": t2 - t1, **notes, **extra}
        log.info("[%d/%d] %s: fit %.1fs, score %.1fs", i, total, name, t1 - t0, t2 - t1)

    log.info("metrics and split-conformal calibration (%d cuts)", len(cuts))

    metrics = {
        k: {name: ood_report(s["test"], s[k]) for name, s in scores.items()} for k in ood
    }
    calibration = {
        name: _calibration(s["test"], {k: s[k] for k in ood}, cuts) for name, s in scores.items()
    }
    results = {
        "benchmark": "ood_cifar10",
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "seed": seed,
        "environment": env,
        "data": {**emb.summary(), "n_train_used": int(train.shape[0]),
                 "train_subsampled": bool(train.shape[0] < n_full), "meta": emb.meta},
        "calibration_setup": {"n_calibration": n_cal, "n_evaluation": m - n_cal,
                              "splits": len(cuts), "alphas": list(ALPHAS),
                              "api_matches_array_rule": api_check},
        "detectors": detectors,
        "metrics": metrics,
        "calibration": calibration,
        "analytic_pvalues": analytic,
        "runtime_seconds": time.perf_counter() - t_start,
    }
    return results, scores


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------
def _plots(scores: dict[str, dict[str, np.ndarray]], out: Path) -> list[str]:
    """One ROC figure per OOD set; returns the paths written (none without matplotlib)."""
    try:
        from infogauss.plotting._mpl import plt
        from infogauss.plotting.ood import plot_ood_roc
    except ImportError as exc:
        log.warning("no ROC plots: %s", exc)
        return []
    paths = []
    sets = [k for k in next(iter(scores.values())) if k != "test"] if scores else []
    for k in sets:
        fig, axes = plt.subplots(1, 2, figsize=(11, 5))
        curves = {name: (s["test"], s[k]) for name, s in scores.items()}
        plot_ood_roc(curves, ax=axes[0], title=f"CIFAR-10 vs {k}")
        plot_ood_roc(curves, ax=axes[1], title=f"CIFAR-10 vs {k} (log FPR)", log_fpr=True)
        fig.tight_layout()
        path = out.with_name(f"{out.stem}_roc_{k}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(str(path))
    return paths


if __name__ == "__main__":
    raise SystemExit(main())
