"""``infogauss.bench._baselines``: each baseline detector against an independent reference
(brute-force numpy kNN, scikit-learn's LOF / IsolationForest / EllipticEnvelope), the sign
convention (higher = more in-distribution) and the subsampling rules."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from infogauss.bench import _baselines as bl


def _data(rng, n=300, d=6):
    A = rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
    X = (rng.standard_normal((n, d)) @ A.T).astype(np.float32)
    Q = np.concatenate([(rng.standard_normal((40, d)) @ A.T),
                        rng.standard_normal((20, d)) * 4 + 3]).astype(np.float32)
    return X, Q


def _brute_kth_cosine(X, Q, k):
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    return np.sort(Qn.astype(np.float64) @ Xn.T.astype(np.float64), axis=1)[:, -k]


def test_l2_normalize_and_subsample(rng):
    x = rng.standard_normal((5, 3))
    x[2] = 0
    u = bl.l2_normalize(x)
    assert u.dtype == np.float32 and np.allclose(np.linalg.norm(u[[0, 1, 3, 4]], axis=1), 1)
    assert np.all(u[2] == 0)
    np.testing.assert_array_equal(bl.subsample(10, None, 0, 1), np.arange(10))
    np.testing.assert_array_equal(bl.subsample(10, 20, 0, 1), np.arange(10))
    s = bl.subsample(100, 10, 0, 1)
    assert s.shape == (10,) and np.all(np.diff(s) > 0) and len(set(s)) == 10
    np.testing.assert_array_equal(s, bl.subsample(100, 10, 0, 1))  # seeded
    assert not np.array_equal(s, bl.subsample(100, 10, 0, 2))  # salted


def test_deep_knn_numpy_backend_is_the_brute_force_kth_cosine(rng, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_faiss(name, *a, **kw):
        fromlist = a[2] if len(a) > 2 else kw.get("fromlist")
        if name == "faiss" or (name.endswith("retrieval._index") or name == "_index"
                               and fromlist and "faiss" in fromlist):  # the package's fence
            raise ImportError("blocked")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    X, Q = _data(rng, n=5000)  # more than one 2048-row block of queries below
    Q = np.concatenate([Q] * 40)
    score, notes = bl.knn_scorer(X, 7)
    assert notes["backend"].startswith("numpy") and notes["k"] == 7
    np.testing.assert_allclose(score(Q), _brute_kth_cosine(X, Q, 7), atol=1e-5)
    score, notes = bl.knn_scorer(X[:3], 50)  # k capped at the training size
    assert notes["k"] == 3


@pytest.mark.faiss
def test_deep_knn_faiss_backend_is_the_brute_force_kth_cosine(rng):
    pytest.importorskip("faiss")
    X, Q = _data(rng)
    score, notes = bl.knn_scorer(X, 5)
    assert notes["backend"].startswith("faiss")
    s = score(Q)
    assert s.dtype == np.float64
    np.testing.assert_allclose(s, _brute_kth_cosine(X, Q, 5), atol=1e-5)


def test_registry_without_pyod(rng, monkeypatch, caplog):
    import sys

    monkeypatch.setitem(sys.modules, "pyod", None)  # `import pyod` raises ImportError
    X, Q = _data(rng)
    reg = bl.baselines(X, seed=0, k=5)
    assert list(reg) == ["deep_knn", "elliptic_envelope_mcd", "feature_norm"]
    assert "pyod not installed" in caplog.text
    score, _ = reg["feature_norm"][0]()
    np.testing.assert_allclose(score(Q), np.linalg.norm(Q.astype(np.float64), axis=1))


def test_mcd_is_elliptic_envelope_on_the_top_principal_components(rng):
    from sklearn.covariance import EllipticEnvelope
    from sklearn.decomposition import PCA

    X, Q = _data(rng, n=400, d=12)
    reg = bl.baselines(X, seed=4, mcd_max_train=200, mcd_dims=5)
    fit, notes = reg["elliptic_envelope_mcd"]
    assert notes == {"n_train": 200, "subsampled": True, "pca_dims_max": 5}
    score, extra = fit()
    assert extra == {"pca_dims": 5}
    sub = np.asarray(X[bl.subsample(400, 200, 4, 2)], dtype=np.float64)
    pca = PCA(n_components=5, random_state=4).fit(sub)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = EllipticEnvelope(random_state=4).fit(pca.transform(sub))
    np.testing.assert_allclose(score(Q), env.score_samples(pca.transform(Q.astype(np.float64))))
    # higher = more in-distribution: the shifted rows score lower
    s = score(Q)
    assert s[:40].mean() > s[40:].mean()
    _, extra = bl.baselines(X[:30], seed=0, mcd_dims=64)["elliptic_envelope_mcd"][0]()
    assert extra["pca_dims"] == 3  # at most n/10 components


@pytest.mark.pyod
def test_pyod_baselines_against_brute_force_and_sklearn(rng):
    pytest.importorskip("pyod")
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor

    X, Q = _data(rng, n=500)
    reg = bl.baselines(X, seed=3, baseline_max_train=200, ecod_batch=16)
    assert list(reg) == ["deep_knn", "pyod_ecod", "pyod_iforest", "pyod_knn", "pyod_lof",
                         "elliptic_envelope_mcd", "feature_norm"]
    sub = np.asarray(X[bl.subsample(500, 200, 3, 1)], dtype=np.float64)
    Q64 = Q.astype(np.float64)
    for name in ("pyod_ecod", "pyod_iforest", "pyod_knn", "pyod_lof"):
        assert reg[name][1]["n_train"] == 200 and reg[name][1]["subsampled"] is True

    # KNN (k=5, largest): minus the distance to the 5th nearest training row
    knn, _ = reg["pyod_knn"][0]()
    D = np.linalg.norm(Q64[:, None] - sub[None], axis=2)
    np.testing.assert_allclose(knn(Q), -np.sort(D, axis=1)[:, 4], rtol=1e-10)
    # LOF (k=20): scikit-learn's novelty score_samples
    lof, _ = reg["pyod_lof"][0]()
    sk = LocalOutlierFactor(n_neighbors=20, algorithm="brute", novelty=True).fit(sub)
    np.testing.assert_allclose(lof(Q), sk.score_samples(Q64), rtol=1e-10)
    # IForest: scikit-learn's score_samples up to a constant (the contamination offset)
    iforest, _ = reg["pyod_iforest"][0]()
    diff = iforest(Q) - IsolationForest(n_estimators=100, random_state=3).fit(sub).score_samples(Q64)
    assert np.ptp(diff) < 1e-12
    # ECOD: scored batch by batch, as PyOD scores each batch on its own (pyod #401)
    from pyod.models.ecod import ECOD

    ecod, _ = reg["pyod_ecod"][0]()
    assert reg["pyod_ecod"][1]["score_batch"] == 16
    ref = ECOD().fit(sub)
    expected = -np.concatenate([ref.decision_function(Q64[s:s + 16])
                                for s in range(0, Q64.shape[0], 16)])
    np.testing.assert_allclose(ecod(Q), expected, rtol=1e-10)
    # every baseline: higher = more in-distribution
    for name in ("pyod_ecod", "pyod_iforest", "pyod_knn", "pyod_lof"):
        s, _ = reg[name][0]()
        v = s(Q)
        assert v[:40].mean() > v[40:].mean(), name
