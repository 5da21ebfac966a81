r"""Nominal vs observed false-alarm rates on real and exact-Gaussian embeddings.

For every embedding set (a directory in the layout of ``_embeddings.py``: in-distribution
``train`` to fit on, ``test`` = new in-distribution data, optional OOD sets), over ``--cuts``
random cuts — each fits on a random 90% of ``train`` and cuts ``test`` into a calibration half
and an evaluation half, so that the mean over cuts averages over the fit as the guarantee
does — the fraction of the *evaluation* half flagged at α ∈ {0.01, 0.05, 0.1} by:

* ``default``: ``MahalanobisOOD(random_state=cut).fit(train)`` and its p-values — the path a
  user takes first (calibrated on a held-out 20% of ``train``, no external set);
* ``conformal``: ``MahalanobisOOD(calibration=None).fit(train).calibrate(calibration half)``;
* ``analytic_f`` / ``analytic_chi2``: the analytic laws of the squared distance (exact only for
  Gaussian data and an empirical covariance);

each also after ``Gaussianizer()`` (fitted on ``train``; ``+g`` in the table) when
``infogauss.Gaussianizer`` is available. Reported: mean ± sd over cuts, and whether the mean
lies inside the central 99% binomial range of α for one evaluation half (the criterion for a
calibrated method). With OOD sets, the AUROC of the default score before and after
Gaussianization.

    python benchmarks/calibration.py --set digits=DIR --set gaussian=DIR [--cuts 20]
        [--out benchmarks/results/calibration.json]
    python benchmarks/calibration.py --synthetic gaussian    # exact Gaussians, built in

Writes the JSON (config, environment, per-set results) and a markdown table next to it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _embeddings import load_embeddings  # noqa: E402
from _env import RESULTS, environment, setup_logging, write_json  # noqa: E402

from infogauss import MahalanobisOOD, metrics  # noqa: E402
from infogauss.calibration import binomial_band  # noqa: E402

log = logging.getLogger("benchmarks.calibration")
ALPHAS = (0.01, 0.05, 0.1)
TRAIN_SHARE = 0.9  # each cut fits on a random 90% of the training set
METHODS = ("default", "conformal", "analytic_f", "analytic_chi2")


def synthetic_gaussian(seed: int, n: int = 6000, d: int = 64) -> dict:
    """Exact Gaussians with a random covariance: every method should hold here."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
    X = rng.standard_normal((n, d)) @ A.T
    return {"train": X[: n // 2], "test": X[n // 2 :], "ood": {"shifted": X[:1000] + 0.5}}


def _gaussianizer():
    try:
        from infogauss import Gaussianizer
    except ImportError:
        return None
    return Gaussianizer


def _rates(p: np.ndarray) -> dict[str, float]:
    return {str(a): float(np.mean(p <= a)) for a in ALPHAS}


def run_set(name: str, data: dict, cuts: int, seed: int) -> dict:
    train, test = data["train"], data["test"]
    G = _gaussianizer()
    variants = {"": (train, test, data.get("ood", {}))}
    if G is not None:
        g = G(random_state=seed).fit(train)
        variants["+g"] = (g.transform(train), g.transform(test),
                          {k: g.transform(v) for k, v in data.get("ood", {}).items()})  # fmt: skip
    out = {"n_train": int(train.shape[0]), "n_test": int(test.shape[0]), "dim": int(train.shape[1]),
           "methods": {}, "auroc": {}}  # fmt: skip
    rng = np.random.default_rng(seed)
    half = test.shape[0] // 2
    cut_perms = [rng.permutation(test.shape[0]) for _ in range(cuts)]
    sub = max(2, int(round(TRAIN_SHARE * train.shape[0])))
    train_subsets = [np.sort(rng.permutation(train.shape[0])[:sub]) for _ in range(cuts)]
    for suffix, (tr_all, te, ood) in variants.items():
        t0 = time.perf_counter()
        per = {m + suffix: {str(a): [] for a in ALPHAS} for m in METHODS}
        for c, perm in enumerate(cut_perms):
            tr = tr_all[train_subsets[c]]  # the fit varies from cut to cut too
            cal, ev = te[perm[:half]], te[perm[half:]]
            plain = MahalanobisOOD(calibration=None).fit(tr)
            p = {
                "default": MahalanobisOOD(random_state=seed + c).fit(tr).pvalues(ev),
                "conformal": MahalanobisOOD(calibration=None).fit(tr).calibrate(cal).pvalues(ev),
                "analytic_f": plain.pvalues(ev, method="f"),
                "analytic_chi2": plain.pvalues(ev, method="chi2"),
            }
            for m, pv in p.items():
                for a, r in _rates(pv).items():
                    per[m + suffix][a].append(r)
        n_eval = te.shape[0] - half
        for m, rates in per.items():
            row = {}
            for a, vals in rates.items():
                lo, hi = binomial_band(float(a), n_eval, level=0.99)
                mean = float(np.mean(vals))
                row[a] = {"mean": mean, "sd": float(np.std(vals)), "band99": [lo, hi],
                          "inside": bool(lo <= mean <= hi), "n_eval": n_eval}  # fmt: skip
            out["methods"][m] = row
        det = MahalanobisOOD(random_state=seed).fit(tr_all)
        s_in = det.score_samples(te)
        for k, v in ood.items():
            out["auroc"][f"{k}{suffix}"] = metrics.auroc(s_in, det.score_samples(v))
        log.info("%s%s: %d cuts in %.1f s; default at 0.05: %.4f, analytic F: %.4f", name, suffix,
                 cuts, time.perf_counter() - t0, out["methods"]["default" + suffix]["0.05"]["mean"],
                 out["methods"]["analytic_f" + suffix]["0.05"]["mean"])  # fmt: skip
    return out


def render(payload: dict) -> str:
    lines = [
        "# Calibration: nominal vs observed false-alarm rate",
        "",
        f"{payload['config']['cuts']} random cuts of each test set into calibration / evaluation "
        "halves, each fitting on a random 90% of train; mean ± sd of the evaluation half flagged; "
        "✓ = mean inside the central 99% binomial range of α for one evaluation half (✗ outside). "
        "`+g` = after `Gaussianizer()`.",
        "",
        "| set | method | α = 0.01 | α = 0.05 | α = 0.1 |",
        "|---|---|---|---|---|",
    ]
    for name, res in payload["sets"].items():
        for m, row in res["methods"].items():
            cells = [f"{100 * row[a]['mean']:.2f} ± {100 * row[a]['sd']:.2f}% "
                     f"{'✓' if row[a]['inside'] else '✗'}" for a in map(str, ALPHAS)]  # fmt: skip
            lines.append(f"| {name} | {m} | " + " | ".join(cells) + " |")
    aur = [(n, k, v) for n, r in payload["sets"].items() for k, v in r["auroc"].items()]
    if aur:
        lines += ["", "| set | OOD set | AUROC of the default score |", "|---|---|---|"]
        lines += [f"| {n} | {k} | {100 * v:.2f} |" for n, k, v in aur]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--set", action="append", default=[], metavar="NAME=DIR",
                    help="an embeddings directory (repeatable); PREFIX is taken from "
                         "DIR/meta.json 'prefix' (default cifar10)")
    ap.add_argument("--synthetic", action="append", default=[], choices=["gaussian"],
                    help="built-in exact-Gaussian set")
    ap.add_argument("--cuts", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS / "calibration.json"))
    args = ap.parse_args(argv)
    setup_logging("calibration")
    t_start = time.perf_counter()
    env = environment()
    sets: dict[str, dict] = {}
    for spec in args.set:
        name, _, directory = spec.partition("=")
        if not directory:
            ap.error(f"--set must be NAME=DIR, got {spec!r}")
        meta_prefix = "cifar10"
        meta_path = Path(directory) / "meta.json"
        if meta_path.is_file():
            import json

            meta_prefix = json.loads(meta_path.read_text()).get("prefix", "cifar10")
        emb = load_embeddings(directory, prefix=meta_prefix)
        sets[name] = {"train": emb.train, "test": emb.test, "ood": emb.ood}
    for name in args.synthetic:
        sets[name] = synthetic_gaussian(args.seed)
    if not sets:
        ap.error("give at least one --set NAME=DIR or --synthetic gaussian")
    results = {}
    for i, (name, data) in enumerate(sets.items(), 1):
        log.info("[%d/%d] %s: %d train, %d test, d=%d", i, len(sets), name, data["train"].shape[0],
                 data["test"].shape[0], data["train"].shape[1])  # fmt: skip
        results[name] = run_set(name, data, args.cuts, args.seed)
    payload = {"benchmark": "calibration",
               "config": {"cuts": args.cuts, "seed": args.seed, "alphas": list(ALPHAS),
                          "sets": list(sets), "gaussianizer": _gaussianizer() is not None},
               "environment": env, "sets": results}  # fmt: skip
    out = write_json(args.out, payload)
    md = Path(args.out).with_suffix(".md")
    md.write_text(render(payload), encoding="utf-8")
    log.info("wrote %s and %s", out, md)
    bad = [(n, m) for n, r in results.items() for m, row in r["methods"].items()
           if m.startswith("default") and not row["0.05"]["inside"]]  # fmt: skip
    log.info("done in %.0f s: %d sets; default path outside the 99%% range at 0.05 on: %s",
             time.perf_counter() - t_start, len(results), bad or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
