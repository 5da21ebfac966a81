r"""CIFAR-10 OOD benchmark on precomputed embeddings.

Fits every detector on the CIFAR-10 *train* embeddings only and scores the CIFAR-10 test
embeddings (in-distribution) against each OOD set found in the embeddings directory
(``ood_<name>.npy``; see ``benchmarks/_embeddings.py`` for the layout)::

    python benchmarks/ood_cifar10.py --embeddings DIR \
        [--out benchmarks/results/ood_cifar10.json] [--max-train N] [--seed 0]

Detectors (all scores are turned into "higher = more in-distribution"):

* ours — ``infogauss.MahalanobisOOD``: global, global on L2-normalised features, class (tied
  covariance, labels), cluster (k-means), cluster on L2-normalised features (the SSD recipe),
  relative (class-based, Ren et al. 2021), and the global two-sided typicality score;
* deep kNN (Sun et al., 2022): cosine similarity to the k-th (k=50) nearest training
  embedding after L2 normalisation, exact search with faiss ``IndexFlatIP`` (a blocked numpy
  matmul + partition when faiss is missing: the same exact search, slower);
* PyOD ECOD, IForest, KNN (k=5, largest) and LOF (k=20), fitted on a random subsample of the
  training set (``--baseline-max-train``, default 10,000) — they are O(n²) or
  batch-dependent; ECOD scores are computed in batches of ``--ecod-batch`` rows because PyOD's
  ECOD ranks each batch together with the training data (its scores depend on the batch);
* sklearn ``EllipticEnvelope`` (minimum covariance determinant) on the top ``--mcd-dims``
  principal components of a ``--mcd-max-train`` subsample (MCD needs far more points than
  dimensions per subset, which 512-d embeddings do not give);
* the plain feature norm (higher norm = more in-distribution, as CSI observed for
  contrastive features).

Metrics per OOD set: AUROC, FPR@95TPR, AUPR-In/Out, detection error (``infogauss.metrics``).
Calibrated decisions: the CIFAR-10 test split is cut at random into a calibration part and an
evaluation part; split-conformal p-values at α ∈ {0.01, 0.05, 0.1} give the empirical FPR on
the evaluation part (mean ± sd over ``--splits`` random cuts, and a binomial interval for the
first cut) and the fraction of each OOD set flagged. For our detectors the analytic F and χ²
p-values are evaluated on the same test embeddings (how far from nominal they are).

Writes the JSON (config, seed, metrics and the run's ``environment``: versions, git commit and
dirty flag, machine), a markdown table next to it (``.md``, regenerable from the JSON with
``--render JSON``) and ROC plots (``_roc_<set>.png``). Progress goes to stderr: one line per
detector as it starts and ends, the files written and a summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _embeddings import load_embeddings  # noqa: E402
from _env import _default as _json_default  # noqa: E402
from _env import describe_commit, environment, provenance, setup_logging  # noqa: E402

from infogauss.metrics import empirical_fpr, ood_report  # noqa: E402
from infogauss.ood import MahalanobisOOD, conformal_pvalues  # noqa: E402

log = logging.getLogger("benchmarks.ood_cifar10")

ALPHAS = (0.01, 0.05, 0.1)
REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "ood_cifar10.json"
Scorer = Callable[[np.ndarray], np.ndarray]


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------
def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the benchmark's options to ``parser`` (also used by ``infogauss bench ood``)."""
    parser.add_argument("--embeddings", type=Path, help="embeddings directory (see _embeddings.py)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
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
        results = json.loads(Path(args.render).read_text())
        md = Path(args.render).with_suffix(".md")
        md.write_text(render_markdown(results))
        log.info("wrote %s", md)
        return 0
    if args.embeddings is None:
        raise SystemExit("--embeddings DIR is required (or --render JSON)")
    results, scores = benchmark(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not args.no_plots:
        results["plots"] = _plots(scores, out)
        for path in results["plots"]:
            log.info("wrote %s", path)
    out.write_text(json.dumps(results, indent=2, sort_keys=False, default=_json_default))
    log.info("wrote %s", out)
    out.with_suffix(".md").write_text(render_markdown(results))
    log.info("wrote %s", out.with_suffix(".md"))
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
def _l2(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _subsample(n: int, m: int | None, seed: int, salt: int) -> np.ndarray:
    if m is None or m >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, salt]).choice(n, size=m, replace=False))


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

    ident = np.asarray
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


