"""CalibratedRetriever: null laws, false-match control, faiss vs brute force, bad input,
relevance calibration, abstention (the benchmark's smoke run is in test_bench_retrieval_cifar10)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import sparse, stats
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

pytest.importorskip("faiss")

from infogauss.metrics import expected_calibration_error, false_match_rate  # noqa: E402
from infogauss.retrieval import (  # noqa: E402
    AnalyticCosineNull,
    CalibratedRetriever,
    RetrievalResult,
    as_float32_rows,
)

pytestmark = pytest.mark.faiss


def clustered(rng, n, d=12, n_classes=5, spread=2.0):
    """Labelled Gaussian clusters with a shared random covariance."""
    means = rng.standard_normal((n_classes, d)) * spread
    A = rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
    y = rng.integers(0, n_classes, n)
    return (means[y] + rng.standard_normal((n, d)) @ A.T).astype(np.float32), y, means, A


# --------------------------------------------------------------------------------------
# dependency fence
# --------------------------------------------------------------------------------------
def test_faiss_fence():
    """``import infogauss`` never imports faiss; ``infogauss.retrieval`` and its null laws import
    without it; the estimator's ImportError names the extra (spec of issue 14: the fence guards
    only faiss -- ``import infogauss.retrieval`` itself used to fail without faiss)."""
    code = (
        "import sys, infogauss, infogauss.metrics\n"
        "print('faiss' in sys.modules)\n"
        "sys.modules['faiss'] = None\n"
        "import infogauss.retrieval, infogauss.retrieval.nulls\n"
        "print('CalibratedRetriever' in infogauss.retrieval.__all__)\n"
        "for get in (lambda: infogauss.retrieval.CalibratedRetriever,\n"
        "            lambda: infogauss.CalibratedRetriever):\n"
        "    try:\n        get()\n    except ImportError as e:\n        print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported, in_all, *messages = out.stdout.strip().split("\n")
    assert imported == "False" and in_all == "False"
    assert len(messages) == 2
    assert all("pip install 'infogauss[faiss]'" in m for m in messages)


# --------------------------------------------------------------------------------------
# null laws
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def isotropic():
    """Isotropic Gaussian database and independent queries (every query is a non-match)."""
    rng = np.random.default_rng(7)
    d, n, n_q = 16, 2000, 20000
    return (rng.standard_normal((n, d)).astype(np.float32),
            rng.standard_normal((n_q, d)).astype(np.float32))  # fmt: skip


def test_analytic_pvalues_are_uniform(isotropic):
    db, q = isotropic
    r = CalibratedRetriever(null="analytic").fit(db)
    zq, zdb = r.embed(q[:4000]), r.embed(db)
    # one pair per query (queries independent of each other and of the database)
    c = np.einsum("ij,ij->i", zq, zdb[np.arange(zq.shape[0]) % zdb.shape[0]])
    p, _ = r.similarity_pvalues(c)
    assert stats.kstest(p, "uniform").pvalue > 0.01
    # power: the wrong dimension is detected
    assert stats.kstest(AnalyticCosineNull(12).sf(c), "uniform").pvalue < 1e-6


def test_empirical_null_pvalues_are_uniform(isotropic):
    db, q = isotropic
    r = CalibratedRetriever(null="empirical").fit(db)
    zq, zdb = r.embed(q[:4000]), r.embed(db)
    c = np.einsum("ij,ij->i", zq, zdb[np.arange(zq.shape[0]) % zdb.shape[0]])
    assert stats.kstest(r.null_.sf(c), "uniform").pvalue > 0.01


@pytest.mark.parametrize("alpha", [1e-2, 1e-3])
def test_false_match_rate_is_nominal(isotropic, alpha):
    """Every query's top-1 is a non-match: the analytic match rate is alpha (99% interval)."""
    db, q = isotropic
    res = CalibratedRetriever(null="analytic", correction="sidak").fit(db).search(q, k=1)
    fmr = false_match_rate(res.corrected_pvalues[:, 0] <= alpha, alpha=alpha, confidence=0.99)
    assert fmr.consistent, fmr
    # power: without the top-1 correction almost every query "matches"
    uncorrected = false_match_rate(res.pvalues[:, 0] <= alpha, alpha=alpha, confidence=0.99)
    assert not uncorrected.consistent and uncorrected.rate > 0.3


