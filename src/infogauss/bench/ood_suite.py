r"""The OOD suite: every infogauss detector against strong baselines on every embedding set.

One command, one results schema::

    infogauss bench ood_suite --set cifar10=DIR --set digits=DIR --set text=DIR [--out FILE]

Each ``--set NAME=DIR`` is an embedding-set directory (:mod:`infogauss.datasets.embeddings`:
``train`` to fit on, ``test`` = new in-distribution data, one or more ``ood_<name>``). Every
detector is fitted on ``train`` only (a ``--max-train`` subsample for the PyOD baselines) and
scores ``test`` and each OOD set.

* **infogauss**: ``MahalanobisOOD`` global, global on L2-normalised rows, class-conditional
  (labels), cluster (k-means); ``LocalGaussianOOD`` (k = 50, Euclidean and cosine);
  ``GaussianMixtureOOD`` (10 components; and ``mixture_auto``: tied, the component count
  chosen by held-out likelihood, 10 k-means restarts averaged); ``NormAwareOOD``; ``KernelDensityOOD`` (Ledoit–Wolf
  kernels, and isotropic ones: ``shrinkage=1.0``; leave-one-out bandwidth); and **selected** — the detector
  :func:`infogauss.ood.select_detector` picks by leave-group-out validation on ``train``
  alone (no test or OOD row reaches it).
* **baselines**: kNN distance (k ∈ {1, 5, 10, 50}; cosine, and Euclidean on raw rows), the
  PyOD detectors of :mod:`infogauss.bench._baselines` (ECOD, IForest, KNN, LOF), MCD
  (``EllipticEnvelope`` on principal components) and the feature norm.

Reported per set and OOD subset: AUROC, FPR at 95% TPR, AUPR-out; per detector: fit and score
seconds, the bytes the fitted scorer holds, and the split-conformal false-positive rate on
new in-distribution data at α ∈ {0.01, 0.05} (``test`` cut in calibration / evaluation halves
``--splits`` times; the mean rate against the central 95% binomial range of α for one
evaluation half — the splits re-cut one test set, so a pooled binomial interval would treat
overlapping evaluations as independent). Per set, the
best infogauss detector (chosen *on the OOD data*, an oracle) is compared with the best
baseline (also an oracle), and the selected detector is reported as what a user would get.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import numpy as np

from infogauss import _io
from infogauss.bench import _render, output_path, write_outputs
from infogauss.bench._baselines import baselines, knn_scorer, l2_normalize, subsample
from infogauss.bench._env import setup_logging
from infogauss.calibration import binomial_band, binomial_interval
from infogauss.datasets import read_embedding_set
from infogauss.metrics import ood_report
from infogauss.ood import conformal_pvalues

__all__ = ["ALPHAS", "infogauss_detectors", "knn_baselines", "run_set", "summarise", "main"]

log = logging.getLogger("benchmarks.ood_suite")

ALPHAS = (0.01, 0.05)
KS = (1, 5, 10, 50)


def _nbytes(obj: Any, depth: int = 3) -> int:
    """Bytes of the numpy arrays an object holds: its attributes, nested estimators and lists
    of them, ``depth`` levels down (each array counted once)."""
    seen: set[int] = set()

    def walk(o: Any, level: int) -> int:
        if isinstance(o, np.ndarray):
            if id(o) in seen:
                return 0
            seen.add(id(o))
            return int(o.nbytes)
        if level == 0 or isinstance(o, (type, str, bytes, int, float)):
            return 0
        if isinstance(o, (list, tuple)):
            return sum(walk(v, level - 1) for v in o)
        if isinstance(o, dict):
            return sum(walk(v, level - 1) for v in o.values())
        if hasattr(o, "__dict__"):
            return sum(walk(v, level - 1) for v in vars(o).values())
        return 0

    return walk(obj, depth)


def infogauss_detectors(n_train: int, labelled: bool) -> dict[str, tuple[Any, Any]]:
    """name -> (unfitted detector with ``calibration=None``, preprocessing)."""
    from infogauss.ood import (
        GaussianMixtureOOD,
        KernelDensityOOD,
        LocalGaussianOOD,
        MahalanobisOOD,
        NormAwareOOD,
    )

    k = int(max(5, min(50, n_train // 10)))
    ident = np.asarray
    out = {
        "maha_global": (MahalanobisOOD(calibration=None), ident),
        "maha_global_l2": (MahalanobisOOD(calibration=None), l2_normalize),
        "maha_cluster": (MahalanobisOOD(method="cluster", n_clusters=10, calibration=None,
                                        random_state=0), ident),  # fmt: skip
        "local_k50": (LocalGaussianOOD(n_neighbors=k, calibration=None), ident),
        "local_k50_cosine": (LocalGaussianOOD(n_neighbors=k, metric="cosine", calibration=None),
                             ident),  # fmt: skip
        "mixture_10": (GaussianMixtureOOD(n_components=10, calibration=None, random_state=0),
                       ident),  # fmt: skip
        "mixture_auto": (GaussianMixtureOOD(n_components="auto", tied=True, n_restarts=10,
                                            calibration=None, random_state=0), ident),  # fmt: skip
        "norm_aware": (NormAwareOOD(calibration=None, random_state=0), ident),
        "kde": (KernelDensityOOD(calibration=None, random_state=0), ident),
        "kde_isotropic": (KernelDensityOOD(shrinkage=1.0, calibration=None, random_state=0),
                          ident),  # fmt: skip
    }
    if labelled:
        out["maha_class"] = (MahalanobisOOD(method="class", calibration=None), ident)
    return out


def knn_baselines(train: np.ndarray) -> dict[str, Any]:
    """kNN distance baselines: cosine (k-th cosine similarity) and Euclidean (minus the k-th
    distance), exact, for k in :data:`KS`."""
    from sklearn.neighbors import NearestNeighbors

    out = {}
    for k in KS:
        out[f"knn_cosine_k{k}"] = lambda k=k: knn_scorer(train, k)

        def euclid(k=k):
            nn = NearestNeighbors(n_neighbors=min(k, train.shape[0]), algorithm="brute").fit(train)
            return (lambda X: -nn.kneighbors(np.asarray(X, np.float32))[0][:, -1].astype(np.float64),
                    {"k": k, "metric": "euclidean"})  # fmt: skip

        out[f"knn_euclidean_k{k}"] = euclid
    return out


def _conformal(s_test: np.ndarray, splits: int, seed: int) -> dict:
    m = s_test.shape[0]
    half = m // 2
    res = {}
    for a in ALPHAS:
        flagged, rates = 0, []
        for j in range(splits):
            perm = np.random.default_rng([seed, 100 + j]).permutation(m)
            f = conformal_pvalues(s_test[perm[:half]], s_test[perm[half:]]) <= a
            flagged += int(f.sum())
            rates.append(float(f.mean()))
        n_eval = splits * (m - half)
        lo, hi = binomial_interval(flagged, n_eval, level=0.95)
        # the splits re-cut one test set, so their evaluations overlap: the honest check is the
        # mean rate against the central 95% binomial range of alpha for ONE evaluation half
        b_lo, b_hi = binomial_band(a, m - half, level=0.95)
        res[str(a)] = {"fpr": flagged / n_eval, "interval95": [lo, hi],
                       "alpha_inside": bool(lo <= a <= hi), "fpr_sd_over_splits": float(np.std(rates)),
                       "band95_one_half": [b_lo, b_hi], "inside_band": bool(b_lo <= flagged / n_eval <= b_hi),
                       "n_eval": n_eval, "n_eval_per_split": m - half}  # fmt: skip
    return res


def run_set(name: str, emb: Any, *, seed: int = 0, splits: int = 10,
            baseline_max_train: int = 10_000, select_rows: int = 4000) -> dict:  # fmt: skip
    from sklearn.base import clone

    from infogauss.ood import select_detector

    train = np.ascontiguousarray(emb.train, dtype=np.float32)
    labels = emb.train_labels
    labelled = labels is not None and np.unique(labels[labels >= 0]).size >= 2 and bool(
        np.all(labels >= 0))  # -1 marks unlabelled rows
    test = np.ascontiguousarray(emb.test, dtype=np.float32)
    ood = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in emb.ood.items()}
    dets: dict[str, dict] = {}
    scores: dict[str, dict[str, np.ndarray]] = {}

    def record(det_name, family, fit, notes=None):
        t0 = time.perf_counter()
        try:
            scorer, held = fit()
            t1 = time.perf_counter()
            s = {"test": np.asarray(scorer(test), np.float64)}
            s.update({k: np.asarray(scorer(v), np.float64) for k, v in ood.items()})
        except Exception as exc:  # a failing detector is recorded, not fatal
            log.warning("%s: %s failed: %s", name, det_name, exc)
            dets[det_name] = {"family": family, "error": repr(exc)}
            return
        t2 = time.perf_counter()
        scores[det_name] = s
        dets[det_name] = {"family": family, "fit_seconds": t1 - t0, "score_seconds": t2 - t1,
                          "n_scored": int(test.shape[0] + sum(v.shape[0] for v in ood.values())),
                          "model_bytes": held, **(notes or {})}  # fmt: skip
        log.info("%s: %-22s fit %6.1fs score %6.1fs", name, det_name, t1 - t0, t2 - t1)

    for det_name, (est, pre) in infogauss_detectors(train.shape[0], labelled).items():
        def fit(est=est, pre=pre):
            det = clone(est)
            X = pre(train)
            det.fit(X, labels) if getattr(det, "method", None) == "class" else det.fit(X)
            return (lambda Z: det.score_samples(pre(Z))), _nbytes(det)

        record(det_name, "infogauss", fit)

    seen: list[np.ndarray] = []  # what the selection rule was given (checked by the tests)

    chosen: dict[str, Any] = {}

    def fit_selected():
        seen.append(train)
        res = select_detector(train, labels if labelled else None, max_rows=select_rows,
                              random_state=seed)  # fmt: skip
        chosen.update({"choice": res.best, "validation_auroc": res.scores, "groups": res.groups,
                       "top": res.top, "within_one_se": list(res.within_one_se)})
        det = res.estimator
        return det.score_samples, _nbytes(det)

    record("selected", "infogauss", fit_selected)
    dets["selected"].update(chosen)

    for det_name, fit in knn_baselines(train).items():
        record(det_name, "baseline", lambda fit=fit: (fit()[0], int(train.nbytes)))
    for det_name, (fit, notes) in baselines(train, seed=seed,
                                            baseline_max_train=baseline_max_train).items():  # fmt: skip
        if det_name == "deep_knn":  # knn_cosine_k50 is the same scorer
            continue
        n_fit = notes.get("n_train", train.shape[0])
        record(det_name, "baseline", lambda fit=fit, n_fit=n_fit: (fit()[0], int(n_fit * train.shape[1] * 4)),
               notes)  # fmt: skip

    metrics = {k: {d: ood_report(s["test"], s[k]) for d, s in scores.items()} for k in ood}
    conformal = {d: _conformal(s["test"], splits, seed) for d, s in scores.items()}
    return {"n_train": int(train.shape[0]), "n_test": int(test.shape[0]), "dim": int(train.shape[1]),
            "ood_sizes": {k: int(v.shape[0]) for k, v in ood.items()}, "labelled": bool(labelled),
            "detectors": dets, "metrics": metrics, "conformal": conformal,
            "selection_inputs_are_train": all(x is train for x in seen)}  # fmt: skip


def summarise(result: dict) -> dict:
    """Per OOD subset: the best infogauss and baseline AUROC (oracles) and the selected one."""
    out = {}
    for k, rows in result["metrics"].items():
        ours = {d: r["auroc"] for d, r in rows.items() if result["detectors"][d]["family"] == "infogauss"
                and d != "selected"}  # fmt: skip
        base = {d: r["auroc"] for d, r in rows.items() if result["detectors"][d]["family"] == "baseline"}
        bo, bb = max(ours, key=ours.get), max(base, key=base.get)
        out[k] = {"best_infogauss": bo, "best_infogauss_auroc": ours[bo], "best_baseline": bb,
                  "best_baseline_auroc": base[bb],
                  "margin_points": 100 * (ours[bo] - base[bb]),
                  "within_half_point": bool(ours[bo] >= base[bb] - 0.005),
                  "beats": bool(ours[bo] > base[bb]),
                  "selected_auroc": rows.get("selected", {}).get("auroc")}  # fmt: skip
    return out


def _kept_sets(out) -> dict:
    """The sets of an earlier results file (``--merge``), each with the environment and config
    it ran with (moved into the set from the file's top level when the set has none)."""
    from pathlib import Path

    if not Path(out).exists():
        return {}
    old = _io.read_results(out)  # the current schema, older files converted
    if old.get("benchmark") != "ood_suite":
        raise SystemExit(f"--merge: {out} is not an ood_suite results file")
    kept = {}
    for name, res in old.get("sets", {}).items():
        if "run" not in res:
            res["run"] = {"environment": old.get("environment"),
                          "config": {k: v for k, v in old.get("config", {}).items() if k != "sets"},
                          "runtime_seconds": None}  # fmt: skip
        kept[name] = res
    return kept


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--set", action="append", default=[], metavar="NAME=DIR", required=True,
                    help="an embedding-set directory (repeatable)")
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--baseline-max-train", type=int, default=10_000)
    ap.add_argument("--max-train", type=int, default=None,
                    help="subsample the training rows of every set (all by default)")
    ap.add_argument("--out", default=None, help="JSON output [ood_suite.json in the results dir]")
    ap.add_argument("--merge", action="store_true",
                    help="keep the sets of an existing --out file that this run does not redo "
                         "(each set records the commit and config it ran with)")
    args = ap.parse_args(argv)
    setup_logging("ood_suite")
    t_start = time.perf_counter()
    out = output_path(args.out, "ood_suite.json")
    env = _io.environment()
    config = {"splits": args.splits, "seed": args.seed, "alphas": list(ALPHAS), "ks": list(KS),
              "baseline_max_train": args.baseline_max_train, "max_train": args.max_train}
    sets = _kept_sets(out) if args.merge else {}
    for spec in args.set:
        name, _, directory = spec.partition("=")
        if not directory:
            ap.error(f"--set must be NAME=DIR, got {spec!r}")
        emb = read_embedding_set(directory)
        if args.max_train is not None and emb.train.shape[0] > args.max_train:
            idx = subsample(emb.train.shape[0], args.max_train, args.seed, 0)
            emb.train, emb.train_labels = emb.train[idx], emb.train_labels[idx]
        log.info("%s: train %s, test %s, ood %s", name, emb.train.shape, emb.test.shape,
                 {k: v.shape[0] for k, v in emb.ood.items()})  # fmt: skip
        t_set = time.perf_counter()
        res = run_set(name, emb, seed=args.seed, splits=args.splits,
                      baseline_max_train=args.baseline_max_train)  # fmt: skip
        res["summary"] = summarise(res)
        res["meta"] = emb.meta
        res["run"] = {"environment": env, "config": {**config, "set": spec},
                      "runtime_seconds": time.perf_counter() - t_set}  # fmt: skip
        sets.pop(name, None)
        sets[name] = res
        for k, s in res["summary"].items():
            log.info("%s/%s: best infogauss %s %.4f, best baseline %s %.4f, selected %s", name, k,
                     s["best_infogauss"], s["best_infogauss_auroc"], s["best_baseline"],
                     s["best_baseline_auroc"], s["selected_auroc"])  # fmt: skip
    specs = [r["run"]["config"].get("set", n) for n, r in sets.items()]  # kept and redone
    payload = {"benchmark": "ood_suite", "config": {"sets": specs, **config},
               "environment": env, "sets": sets,
               "runtime_seconds": time.perf_counter() - t_start}  # fmt: skip
    _, md = write_outputs(out, payload, _render.ood_suite)
    log.info("wrote %s and %s in %.0f s", out, md, time.perf_counter() - t_start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