def _knn_scorer(train: np.ndarray, k: int) -> tuple[Scorer, dict]:
    base = _l2(train)
    k = min(k, base.shape[0])
    try:
        import faiss
    except ImportError:
        faiss = None
    if faiss is not None:
        index = faiss.IndexFlatIP(base.shape[1])
        index.add(np.ascontiguousarray(base))

        def score(X):
            sims, _ = index.search(np.ascontiguousarray(_l2(X)), k)
            return sims[:, k - 1].astype(np.float64)

        return score, {"backend": "faiss.IndexFlatIP (exact)", "k": k}

    def score_np(X):
        q = _l2(X)
        out = np.empty(q.shape[0])
        for s in range(0, q.shape[0], 2048):
            sims = q[s:s + 2048] @ base.T
            out[s:s + 2048] = np.partition(sims, -k, axis=1)[:, -k]
        return out

    return score_np, {"backend": "numpy matmul + partition (exact; faiss not installed)", "k": k}


def _baselines(args, train) -> dict[str, tuple[Callable[[], tuple[Scorer, dict]], dict]]:
    seed = args.seed
    n = train.shape[0]
    sub = _subsample(n, args.baseline_max_train, seed, 1)
    msub = _subsample(n, args.mcd_max_train, seed, 2)
    out: dict[str, tuple[Callable[[], tuple[Scorer, dict]], dict]] = {}
    out["deep_knn"] = (lambda: _knn_scorer(train, args.k), {"n_train": n, "k": args.k})
    try:
        import pyod  # noqa: F401
    except ImportError:
        log.warning("pyod not installed: skipping ECOD, IForest, KNN, LOF")
    else:
        from pyod.models.ecod import ECOD
        from pyod.models.iforest import IForest
        from pyod.models.knn import KNN
        from pyod.models.lof import LOF

        def pyod_fit(make, batch=None):
            def fit():
                det = make().fit(np.asarray(train[sub], dtype=np.float64))

                def score(X):
                    X = np.asarray(X, dtype=np.float64)
                    if batch is None:
                        return -det.decision_function(X)
                    return -np.concatenate([det.decision_function(X[s:s + batch])
                                            for s in range(0, X.shape[0], batch)])
                return score, {}
            return fit

        note = {"n_train": int(sub.shape[0]), "subsampled": bool(sub.shape[0] < n)}
        out["pyod_ecod"] = (pyod_fit(ECOD, batch=args.ecod_batch),
                            {**note, "score_batch": args.ecod_batch,
                             "note": "PyOD ECOD scores depend on the scored batch (pyod #401)"})
        out["pyod_iforest"] = (pyod_fit(lambda: IForest(n_estimators=100, random_state=seed)),
                               {**note, "n_estimators": 100})
        def knn():
            with warnings.catch_warnings():  # PyOD warns on any algorithm but "auto"
                warnings.simplefilter("ignore", FutureWarning)
                return KNN(n_neighbors=5, method="largest", algorithm="brute")

        out["pyod_knn"] = (pyod_fit(knn), {**note, "k": 5, "algorithm": "brute"})
        out["pyod_lof"] = (pyod_fit(lambda: LOF(n_neighbors=20, algorithm="brute")),
                           {**note, "n_neighbors": 20})

    def mcd_fit():
        from sklearn.covariance import EllipticEnvelope
        from sklearn.decomposition import PCA

        Xs = np.asarray(train[msub], dtype=np.float64)
        dims = min(args.mcd_dims, Xs.shape[1], max(Xs.shape[0] // 10, 1))
        pca = PCA(n_components=dims, random_state=seed).fit(Xs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = EllipticEnvelope(random_state=seed).fit(pca.transform(Xs))
        return (lambda X: env.score_samples(pca.transform(np.asarray(X, dtype=np.float64))),
                {"pca_dims": int(dims)})

    out["elliptic_envelope_mcd"] = (mcd_fit, {"n_train": int(msub.shape[0]),
                                              "subsampled": bool(msub.shape[0] < n),
                                              "pca_dims_max": args.mcd_dims})
    out["feature_norm"] = (lambda: (lambda X: np.linalg.norm(np.asarray(X, np.float64), axis=1),
                                    {}), {"note": "higher norm = more in-distribution"})
    return out


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
    env = environment()  # at the start: the commit and the load before the run
    log.info("loading embeddings from %s", args.embeddings)
    emb = load_embeddings(args.embeddings)
    seed = args.seed
    n_full = emb.train.shape[0]
    idx = _subsample(n_full, args.max_train, seed, 0)
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
    baselines = {k: v for k, v in _baselines(args, train).items() if k not in args.skip}
    total = len(ours) + len(baselines)
    log.info("%d detectors to fit and score (%d infogauss, %d baselines)", total, len(ours),
             len(baselines))
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

    for i, (name, (fit, notes)) in enumerate(baselines.items(), len(ours) + 1):
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
def render_markdown(results: dict[str, Any]) -> str:
    """The markdown tables of a results JSON (regenerable: ``--render JSON``)."""
    lines = ["# CIFAR-10 OOD benchmark", ""]
    d = results["data"]
    cpus = provenance(results)["cores"]
    sha = describe_commit(results, width=10)
    lines += [
        f"Embeddings: `{d.get('directory')}` (dim {d['dim']}; train {d['n_train_used']} of "
        f"{d['n_train']}; test {d['n_test']}). Seed {results['seed']}, git `{sha}`, "
        f"{cpus} CPUs, {results['runtime_seconds']:.0f} s.",
        "",
        "Scores: higher = more in-distribution. FPR95 = fraction of OOD accepted at the "
        "threshold keeping 95% of CIFAR-10 test. Best value per column in bold.",
        "",
    ]
    for k, table in results["metrics"].items():
        lines += [f"## CIFAR-10 vs {k}", "",
                  "| method | AUROC | FPR95 | AUPR-In | AUPR-Out | det. error |",
                  "|---|---:|---:|---:|---:|---:|"]
        cols = [("auroc", max), ("fpr_at_tpr", min), ("aupr_in", max), ("aupr_out", max),
                ("detection_error", min)]
        best = {c: f([r[c] for r in table.values()]) for c, f in cols}
        for name, r in table.items():
            cells = []
            for c, _ in cols:
                v = f"{100 * r[c]:.2f}"
                cells.append(f"**{v}**" if r[c] == best[c] else v)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    cs = results["calibration_setup"]
    oods = list(results["metrics"])
    lines += [
        "## Calibrated decisions (split conformal)", "",
        f"Calibrate on {cs['n_calibration']} CIFAR-10 test points, evaluate on the other "
        f"{cs['n_evaluation']}; FPR = fraction of in-distribution flagged (mean ± sd over "
        f"{cs['splits']} random cuts; [binomial 95% interval of the FPR at exactly α for the "
        "first cut]); then the fraction of each OOD set flagged (first cut).", "",
        "| method | α | FPR (mean ± sd) | first cut [interval] | "
        + " | ".join(f"flagged {k}" for k in oods) + " |",
        "|---|---:|---:|---:|" + "---:|" * len(oods),
    ]
    for name, per in results["calibration"].items():
        for a, r in per.items():
            f = r["first_split"]
            lines.append(
                f"| {name} | {a} | {100 * r['fpr_mean']:.2f} ± {100 * r['fpr_sd']:.2f} | "
                f"{100 * f['fpr']:.2f} [{100 * f['interval_low']:.2f}, "
                f"{100 * f['interval_high']:.2f}] | "
                + " | ".join(f"{100 * f['ood_flagged'][k]:.1f}" for k in oods) + " |"
            )
    lines += ["", "## Analytic p-values on CIFAR-10 test (FPR at α; nominal = α)", "",
              "| method | law | " + " | ".join(f"α={a}" for a in ALPHAS) + " |",
              "|---|---|" + "---:|" * len(ALPHAS)]
    for name, laws in results["analytic_pvalues"].items():
        for law, r in laws.items():
            if "error" in r:
                lines.append(f"| {name} | {law} | " + " | ".join("n/a" for _ in ALPHAS) + " |")
            else:
                lines.append(f"| {name} | {law} | "
                             + " | ".join(f"{100 * r[str(a)]:.2f}" for a in ALPHAS) + " |")
    lines += ["", "## Detectors", ""]
    for name, det in results["detectors"].items():
        info = {k: v for k, v in det.items() if k not in ("params",)}
        lines.append(f"- `{name}`: " + ", ".join(
            f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items()))
    return "\n".join(lines) + "\n"


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
    sys.exit(main())
