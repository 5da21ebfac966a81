"""Checks that see real data (issue 15, item 4): dead columns, Monte-Carlo resolution,
the family-wise (Holm) verdict, and status/number agreement."""

from __future__ import annotations

import json

import numpy as np
import pytest

from infogauss.calibration import monte_carlo_resolution
from infogauss.diagnostics import GaussianityReport, _joint, diagnose
from infogauss.diagnostics._checks import familywise, simulations_needed, verdict

from .conftest import correlated_gaussian

FAST = {"n_null_simulations": 500, "n_joint_simulations": 199}
MC_CHECKS = ("Mahalanobis vs F (exact)", "Mahalanobis tails vs F", "Mahalanobis vs χ² (limit)")


def _check(report: GaussianityReport, name: str) -> dict:
    return next(c for c in report.checks if c["name"] == name)


def _inside(value: float, band: list) -> bool:
    lo, hi = band
    return (lo is None or value >= lo) and (hi is None or value <= hi)


# ------------------------------------------------------------------ dead columns
@pytest.fixture(scope="module")
def dead_columns_data():
    """The issue's model: three dead output units (|x| < 1e-7, mostly exactly 0) among float32
    units of scale 0.05. Kept, they fail the whitened, exact-law and Mardia checks of data
    that is otherwise an exact Gaussian."""
    rng = np.random.default_rng(15)
    X = 0.05 * correlated_gaussian(rng, 1200, 12)
    dead = [3, 7, 11]
    X[:, dead] = 2e-8 * rng.standard_normal((1200, 3)) * (rng.random((1200, 3)) < 0.05)
    return X.astype(np.float32), dead


def test_dead_columns_are_dropped_named_and_every_check_runs(dead_columns_data):
    X, dead = dead_columns_data
    rep = diagnose(X, **FAST)
    assert rep.constant_features == dead
    assert {c["status"] for c in rep.checks} <= {"pass", "fail"}  # none skipped, none n/a
    assert rep.whitened is not None and rep.joint is not None and rep.mardia is not None
    assert rep.coordinates["n_columns"] == rep.projections["n_columns"] == 9
    assert rep.arrays["n_features_tested"] == 9
    md = rep.to_markdown()
    assert "Dropped features, constant or near-constant (3" in md and str(dead) in md
    note = next(n for n in rep.notes if "near-constant" in n)
    assert all(f"{j} (SD " in note for j in dead)
    assert not any("shrinkage" in n for n in rep.notes)  # no advice for an option diagnose lacks
    assert np.abs(X[:, dead]).max() < 1e-7
    assert rep.verdict.startswith("Gaussian")  # the live columns are an exact Gaussian


def test_dead_columns_are_dropped_from_every_check(dead_columns_data):
    """Every check gives what it gives on the live columns alone."""
    X, dead = dead_columns_data
    live = np.setdiff1d(np.arange(X.shape[1]), dead)
    rep, ref = diagnose(X, **FAST), diagnose(np.ascontiguousarray(X[:, live]), **FAST)
    for c, r in zip(rep.checks, ref.checks):
        assert c["name"] == r["name"] and c["status"] == r["status"], c["name"]
        assert c["pvalue"] == pytest.approx(r["pvalue"], rel=1e-9, abs=1e-300), c["name"]
    assert rep.verdict == ref.verdict


def test_small_but_live_columns_are_kept():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((400, 6))
    X[:, 1] *= 1e-4  # small, but far above the 1e-6 relative floor: a real coordinate
    X[:, 4] = 2.5  # constant
    rep = diagnose(X, **FAST)
    assert rep.constant_features == [4]
    assert rep.coordinates["n_columns"] == 5


