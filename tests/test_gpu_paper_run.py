"""``benchmarks/gpu_paper_run.py``: the plan (dry run), a cut-off run, recovery from a training
checkpoint, and the whole ``--tiny`` run end to end on the CPU (slow)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_paper_run as gpr  # noqa: E402

# the stages before the cut, and the keys issue 22's "Done when" names
EARLY = ("environment", "data", "train_contrastive")
SUMMARY_KEYS = ("gpu", "device", "torch", "cuda", "commit", "infonce", "cross_entropy", "table1",
                "ood_auroc", "wall_seconds", "status")


def _fast(tmp_path: Path, *extra: str) -> list[str]:
    """A --tiny run on random images (no data directory), fp32 (faster than bf16 on CPUs
    without bf16 units), with a short training budget."""
    return ["--tiny", "--device", "cpu", "--data", str(tmp_path / "no-data"),
            "--out", str(tmp_path / "out"), "--precision", "fp32", "--no-progress",
            "--budget-minutes", "5", "--contrastive-share", "0.005", "--supervised-share",
            "0.003", *extra]


def _payload(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "out" / gpr.RESULTS_NAME).read_text())


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    t = time.perf_counter()
    assert gpr.main(["--dry-run", "--device", "cuda", "--out", str(out)]) == 0
    assert time.perf_counter() - t < 1.0
    text = capsys.readouterr().out
    assert not out.exists()
    for stage in gpr.ALL_STAGES:
        assert stage in text
    assert "batch 1024" in text and "epochs at" in text and "estimated end" in text
    assert "sqrt(1024/256) = 0.002" in text

    cfg = gpr.make_config(gpr.parse_args(["--device", "cuda"]))
    plan = gpr.make_plan(cfg)
    assert plan["budget_s"] == 540 and plan["slack_s"] >= 0
    train = {r["stage"]: r for r in plan["stages"]}["train_contrastive"]
    assert train["seconds"] == pytest.approx(0.45 * 540)
    assert train["expected_epochs"] == pytest.approx(243 * 10_000 / 50_000, rel=0.01)
    assert not train["compile"]  # auto: a 243 s stage does not pay for the compilation


def test_lr_rules_and_bad_shares():
    sqrt = gpr.make_config(gpr.parse_args(["--device", "cpu", "--batch-size", "1024"]))
    linear = gpr.make_config(gpr.parse_args(["--device", "cpu", "--batch-size", "1024",
                                             "--lr-rule", "linear"]))
    assert sqrt.lr == pytest.approx(2e-3) and linear.lr == pytest.approx(4e-3)
    with pytest.raises(SystemExit):
        gpr.make_config(gpr.parse_args(["--contrastive-share", "0.7", "--supervised-share", "0.3"]))
    with pytest.raises(SystemExit):
        gpr.parse_args(["--supervised-share", "1.5"])


def test_missing_data_is_refused_without_tiny(tmp_path, capsys):
    assert gpr.main(["--device", "cpu", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "lacks" in capsys.readouterr().err and not (tmp_path / "o").exists()


@pytest.mark.torch
def test_a_run_cut_off_after_training_keeps_the_earlier_stages(tmp_path):
    pytest.importorskip("torch")
    with pytest.raises(SystemExit):
        gpr.main(_fast(tmp_path, "--stop-after", "train_contrastive"))
    p = _payload(tmp_path)
    assert p["status"] == "running"  # as a killed run leaves it: nothing written after the cut
    for stage in EARLY:
        assert p["stages"][stage]["status"] == "done", stage
    assert set(p["stages"]) == set(EARLY)
    r = p["stages"]["train_contrastive"]["result"]
    assert r["epochs_reached"] > 0 and Path(r["checkpoint"]["path"]).is_file()
    assert p["summary"]["infonce"]["epochs_reached"] == r["epochs_reached"]
    assert p["stages"]["data"]["result"]["source"]["kind"].startswith("random")
    assert (tmp_path / "out" / gpr.LOG_NAME).is_file()


@pytest.mark.slow
@pytest.mark.torch
def test_a_training_failure_is_evaluated_from_its_last_checkpoint(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import infogauss.contrastive as ic

    real = ic.train_contrastive

    def fails_after_one_epoch(encoder, data, config, **kw):
        config.stop_after_epochs = 1
        config.time_budget_s = None
        config.schedule = "steps"
        real(encoder, data, config, **kw)  # writes last.pt after its epoch
        raise FloatingPointError("loss became nan")

    monkeypatch.setattr(ic, "train_contrastive", fails_after_one_epoch)
    with pytest.raises(SystemExit):
        gpr.main(_fast(tmp_path, "--stop-after", "train_contrastive"))
    rec = _payload(tmp_path)["stages"]["train_contrastive"]
    assert rec["status"] == "recovered"
    assert rec["result"]["recovered_from_checkpoint"] is True
    assert "nan" in rec["result"]["error"] and rec["result"]["epochs_completed"] == 1


@pytest.mark.slow
@pytest.mark.torch
def test_tiny_run_end_to_end_on_cpu(tmp_path):
    """Every stage, through the worker processes the GPU run uses; the real data when
    ../shared/data is there (a few hundred images of it), else random images."""
    pytest.importorskip("torch")
    out = tmp_path / "out"
    argv = ["--tiny", "--device", "cpu", "--out", str(out), "--no-progress",
            "--eval-workers", "2", "--budget-minutes", "10",
            "--contrastive-share", "0.01", "--supervised-share", "0.005"]
    assert gpr.main(argv) == 0
    p = _payload(tmp_path)
    assert p["status"] == "complete", {k: v.get("error") for k, v in p["stages"].items()}
    assert set(p["stages"]) == set(gpr.ALL_STAGES)
    s = p["summary"]
    assert set(SUMMARY_KEYS) <= set(s)
    assert s["device"] == "cpu" and s["torch"] and s["commit"]
    ie, ce = s["infonce"], s["cross_entropy"]
    assert 0 <= ie["knn_acc_k200_backbone"] <= 1 and 0 <= ie["knn_acc_k200_head"] <= 1
    assert ie["epochs_reached"] > 0 and isinstance(ie["epochs_completed"], int)
    assert 0 <= ce["test_accuracy"] <= 1
    rows = {r["row"]: r for r in s["table1"]}
    assert set(rows) == {"cifar_contrastive_backbone", "cifar_contrastive_head",
                         "cifar_supervised_backbone"}
    assert rows["cifar_contrastive_backbone"]["paper"] == {"cv": 0.09, "ad_pass": 0.961}
    assert rows["cifar_supervised_backbone"]["paper"] == {"cv": 0.50, "ad_pass": 0.062}
    for r in rows.values():
        assert all(r["ours"][k] is not None for k in ("cv", "ad_pass", "ad_pass_n100",
                                                        "ad_pass_n500"))
    for emb in ("contrastive", "supervised", "contrastive_head"):
        detectors = p["stages"][f"ood_{emb}"]["result"]["detectors"]
        assert not [d for d, v in detectors.items() if "error" in v]
        for ood_set in ("tin_resize", "tin_crop"):
            assert set(s["ood_auroc"][emb][ood_set]) == set(detectors)
    for stage in gpr.ALL_STAGES:
        assert s["wall_seconds"][stage] >= 0
    md = (out / gpr.MD_NAME).read_text()
    assert "Table 1" in md and "OOD AUROC" in md
    assert gpr.main(["--render", str(out / gpr.RESULTS_NAME)]) == 0
    assert (out / gpr.MD_NAME).read_text() == md


@pytest.mark.torch
def test_the_trainer_uses_a_tensor_dataset_where_it_lives():
    """What the run relies on to keep CIFAR-10 on the GPU: no copy to the host per run or step."""
    torch = pytest.importorskip("torch")
    import infogauss.contrastive as ic
    from infogauss.contrastive import train as trainer

    x = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    assert trainer._as_tensor(x, "data").data_ptr() == x.data_ptr()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    enc = ic.build_encoder("small_cnn", widths=(4, 4, 4))
    cfg = ic.TrainConfig(epochs=1, batch_size=8, device=device, progress=False)
    result = ic.train_contrastive(enc, x.to(device), cfg)
    assert result.epochs_completed == 1 and next(result.model.parameters()).device.type == device
