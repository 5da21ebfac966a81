"""infogauss.metrics OOD metrics against scikit-learn and direct computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from infogauss.metrics import (
    aupr_in,
    aupr_out,
    auroc,
    detection_error,
    empirical_fpr,
    fpr_at_tpr,
    ood_report,
    ood_roc_curve,
)


def _pairs(rng, n_in=300, n_out=200, ties=False, shift=1.0):
    s_in = rng.normal(shift, 1.0, n_in)
    s_out = rng.normal(0.0, 1.0, n_out)
    if ties:  # many exact ties, within and across the two groups
        s_in, s_out = np.round(s_in * 2) / 2, np.round(s_out * 2) / 2
    return s_in, s_out


def _labels(s_in, s_out):
    return np.r_[np.ones(len(s_in)), np.zeros(len(s_out))], np.r_[s_in, s_out]


def _direct_fpr(s_in, s_out, tpr):
    """Brute force: the largest candidate threshold keeping >= tpr of in-distribution."""
    best = -np.inf
    for t in np.unique(np.r_[s_in, s_out]):
        if np.mean(s_in >= t) >= tpr:
            best = max(best, t)
    return np.mean(s_out >= best)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("shift", [0.0, 1.0, 3.0])
def test_auroc_and_aupr_equal_sklearn(rng, ties, shift):
    s_in, s_out = _pairs(rng, ties=ties, shift=shift)
    y, s = _labels(s_in, s_out)
    assert auroc(s_in, s_out) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert aupr_in(s_in, s_out) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert aupr_out(s_in, s_out) == pytest.approx(average_precision_score(1 - y, -s), abs=1e-12)
    # Mann-Whitney form of the AUROC, ties counted half
    diff = s_in[:, None] - s_out[None, :]
    assert auroc(s_in, s_out) == pytest.approx(np.mean(diff > 0) + 0.5 * np.mean(diff == 0))


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("tpr", [0.95, 0.9, 0.5, 1.0])
def test_fpr_at_tpr_direct(rng, ties, tpr):
    s_in, s_out = _pairs(rng, ties=ties)
    assert fpr_at_tpr(s_in, s_out, tpr) == pytest.approx(_direct_fpr(s_in, s_out, tpr))


def test_fpr95_matches_openood_rule_without_ties(rng):
    s_in, s_out = _pairs(rng)
    fpr, tpr, _ = roc_curve(*_labels(s_in, s_out), drop_intermediate=False)
    assert fpr_at_tpr(s_in, s_out) == pytest.approx(fpr[np.argmax(tpr >= 0.95)])


def test_fpr95_exact_small_case():
    s_in = np.arange(100.0)  # threshold 5 keeps exactly 95 of 100
    assert fpr_at_tpr(s_in, [5.0, 4.99, 100.0, -1.0]) == 0.5  # 5.0 (tie) and 100 accepted
    # ties at the threshold push the achieved TPR above 0.95 and are accepted together
    s_in = np.r_[np.zeros(10), np.ones(90)]
    assert fpr_at_tpr(s_in, [0.0, 0.5, 2.0]) == pytest.approx(1.0)


def test_roc_curve_and_detection_error(rng):
    s_in, s_out = _pairs(rng, ties=True)
    fpr, tpr, thr = ood_roc_curve(s_in, s_out)
    f2, t2, th2 = roc_curve(*_labels(s_in, s_out), drop_intermediate=False)
    np.testing.assert_allclose(fpr, f2)
    np.testing.assert_allclose(tpr, t2)
    np.testing.assert_allclose(thr[1:], th2[1:])
    direct = min(
        0.5 * (1 - np.mean(s_in >= t)) + 0.5 * np.mean(s_out >= t)
        for t in np.r_[np.unique(np.r_[s_in, s_out]), np.inf]
    )
    assert detection_error(s_in, s_out) == pytest.approx(direct)


def test_perfect_and_reversed():
    r = ood_report([2.0, 3.0], [0.0, 1.0])
    assert (r["auroc"], r["fpr_at_tpr"], r["detection_error"]) == (1.0, 0.0, 0.0)
    assert r["aupr_in"] == r["aupr_out"] == 1.0
    assert auroc([0.0, 1.0], [2.0, 3.0]) == 0.0
    assert fpr_at_tpr([0.0, 1.0], [2.0, 3.0]) == 1.0
    assert set(r) == {"auroc", "aupr_in", "aupr_out", "fpr_at_tpr", "tpr", "detection_error",
                      "n_in", "n_out"}


def test_empirical_fpr_against_scipy():
    flagged = np.zeros(1000, dtype=bool)
    flagged[:62] = True
    r = empirical_fpr(flagged, 0.05, confidence=0.9)
    assert r["fpr"] == 0.062 and r["n"] == 1000 and r["n_flagged"] == 62
    assert r["interval_low"] == stats.binom.ppf(0.05, 1000, 0.05) / 1000
    assert r["interval_high"] == stats.binom.isf(0.05, 1000, 0.05) / 1000
    assert r["within_interval"] == (r["interval_low"] <= 0.062 <= r["interval_high"])
    assert r["pvalue_exceeds"] == pytest.approx(stats.binom.sf(61, 1000, 0.05))
    ci = stats.binomtest(62, 1000).proportion_ci(confidence_level=0.9, method="exact")
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert empirical_fpr(np.zeros(10, bool), 0.1)["ci_low"] == 0.0
    assert empirical_fpr(np.ones(10, bool), 0.1)["ci_high"] == 1.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="NaN"):
        auroc([1.0, np.nan], [0.0])
    with pytest.raises(ValueError, match="1-D"):
        auroc(np.ones((2, 2)), [0.0])
    with pytest.raises(ValueError, match="at least 1 row"):
        fpr_at_tpr([], [0.0])
    with pytest.raises(TypeError, match="numbers"):
        aupr_in(["a"], [0.0])
    with pytest.raises(ValueError, match="tpr"):
        fpr_at_tpr([1.0], [0.0], tpr=0.0)
    with pytest.raises(TypeError, match="boolean"):
        empirical_fpr(np.array([1, -1, 1]), 0.05)
    with pytest.raises(ValueError, match="alpha"):
        empirical_fpr(np.array([True]), 1.0)
    with pytest.raises(ValueError, match="non-empty"):
        empirical_fpr(np.array([], dtype=bool), 0.1)