def test_collinear_features_are_named_not_run_and_not_blamed_on_an_option():
    X = np.random.default_rng(12).normal(size=(600, 6))
    X[:, 5] = X[:, 2] + X[:, 1]  # the data span 5 dimensions
    rep = diagnose(X, **FAST)
    not_run = [c["name"] for c in rep.checks if c["status"] == "n/a"]
    assert not_run == ["AD on whitened", "DP on whitened", *MC_CHECKS, "Mardia skewness",
                       "Mardia kurtosis"]
    assert all("singular" in _check(rep, name)["detail"] for name in not_run)
    assert not any("shrinkage" in n for n in rep.notes)
    assert rep.verdict.startswith("Gaussian on the 5 of 12 checks that decide")
    assert rep.verdict.endswith("Mardia skewness, Mardia kurtosis")  # "not run: ..." listed


# ------------------------------------------------------------------ non-Gaussian data
@pytest.mark.parametrize("n_joint", [99, 199])
def test_clearly_non_gaussian_data_has_no_pass(n_joint):
    X = np.random.default_rng(4).exponential(size=(2000, 16))
    rep = diagnose(X, n_null_simulations=500, n_joint_simulations=n_joint)
    status = {c["name"]: c["status"] for c in rep.checks}
    assert "pass" not in status.values(), status
    # at B = 99 the two-sided χ² check cannot reach 1%: inconclusive, not PASS (the issue)
    expect_chi2 = "inconclusive" if n_joint == 99 else "fail"
    assert status["Mahalanobis vs χ² (limit)"] == expect_chi2
    assert rep.verdict.startswith("not Gaussian")


def test_heavy_tails_fail_the_tail_check_beside_their_numbers():
    """A tail rate far above nominal is never printed beside a PASS."""
    X = np.random.default_rng(5).standard_t(3, size=(2000, 16))
    rep = diagnose(X, **FAST)
    tail = _check(rep, "Mahalanobis tails vs F")
    assert rep.joint["tail"]["rates"][1] > 0.03  # > 3× the 1% expected beyond the F 99% point
    assert tail["status"] == "fail" and not _inside(tail["observed"], [None, tail["band"][1]])


# ------------------------------------------------------------------ Monte-Carlo resolution
@pytest.fixture(scope="module")
def gaussian_99():
    X = correlated_gaussian(np.random.default_rng(6), 1000, 8)
    return diagnose(X, n_null_simulations=500, n_joint_simulations=99)


def test_monte_carlo_floor_above_the_level_is_inconclusive(gaussian_99):
    rep = gaussian_99
    chi2 = _check(rep, "Mahalanobis vs χ² (limit)")
    assert chi2["mc_resolution"] == monte_carlo_resolution(99, two_sided=True) == 0.02
    assert chi2["status"] == "inconclusive" and chi2["band"] is None
    assert chi2["pvalue_holm"] is None and chi2["rejected"] is None  # outside the family
    assert "n_joint_simulations >= 199" in chi2["detail"]
    assert "inconclusive: Mahalanobis vs χ² (limit)" in rep.verdict
    assert rep.familywise["inconclusive"] == ["Mahalanobis vs χ² (limit)"]
    assert rep.familywise["n_checks"] == 11
    # one-sided checks reach 1/(99 + 1) = 0.01 <= 1%: they decide
    for name in ("Mahalanobis vs F (exact)", "Mahalanobis tails vs F"):
        assert _check(rep, name)["mc_resolution"] == 0.01
        assert _check(rep, name)["status"] in ("pass", "fail")


def test_the_floor_is_judged_at_the_reports_level():
    X = correlated_gaussian(np.random.default_rng(7), 600, 6)
    rep = diagnose(X, n_null_simulations=500, n_joint_simulations=199, alpha=0.005)
    status = {c["name"]: c["status"] for c in rep.checks}
    assert status["Mahalanobis vs χ² (limit)"] == "inconclusive"  # 2/200 = 0.01 > 0.005
    assert status["Mahalanobis vs F (exact)"] in ("pass", "fail")  # 1/200 = 0.005
    assert all(c["level"] == 0.005 for c in rep.checks if c["status"] != "n/a")
    assert rep.settings["alpha"] == 0.005 and rep.settings["band_level"] == 0.995


