"""``infogauss bench report``: BENCHMARKS.md and README's results block from the results files."""

from __future__ import annotations

import subprocess
import sys

import pytest

from infogauss.bench import report

from .conftest import REPO


def test_report_check_writes_nothing(tmp_path):
    before = {p: p.stat().st_mtime_ns for p in (REPO / "BENCHMARKS.md", REPO / "README.md")}
    out = subprocess.run([sys.executable, "-m", "infogauss.bench.report", "--check", "--root",
                          str(REPO)], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode in (0, 1), out.stderr
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_report_outside_a_checkout_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        report.main(["--check"])
    assert exc.value.code == 2
    assert "--root" in capsys.readouterr().err


def test_report_builds_from_a_results_directory(tmp_path):
    """A checkout with one results file: its section, the others 'not run', a headline."""
    from infogauss import _io

    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    env = {"timestamp_utc": "T", "git": {"sha": "a" * 40, "dirty": False, "modified": [],
                                         "modified_outputs": []},
           "versions": {}, "machine": {"cpu": "C", "cores": 2}}
    _io.write_results(tmp_path / "benchmarks" / "results" / "train_throughput.json", {
        "benchmark": "train_throughput", "config": {}, "environment": env,
        "description": "probe", "results": [
            {"encoder": "small_cnn", "n_params": 1e6, "precision": "bf16", "channels_last": True,
             "img_per_s": 100.0, "aug_share": 0.01, "data_share": 0.001}]})
    (tmp_path / "README.md").write_text("x\n<!-- results:start -->\nold\n<!-- results:end -->\n")
    assert report.main(["--root", str(tmp_path)]) == 0
    text = (tmp_path / "BENCHMARKS.md").read_text()
    assert "| small_cnn | 1.00M | bf16 | True | 100 | 1.0% | 0.10% |" in text
    assert "Not run yet (`benchmarks/results/scoring_speed.json` is absent)." in text
    assert "_Source: `benchmarks/results/train_throughput.json` — git " + "a" * 12 in text
    assert "Full tables: [BENCHMARKS.md]" in (tmp_path / "README.md").read_text()
    assert report.main(["--root", str(tmp_path), "--check"]) == 0
