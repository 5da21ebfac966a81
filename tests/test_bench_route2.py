"""``infogauss bench route2`` collects what the other benchmarks wrote (synthetic inputs)."""

from __future__ import annotations

import json

from infogauss import _io
from infogauss.bench import _render, route2


def _diag(gaussian):
    return {"verdict": "Gaussian" if gaussian else "not Gaussian: ...",
            "familywise": {"decision": "Gaussian" if gaussian else "not Gaussian",
                           "rejected": [] if gaussian else ["a", "b"], "n_checks": 12},
            "coordinates": {"ad": {"pass_fraction": 0.9}}, "norms": {"cv": 0.1}}  # fmt: skip


def _cal():
    m = {k: {"0.05": {"mean": v}} for k, v in
         {"analytic_f": 0.2, "analytic_f+g": 0.1, "default": 0.05}.items()}  # fmt: skip
    layer = {"methods": m, "auroc": {"tin_crop": 0.9, "tin_resize": 0.8, "tin_crop+g": 0.91},
             "distance_moments": {"raw": {"var_ratio": 3.0}}}  # fmt: skip
    return {"benchmark": "calibration", "config": {}, "environment": _io.environment(),
            "sets": {"backbone": layer, "head": layer}}  # fmt: skip


def test_collect_and_render(tmp_path):
    res, d = tmp_path / "results", tmp_path / "r2"
    res.mkdir()
    d.mkdir()
    train = {"benchmark": "train_cifar10", "config": {"reg_beta": 0.1, "reg_lambda": 1.0},
             "environment": _io.environment(), "budget_minutes": 10, "epochs_completed": 7,
             "metrics": {"knn_acc_backbone": 0.6, "knn_acc_head": 0.62}}  # fmt: skip
    _io.write_results(res / "train_cifar10_run.json", train)
    _io.write_results(d / "calibration_run.json", _cal())
    for layer, g in (("backbone", False), ("head", True)):
        (d / f"diag_run_{layer}.json").write_text(json.dumps(_diag(g)))
    row = route2.collect("run", d, res)
    assert row["reg_beta"] == 0.1 and row["knn_head"] == 0.62
    assert row["layers"]["head"]["gaussian"] and not row["layers"]["backbone"]["gaussian"]
    assert row["layers"]["backbone"]["auroc"] == {"tin_crop": 0.9, "tin_resize": 0.8}
    md = _render.route2({"rows": [row]})
    assert "| 0.1 | 10 min | 7 | 0.600 / 0.620 | head | Gaussian (0/12) |" in md
