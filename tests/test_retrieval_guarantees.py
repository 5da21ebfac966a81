"""Declared matches that must happen: an identical vector is a match at every alpha >= 1/n
(issue 17, for every null and correction), and duplicates in the database change neither the
power nor the false-match guarantee (issue 19, item 5)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("faiss")

from infogauss.metrics import false_match_rate  # noqa: E402
from infogauss.retrieval import CalibratedRetriever  # noqa: E402

pytestmark = pytest.mark.faiss
COMBINATIONS = [
    ("analytic", "sidak"),
    ("analytic", None),
    ("empirical", "sidak"),
    ("empirical", "evt"),
    ("empirical", None),
]


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def normalised_clusters(seed, n=2000, d=32, n_classes=10):
    """L2-normalised labelled cluster embeddings (the issue's setting: cosines <= 1)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    X = rng.standard_normal((n_classes, d))[y] * 1.5 + rng.standard_normal((n, d))
    return unit(X), y


def correlated(seed, n, d=16):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
    return lambda m: (rng.standard_normal((m, d)) @ A.T).astype(np.float32), rng


# --------------------------------------------------------------------------------------
# an identical vector is a match at every alpha >= 1/n
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("null, correction", COMBINATIONS)
@pytest.mark.parametrize("data", ["normalised_labelled", "gaussian"])
def test_identical_vector_is_a_match_at_every_alpha(null, correction, data):
    if data == "normalised_labelled":
        X, y = normalised_clusters(0)
    else:
        X, y = correlated(1, 2000)[0](2000), None
    n = X.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # n_null_queries vs small classes
        r = CalibratedRetriever(null=null, correction=correction, alpha=1.0 / n).fit(X, y)
    queries = X[:300]
    res = r.search(queries, k=1)
    np.testing.assert_array_equal(res.indices[:, 0], np.arange(300))
    assert np.all(res.corrected_pvalues[:, 0] <= 1.0 / n), res.corrected_pvalues[:, 0].max()
    assert res.match[:, 0].all()
    # and so at every larger level
    for alpha in (2.0 / n, 0.01, 0.5):
        assert np.all(res.corrected_pvalues[:, 0] <= alpha)
    # the laws themselves at the bound
    _, pc = r.similarity_pvalues(np.array([1.0, 1 - 6e-8]))
    assert pc[0] == 0.0 and pc[1] <= 1.0 / n


@pytest.mark.parametrize("index", ["flat", "ivf", "hnsw", "IVF16,SQ8", "HNSW16_SQ8"])
def test_identical_vector_is_a_match_with_every_index(index):
    """Compressed indexes (SQ8) return approximate inner products; the retriever rescores the
    candidates exactly, so the identical item comes first at similarity 1 and is a match."""
    X, y = normalised_clusters(2)
    r = CalibratedRetriever(index=index, null="empirical", correction="evt", alpha=1.0 / X.shape[0]).fit(X, y)
    res = r.search(X[:100], k=5)
    assert (res.indices[:, 0] == np.arange(100)).mean() >= 0.97
    found = res.indices[:, 0] == np.arange(100)
    assert res.match[found, 0].all()
    np.testing.assert_allclose(res.whitened_similarities[found, 0], 1.0, atol=1e-6)


# --------------------------------------------------------------------------------------
# duplicates in the database
# --------------------------------------------------------------------------------------
def database_with_copies(fraction, *, seed=0, n=2020, d=16, near=False):
    """``n`` rows of which ``fraction`` are copies of other rows (shuffled); views of database
    items (correlation 0.97, which a retriever without duplicates matches) and fresh queries."""
    draw, rng = correlated(seed, n, d)
    n_copies = int(round(fraction * n))
    base = draw(n - n_copies)
    source = rng.choice(base.shape[0], n_copies, replace=n_copies > base.shape[0])
    copies = base[source]
    if near:  # the same item after float16 storage: near-exact, not identical
        copies = copies.astype(np.float16).astype(np.float32)
    db = np.vstack([base, copies])[rng.permutation(n)]
    items = rng.choice(n, 400, replace=False)
    views = (0.97 * db[items] + np.sqrt(1 - 0.97**2) * draw(400)).astype(np.float32)
    return db, base, views, draw(5000)


@pytest.mark.parametrize("correction", ["sidak", "evt"])
@pytest.mark.parametrize("fraction", [0.01, 0.5])
def test_duplicates_in_database_do_not_kill_matches(fraction, correction):
    """Old behaviour: 20 exact copies in 2,020 rows (1%) made the default retriever declare no
    match at all for near-duplicate queries (the empirical null's maxima sat at cosine 1)."""
    db, base, views, fresh = database_with_copies(fraction)
    alpha = 0.01
    with pytest.warns(RuntimeWarning, match="duplicate row"):
        r = CalibratedRetriever(null="empirical", correction=correction, alpha=alpha).fit(db)
    distinct = CalibratedRetriever(null="empirical", correction=correction, alpha=alpha).fit(base)
    # power: the views of database items are matched, as without the copies
    power = r.search(views, k=1).match[:, 0].mean()
    assert power >= 0.98, power
    assert power >= distinct.search(views, k=1).match[:, 0].mean() - 0.01
    # the false-match guarantee: fresh queries (no match in the database) are declared matches
    # at the rate of the deduplicated database, within the empirical null's estimation error
    fmr = false_match_rate(r.search(fresh, k=1).match[:, 0], alpha=alpha)
    fmr_distinct = false_match_rate(distinct.search(fresh, k=1).match[:, 0], alpha=alpha)
    assert fmr.ci_low <= 1.5 * alpha, fmr
    assert fmr.rate <= fmr_distinct.rate + 0.002, (fmr, fmr_distinct)
    # reported
    n_copies = int(round(fraction * db.shape[0]))
    assert r.n_duplicates_ == n_copies and r.n_distinct_ == db.shape[0] - n_copies
    assert sum(g.size - 1 for g in r.duplicate_groups_) == n_copies
    for g in r.duplicate_groups_:
        np.testing.assert_array_equal(db[g], np.broadcast_to(db[g[0]], (g.size, db.shape[1])))
    assert r.search(views[:1], k=1).n_searched == r.n_distinct_


@pytest.mark.parametrize("fraction", [0.01, 0.5])
def test_duplicates_leave_the_null_of_the_distinct_items(fraction):
    """Without whitening the unit vectors do not depend on the Gaussian fit, so the null of a
    database with copies is exactly that of its distinct rows, and so are the p-values."""
    db, base, _, fresh = database_with_copies(fraction, seed=3)
    with pytest.warns(RuntimeWarning, match="duplicate row"):
        r = CalibratedRetriever(whiten=None, null="empirical", correction="evt").fit(db)
    distinct = CalibratedRetriever(whiten=None, null="empirical", correction="evt").fit(base)
    # the same pairs; float32 products of reordered rows may land one bin over
    assert r.null_.n_pairs == distinct.null_.n_pairs
    assert np.abs(np.cumsum(r.null_.counts - distinct.null_.counts)).max() <= 5
    np.testing.assert_allclose(np.sort(r.null_.maxima), np.sort(distinct.null_.maxima), atol=1e-6)
    assert r.null_.maxima.max() < 0.999  # no pseudo-query met its own copy
    a, b = r.search(fresh, k=1), distinct.search(fresh, k=1)
    np.testing.assert_allclose(a.whitened_similarities, b.whitened_similarities, atol=1e-6)
    np.testing.assert_allclose(a.corrected_pvalues, b.corrected_pvalues, rtol=1e-4)


def test_near_exact_duplicates_are_found(rng):
    db, _, views, _ = database_with_copies(0.1, seed=4, near=True)
    with pytest.warns(RuntimeWarning, match="within whitened cosine distance"):
        r = CalibratedRetriever().fit(db)
    assert r.n_duplicates_ == 202  # float16 copies are not identical, but within 1e-5
    assert r.search(views, k=1).match[:, 0].mean() >= 0.98
    exact_only = CalibratedRetriever(duplicate_tol=0).fit(db)
    assert exact_only.n_duplicates_ < 202


def test_added_copies_are_reported_and_counted_once():
    db, base, views, fresh = database_with_copies(0.0, seed=5)
    r = CalibratedRetriever().fit(db)
    null_before = r.null_
    with pytest.warns(RuntimeWarning, match="the added rows bring 30 duplicate row"):
        r.add(np.vstack([db[:20], db[:10]]))
    assert r.n_database_ == db.shape[0] + 30 and r.n_distinct_ == db.shape[0]
    assert r.null_ is null_before  # the null is kept (see add's rule for refitting)
    assert all(g.size >= 2 for g in r.duplicate_groups_) and len(r.duplicate_groups_) == 20
    assert r.search(views, k=1).match[:, 0].mean() >= 0.98