def test_default_simulations_let_every_check_decide():
    X = correlated_gaussian(np.random.default_rng(8), 600, 6)
    rep = diagnose(X, n_null_simulations=500)
    for name in MC_CHECKS:
        c = _check(rep, name)
        assert c["n_simulations"] == 199 and c["mc_resolution"] <= 0.01
        assert c["status"] in ("pass", "fail")


def test_a_statistic_beyond_every_simulation_extends_its_null(monkeypatch):
    """A check at its floor that Holm cannot reject gets more simulations (the first reused)."""
    real = _joint._null_joint

    def fake(n_fit, n_held, d, b, seed):  # the first run: exact Gaussians look too regular
        out = np.array(real(n_fit, n_held, d, b, seed))
        if b < 1000:
            out[0] = out[0] * 1e-3
        return out

    monkeypatch.setattr(_joint, "_null_joint", fake)
    X = correlated_gaussian(np.random.default_rng(9), 800, 6)
    rep = diagnose(X, **FAST)
    f = _check(rep, "Mahalanobis vs F (exact)")
    need = simulations_needed(12, 0.01, two_sided=False)
    assert need == 1199 and 12 * monte_carlo_resolution(need) <= 0.01
    assert f["n_simulations"] == need and rep.joint["f"]["n_simulations"] == need
    assert f["status"] == "pass" and f["pvalue"] > 0.01  # the real null, not the floor
    assert _check(rep, "Mahalanobis tails vs F")["n_simulations"] == 199  # untouched
    assert any("extended to 1199 simulations" in n for n in rep.notes)
    assert simulations_needed(12, 0.01, two_sided=True) == 2399


# ------------------------------------------------------------------ family-wise verdict
def _fake(name: str, p: float, alpha: float = 0.01) -> dict:
    return {"name": name, "status": "fail" if p <= alpha else "pass", "pvalue": p,
            "observed": None, "expected": None, "band": None, "detail": ""}


def test_holm_verdict_matches_a_hand_computation():
    ps = {"a": 0.004, "b": 0.03, "c": 0.2, "d": 0.0001}
    checks = [_fake(k, p) for k, p in ps.items()] + [
        {"name": "e", "status": "n/a", "pvalue": None, "detail": "not run"}]
    fam = familywise(checks, 0.01)
    # by hand: sorted d, a, b, c -> 4·0.0001, 3·0.004, 2·0.03, 1·0.2, running maximum
    hand = {"d": 0.0004, "a": 0.012, "b": 0.06, "c": 0.2}
    for c in checks[:4]:
        assert c["pvalue_holm"] == pytest.approx(hand[c["name"]], rel=1e-12)
        assert c["rejected"] is (hand[c["name"]] <= 0.01)
    assert fam["decision"] == "not Gaussian" and fam["rejected"] == ["d"]
    assert fam["fail_alone"] == ["a"] and fam["not_run"] == ["e"] and fam["n_checks"] == 4
    text, reasons = verdict(checks, fam)
    assert text.startswith("not Gaussian: 1 of 4 checks reject at family-wise level 0.01")
    assert text.endswith("not run: e") and len(reasons) == 5

    checks = [_fake("a", 0.004), _fake("b", 0.03), _fake("c", 0.5)]
    fam = familywise(checks, 0.01)  # 3·0.004 = 0.012 > 0.01: nothing rejected
    text, _ = verdict(checks, fam)
    assert fam["decision"] == "Gaussian" and fam["min_adjusted_pvalue"] == pytest.approx(0.012)
    assert text.startswith("Gaussian: no check rejects") and "not after Holm: a" in text


