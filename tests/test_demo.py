"""The main job (``make demo``) runs end to end in its quick mode, and the bench CLI dispatches."""

from __future__ import annotations

import json

import pytest

from infogauss.cli import main as cli_main


@pytest.mark.torch
@pytest.mark.faiss
def test_demo_quick_and_its_claims_match_its_numbers(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("faiss")
    from infogauss.calibration import binomial_band
    from infogauss.demo import ALPHA, MATCH_ALPHA, main

    assert main(["--quick", "--no-plots", "--out", str(tmp_path)]) == 0
    r = json.loads((tmp_path / "report.json").read_text())
    assert list(r) == ["synthetic", "digits", "gaussianize", "ood", "retrieval", "service",
                       "plots", "seconds"]
    text = capsys.readouterr().out
    for title in ("## 1.", "## 2.", "## 3.", "## 4.", "## 5.", "## 6.", "## What to use when"):
        assert title in text
    # every step has one result and one meaning, and the meaning agrees with the numbers
    s = r["synthetic"]
    assert ("made the embeddings Gaussian" in s["meaning"]) == (
        s["trained"]["gaussian"] and not s["untrained"]["gaussian"])
    assert ("not jointly" in s["meaning"]) == (not s["trained"]["gaussian"]
                                               and s["trained"]["ad_pass"] >= 0.9)
    assert ("is called 'Gaussian' by the same checks" in s["meaning"]) == s["exact Gaussian"]["gaussian"]
    d = r["digits"]
    assert d["meaning"].startswith("Not Gaussian") == (not d["trained"]["gaussian"])
    g = r["gaussianize"]
    b, a = g["analytic_f_fpr"]["before"], g["analytic_f_fpr"]["after"]
    assert g["helped"] == (abs(a - ALPHA) < abs(b - ALPHA))
    assert (" closer to" in g["meaning"] and "no closer" not in g["meaning"]) == g["helped"]
    o = r["ood"]
    lo, hi = binomial_band(ALPHA, o["n_new"], level=0.99)
    assert o["band99"] == [lo, hi] and o["calibrated"] == (lo <= o["observed_fpr"] <= hi)
    assert ("inside" in o["meaning"]) == o["calibrated"]
    assert o["best_infogauss"] in o["meaning"] and o["best_baseline"] in o["meaning"]
    assert {"kNN cosine (k=1)", "LOF (k=20)", "infogauss default (global)"} <= set(o["detectors"])
    chosen = f"infogauss selected ({o['selected']})"
    assert chosen in o["detectors"] and f"{o['detectors'][chosen]['auroc']:.3f}" in o["meaning"]
    rt = r["retrieval"]
    lo, hi = binomial_band(MATCH_ALPHA, rt["n_no_match"], level=0.99)
    assert rt["band99"] == [lo, hi] and rt["holds"] == (rt["false_match_rate"] <= hi)
    assert ("you can set a rate for" in rt["meaning"]) == rt["holds"]
    assert f"{rt['pair_null_false_match_rate']:.1%}" in rt["meaning"]
    assert r["service"]["identical"] is True
    assert "what to use when" in (tmp_path / "report.md").read_text().lower()


def test_bench_cli_unknown_name(capsys):
    assert cli_main(["bench", "no-such-benchmark"]) == 2
    assert "available:" in capsys.readouterr().err


def test_cli_without_command_prints_help(capsys):
    assert cli_main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
