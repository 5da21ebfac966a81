"""``infogauss bench calibration``: a smoke run on the built-in exact Gaussians and on an
embedding set (its prefix read from meta.json)."""

from __future__ import annotations

import json

from infogauss.bench import calibration
from infogauss.bench.embedding_sets import gaussian_set
from infogauss.datasets import write_embedding_set


def test_calibration_smoke(tmp_path):
    s = gaussian_set(0, n=800, d=8)
    write_embedding_set(tmp_path / "g", train=s["train"], train_labels=s["train_labels"],
                        test=s["test"], test_labels=s["test_labels"], ood=s["ood"],
                        prefix="gaussian")
    out = tmp_path / "res" / "cal.json"
    assert calibration.main(["--set", f"g={tmp_path / 'g'}", "--synthetic", "gaussian",
                             "--cuts", "2", "--out", str(out)]) == 0
    p = json.loads(out.read_text())
    assert p["benchmark"] == "calibration" and p["schema"] == 1
    assert set(p["sets"]) == {"g", "gaussian"} and p["config"]["cuts"] == 2
    assert {"default", "conformal", "analytic_f", "analytic_chi2"} <= set(p["sets"]["g"]["methods"])
    assert "| g | default |" in out.with_suffix(".md").read_text()
    # exact Gaussians: the held-out squared distances follow the F law up to the Ledoit-Wolf
    # shrinkage, which inflates the covariance a little (distances about 10% small, conservative)
    mom = p["sets"]["gaussian"]["distance_moments"]["raw"]
    assert 0.8 < mom["mean_ratio"] < 1.05 and 0.7 < mom["var_ratio"] < 1.25, mom
    assert mom["whitened_ad_pass"] >= 0.5  # 8 coordinates, each passing with probability 0.95
    assert "Held-out squared Mahalanobis distances" in out.with_suffix(".md").read_text()
