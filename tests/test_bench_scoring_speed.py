"""``infogauss bench speed``: a smoke run (``--quick``) of the fit and scoring comparison."""

from __future__ import annotations

import json

from infogauss.bench import scoring_speed


def test_scoring_speed_smoke(tmp_path):
    out = tmp_path / "speed.json"
    assert scoring_speed.main(["--quick", "--repeats", "1", "--out", str(out)]) == 0
    p = json.loads(out.read_text())
    assert p["benchmark"] == "scoring_speed" and p["schema"] == 1
    assert [(c["n"], c["d"], c["dtype"]) for c in p["cases"]] == [
        (20_000, 64, "float32"), (20_000, 64, "float64")]
    # same covariance as scikit-learn: the scores agree to the compute dtype's rounding
    assert p["cases"][1]["max_rel_diff_vs_sklearn"] < 1e-9
    assert p["memory"]["n"] == 50_000
