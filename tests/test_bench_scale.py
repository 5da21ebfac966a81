"""``infogauss bench scale``: a smoke run of the out-of-core part and the projection."""

from __future__ import annotations

import json

from infogauss.bench import scale


def test_scale_smoke(tmp_path):
    out = tmp_path / "scale.json"
    work = tmp_path / "work"
    assert scale.main(["--rows", "2e4", "--skip-dask", "--out", str(out), "--workdir", str(work),
                       "--project-partition-rows", "2048", "--blas-threads", "1"]) == 0
    p = json.loads(out.read_text())
    assert p["benchmark"] == "scale" and p["schema"] == 1 and p["config"]["rows"] == 20_000
    a = p["a_out_of_core"]
    assert a["scores_finite"] and a["fit"]["rows_per_s"] > 0 and a["file_bytes"] > 20_000 * 128 * 4
    assert p["c_projection"]["rows"] and p["c_projection"]["n_rows"] == 1e9
    assert not work.exists()  # generated files removed (no --keep)
