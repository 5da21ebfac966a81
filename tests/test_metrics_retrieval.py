"""Retrieval and calibration metrics against direct computations (sklearn, scipy, loops)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss

from infogauss import metrics
from infogauss.metrics import (
    brier_score,
    expected_calibration_error,
    false_match_rate,
    map_at_k,
    recall_at_k,
)


def _random_relevance(rng, n_q=40, n_r=30, p=0.3):
    return rng.random((n_q, n_r)) < p


def test_exports():
    for name in ("recall_at_k", "map_at_k", "false_match_rate", "expected_calibration_error",
                 "brier_score", "FalseMatchRate"):
        assert name in metrics.__all__
        assert hasattr(metrics, name)


@pytest.mark.parametrize("k", [1, 5, 30])
def test_recall_at_k_matches_loop(rng, k):
    rel = _random_relevance(rng)
    expected = np.mean([1.0 if any(row[:k]) else 0.0 for row in rel])
    assert recall_at_k(rel, k) == pytest.approx(expected)
    n_rel = rng.integers(0, 50, rel.shape[0]) + rel.sum(axis=1)
    ir = np.mean([row[:k].sum() / R if R else 0.0 for row, R in zip(rel, n_rel)])
    assert recall_at_k(rel, k, n_relevant=n_rel) == pytest.approx(ir)


def test_map_matches_sklearn_average_precision(rng):
    """With the whole ranking retrieved, AP@n equals sklearn's AP of the ranking."""
    rel = _random_relevance(rng, n_q=25, n_r=20, p=0.4)
    rel[:, 0] |= ~rel.any(axis=1)  # sklearn needs a positive in every row
    scores = -np.arange(rel.shape[1], dtype=float)
    expected = np.mean([average_precision_score(row, scores) for row in rel])
    assert map_at_k(rel, rel.shape[1]) == pytest.approx(expected)
    assert map_at_k(rel, rel.shape[1], n_relevant=rel.sum(axis=1)) == pytest.approx(expected)


@pytest.mark.parametrize("k", [1, 7, 30])
def test_map_at_k_matches_loop(rng, k):
    rel = _random_relevance(rng)
    n_rel = rel.sum(axis=1) + rng.integers(0, 5, rel.shape[0])

    def ap(row, denom):
        hits, total = 0, 0.0
        for j in range(k):
            if row[j]:
                hits += 1
                total += hits / (j + 1)
        return total / denom if denom else 0.0

    assert map_at_k(rel, k) == pytest.approx(np.mean([ap(r, r[:k].sum()) for r in rel]))
    assert map_at_k(rel, k, n_relevant=n_rel) == pytest.approx(
        np.mean([ap(r, min(k, R)) for r, R in zip(rel, n_rel)])
    )


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("n_bins", [1, 5, 15])
def test_ece_matches_sklearn_calibration_curve(rng, strategy, n_bins):
    p = rng.random(2000) ** 2
    y = rng.random(2000) < np.clip(p + 0.1, 0, 1)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    # bin sizes with the same edges calibration_curve uses
    edges = (np.linspace(0, 1, n_bins + 1) if strategy == "uniform"
             else np.percentile(p, np.linspace(0, 100, n_bins + 1)))
    counts = np.bincount(np.searchsorted(edges[1:-1], p), minlength=n_bins)
    counts = counts[counts > 0]
    expected = np.sum(counts / p.size * np.abs(prob_true - prob_pred))
    got = expected_calibration_error(y, p, n_bins=n_bins, strategy=strategy)
    assert got == pytest.approx(expected)


def test_ece_closed_forms():
    assert expected_calibration_error([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5]) == 0.0
    assert expected_calibration_error([1, 1, 1, 1], [0.0, 0.0, 0.0, 0.0]) == 1.0
    assert expected_calibration_error([True, False], [0.75, 0.75], n_bins=1) == pytest.approx(0.25)


def test_brier_matches_sklearn(rng):
    p = rng.random(500)
    y = rng.random(500) < p
    assert brier_score(y, p) == pytest.approx(brier_score_loss(y, p))


def test_false_match_rate_interval_is_clopper_pearson():
    match = np.zeros(1000, dtype=bool)
    match[:7] = True
    r = false_match_rate(match, alpha=0.01, confidence=0.95)
    assert (r.rate, r.n_false, r.n_queries) == (0.007, 7, 1000)
    assert r.ci_low == pytest.approx(stats.beta.ppf(0.025, 7, 1000 - 7 + 1))
    assert r.ci_high == pytest.approx(stats.beta.ppf(0.975, 7 + 1, 1000 - 7))
    assert r.consistent is True and r.ratio == pytest.approx(0.7)
    assert false_match_rate(match, alpha=0.05).consistent is False
    zero = false_match_rate(np.zeros(100, bool))
    assert zero.ci_low == 0.0 and zero.alpha is None and zero.consistent is None


def test_false_match_rate_uses_relevance_per_query():
    match = np.array([[True, True], [True, False], [False, False], [True, True]])
    relevant = np.array([[True, False], [True, False], [False, False], [True, True]])
    r = false_match_rate(match, relevant)
    assert (r.n_false, r.n_queries) == (1, 4)  # only query 0 declares a non-relevant item


@pytest.mark.parametrize(
    "call, exc, msg",
    [
        (lambda: recall_at_k([[1, 0]], 0), ValueError, "`k` must be"),
        (lambda: recall_at_k([[1, 0]], 3), ValueError, "`k` must be"),
        (lambda: recall_at_k([[1, 0]], 1.0), TypeError, "`k` must be"),
        (lambda: recall_at_k([1, 0], 1), ValueError, "2-D"),
        (lambda: map_at_k([[2, 0]], 1), ValueError, "booleans or 0/1"),
        (lambda: map_at_k(np.zeros((0, 3)), 1), ValueError, "empty"),
        (lambda: map_at_k([[1, 0]], 1, n_relevant=[-1]), ValueError, "n_relevant"),
        (lambda: expected_calibration_error([1, 0], [0.5, 1.5]), ValueError, "probabilities"),
        (lambda: expected_calibration_error([1, 0], [0.5, np.nan]), ValueError, "probabilities"),
        (lambda: expected_calibration_error([1, 0], [0.5]), ValueError, "shape"),
        (lambda: expected_calibration_error([1, 0], [0.5, 0.5], n_bins=0), ValueError, "n_bins"),
        (lambda: expected_calibration_error([1, 0], [0.5, 0.5], strategy="x"), ValueError,
         "strategy"),
        (lambda: brier_score([1, 0], [[0.5, 0.5]]), ValueError, "shape"),
        (lambda: false_match_rate([True], [[True]]), ValueError, "shape"),
        (lambda: false_match_rate([True], confidence=1.0), ValueError, "confidence"),
    ],
)
def test_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()
