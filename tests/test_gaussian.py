"""The functional core against independent references (scipy, scikit-learn, closed forms)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.covariance import EmpiricalCovariance, LedoitWolf, ledoit_wolf, oas

from infogauss import gaussian as g
from tests.conftest import correlated_gaussian


@pytest.mark.parametrize("n,d", [(50, 1), (30, 5), (200, 40), (20, 60)])
def test_shrinkage_equals_sklearn(rng, n, d):
    X = correlated_gaussian(rng, n, d, offset=3.0)
    s = g.stats_from_array(X)
    _, lw = g.covariance_from_stats(s, "ledoit_wolf")
    _, oa = g.covariance_from_stats(s, "oas")
    assert abs(lw - ledoit_wolf(X)[1]) <= 1e-10
    assert abs(oa - oas(X)[1]) <= 1e-10
    cov_lw, _ = g.covariance_from_stats(s, "ledoit_wolf")
    np.testing.assert_allclose(cov_lw, ledoit_wolf(X)[0], rtol=1e-10, atol=1e-12)
    cov_oas, _ = g.covariance_from_stats(s, "oas")
    np.testing.assert_allclose(cov_oas, oas(X)[0], rtol=1e-10, atol=1e-12)


def test_fixed_and_diagonal_shrinkage(rng):
    X = correlated_gaussian(rng, 100, 6)
    s = g.stats_from_array(X)
    emp = np.cov(X, rowvar=False, bias=True)
    cov, a = g.covariance_from_stats(s, 0.25)
    mu = np.trace(emp) / 6
    np.testing.assert_allclose(cov, 0.75 * emp + 0.25 * mu * np.eye(6), rtol=1e-12)
    assert a == 0.25
    cov, a = g.covariance_from_stats(s, "diagonal")
    np.testing.assert_allclose(cov, np.diag(np.diag(emp)), rtol=1e-12)
    assert a is None
    cov, a = g.covariance_from_stats(s, "empirical")
    np.testing.assert_allclose(cov, emp, rtol=1e-12)


@pytest.mark.parametrize("splits", [[1], [2, 5], [3, 50, 51, 99]])
def test_merge_equals_one_shot(rng, splits):
    X = correlated_gaussian(rng, 120, 7, offset=-2.0)
    parts = np.split(X, splits)
    merged = g.stats_from_chunks(parts)
    whole = g.stats_from_array(X)
    assert merged.n == whole.n
    np.testing.assert_allclose(merged.mean, whole.mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(merged.scatter, whole.scatter, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(merged.third, whole.third, rtol=1e-10, atol=1e-9)
    assert merged.fourth == pytest.approx(whole.fourth, rel=1e-12)
    # the merged higher moments are the direct ones
    Y = X - X.mean(0)
    r = (Y**2).sum(1)
    np.testing.assert_allclose(merged.third, Y.T @ r, rtol=1e-10, atol=1e-9)
    assert merged.fourth == pytest.approx(float(r @ r), rel=1e-12)


def test_merge_is_order_independent(rng):
    X = correlated_gaussian(rng, 90, 4)
    a, b, c = (g.stats_from_array(p) for p in np.split(X, [30, 61]))
    left = g.merge_stats(g.merge_stats(a, b), c)
    right = g.merge_stats(a, g.merge_stats(c, b))
    np.testing.assert_allclose(left.scatter, right.scatter, rtol=1e-12, atol=1e-12)
    assert left.fourth == pytest.approx(right.fourth, rel=1e-12)


def test_large_offset_statistics_keep_their_digits(rng):
    X = (rng.standard_normal((5000, 8)) + 1e4).astype(np.float32)
    s = g.stats_from_array(X, chunk_size=333)
    ref = np.cov(X.astype(np.float64), rowvar=False, bias=True)
    np.testing.assert_allclose(s.scatter / s.n, ref, rtol=1e-9, atol=1e-12)


def _fit(X, shrinkage="empirical"):
    s = g.stats_from_array(X)
    cov, _ = g.covariance_from_stats(s, shrinkage)
    return s.mean, cov, g.cholesky_factor(cov)


@pytest.mark.parametrize("shrinkage", ["empirical", "ledoit_wolf", "oas", 0.5, "diagonal"])
def test_log_density_equals_scipy(rng, shrinkage):
    X = correlated_gaussian(rng, 300, 12, offset=5.0)
    mean, cov, L = _fit(X, shrinkage)
    Q = correlated_gaussian(rng, 40, 12, offset=4.0)
    ours = g.log_density(Q, mean, L)
    ref = stats.multivariate_normal(mean, cov).logpdf(Q)
    np.testing.assert_allclose(ours, ref, rtol=1e-9)


def test_mahalanobis_equals_sklearn(rng):
    X = correlated_gaussian(rng, 400, 16, offset=1.0)
    Q = correlated_gaussian(rng, 50, 16)
    mean, _, L = _fit(X, "empirical")
    np.testing.assert_allclose(
        g.mahalanobis_sq(Q, mean, L), EmpiricalCovariance().fit(X).mahalanobis(Q), rtol=1e-9
    )
    mean, _, L = _fit(X, "ledoit_wolf")
    np.testing.assert_allclose(
        g.mahalanobis_sq(Q, mean, L), LedoitWolf().fit(X).mahalanobis(Q), rtol=1e-9
    )


@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_float32_within_1e4_of_float64(rng, offset):
    X = correlated_gaussian(rng, 2000, 64, offset=offset).astype(np.float32)
    mean, cov, L = _fit(X.astype(np.float64), "ledoit_wolf")
    m64 = g.mahalanobis_sq(X.astype(np.float64), mean, L)
    m32 = g.mahalanobis_sq(X, mean, L)  # follows the float32 input
    np.testing.assert_allclose(m32, m64, rtol=1e-4)
    W = g.whitening_matrix(cov, L, method="zca")
    w64 = g.whiten(X.astype(np.float64), mean, W)
    w32 = g.whiten(X, mean, W)
    assert w32.dtype == np.float32
    np.testing.assert_allclose(w32, w64, rtol=1e-4, atol=1e-4 * np.abs(w64).max())
    np.testing.assert_allclose(
        g.log_density(X, mean, L), g.log_density(X, mean, L, dtype=np.float64), rtol=1e-4
    )


def test_chunk_size_does_not_change_scores(rng):
    X = correlated_gaussian(rng, 1000, 9)
    mean, cov, L = _fit(X, "oas")
    ref = g.mahalanobis_sq(X, mean, L)
    for chunk in (1, 7, 256, 5000):
        np.testing.assert_allclose(g.mahalanobis_sq(X, mean, L, chunk_size=chunk), ref, rtol=1e-12)


def test_memmap_input(rng, tmp_path):
    X = correlated_gaussian(rng, 3000, 6).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    s1, s2 = g.stats_from_array(mm, chunk_size=500), g.stats_from_array(X)
    np.testing.assert_allclose(s1.scatter, s2.scatter, rtol=1e-12)
    mean, _, L = _fit(X)
    np.testing.assert_array_equal(g.mahalanobis_sq(mm, mean, L), g.mahalanobis_sq(X, mean, L))


@pytest.mark.parametrize("method", ["zca", "pca", "cholesky"])
def test_whitening_gives_identity_covariance(rng, method):
    X = correlated_gaussian(rng, 500, 10)
    mean, cov, L = _fit(X, "ledoit_wolf")
    W = g.whitening_matrix(cov, L, method=method)
    np.testing.assert_allclose(W.T @ cov @ W, np.eye(10), atol=1e-10)
    Z = g.whiten(X, mean, W)
    # the whitened norm is the Mahalanobis distance
    np.testing.assert_allclose((Z**2).sum(1), g.mahalanobis_sq(X, mean, L), rtol=1e-9)
    if method == "zca":
        np.testing.assert_allclose(W, W.T, atol=1e-12)


def test_pca_truncation_keeps_top_components(rng):
    X = correlated_gaussian(rng, 500, 10)
    mean, cov, L = _fit(X)
    W = g.whitening_matrix(cov, L, method="pca", n_components=3)
    assert W.shape == (10, 3)
    evals = np.linalg.eigvalsh(cov)[::-1]
    # columns are eigenvectors scaled by 1/sqrt(lambda): W^T cov W = I and the variance kept
    # along each direction is the top eigenvalue
    np.testing.assert_allclose(W.T @ cov @ W, np.eye(3), atol=1e-10)
    np.testing.assert_allclose(1.0 / (W**2).sum(0), evals[:3], rtol=1e-9)
    Wz = g.whitening_matrix(cov, L, method="zca", n_components=3)
    np.testing.assert_allclose(Wz.T @ cov @ Wz, W @ W.T @ cov @ W @ W.T * 0 + Wz.T @ cov @ Wz)
    assert np.linalg.matrix_rank(Wz) == 3 and Wz.shape == (10, 10)
    # truncated ZCA is truncated PCA rotated back to the input axes
    U = np.linalg.eigh(cov)[1][:, ::-1][:, :3]
    np.testing.assert_allclose(
        Wz, W @ (U * np.sign(U[np.abs(U).argmax(0), range(3)])).T, atol=1e-10
    )
    with pytest.raises(ValueError, match="n_components"):
        g.whitening_matrix(cov, L, method="cholesky", n_components=3)
    with pytest.raises(ValueError, match="n_components"):
        g.whitening_matrix(cov, L, method="pca", n_components=11)


def test_entropy_equals_scipy(rng):
    X = correlated_gaussian(rng, 200, 5)
    mean, cov, L = _fit(X)
    assert g.gaussian_entropy(L) == pytest.approx(
        stats.multivariate_normal(mean, cov).entropy(), rel=1e-12
    )


def test_finite_sample_laws_for_pvalues():
    """Exact Gaussian data, n=2,500, d=256: held-out distances follow the scaled F law, the
    fitted points the Beta law, and the chi-square limit is badly off (KS ~ 0.4)."""
    rng = np.random.default_rng(7)
    n, d, m = 2500, 256, 3000
    X = rng.standard_normal((n, d))
    mean, _, L = _fit(X, "empirical")
    held = g.mahalanobis_sq(rng.standard_normal((m, d)), mean, L)
    p_f = g.mahalanobis_pvalues(held, n, d, "f")
    p_chi = g.mahalanobis_pvalues(held, n, d, "chi2")
    assert stats.kstest(p_f, "uniform").pvalue > 1e-3
    assert stats.kstest(p_chi, "uniform").statistic > 0.3
    train = g.mahalanobis_sq(X, mean, L)
    p_b = g.mahalanobis_pvalues(train, n, d, "beta")
    assert stats.kstest(p_b, "uniform").pvalue > 1e-3
    # the F law on training points would be wrong (they are closer than new points)
    assert stats.kstest(g.mahalanobis_pvalues(train, n, d, "f"), "uniform").statistic > 0.2


def test_pvalue_errors():
    with pytest.raises(ValueError, match="method"):
        g.mahalanobis_pvalues([1.0], 10, 2, "normal")
    with pytest.raises(ValueError, match="more samples than features"):
        g.mahalanobis_pvalues([1.0], 5, 5, "f")
    with pytest.raises(ValueError, match="n > d"):
        g.mahalanobis_pvalues([1.0], 6, 5, "beta")


def test_singular_covariance_error_names_constant_columns(rng):
    X = rng.standard_normal((50, 4))
    X[:, 2] = 3.0
    s = g.stats_from_array(X)
    cov, _ = g.covariance_from_stats(s, "empirical")
    with pytest.raises(ValueError, match=r"coordinates \[2\].*shrinkage"):
        g.cholesky_factor(cov)
    cov, a = g.covariance_from_stats(s, "ledoit_wolf")
    assert a > 0
    g.cholesky_factor(cov)  # shrinkage makes it positive definite


def test_chunk_iterator_errors(rng):
    with pytest.raises(ValueError, match=r"chunks\[1\]` has 3 features.*earlier blocks had 4"):
        g.stats_from_chunks([np.ones((3, 4)), np.ones((3, 3))])
    with pytest.raises(TypeError, match="mixed dtypes"):
        g.stats_from_chunks([np.ones((3, 4)), np.ones((3, 4), dtype=np.float32)])
    with pytest.raises(ValueError, match="no data"):
        g.stats_from_chunks([])
    with pytest.raises(ValueError, match="NaN"):
        g.stats_from_chunks([np.array([[np.nan, 1.0]])])


def test_nonfinite_input_to_scoring_is_refused(rng):
    X = correlated_gaussian(rng, 100, 3)
    mean, cov, L = _fit(X)
    Q = X[:10].copy()
    Q[6, 1] = np.inf
    with pytest.raises(ValueError, match="row 6"):
        g.mahalanobis_sq(Q, mean, L)
    with pytest.raises(ValueError, match="row 6"):
        g.whiten(Q, mean, np.eye(3))
    with pytest.raises(ValueError, match="2 features, but the model is expecting 3"):
        g.mahalanobis_sq(X[:, :2], mean, L)


@pytest.mark.parametrize("bad", ["nope", -0.1, 1.5, True, None])
def test_bad_shrinkage(rng, bad):
    s = g.stats_from_array(rng.standard_normal((10, 2)))
    with pytest.raises((ValueError, TypeError), match="shrinkage"):
        g.covariance_from_stats(s, bad)


def test_scoring_memory_is_bounded_by_the_chunk(rng):
    """Extra memory while scoring = output + a few blocks, not a copy of X (tracemalloc sees
    numpy's buffers)."""
    import tracemalloc

    n, d, chunk = 100_000, 32, 2_000
    X = rng.standard_normal((n, d)).astype(np.float32)
    mean, _, L = _fit(X[:5000].astype(np.float64), "ledoit_wolf")
    tracemalloc.start()
    g.mahalanobis_sq(X, mean, L, chunk_size=chunk)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < n * 8 + 6 * chunk * d * 8, peak  # output + a few blocks; X is 12.8 MB
    tracemalloc.start()
    g.stats_from_array(X, chunk_size=chunk)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 6 * chunk * d * 8 + 4 * d * d * 8, peak
