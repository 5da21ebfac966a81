"""Gaussianity diagnostics: known answers, agreement with scipy, bad input, report, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import stats

from infogauss.diagnostics import (
    GaussianityReport,
    anderson_critical_value,
    anderson_darling_normal,
    diagnose,
    mardia,
    null_pass_rates,
    random_orthonormal,
)

N, D = 2000, 32
# 199 joint simulations: the smallest the two-sided χ² check can decide with at the 1% level
# (with 99 it is "inconclusive" by construction, see test_diagnostics_checks.py)
FAST = {"n_null_simulations": 500, "n_joint_simulations": 199}


def _check(report: GaussianityReport, name: str) -> dict:
    return next(c for c in report.checks if c["name"] == name)


def _status(report: GaussianityReport) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report.checks}


# ------------------------------------------------------------------ agreement with scipy
@pytest.mark.parametrize("n", [8, 20, 57, 300, 2000])
def test_anderson_matches_scipy(n):
    rng = np.random.default_rng(n)
    X = np.column_stack([rng.normal(size=n), rng.laplace(size=n), rng.uniform(size=n) * 1e3 + 5])
    a2 = anderson_darling_normal(X)
    for j in range(X.shape[1]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # scipy 1.17: critical_values deprecated
            res = stats.anderson(X[:, j], "norm")
        np.testing.assert_allclose(a2[j], res.statistic, rtol=1e-10, atol=1e-12)
        assert res.significance_level[2] == 5
        assert anderson_critical_value(n) == pytest.approx(res.critical_values[2], abs=0)


def test_anderson_critical_value_is_papers_for_large_n():
    assert anderson_critical_value(5000) == 0.752
    assert anderson_critical_value(10_000) == 0.752


def test_dagostino_matches_scipy_normaltest():
    rng = np.random.default_rng(3)
    X = np.column_stack([rng.normal(size=500), rng.exponential(size=500)])
    X = np.hstack([X, rng.normal(size=(500, 6))])
    rep = diagnose(X, **FAST)
    k2, p = stats.normaltest(X, axis=0)
    coords = rep.coordinates["dp"]
    assert coords["mean_statistic"] == pytest.approx(np.mean(k2), rel=1e-12)
    assert coords["n_pass"] == int(np.sum(p > 0.05))
    ad = anderson_darling_normal(X)
    assert rep.coordinates["ad"]["n_pass"] == int(np.sum(ad < anderson_critical_value(500)))
    assert rep.coordinates["ad"]["mean_statistic"] == pytest.approx(np.mean(ad), rel=1e-12)


def test_null_pass_rates_near_nominal():
    r = null_pass_rates(1000, 2000, 0)
    assert abs(r["ad_pass"] - 0.95) < 0.02
    assert abs(r["dp_pass"] - 0.95) < 0.02
    assert r["dp_mean"] == pytest.approx(2.0, abs=0.25)  # K² ~ χ²₂ under the null
    assert null_pass_rates(1000, 2000, 0) is r  # cached


# ------------------------------------------------------------------ Mardia
def test_mardia_matches_direct_loop():
    rng = np.random.default_rng(11)
    n, d = 30, 3
    X = rng.standard_exponential((n, d)) + rng.normal(size=(n, d))
    r = mardia(X)
    xbar = X.mean(axis=0)
    S = sum(np.outer(X[i] - xbar, X[i] - xbar) for i in range(n)) / n  # MLE covariance
    Sinv = np.linalg.inv(S)
    b1 = 0.0
    for i in range(n):
        for j in range(n):
            b1 += float((X[i] - xbar) @ Sinv @ (X[j] - xbar)) ** 3
    b1 /= n * n
    b2 = sum(float((X[i] - xbar) @ Sinv @ (X[i] - xbar)) ** 2 for i in range(n)) / n
    assert r["b1"] == pytest.approx(b1, rel=1e-9)
    assert r["b2"] == pytest.approx(b2, rel=1e-9)
    df = d * (d + 1) * (d + 2) / 6
    k = (d + 1) * (n + 1) * (n + 3) / (n * ((n + 1) * (d + 1) - 6))
    assert r["skew_df"] == df
    assert r["skew_pvalue"] == pytest.approx(stats.chi2.sf(n * k * b1 / 6, df), rel=1e-9)
    mean = d * (d + 2) * (n - 1) / (n + 1)
    var = 8 * d * (d + 2) * (n - 3) * (n - d - 1) * (n - d + 1) / ((n + 1) ** 2 * (n + 3) * (n + 5))
    assert r["kurt_z"] == pytest.approx((b2 - mean) / np.sqrt(var), rel=1e-9)


def test_mardia_needs_more_samples_than_features():
    with pytest.raises(ValueError, match="n_samples > n_features"):
        mardia(np.random.default_rng(0).normal(size=(5, 5)))


# ------------------------------------------------------------------ known answers
@pytest.fixture(scope="module")
def gaussian_report():
    rng = np.random.default_rng(20260229)
    A = rng.standard_normal((D, D)) / np.sqrt(D) + np.eye(D)
    X = rng.standard_normal((N, D)) @ A.T + 5.0
    return diagnose(X, seed=1, **FAST)


def test_exact_gaussian_passes_at_the_nominal_rate(gaussian_report):
    rep = gaussian_report
    for section in (rep.coordinates, rep.projections, rep.whitened):
        for key in ("ad", "dp"):
            t = section[key]
            lo, hi = t["null_band"]
            assert lo <= t["pass_fraction"] <= hi, (key, t)
            assert 0.9 < t["null_pass_fraction"] < 0.99
    status = _status(rep)
    assert status["Mahalanobis vs F (exact)"] == "pass"
    assert status["Mahalanobis vs χ² (limit)"] == "pass"
    assert status["Mardia skewness"] == "pass"
    assert status["Mardia kurtosis"] == "pass"
    assert status["norm CV vs covariance-implied"] == "pass"
    # the family-wise verdict (Holm at 1%), issue 15: was "consistent with a Gaussian on all"
    assert rep.verdict.startswith("Gaussian: no check rejects")
    assert rep.familywise["decision"] == "Gaussian" and rep.familywise["n_checks"] == 12
    assert rep.joint["f"]["ks"] < 0.06
    assert 0.03 < rep.joint["f"]["tail_05"] < 0.07


def test_chi2_is_far_from_exact_law_at_realistic_n_over_d():
    # the figure: exact Gaussians, n_fit = 2,500, d = 256, KS ≈ 0.44 against χ²
    rng = np.random.default_rng(5)
    X = rng.standard_normal((5000, 256))
    rep = diagnose(X, n_projections=16, **FAST)
    assert rep.joint["chi2"]["ks"] == pytest.approx(0.44, abs=0.03)
    assert rep.joint["chi2"]["ks_of_exact_gaussian"] == pytest.approx(0.45, abs=0.02)
    assert _check(rep, "Mahalanobis vs F (exact)")["status"] == "pass"
    # judged against what exact Gaussians show at this n/d, not against χ² itself
    assert _check(rep, "Mahalanobis vs χ² (limit)")["status"] == "pass"
    assert rep.norms["cv_implied"] == pytest.approx(rep.norms["cv_isotropic_floor"], rel=0.02)


def test_laplace_fails_on_coordinates_whitened_and_joint():
    X = np.random.default_rng(1).laplace(size=(N, D))
    rep = diagnose(X, **FAST)
    s = _status(rep)
    for name in ("AD on coordinates", "DP on coordinates", "AD on whitened", "DP on whitened",
                 "Mahalanobis vs F (exact)", "Mardia kurtosis", "norm CV vs covariance-implied"):
        assert s[name] == "fail", name
    assert rep.coordinates["ad"]["pass_fraction"] < 0.2
    assert rep.mardia["kurt_z"] > 10  # heavy tails
    assert rep.norms["cv_centered"] > 1.3 * rep.norms["cv_implied"]
    assert rep.verdict.startswith("not Gaussian")


def test_uniform_fails():
    X = np.random.default_rng(2).uniform(-1, 1, size=(N, D))
    rep = diagnose(X, **FAST)
    s = _status(rep)
    for name in ("AD on coordinates", "DP on coordinates", "AD on whitened", "Mardia kurtosis"):
        assert s[name] == "fail", name
    assert rep.mardia["kurt_z"] < -10  # light tails


def test_well_separated_mixture_fails():
    # 4 well-separated components: a rank-3 departure. Marginals, projections, the norm
    # concentration and Mardia's skewness see it; whitened coordinates and the Mahalanobis
    # law barely do (3 of 32 whitened directions are bimodal), which the test pins down.
    rng = np.random.default_rng(3)
    means = 3.0 * rng.standard_normal((4, D))
    X = rng.standard_normal((N, D)) + means[rng.integers(0, 4, N)]
    rep = diagnose(X, **FAST)
    s = _status(rep)
    for name in ("AD on coordinates", "DP on coordinates", "AD on projections",
                 "DP on projections", "norm CV vs covariance-implied", "Mardia skewness"):
        assert s[name] == "fail", name
    assert rep.norms["cv_centered"] < 0.5 * rep.norms["cv_implied"]  # norms too concentrated
    assert rep.verdict.startswith("not Gaussian")


def test_relu_features_fail():
    rng = np.random.default_rng(4)
    X = np.maximum(rng.standard_normal((N, D)) @ rng.standard_normal((D, D)) / np.sqrt(D), 0.0)
    rep = diagnose(X, **FAST)
    s = _status(rep)
    for name in ("AD on coordinates", "DP on coordinates", "AD on whitened",
                 "Mahalanobis vs F (exact)", "Mardia skewness"):
        assert s[name] == "fail", name
    assert rep.coordinates["ad"]["pass_fraction"] == 0.0


def test_projections_are_orthonormal_and_seeded():
    Q = random_orthonormal(10, 4, seed=3)
    np.testing.assert_allclose(Q.T @ Q, np.eye(4), atol=1e-12)
    np.testing.assert_array_equal(Q, random_orthonormal(10, 4, seed=3))


def test_report_is_reproducible_with_seed():
    X = np.random.default_rng(9).normal(size=(300, 6))
    a = diagnose(X, seed=4, max_samples=200, **FAST).to_dict()
    b = diagnose(X, seed=4, max_samples=200, **FAST).to_dict()
    assert a == b
    assert a["n_used"] == 200 and a["n_samples"] == 300


# ------------------------------------------------------------------ report, baseline
def test_report_serialises_and_compares_with_baseline(tmp_path):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(400, 8))
    base = rng.laplace(size=(400, 8))
    rep = diagnose(X, baseline=base, n_projections=8, **FAST)
    d = json.loads(rep.to_json())
    assert d["baseline"]["n_features"] == 8
    assert d["comparison"]["metrics"][0]["metric"] == "CV of norms (raw)"
    assert "AD on coordinates" in rep.comparison["gained"]
    md = rep.to_markdown()
    assert rep.verdict in md and "Against the baseline" in md and "Paper's protocol" in md
    assert len(rep.reasons) == len(rep.checks)
    paper = rep.paper_numbers()
    assert set(paper) == {"cv", "ad_pass", "dp_pass", "ad_mean", "dp_mean"}


def test_constant_coordinates_are_reported_not_fatal():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, 6))
    X[:, 2] = 4.0
    X[:, 5] = 0.0
    rep = diagnose(X, n_projections=6, **FAST)
    assert rep.constant_features == [2, 5]
    assert rep.coordinates["n_columns"] == 4
    assert rep.joint is not None and rep.mardia is not None
    assert any("constant" in n for n in rep.notes)


def test_too_few_rows_for_the_fit_split_is_an_explicit_entry():
    X = np.random.default_rng(8).normal(size=(40, 30))
    rep = diagnose(X, **FAST)
    assert rep.joint is None
    assert _check(rep, "Mahalanobis vs F (exact)")["status"] == "n/a"
    assert any("joint F check skipped" in n for n in rep.notes)
    assert rep.mardia is not None  # n > d + 5 on the whole sample


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "X, kwargs, exc, match",
    [
        (np.zeros((7, 3)), {}, ValueError, "at least 8 samples"),
        (np.ones((50, 1)), {}, ValueError, "at least 2 features"),
        (np.ones(50), {}, ValueError, "2-D"),
        (np.full((20, 3), np.nan), {}, ValueError, "NaN or infinity"),
        (np.full((20, 3), np.inf), {}, ValueError, "NaN or infinity"),
        (np.ones((20, 3)), {}, ValueError, "every feature of `X` is constant"),
        (np.eye(20, 3), {"n_projections": 4}, ValueError, "n_projections"),
        (np.eye(20, 3), {"heldout_fraction": 1.0}, ValueError, "heldout_fraction"),
        (np.eye(20, 3), {"max_samples": 5}, ValueError, "max_samples"),
        (np.eye(20, 3), {"seed": 1.5}, TypeError, "seed"),
        (np.array([["a", "b"]] * 10), {}, TypeError, "numbers"),
    ],
)
def test_bad_input(X, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        diagnose(X, **kwargs)


def test_bad_baseline_is_named():
    X = np.random.default_rng(0).normal(size=(50, 4))
    with pytest.raises(ValueError, match="`baseline`"):
        diagnose(X, baseline=np.full((50, 4), np.nan), **FAST)


# ------------------------------------------------------------------ CLI, plots, imports
def test_cli_writes_json_markdown_and_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from infogauss.cli import main

    rng = np.random.default_rng(10)
    emb = tmp_path / "emb.npy"
    base = tmp_path / "base.npy"
    np.save(emb, rng.normal(size=(300, 8)).astype(np.float32))
    np.save(base, rng.laplace(size=(300, 8)).astype(np.float32))
    out = tmp_path / "r" / "report.json"
    plots = tmp_path / "plots"
    rc = main(["diagnose", str(emb), "--out", str(out), "--plots", str(plots),
               "--baseline", str(base), "--markdown", str(tmp_path / "r.md")])
    assert rc == 0
    d = json.loads(out.read_text())
    assert d["n_samples"] == 300 and d["baseline"] is not None
    assert "Verdict" in capsys.readouterr().out
    names = sorted(p.name for p in plots.iterdir())
    assert "qq_mahalanobis.png" in names and "baseline_norms.png" in names
    assert (tmp_path / "r.md").read_text().startswith("# Gaussianity report")


def test_cli_bad_input_exit_code(tmp_path, capsys):
    from infogauss.cli import main

    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((5, 3)))
    assert main(["diagnose", str(bad)]) == 2
    assert "at least 8 samples" in capsys.readouterr().err
    assert main(["diagnose", str(tmp_path / "missing.npy")]) == 2


def test_diagnostics_imports_neither_torch_nor_matplotlib():
    code = (
        "import sys, infogauss.diagnostics, infogauss.cli._diagnose; "
        "print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
