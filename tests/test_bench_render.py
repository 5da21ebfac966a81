"""``infogauss.bench._render``: the provenance line every table carries, and every renderer on
the committed results files (each table is regenerable from its JSON alone)."""

from __future__ import annotations

import json

import pytest

from infogauss import _io
from infogauss.bench import _render

from .conftest import REPO

RESULTS = REPO / "benchmarks" / "results"


@pytest.mark.parametrize("payload, dirty", [
    ({"environment": {"git": {"sha": "a" * 40, "dirty": True, "modified": ["x.py"]}}}, True),
    ({"environment": {"git_sha": "b" * 40 + "+dirty"}}, True),  # older files
    ({"git_sha": "c" * 40, "machine": {"cores": 2}}, False),
    ({"git": {"sha": "d" * 40, "dirty": False}, "machine": {"cores": 2}}, False),
    ({"environment": {"git": {"sha": None, "dirty": None}}}, None),
])
def test_describe_commit_marks_dirty_trees(payload, dirty):
    sha = _io.upgrade_results(payload)["environment"]["git"]["sha"]
    mark = _render.describe_commit(payload)
    assert ("DIRTY TREE" in mark) is bool(dirty)
    if sha:
        assert mark.startswith(sha[:12])
    else:
        assert mark == "unknown commit"


def test_describe_commit_counts_the_files():
    payload = {"environment": {"git": {"sha": "a" * 40, "dirty": True,
                                       "modified": ["x.py", "y.py"]}}}
    assert _render.describe_commit(payload) == "a" * 12 + " ⚠ DIRTY TREE (2 modified files)"


def test_source_line_marks_dirty_results():
    payload = {"_file": "benchmarks/results/x.json",
               "environment": {"git": {"sha": "e" * 40, "dirty": True, "modified": ["a.py"]},
                               "timestamp_utc": "T", "machine": {"cpu": "C", "cores": 2}}}
    assert _render.source_line(payload) == ("_Source: `benchmarks/results/x.json` — git "
                                            + "e" * 12 + " ⚠ DIRTY TREE (1 modified file), T C "
                                            "(2 cores)._")
    payload["environment"]["git"].update(dirty=False, modified=[])
    assert "DIRTY" not in _render.source_line(payload)
    json.dumps(payload)  # the schema is plain JSON


def _committed(name):
    path = RESULTS / f"{name}.json"
    if not path.exists():
        pytest.skip(f"{path} is not in this checkout")
    return _io.read_results(path)


def test_ood_and_retrieval_tables_of_the_committed_results():
    md = _render.ood(_committed("ood_cifar10"))
    assert md.startswith("# CIFAR-10 OOD benchmark") and "| maha_class |" in md
    assert "## Analytic p-values" in md and "| method | law | α=0.01 | α=0.05 | α=0.1 |" in md
    md = _render.retrieval(_committed("retrieval_cifar10"))
    assert "| whitened cosine |" in md and "Throughput" in md
    assert "`infogauss bench retrieval`" in md


def test_table1_calibration_and_report_sections_of_the_committed_results():
    p = _committed("paper_table1_cpu")
    md = _render.table1(p["rows"], {"preset": "cpu", "seed": 0})
    assert md.startswith("# Table 1") and "## Row by row" in md
    assert _render.scoring_speed(_committed("scoring_speed")).startswith("| n | d | dtype |")
    assert "img/s" in _render.train_throughput(_committed("train_throughput"))
    assert "(a) out of core" in _render.scale(_committed("scale"))
    runs = [_io.read_results(f) | {"_file": f"benchmarks/results/{f.name}"}
            for f in sorted(RESULTS.glob("train_cifar10_*.json"))]
    if runs:
        md = _render.train_cifar10({"runs": runs}, REPO)
        assert md.count("_Source: `benchmarks/results/train_cifar10_") == len(runs)


def test_calibration_table():
    payload = {"config": {"cuts": 3, "alphas": [0.01, 0.05, 0.1]}, "sets": {"g": {
        "methods": {"default": {a: {"mean": float(a), "sd": 0.0, "inside": True}
                                for a in ("0.01", "0.05", "0.1")}},
        "auroc": {"shifted": 0.75}}}}
    md = _render.calibration(payload)
    assert "| g | default | 1.00 ± 0.00% ✓ | 5.00 ± 0.00% ✓ | 10.00 ± 0.00% ✓ |" in md
    assert "| g | shifted | 75.00 |" in md


def test_train_crops_and_architecture():
    assert _render.crops({"crop_size": [16, 20, 24]}) == "16→20→24 px (progressive)"
    assert _render.crops({"crop_size": [24]}) == "24 px" and _render.crops({}) == "32 px"
    assert _render.arch({"encoder": "small_cnn"}) == "small_cnn 32-64-128"
    assert _render.arch({"encoder": "small_cnn", "encoder_spec": {"widths": [4, 8, 8]}}) == \
        "small_cnn 4-8-8"
    assert _render.arch({"encoder": "resnet18"}) == "resnet18"
