"""The main job (``make demo``) runs end to end in its quick mode, and the bench CLI dispatches."""

from __future__ import annotations

import json

import pytest

from infogauss.cli import main as cli_main


@pytest.mark.torch
@pytest.mark.faiss
def test_demo_quick(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("faiss")
    from infogauss.demo import main

    assert main(["--quick", "--no-plots", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    digits = report["digits"]
    assert 0.5 <= digits["ood"]["class"]["auroc"] <= 1.0
    assert digits["knn_accuracy"] > 0.5
    assert isinstance(digits["retrieval"], dict)
    text = capsys.readouterr().out
    assert "OOD detector" in text and "Calibrated retrieval" in text
    assert (tmp_path / "report.md").exists()


def test_bench_cli_unknown_name(capsys):
    assert cli_main(["bench", "no-such-benchmark"]) == 2
    assert "available:" in capsys.readouterr().err


def test_cli_without_command_prints_help(capsys):
    assert cli_main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
