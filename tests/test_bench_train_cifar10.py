"""``infogauss bench train``: a one-epoch run writes only its own outputs, logged."""

from __future__ import annotations

import hashlib
import json
import logging
import types

import numpy as np
import pytest


@pytest.mark.torch
def test_train_cifar10_writes_its_outputs_only(tmp_path, monkeypatch, caplog, rng):
    """A one-epoch run on random images in a stand-in checkout: the checkpoint's SHA-256 goes
    into the results file, no shared checksum file is (re)written, every file written is
    logged."""
    pytest.importorskip("torch")
    from infogauss.bench import train_cifar10 as tc

    def fake(path, split):
        n = 256 if split == "train" else 64
        return types.SimpleNamespace(
            images=rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
            labels=np.arange(n, dtype=np.int64) % 10)

    monkeypatch.setattr(tc, "load_cifar10_zip", fake)
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)  # a checkout: outputs go here
    monkeypatch.chdir(tmp_path)
    tmp_path = tmp_path.resolve()
    with caplog.at_level(logging.INFO, logger="benchmarks"):
        rc = tc.main(["--epochs", "1", "--batch-size", "64", "--widths", "4", "8", "8",
                      "--precision", "fp32", "--knn-every", "0", "--name", "t", "--no-progress"])
    assert rc == 0
    ck = tmp_path / "benchmarks" / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["t.config.json", "t.log.json", "t.pt"]
    res = json.loads((tmp_path / "benchmarks" / "results" / "train_cifar10_t.json").read_text())
    assert res["checkpoint_sha256"] == hashlib.sha256((ck / "t.pt").read_bytes()).hexdigest()
    assert {"sha", "dirty", "modified"} <= set(res["environment"]["git"])
    assert res["benchmark"] == "train_cifar10" and res["schema"] == 1
    assert res["checkpoint"] == "benchmarks/checkpoints/t.pt"
    assert (tmp_path / "runs" / "train_cifar10" / "t").is_dir()
    for path in (ck / "t.pt", ck / "t.config.json", ck / "t.log.json",
                 tmp_path / "benchmarks" / "results" / "train_cifar10_t.json"):
        assert f"wrote {path}" in caplog.text
    assert "done in" in caplog.text


def test_unknown_encoder_is_refused():
    pytest.importorskip("torch")
    from infogauss.bench import train_cifar10 as tc

    with pytest.raises(SystemExit, match="--encoder must be one of"):
        tc.main(["--encoder", "vit", "--epochs", "1"])
