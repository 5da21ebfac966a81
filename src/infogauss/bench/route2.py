r"""The route-2 regulariser side by side with plain InfoNCE: does it make the analytic model hold?

Collects, for CIFAR-10 encoders trained with the same budget and recipe at several
regulariser strengths ``reg_beta`` (``infogauss bench train --reg-beta B``; 0 = plain
InfoNCE), what the other benchmarks measured on each:

* kNN accuracy (k=200, cosine) on the backbone and the head — ``train_cifar10_<name>.json``;
* ``diagnose``'s family-wise verdict, coordinates passing Anderson–Darling and the norm CV, on
  the test embeddings of each layer — ``infogauss diagnose ... --out DIR/diag_<name>_<layer>.json``;
* the analytic-F and default-path false-alarm rates at α = 0.05 and the default score's AUROC
  on Tiny ImageNet — ``infogauss bench calibration --set backbone=... --set head=... --out
  DIR/calibration_<name>.json``.

    infogauss bench route2 --runs NAME [NAME ...] --dir runs/route2 [--out route2.json]

The numbers are read from those files, not recomputed; ``--dir`` holds the diagnose and
calibration outputs (the training results live in the results directory).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from infogauss import _io
from infogauss.bench import _render, output_path, results_dir, write_outputs
from infogauss.bench._env import setup_logging

__all__ = ["collect", "main"]

log = logging.getLogger("benchmarks.route2")


def collect(name: str, directory: Path, results: Path) -> dict:
    train = _io.read_results(results / f"train_cifar10_{name}.json")
    cal = _io.read_results(directory / f"calibration_{name}.json")
    row = {"name": name, "reg_beta": train["config"].get("reg_beta", 0.0),
           "reg_lambda": train["config"].get("reg_lambda", 1.0),
           "budget_minutes": train.get("budget_minutes"), "epochs": train.get("epochs_completed"),
           "knn_backbone": train["metrics"].get("knn_acc_backbone"),
           "knn_head": train["metrics"].get("knn_acc_head"), "layers": {}}  # fmt: skip
    for layer in ("backbone", "head"):
        d = json.loads((directory / f"diag_{name}_{layer}.json").read_text())
        c = cal["sets"][layer]
        row["layers"][layer] = {
            "verdict": d["verdict"], "gaussian": d["familywise"]["decision"] == "Gaussian",
            "n_rejected": len(d["familywise"].get("rejected") or []),
            "n_checks": d["familywise"]["n_checks"],
            "ad_pass": (d.get("coordinates") or {}).get("ad", {}).get("pass_fraction"),
            "norm_cv": (d.get("norms") or {}).get("cv"),
            "analytic_f_fpr_0.05": c["methods"]["analytic_f"]["0.05"]["mean"],
            "analytic_f_fpr_0.05_gaussianized":
                c["methods"].get("analytic_f+g", {}).get("0.05", {}).get("mean"),
            "default_fpr_0.05": c["methods"]["default"]["0.05"]["mean"],
            "auroc": {k: v for k, v in c["auroc"].items() if not k.endswith("+g")},
            "f_variance_ratio": c.get("distance_moments", {}).get("raw", {}).get("var_ratio"),
        }  # fmt: skip
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", nargs="+", required=True, help="training run names")
    ap.add_argument("--dir", type=Path, required=True,
                    help="directory of the diagnose and calibration outputs")
    ap.add_argument("--out", default=None, help="JSON output [route2.json in the results dir]")
    args = ap.parse_args(argv)
    setup_logging("route2")
    t0 = time.perf_counter()
    out = output_path(args.out, "route2.json")
    rows = [collect(n, args.dir, results_dir()) for n in args.runs]
    payload = {"benchmark": "route2", "config": {"runs": args.runs, "dir": str(args.dir)},
               "environment": _io.environment(), "rows": rows}  # fmt: skip
    _, md = write_outputs(out, payload, _render.route2)
    log.info("wrote %s and %s in %.1f s", out, md, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