@pytest.mark.parametrize("correction", ["sidak", "evt"])
def test_empirical_null_false_match_rate(isotropic, correction):
    """The empirical null carries its own estimation error (about 1/sqrt(null pairs beyond the
    threshold), ~20% here) on top of the binomial error: a factor-1.5 band is the test. With
    2000 x 2000 null pairs Šidák resolves top-1 p-values only down to n / n_pairs = 5e-4, so
    alpha = 1e-3 is out of its reach at this size."""
    db, q = isotropic
    r = CalibratedRetriever(null="empirical", correction=correction).fit(db)
    fmr = false_match_rate(r.search(q, k=1).corrected_pvalues[:, 0] <= 1e-2, alpha=1e-2)
    assert 1e-2 / 1.5 <= fmr.rate <= 1.5e-2, fmr


def test_empirical_null_needs_two_labels(rng):
    X = rng.standard_normal((50, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="more than one label"):
        CalibratedRetriever(null="empirical").fit(X, np.zeros(50, dtype=int))


# --------------------------------------------------------------------------------------
# search: faiss equals brute force, shapes, per-query scoring
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "index, params",
    [
        ("flat", None),
        ("ivf", {"nlist": 8, "nprobe": 8}),  # every cell probed: exact
        ("hnsw", {"M": 16, "efSearch": 400}),
    ],
)
def test_faiss_equals_brute_force(rng, index, params):
    X, y, *_ = clustered(rng, 400, d=10)
    q = clustered(np.random.default_rng(3), 60, d=10)[0]
    k = 7
    r = CalibratedRetriever(index=index, index_params=params, null="analytic").fit(X, y)
    res = r.search(q, k)
    S = r.embed(q) @ r.embed(X).T
    idx = np.argsort(-S, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(res.indices, idx)
    np.testing.assert_allclose(res.whitened_similarities, np.take_along_axis(S, idx, 1), atol=1e-5)
    # raw similarities are cosines in the input space
    Xu = X / np.linalg.norm(X, axis=1, keepdims=True)
    qu = q / np.linalg.norm(q, axis=1, keepdims=True)
    np.testing.assert_allclose(
        res.similarities, np.einsum("qd,qkd->qk", qu, Xu[res.indices]), atol=1e-5
    )
    np.testing.assert_array_equal(res.labels, y[res.indices])


def test_result_fields_and_batch_equals_rows(rng):
    X, y, *_ = clustered(rng, 300)
    q = X[:5] + 0.01
    r = CalibratedRetriever(null="empirical", correction="evt").fit(X, y)
    res = r.search(q, k=4)
    assert isinstance(res, RetrievalResult)
    assert res.indices.shape == res.pvalues.shape == res.match.shape == (5, 4)
    assert res.ood_pvalues.shape == res.abstain.shape == (5,)
    assert res.indices.dtype == np.int64 and res.n_searched == 300 and res.relevance is None
    assert np.all(np.diff(res.whitened_similarities, axis=1) <= 1e-6)  # best first
    assert np.all(np.diff(res.corrected_pvalues, axis=1) >= 0)
    assert np.all(res.pvalues <= res.corrected_pvalues + 1e-15)
    np.testing.assert_array_equal(res.match, res.corrected_pvalues <= r.alpha)
    np.testing.assert_array_equal(res.accept, res.match & ~res.abstain[:, None])
    np.testing.assert_array_equal(res.indices[:, 0], np.arange(5))  # near-duplicates found
    assert res.match[:, 0].all()
    for i in range(5):
        one = r.search(q[i : i + 1], k=4)
        np.testing.assert_array_equal(one.indices[0], res.indices[i])
        # BLAS rounds a row differently with the batch size: similarities agree to float32
        # rounding, and equal similarities give equal p-values
        np.testing.assert_allclose(
            one.whitened_similarities[0], res.whitened_similarities[i], atol=1e-6
        )
        p_one, pc_one = r.similarity_pvalues(res.whitened_similarities[i].astype(np.float64))
        np.testing.assert_array_equal(pc_one, res.corrected_pvalues[i])
        np.testing.assert_array_equal(p_one, res.pvalues[i])
        # within the null's data the p-values agree to rtol 1e-5 (as before the bounded tail);
        # beyond it (p < 1 / n_pairs, the near-duplicates here) they fall as (1 - c)^kappa, so
        # float32 rounding of c moves them by kappa * |dc| / (1 - c) relative
        inside = res.pvalues[i] > 1.0 / r.null_.n_pairs
        np.testing.assert_allclose(
            one.corrected_pvalues[0][inside], res.corrected_pvalues[i][inside], rtol=1e-5
        )
        gap = 1.0 - res.whitened_similarities[i].astype(np.float64)
        bound = r.null_.tail_index * 2e-6 / np.maximum(gap, 1e-7)
        assert np.all(
            np.abs(np.log(one.corrected_pvalues[0] / res.corrected_pvalues[i])) <= bound + 1e-5
        )
        np.testing.assert_allclose(one.ood_pvalues, res.ood_pvalues[i : i + 1], rtol=1e-9)


def test_no_whitening_and_pca_rank(rng):
    X, y, *_ = clustered(rng, 300, d=12)
    raw = CalibratedRetriever(whiten=None, null="analytic").fit(X)
    res = raw.search(X[:10], k=3)
    np.testing.assert_allclose(res.similarities, res.whitened_similarities, atol=1e-6)
    assert raw.dim_ == 12
    pca = CalibratedRetriever(whiten="pca", n_components=5, null="analytic").fit(X)
    assert pca.dim_ == 5 and pca.null_.dim == 5 and pca.embed(X[:2]).shape == (2, 5)
    zca = CalibratedRetriever(whiten="zca", n_components=5, null="analytic").fit(X)
    assert zca.dim_ == 5  # rank of the whitening, not the number of columns
    np.testing.assert_allclose(
        zca.search(X[:20], 5).whitened_similarities,
        pca.search(X[:20], 5).whitened_similarities,
        atol=1e-5,
    )


def test_missing_neighbours_of_approximate_index(rng):
    X = rng.standard_normal((200, 4)).astype(np.float32)
    r = CalibratedRetriever(index="ivf", index_params={"nlist": 5, "nprobe": 1},
                            null="analytic").fit(X)  # fmt: skip
    res = r.search(X[:10], k=200)
    missing = res.indices < 0
    assert missing.any()
    assert np.isnan(res.similarities[missing]).all()
    assert np.isnan(res.whitened_similarities[missing]).all()
    assert (res.corrected_pvalues[missing] == 1).all() and not res.match[missing].any()


def test_clone_and_params():
    r = CalibratedRetriever(index="hnsw", index_params={"M": 8}, alpha=0.05)
    c = clone(r)
    assert c.get_params() == r.get_params()
    assert "index_" not in vars(c)


# --------------------------------------------------------------------------------------
# calibration and abstention
# --------------------------------------------------------------------------------------
def test_calibrate_relevance(rng):
    X, y, means, A = clustered(rng, 1500, spread=0.8)
    r = CalibratedRetriever(null="analytic").fit(X, y)
    # held-out labelled queries from the same clusters
    yq = rng.integers(0, 5, 800)
    Q = (means[yq] + rng.standard_normal((800, 12)) @ A.T).astype("float32")
    for method in ("isotonic", "platt"):
        r.calibrate_relevance(Q[:400], yq[:400], k=10, method=method)
        assert r.relevance_method_ == method and 0 <= r.relevance_ece_ < 0.05
        res = r.search(Q[400:], k=10)
        prob = res.relevance
        assert prob.shape == (400, 10) and np.all((prob >= 0) & (prob <= 1))
        order = np.argsort(res.whitened_similarities.ravel())
        assert np.all(np.diff(prob.ravel()[order]) >= -1e-12)  # monotone in the score
        held_out = expected_calibration_error((res.labels == yq[400:, None]).ravel(), prob.ravel())
        assert held_out < 0.08
    with pytest.raises(ValueError, match="`method`"):
        r.calibrate_relevance(Q[:10], yq[:10], method="beta")
    with pytest.raises(ValueError, match="query_labels"):
        r.calibrate_relevance(Q[:10], yq[:9])
    unlabeled = CalibratedRetriever(null="analytic").fit(X)
    with pytest.raises(ValueError, match="pass `labels` to fit"):
        unlabeled.calibrate_relevance(Q[:10], yq[:10])


@pytest.mark.parametrize("null", ["analytic", "empirical"])
def test_ood_queries_are_abstained(rng, null):
    X = rng.standard_normal((3000, 8)).astype(np.float32)
    inside = rng.standard_normal((2000, 8)).astype(np.float32)
    outside = (rng.standard_normal((500, 8)) * 3.0).astype(np.float32)
    r = CalibratedRetriever(null=null, ood_alpha=0.01).fit(X)
    res_in, res_out = r.search(inside, 1), r.search(outside, 1)
    assert res_in.abstain.mean() < 0.02  # nominal 0.01
    assert res_out.abstain.mean() > 0.6
    assert 0.4 < np.median(res_in.ood_pvalues) < 0.6
    np.testing.assert_allclose(r.ood_pvalues(outside[:5]), res_out.ood_pvalues[:5])


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------
# Sample and feature counts and complex data are checked by scikit-learn's validate_data (its
# wording: "X has 5 features, but ... is expecting 6", "Found array with 0 sample(s) ..."); ragged
# lists by infogauss._validation (a ValueError naming the row); the rest by the retriever.
@pytest.fixture(scope="module")
def fitted():
    X = np.random.default_rng(0).standard_normal((50, 6)).astype(np.float32)
    return CalibratedRetriever(null="analytic").fit(X), X


@pytest.mark.parametrize(
    "queries, k, exc, msg",
    [
        (np.zeros((3, 5)), 1, ValueError, "X has 5 features, but CalibratedRetriever is expecting 6"),
        (np.zeros((3, 6)), 0, ValueError, r"`k` must be an integer in \[1, n_database=50\]"),
        (np.zeros((3, 6)), -2, ValueError, "`k` must be"),
        (np.zeros((3, 6)), 51, ValueError, "`k` must be"),
        (np.zeros((3, 6)), 2.0, TypeError, "`k` must be"),
        (np.full((3, 6), np.nan), 1, ValueError, "NaN or infinity"),
        (np.array([[0, 0, 0, 0, 0, np.inf]]), 1, ValueError, "NaN or infinity"),
        (np.full((1, 6), 1e300), 1, ValueError, "too large for float32"),
        (np.zeros(6), 1, ValueError, "2-D array"),
        (np.zeros((0, 6)), 1, ValueError, r"0 sample\(s\).*minimum of 1 is required"),
        ([[1, 2, 3, 4, 5, 6], [1, 2]], 1, ValueError, "rows have different lengths"),
        (np.zeros((2, 6), dtype=complex), 1, ValueError, "Complex data not supported"),
        (np.array([["a"] * 6]), 1, TypeError, "numbers"),
        ("abc", 1, TypeError, "2-D array of numbers"),
        (sparse.csr_matrix(np.ones((2, 6))), 1, TypeError, "sparse input is not supported"),
    ],
)
def test_search_bad_input(fitted, queries, k, exc, msg):
    r, _ = fitted
    with pytest.raises(exc, match=msg):
        r.search(queries, k)


def test_search_before_fit():
    with pytest.raises(NotFittedError):
        CalibratedRetriever().search(np.zeros((1, 3)), 1)
    with pytest.raises(NotFittedError):
        CalibratedRetriever().embed(np.zeros((1, 3)))


@pytest.mark.parametrize(
    "database, labels, exc, msg",
    [
        (np.zeros((0, 4)), None, ValueError, r"0 sample\(s\).*minimum of 2 is required"),
        (np.ones((1, 4)), None, ValueError, r"1 sample\(s\).*minimum of 2 is required"),
        ([], None, ValueError, "2-D array"),
        (np.array([[1.0, np.nan], [0.0, 1.0], [1.0, 1.0]]), None, ValueError, "NaN or infinity"),
        (np.ones((10, 4)) * np.arange(10)[:, None], np.zeros(9), ValueError, "one label per row"),
        (np.ones((10, 4)) * np.arange(10)[:, None], np.full(10, np.nan), ValueError, "NaN"),
    ],
)
def test_fit_bad_input(database, labels, exc, msg):
    with pytest.raises(exc, match=msg):
        CalibratedRetriever(null="analytic").fit(database, labels)


@pytest.mark.parametrize(
    "params, exc, msg",
    [
        ({"whiten": "cholesky"}, ValueError, "`whiten`"),
        ({"whiten": None, "n_components": 2}, ValueError, "`n_components` needs whitening"),
        ({"index": "lsh"}, ValueError, "`index` must be one of"),
        ({"index": "ivf", "index_params": {"efSearch": 3}}, ValueError, "unknown"),
        ({"index": "ivf", "index_params": {"nlist": 0}}, ValueError, "nlist"),
        ({"index": "ivf", "index_params": {"nlist": 500}}, ValueError, "database size"),
        ({"index_params": [1]}, TypeError, "`index_params`"),
        ({"null": "bootstrap"}, ValueError, "`null`"),
        ({"correction": "bonferroni"}, ValueError, "`correction`"),
        ({"null": "analytic", "correction": "evt"}, ValueError, "needs null='empirical'"),
        ({"alpha": 0.0}, ValueError, "`alpha`"),
        ({"alpha": 1.5}, ValueError, "`alpha`"),
        ({"ood_alpha": "0.1"}, TypeError, "`ood_alpha`"),
        ({"n_null_queries": 0}, ValueError, "`n_null_queries`"),
        ({"seed": 1.5}, TypeError, "`seed`"),
    ],
)
def test_bad_parameters(params, exc, msg):
    X = np.random.default_rng(0).standard_normal((100, 4))
    with pytest.raises(exc, match=msg):
        CalibratedRetriever(**params).fit(X)


def test_zero_query_warns(fitted):
    r, _ = fitted
    with pytest.warns(RuntimeWarning, match="zero norm"):
        res = r.search(np.zeros((1, 6)), 2)
    assert np.all(res.similarities == 0)


def test_conversion_is_float32_c_contiguous():
    x = np.asfortranarray(np.arange(12, dtype=np.int64).reshape(3, 4))
    out = as_float32_rows(x, "x")
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, x)
