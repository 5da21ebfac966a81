r"""Nominal vs observed false-alarm rates on real and exact-Gaussian embeddings.

For every embedding set (:mod:`infogauss.datasets.embeddings`: in-distribution
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

    infogauss bench calibration --set digits=DIR --set gaussian=DIR [--cuts 20]
        [--out calibration.json]
    infogauss bench calibration --synthetic gaussian    # exact Gaussians, built in

Writes the results JSON (per-set results; by default ``calibration.json`` in the results
directory, see :mod:`infogauss.bench`) and a markdown table next to it.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from infogauss import MahalanobisOOD, _io, metrics
from infogauss.bench import _render, output_path, write_outputs
from infogauss.bench._env import setup_logging
from infogauss.calibration import binomial_band
from infogauss.datasets import read_embedding_set
from infogauss.diagnostics import heldout_whitened_ad_pass
from infogauss.gaussian import distance_law

__all__ = ["ALPHAS", "METHODS", "synthetic_gaussian", "run_set", "main"]

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
        # why the analytic law is off: the held-out squared distances against the F law's
        # moments (a scale mixture inflates the variance far more than the mean)
        ref = MahalanobisOOD(calibration=None).fit(tr_all)
        m2 = ref.model_.mahalanobis(te)  # squared distances
        law = distance_law(ref.n_samples_seen_, te.shape[1], "f")
        out.setdefault("distance_moments", {})[suffix or "raw"] = {
            "mean_ratio": float(np.mean(m2) / law.mean()),
            "var_ratio": float(np.var(m2) / law.var()),
            "q95_ratio": float(np.quantile(m2, 0.95) / law.ppf(0.95)),
            # held-out coordinates after whitening with the training covariance: the share
            # passing Anderson-Darling at 5% (about 95% for exact Gaussians)
            "whitened_ad_pass": heldout_whitened_ad_pass(tr_all, te),
        }
        for k, v in ood.items():
            out["auroc"][f"{k}{suffix}"] = metrics.auroc(s_in, det.score_samples(v))
        log.info("%s%s: %d cuts in %.1f s; default at 0.05: %.4f, analytic F: %.4f", name, suffix,
                 cuts, time.perf_counter() - t0, out["methods"]["default" + suffix]["0.05"]["mean"],
                 out["methods"]["analytic_f" + suffix]["0.05"]["mean"])  # fmt: skip
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--set", action="append", default=[], metavar="NAME=DIR",
                    help="an embedding-set directory (repeatable); its prefix is taken from "
                         "DIR/meta.json 'prefix' (default cifar10)")
    ap.add_argument("--synthetic", action="append", default=[], choices=["gaussian"],
                    help="built-in exact-Gaussian set")
    ap.add_argument("--cuts", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None,
                    help="JSON output path [calibration.json in the results directory]")
    args = ap.parse_args(argv)
    setup_logging("calibration")
    t_start = time.perf_counter()
    out = output_path(args.out, "calibration.json")
    env = _io.environment()
    sets: dict[str, dict] = {}
    for spec in args.set:
        name, _, directory = spec.partition("=")
        if not directory:
            ap.error(f"--set must be NAME=DIR, got {spec!r}")
        emb = read_embedding_set(directory)  # the prefix comes from its meta.json
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
    _, md = write_outputs(out, payload, _render.calibration)
    log.info("wrote %s and %s", out, md)
    bad = [(n, m) for n, r in results.items() for m, row in r["methods"].items()
           if m.startswith("default") and not row["0.05"]["inside"]]  # fmt: skip
    log.info("done in %.0f s: %d sets; default path outside the 99%% range at 0.05 on: %s",
             time.perf_counter() - t_start, len(results), bad or "none")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
