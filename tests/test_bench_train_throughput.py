"""``infogauss bench throughput``: a smoke run on the smallest encoder."""

from __future__ import annotations

import json

import pytest


@pytest.mark.torch
def test_train_throughput_smoke(tmp_path):
    pytest.importorskip("torch")
    from infogauss.bench import train_throughput

    out = tmp_path / "tp.json"
    assert train_throughput.main(["--encoders", "linear", "--steps", "2", "--batch-size", "32",
                                  "--out", str(out)]) == 0
    p = json.loads(out.read_text())
    assert p["benchmark"] == "train_throughput" and p["schema"] == 1
    assert [(r["encoder"], r["precision"]) for r in p["results"]] == [
        ("linear", "fp32"), ("linear", "bf16")]
    assert p["config"]["out"] == str(out) and all(r["img_per_s"] > 0 for r in p["results"])