def test_report_holm_values_match_a_hand_computation():
    rng = np.random.default_rng(10)
    X = correlated_gaussian(rng, 1500, 10)
    X[:, 0] = rng.standard_t(6, size=1500)  # one mildly heavy-tailed coordinate
    rep = diagnose(X, **FAST)
    fam = [c for c in rep.checks if c["status"] in ("pass", "fail")]
    order = sorted(range(len(fam)), key=lambda i: fam[i]["pvalue"])
    running, hand = 0.0, {}
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(fam) - rank) * fam[i]["pvalue"]))
        hand[fam[i]["name"]] = running
    for c in fam:
        assert c["pvalue_holm"] == pytest.approx(hand[c["name"]], rel=1e-12, abs=1e-300)
    rejected = [c["name"] for c in fam if hand[c["name"]] <= 0.01]
    assert rep.familywise["rejected"] == rejected
    assert rep.familywise["decision"] == ("not Gaussian" if rejected else "Gaussian")


# ------------------------------------------------------------------ wording agrees with numbers
@pytest.mark.parametrize("kind", ["gaussian", "laplace", "exponential", "mixture"])
def test_status_agrees_with_pass_region_and_pvalue(kind):
    rng = np.random.default_rng(11)
    X = {"gaussian": lambda: correlated_gaussian(rng, 1000, 12),
         "laplace": lambda: rng.laplace(size=(1000, 12)),
         "exponential": lambda: rng.exponential(size=(1000, 12)),
         "mixture": lambda: rng.standard_normal((1000, 12)) + 2.5 * rng.integers(0, 2, (1000, 1))}
    rep = diagnose(X[kind](), **FAST)
    for c in rep.checks:
        assert c["status"] in ("pass", "fail"), c
        assert (c["status"] == "pass") is (c["pvalue"] > c["level"]), c["name"]
        assert (c["status"] == "pass") is _inside(c["observed"], c["band"]), c["name"]


def test_expected_is_the_null_value_of_the_reported_statistic(gaussian_99):
    rep = gaussian_99
    f = _check(rep, "Mahalanobis vs F (exact)")
    null = _joint._null_joint(rep.joint["n_fit"], rep.joint["n_heldout"], 8, 99, 0)
    assert f["expected"] == pytest.approx(float(np.median(null[0]))) and f["expected"] > 0
    assert f["expected"] == rep.joint["f"]["null_ks_median"]
    assert _check(rep, "norm CV vs covariance-implied")["expected"] == rep.norms["cv_implied"]
    md = rep.to_markdown()
    assert "| check | status | observed | null value | pass region | p-value | Holm p" in md


def test_report_json_carries_the_family_and_per_check_p_values(gaussian_99):
    d = json.loads(gaussian_99.to_json())
    assert d["familywise"]["method"] == "holm" and d["familywise"]["level"] == 0.01
    for c in d["checks"]:
        assert {"status", "pvalue", "pvalue_holm", "rejected", "level", "band"} <= set(c)
    assert d["joint"]["tail"]["levels"] == [0.05, 0.01]
    assert d["settings"]["constant_rtol"] == 1e-6


def test_alpha_is_validated():
    X = np.random.default_rng(0).normal(size=(50, 3))
    with pytest.raises(ValueError, match="`alpha` must lie in"):
        diagnose(X, alpha=1.5)


# ------------------------------------------------------------------ calibration (slow)
@pytest.mark.slow
def test_exact_gaussians_are_called_gaussian_at_least_98_percent_of_the_time():
    """200 exact Gaussian sets (random covariance and mean, n = 400, d = 8, own seed each):
    the family-wise verdict at 1% is "Gaussian" in at least 98% of them."""
    n_sets, gaussian = 200, 0
    for i in range(n_sets):
        rng = np.random.default_rng([2026, i])
        X = correlated_gaussian(rng, 400, 8, offset=3.0)
        gaussian += diagnose(X, seed=i).familywise["decision"] == "Gaussian"
    assert gaussian >= 0.98 * n_sets, gaussian
