"""``infogauss bench latency``: a smoke run (the timings themselves belong to results files)."""

from __future__ import annotations

import json

from infogauss.bench import latency


def test_latency_smoke(tmp_path):
    out = tmp_path / "lat.json"
    assert latency.main(["--quick", "--calls", "2", "--out", str(out)]) == 0
    p = json.loads(out.read_text())
    assert p["benchmark"] == "latency" and p["schema"] == 1 and p["config"]["quick"] is True
    assert {c["batch"] for c in p["cases"]} == {1, 16, 256}
    assert p["threads"]["check"]["equal_to_serial"] is True
    assert all(c["ratio_to_floor"]["floor"] == 1.0 for c in p["cases"])
