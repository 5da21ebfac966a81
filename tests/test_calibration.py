"""The calibration laws against independent references (loops, closed forms, simulation)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from infogauss import calibration as cal
from infogauss import gaussian as core


def _loop_rank_pvalue(ref, t, larger):
    return [(1 + sum((r >= x) if larger else (r <= x) for r in ref)) / (len(ref) + 1) for x in t]


@pytest.mark.parametrize("larger", [True, False])
def test_rank_pvalues_equal_the_loop_with_ties(rng, larger):
    ref = rng.integers(0, 10, 57).astype(float)  # many ties
    t = np.r_[rng.integers(-1, 11, 40).astype(float), np.inf, -np.inf]
    got = cal.rank_pvalues(ref, t, larger_is_extreme=larger)
    np.testing.assert_array_equal(got, _loop_rank_pvalue(ref, t, larger))


def test_conformal_pvalues_are_valid_and_refuse_nan(rng):
    # exchangeable points: P(p <= alpha) <= alpha, over many draws
    n_cal, reps = 99, 4000
    draws = rng.standard_normal((reps, n_cal + 1))
    p = np.array([cal.conformal_pvalues(d[:-1], d[-1:])[0] for d in draws])
    for alpha in (0.01, 0.05, 0.2):
        assert np.mean(p <= alpha) <= alpha + 3 * np.sqrt(alpha / reps)
    with pytest.raises(ValueError, match="`scores` must not contain NaN"):
        cal.conformal_pvalues([1.0, 2.0], [np.nan])
    with pytest.raises(ValueError, match="`calibration_scores` must be finite, got nan at index 1"):
        cal.conformal_pvalues([1.0, np.nan], [0.0])


def test_conformal_threshold_is_the_pvalue_decision(rng):
    scores = rng.standard_normal(250)
    test = rng.standard_normal(2000)
    for alpha in (0.004, 0.01, 0.05, 0.1, 0.5):
        t = cal.conformal_threshold(scores, alpha)
        np.testing.assert_array_equal(test < t, cal.conformal_pvalues(scores, test) <= alpha)
    with pytest.raises(ValueError, match=r"ceil\(1/alpha\) - 1 = 99 calibration points, got 50"):
        cal.conformal_threshold(scores[:50], 0.01)
    with pytest.raises(ValueError, match="`contamination`=0.01"):
        cal.conformal_threshold(scores[:50], 0.01, name="contamination")


def test_monte_carlo_pvalue_and_its_resolution():
    null = np.arange(99.0)
    assert cal.monte_carlo_pvalue(null, 98.5) == 0.01 == cal.monte_carlo_resolution(99)
    assert cal.monte_carlo_pvalue(null, -5.0, tail="lower") == 0.01
    assert cal.monte_carlo_pvalue(null, 98.5, tail="two-sided") == 0.02
    assert cal.monte_carlo_pvalue(null, 49.0, tail="two-sided") == 1.0
    # 100 simulations cannot resolve a two-sided 1% level: 2/101 > 0.01
    assert cal.monte_carlo_resolution(100, two_sided=True) > 0.01
    with pytest.raises(ValueError, match="`tail` must be"):
        cal.monte_carlo_pvalue(null, 1.0, tail="left")


def test_sidak_against_the_direct_formula_and_tiny_p():
    p = np.array([0.0, 1e-3, 0.2, 1.0])
    np.testing.assert_allclose(cal.sidak(p, 7), 1 - (1 - p) ** 7, rtol=1e-12, atol=0)
    assert cal.sidak(1e-15, 10) == pytest.approx(1e-14, rel=1e-9)


def test_holm_against_a_loop(rng):
    p = rng.uniform(0, 0.2, 12)
    p[3] = np.nan
    got = cal.holm(p)
    ok = [i for i in range(12) if not np.isnan(p[i])]
    order = sorted(ok, key=lambda i: p[i])
    m, running, want = len(ok), 0.0, {}
    for j, i in enumerate(order):
        running = max(running, (m - j) * p[i])
        want[i] = min(1.0, running)
    assert np.isnan(got[3])
    np.testing.assert_allclose([got[i] for i in ok], [want[i] for i in ok], rtol=1e-15)


@pytest.mark.parametrize("k, n", [(0, 20), (5, 100), (37, 40), (1000, 1000)])
def test_binomial_intervals(k, n):
    lo, hi = cal.binomial_interval(k, n, level=0.9)
    # Clopper–Pearson from Beta quantiles
    want_lo = 0.0 if k == 0 else stats.beta.ppf(0.05, k, n - k + 1)
    want_hi = 1.0 if k == n else stats.beta.ppf(0.95, k + 1, n - k)
    assert lo == pytest.approx(want_lo, abs=1e-9) and hi == pytest.approx(want_hi, abs=1e-9)
    wl, wh = cal.binomial_interval(k, n, method="wilson")
    assert 0.0 <= wl <= k / n <= wh <= 1.0
    with pytest.raises(ValueError, match="need 0 <= k <= n"):
        cal.binomial_interval(n + 1, n)


def test_binomial_band_covers(rng):
    lo, hi = cal.binomial_band(0.05, 400, level=0.99)
    rates = rng.binomial(400, 0.05, 20000) / 400
    assert np.mean((rates >= lo) & (rates <= hi)) >= 0.99


@pytest.mark.parametrize("method", ["f", "beta", "chi2"])
def test_distance_laws_against_simulation(rng, method):
    """The core's laws of squared distances, checked on exact Gaussians (empirical fit)."""
    n, d, reps = 40, 5, 3000
    m2 = []
    for _ in range(reps):
        X = rng.standard_normal((n + 1, d))
        fit, new = (X, None) if method == "beta" else (X[:n], X[n])
        mu = fit.mean(0)
        S = np.cov(fit, rowvar=False, bias=True)
        x = fit[0] if method == "beta" else new
        m2.append(float((x - mu) @ np.linalg.solve(S, x - mu)))
    law = core.distance_law(n, d, method)
    ks = stats.kstest(m2, law.cdf).pvalue
    if method == "chi2":  # the limit law is wrong at d/n = 1/8: the KS test sees it
        assert ks < 1e-3
    else:
        assert ks > 1e-3
    np.testing.assert_allclose(core.mahalanobis_pvalues(np.array(m2[:5]), n, d, method),
                               law.sf(np.array(m2[:5])))
