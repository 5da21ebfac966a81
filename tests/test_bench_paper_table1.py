"""``infogauss bench table1``: a smoke run of the paper's Table 1 (synthetic and CIFAR rows)."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.mark.torch
def test_paper_table1_smoke(tmp_path):
    pytest.importorskip("torch")
    from infogauss.bench import paper_table1 as mod

    rng = np.random.default_rng(0)
    dirs = {}
    for name in ("contrastive", "supervised"):
        d = tmp_path / name
        d.mkdir()
        np.save(d / "cifar10_test.npy", rng.normal(size=(120, 12)).astype(np.float32))
        head = np.maximum(rng.normal(size=(120, 6)), 0).astype(np.float32)
        np.save(d / "cifar10_test_head.npy", head)
        dirs[name] = str(d)
    out = tmp_path / "t1.json"
    rc = mod.main(["--preset", "smoke", "--rows", "all", "--datasets", "laplace",
                   "--cifar-contrastive", dirs["contrastive"],
                   "--cifar-supervised", dirs["supervised"], "--out", str(out)])
    assert rc == 0
    payload = json.loads(out.read_text())
    assert {"config", "seed", "environment", "rows"} <= set(payload)
    assert payload["benchmark"] == "paper_table1" and payload["schema"] == 1
    assert "machine" in payload["environment"] and "versions" in payload["environment"]
    keys = [(r["key"], r["epoch"]) for r in payload["rows"]]
    assert keys[:3] == [("laplace", 0), ("laplace", 1), ("laplace", 2)]
    assert ("cifar_supervised_head", "final") in keys
    assert all(r["sentence"] for r in payload["rows"])
    md = out.with_suffix(".md").read_text()
    assert "| laplace | 2 | 0.08 / 100.0% / 100.0% |" in md
    assert "CIFAR-10 backbone: contrastive AD pass" in md


def test_smoke_preset_writes_under_runs_by_default(tmp_path, monkeypatch):
    from infogauss.bench import output_path

    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert output_path(None, "paper_table1_smoke.json", scratch=True) == \
        tmp_path.resolve() / "runs" / "benchmarks" / "paper_table1_smoke.json"


def test_cifar_rows_need_a_directory():
    from infogauss.bench import paper_table1 as mod

    with pytest.raises(SystemExit, match="--cifar-contrastive"):
        mod.main(["--preset", "smoke", "--rows", "cifar", "--out", "/nonexistent/x.json"])
