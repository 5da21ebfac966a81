"""The ``index`` parameter (names, index_factory strings, user-built indexes), per-call search
parameters, and adding rows after fit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from infogauss.retrieval import CalibratedRetriever  # noqa: E402

pytestmark = pytest.mark.faiss
D = 10


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(21)
    A = rng.standard_normal((D, D)) / np.sqrt(D) + np.eye(D)
    X = (rng.standard_normal((1200, D)) @ A.T).astype(np.float32)
    Q = (rng.standard_normal((80, D)) @ A.T).astype(np.float32)
    return X, Q


def brute_force(r, X, Q, k):
    S = r.embed(Q) @ r.embed(X).T
    idx = np.argsort(-S, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(S, idx, 1)


@pytest.mark.parametrize(
    "index, params",
    [
        ("IVF8,Flat", {"nprobe": 8}),  # every cell probed: exact
        ("HNSW16", {"efSearch": 400}),
        ("IVF8,SQ8", {"nprobe": 8}),  # compressed: candidates rescored exactly
        ("IVF8_HNSW8,Flat", {"nprobe": 8}),
    ],
)
def test_factory_strings_equal_brute_force(data, index, params):
    X, Q = data
    k = 6
    r = CalibratedRetriever(index=index, index_params=params, null="analytic").fit(X)
    res = r.search(Q, k)
    idx, sims = brute_force(r, X, Q, k)
    assert (res.indices == idx).mean() >= (0.97 if "SQ" in index else 1.0)
    same = res.indices == idx
    np.testing.assert_allclose(res.whitened_similarities[same], sims[same], atol=1e-5)
    # similarities are always the exact ones of the returned rows, best first
    exact = np.einsum("qd,qkd->qk", r.embed(Q), r.embed(X)[res.indices])
    np.testing.assert_allclose(res.whitened_similarities, exact, atol=1e-5)
    assert np.all(np.diff(res.whitened_similarities, axis=1) <= 1e-6)
    assert r.index_params_["factory"] == index


@pytest.mark.parametrize("trained", [False, True])
def test_user_built_index_is_cloned_not_modified(data, trained):
    X, Q = data
    user = faiss.IndexIVFFlat(faiss.IndexFlatIP(D), D, 4, faiss.METRIC_INNER_PRODUCT)
    user.nprobe = 4
    if trained:
        Z = np.random.default_rng(0).standard_normal((500, D)).astype(np.float32)
        user.train(Z / np.linalg.norm(Z, axis=1, keepdims=True))
        centroids = user.quantizer.reconstruct_n(0, 4)
    r = CalibratedRetriever(index=user, null="analytic").fit(X)
    assert user.ntotal == 0 and user.is_trained == trained  # the user's index is untouched
    assert r.index_ is not user and r.index_.ntotal == X.shape[0]
    assert r.index_params_ == {"nprobe": 4}  # the user's own setting
    if trained:  # not retrained
        ivf = faiss.extract_index_ivf(r.index_)
        np.testing.assert_array_equal(ivf.quantizer.reconstruct_n(0, 4), centroids)
    idx, _ = brute_force(r, X, Q, 5)
    np.testing.assert_array_equal(r.search(Q, 5).indices, idx)


@pytest.mark.parametrize(
    "index, params, exc, msg",
    [
        (lambda: faiss.IndexFlatL2(D), None, ValueError, "inner-product metric"),
        (lambda: _filled(), None, ValueError, "must be empty"),
        (lambda: faiss.IndexFlatIP(D + 1), None, ValueError, "dimension 11.*10 dimensions"),
        (lambda: "IVF8,Nonsense", None, ValueError, "neither"),
        (lambda: "lsh", None, ValueError, "`index` must be one of"),
        (lambda: 3, None, TypeError, "`index` must be one of"),
        (lambda: "HNSW8", {"nlist": 3}, ValueError, "unknown"),
        (lambda: faiss.IndexIDMap(faiss.IndexFlatIP(D)), None, ValueError, "could not build"),
    ],
)
def test_bad_index(data, index, params, exc, msg):
    X, _ = data
    with pytest.raises(exc, match=msg):
        CalibratedRetriever(index=index(), index_params=params).fit(X)


def _filled():
    index = faiss.IndexFlatIP(D)
    index.add(np.ones((3, D), dtype=np.float32))
    return index


# --------------------------------------------------------------------------------------
# per-call search parameters
# --------------------------------------------------------------------------------------
def test_per_call_nprobe_and_ef_search(data):
    X, Q = data
    ivf = CalibratedRetriever(index="ivf", index_params={"nlist": 16, "nprobe": 1},
                              null="analytic").fit(X)  # fmt: skip
    idx, _ = brute_force(ivf, X, Q, 5)
    assert (ivf.search(Q, 5).indices == idx).mean() < 0.95  # one cell: approximate
    np.testing.assert_array_equal(ivf.search(Q, 5, nprobe=16).indices, idx)  # all cells: exact
    assert ivf.index_params_["nprobe"] == 1 and faiss.extract_index_ivf(ivf.index_).nprobe == 1
    hnsw = CalibratedRetriever(index="hnsw", index_params={"M": 4, "efSearch": 4},
                               null="analytic").fit(X)  # fmt: skip
    wide = hnsw.search(Q, 5, ef_search=500)
    np.testing.assert_array_equal(wide.indices, idx)
    assert hnsw.index_.hnsw.efSearch == 16  # faiss's own default, never changed by a search
    for r, kwargs, msg in [
        (ivf, {"ef_search": 10}, "HNSW indexes only"),
        (hnsw, {"nprobe": 2}, "IVF indexes only"),
        (CalibratedRetriever(null="analytic").fit(X), {"nprobe": 2}, "IVF indexes only"),
        (ivf, {"nprobe": 0}, "`nprobe`"),
        (hnsw, {"ef_search": 2.5}, "`ef_search`"),
    ]:
        with pytest.raises((ValueError, TypeError), match=msg):
            r.search(Q, 5, **kwargs)


def test_per_call_parameters_reach_wrapped_indexes(data):
    """nprobe passed per call reaches an IVF under a pre-transform (and a refinement)."""
    X, Q = data
    for factory in ("PCA8,IVF16,Flat", "IVF16,SQ8,RFlat"):
        build = {"index": factory, "null": "analytic", "seed": 3}
        one = CalibratedRetriever(index_params={"nprobe": 1}, **build).fit(X)
        every = CalibratedRetriever(index_params={"nprobe": 16}, **build).fit(X)
        a, b = one.search(Q, 5, nprobe=16), every.search(Q, 5)
        np.testing.assert_array_equal(a.indices, b.indices)
        assert not np.array_equal(one.search(Q, 5).indices, b.indices)


# --------------------------------------------------------------------------------------
# add
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("index", ["flat", "hnsw", "IVF8,SQ8"])
def test_add_appends_rows_with_new_ids(data, index):
    X, Q = data
    r = CalibratedRetriever(index=index, null="empirical").fit(X[:800], np.arange(800) % 4)
    model, null = r.model_, r.null_
    r.add(X[800:1000], np.arange(800, 1000) % 4)
    assert r.n_database_ == r.n_distinct_ == 1000 and r.labels_.shape == (1000,)
    assert r.model_ is model and r.null_ is null
    res = r.search(X[800:850] + 1e-3, 1)
    np.testing.assert_array_equal(res.indices[:, 0], np.arange(800, 850))
    assert res.match[:, 0].all() and res.n_searched == 1000
    np.testing.assert_array_equal(res.labels[:, 0], np.arange(800, 850) % 4)
    np.testing.assert_allclose(  # raw cosines of the added rows are kept too
        res.similarities[:, 0], 1.0, atol=1e-5
    )


def test_add_rules(data):
    X, _ = data
    r = CalibratedRetriever(null="analytic").fit(X[:400])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r.add(X[400:800])  # doubled, same law: no warning
    with pytest.warns(RuntimeWarning, match="grown from 400 rows at fit to 1200"):
        r.add(X[800:1200])
    r = CalibratedRetriever(null="analytic").fit(X)
    with pytest.warns(RuntimeWarning, match="out of distribution.*Call fit"):
        r.add(X[:100] * 4 + 5)
    labelled = CalibratedRetriever(null="analytic").fit(X[:300], np.zeros(300, int))
    state = dict(vars(labelled))
    with pytest.raises(ValueError, match="`labels` must be given"):
        labelled.add(X[300:310])
    with pytest.raises(ValueError, match="X has 3 features"):
        labelled.add(X[300:310, :3], np.zeros(10, int))
    with pytest.raises(ValueError, match="one label per row"):
        labelled.add(X[300:310], np.zeros(9, int))
    assert all(vars(labelled)[k] is v for k, v in state.items())  # failed adds changed nothing
    assert labelled.index_.ntotal == 300
    with pytest.raises(ValueError, match="`labels` must be None"):
        CalibratedRetriever(null="analytic").fit(X[:300]).add(X[:2], [0, 1])
