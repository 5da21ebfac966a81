"""``infogauss bench ood``: the CIFAR-10 OOD benchmark end to end on a small synthetic
embedding set (every detector, the results schema, the markdown regenerable from the JSON)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from infogauss.datasets import write_embedding_set


def _mixture(rng, n, d=6, k=3, *, sep=3.0, means=None):
    """Gaussian mixture with a fixed (per dimension) within-class covariance."""
    means = rng.normal(scale=sep, size=(k, d)) if means is None else means
    d = means.shape[1]
    y = rng.integers(0, len(means), n)
    A = np.eye(d) + 0.3 * np.random.default_rng(d).standard_normal((d, d)) / np.sqrt(d)
    return means[y] + rng.standard_normal((n, d)) @ A.T, y, means


def write_synthetic(tmp_path, rng, d=64):
    X, y, means = _mixture(rng, 2000, d=d, k=10, sep=1.5)
    Xt, yt, _ = _mixture(rng, 600, d=d, means=means)
    far = _mixture(rng, 300, d=d, means=means + 1.0)[0]
    near = _mixture(rng, 300, d=d, means=rng.normal(scale=1.5, size=(10, d)))[0]
    return write_embedding_set(
        tmp_path / "emb", train=X, train_labels=y, test=Xt, test_labels=yt,
        ood={"shift": far, "other": near}, meta={"synthetic": True, "layer": "none"},
    )


@pytest.mark.pyod
@pytest.mark.faiss
def test_benchmark_end_to_end(tmp_path, rng):
    pytest.importorskip("pyod")
    pytest.importorskip("faiss")
    from infogauss.bench import ood_cifar10 as bench

    d = write_synthetic(tmp_path, rng)
    out = tmp_path / "res" / "ood.json"
    rc = bench.main(["--embeddings", str(d), "--out", str(out), "--splits", "3",
                     "--max-train", "1500", "--baseline-max-train", "500",
                     "--mcd-max-train", "300", "--mcd-dims", "8", "--seed", "3"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert {"config", "seed", "environment", "metrics", "calibration",
            "analytic_pvalues", "detectors", "data"} <= set(res)
    assert res["benchmark"] == "ood_cifar10" and res["schema"] == 1
    assert res["config"]["out"] == str(out)
    assert {"git", "versions", "machine"} <= set(res["environment"])
    assert {"sha", "dirty", "modified"} <= set(res["environment"]["git"])
    assert res["data"]["n_train_used"] == 1500 and res["data"]["train_subsampled"]
    methods = {"maha_global", "maha_global_l2", "maha_class", "maha_cluster", "maha_cluster_l2",
               "maha_relative", "maha_typicality", "deep_knn", "pyod_ecod", "pyod_iforest",
               "pyod_knn", "pyod_lof", "elliptic_envelope_mcd", "feature_norm"}
    assert set(res["metrics"]["shift"]) == methods
    assert all("error" not in v for v in res["detectors"].values())
    assert res["detectors"]["pyod_lof"]["n_train"] == 500
    assert res["detectors"]["deep_knn"]["backend"].startswith("faiss")
    assert res["metrics"]["shift"]["maha_class"]["auroc"] > 0.95
    assert res["metrics"]["other"]["maha_global"]["auroc"] > 0.95
    assert all(res["calibration_setup"]["api_matches_array_rule"].values())
    cal = res["calibration"]["maha_global"]
    assert set(cal) == {"0.01", "0.05", "0.1"}
    assert abs(cal["0.1"]["fpr_mean"] - 0.1) < 0.05
    md = out.with_suffix(".md").read_text()
    assert "| maha_class |" in md and "CIFAR-10 vs shift" in md
    assert len(res["plots"]) == 2 and all((tmp_path / "res" / p).exists() for p in res["plots"])
    # the table is regenerable from the JSON alone
    out.with_suffix(".md").unlink()
    assert bench.main(["--render", str(out)]) == 0
    assert out.with_suffix(".md").read_text() == md


def test_needs_embeddings_or_render():
    from infogauss.bench import ood_cifar10 as bench

    with pytest.raises(SystemExit, match="--embeddings DIR is required"):
        bench.main([])
