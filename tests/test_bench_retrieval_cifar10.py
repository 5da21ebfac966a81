"""``infogauss bench retrieval``: a smoke run on a small synthetic embedding set (so the
benchmark cannot rot)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


def clustered(rng, n, d=12, n_classes=5, spread=2.0):
    """Labelled Gaussian clusters with a shared random covariance."""
    means = rng.standard_normal((n_classes, d)) * spread
    A = rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
    y = rng.integers(0, n_classes, n)
    return (means[y] + rng.standard_normal((n, d)) @ A.T).astype(np.float32), y, means, A


def write_embeddings_dir(directory: Path, rng, n_train=800, n_test=300, d=16, n_ood=120):
    X, y, means, A = clustered(rng, n_train + n_test, d=d, n_classes=10, spread=1.0)
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "cifar10_train.npy", X[:n_train])
    np.save(directory / "cifar10_train_labels.npy", y[:n_train].astype(np.int64))
    np.save(directory / "cifar10_test.npy", X[n_train:])
    np.save(directory / "cifar10_test_labels.npy", y[n_train:].astype(np.int64))
    shifted = rng.standard_normal((n_ood, d)) * 3 + 4
    np.save(directory / "ood_shifted.npy", shifted.astype(np.float32))
    np.save(directory / "ood_near.npy", (X[:n_ood] * 1.5).astype(np.float32))
    (directory / "meta.json").write_text(json.dumps({"synthetic": True}))


@pytest.mark.faiss
def test_benchmark_smoke(tmp_path, rng):
    pytest.importorskip("faiss")
    from infogauss.bench import retrieval_cifar10 as bench

    emb = tmp_path / "emb"
    write_embeddings_dir(emb, rng)
    out = tmp_path / "results" / "retrieval.json"
    assert bench.main(["--embeddings", str(emb), "--out", str(out), "--seed", "3",
                       "--n-null-queries", "300", "--timing-queries", "100"]) == 0  # fmt: skip
    result = json.loads(out.read_text())
    assert {"config", "seed", "environment", "metrics"} <= set(result)
    assert result["benchmark"] == "retrieval_cifar10" and result["schema"] == 1
    assert {"git", "versions", "machine"} <= set(result["environment"])
    assert result["config"]["meta"] == {"synthetic": True}
    m = result["metrics"]
    assert m["whitened"]["retrieval"]["recall_at_1"] > 0.5
    assert set(m["whitened"]["false_match"]) == {
        "analytic/sidak", "empirical/sidak", "empirical/evt"
    }
    assert m["whitened"]["abstention"]["shifted"]["empirical"] > 0.9
    assert m["throughput"]["numpy_matmul_argpartition_raw"] > 0
    assert "ivf_recall_at_10_vs_exact" in m["throughput"]
    md = out.with_suffix(".md").read_text()
    assert "| whitened cosine |" in md and "Throughput" in md


def test_ood_sets_are_optional(tmp_path, rng):
    from infogauss.bench.retrieval_cifar10 import load_embeddings

    emb = tmp_path / "emb"
    write_embeddings_dir(emb, rng)
    for p in emb.glob("ood_*.npy"):
        p.unlink()
    data = load_embeddings(emb)
    assert data["ood"] == {} and data["cifar10_train"].shape == (800, 16)
