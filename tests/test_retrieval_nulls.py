"""The retrieval null laws and duplicate detection: scipy only, tested without faiss.

Closed forms (Beta law, Šidák), brute-force pair counts, the bounded tails at cosine 1, and
duplicate groups against a brute-force all-pairs search."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats
from scipy.sparse.csgraph import connected_components

from infogauss import calibration
from infogauss.retrieval import (
    AnalyticCosineNull,
    EmpiricalCosineNull,
    as_float32_rows,
    empirical_cosine_null,
    find_duplicates,
    sidak_correction,
)
from infogauss.retrieval.duplicates import duplicate_groups


def unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered(rng, n, d=12, n_classes=5, spread=2.0):
    """Labelled Gaussian clusters with a shared random covariance."""
    means = rng.standard_normal((n_classes, d)) * spread
    A = rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
    y = rng.integers(0, n_classes, n)
    return (means[y] + rng.standard_normal((n, d)) @ A.T).astype(np.float32), y


def test_null_laws_work_without_faiss():
    """The fence guards faiss only: with faiss blocked, the null laws, the duplicate search and
    the result type import and compute (issue 14)."""
    code = (
        "import sys\n"
        "sys.modules['faiss'] = None\n"
        "import numpy as np\n"
        "from infogauss.retrieval import RetrievalResult, as_float32_rows, find_duplicates\n"
        "from infogauss.retrieval.nulls import AnalyticCosineNull, empirical_cosine_null\n"
        "rng = np.random.default_rng(0)\n"
        "Z = as_float32_rows(rng.standard_normal((300, 8)))\n"
        "Z /= np.linalg.norm(Z, axis=1, keepdims=True)\n"
        "Z = np.vstack([Z, Z[:5]])\n"
        "g = find_duplicates(Z)\n"
        "null = empirical_cosine_null(Z, groups=g, n_queries=200, random_state=0)\n"
        "print(int((g != np.arange(g.size)).sum()), null.n_pairs,\n"
        "      float(null.top1_sf(1.0, 300, 'evt')), float(AnalyticCosineNull(8).top1_sf(1.0, 9)))\n"
        "print('faiss' in sys.modules and sys.modules['faiss'] is not None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    numbers, faiss_loaded = out.stdout.strip().split("\n")
    n_dup, n_pairs, p_evt, p_analytic = numbers.split()
    assert int(n_dup) == 5 and int(n_pairs) == 200 * 299
    assert float(p_evt) == 0.0 and float(p_analytic) == 0.0
    assert faiss_loaded == "False"


# --------------------------------------------------------------------------------------
# closed forms
# --------------------------------------------------------------------------------------
def test_sidak_is_stable_and_exact():
    p = np.array([0.0, 1e-15, 1e-6, 0.01, 0.5, 1.0])
    got = sidak_correction(p, 1000)
    assert got[0] == 0.0 and got[-1] == 1.0
    assert got[1] == pytest.approx(1000 * 1e-15, rel=1e-9)  # naive 1-(1-p)**n gives ~1.1e-12
    np.testing.assert_allclose(got[2:5], 1 - (1 - p[2:5]) ** 1000, rtol=1e-9)
    np.testing.assert_array_equal(got, calibration.sidak(p, 1000))  # one formula
    with pytest.raises(ValueError, match="`n`"):
        sidak_correction(p, 0)


def test_analytic_null_closed_forms():
    # d = 3: (1+c)/2 ~ Beta(1, 1), c is uniform on [-1, 1]
    c = np.linspace(-1, 1, 9)
    np.testing.assert_allclose(AnalyticCosineNull(3).sf(c), (1 - c) / 2, atol=1e-12)
    # variance of the cosine is 1/d
    d = 50
    a = (d - 1) / 2
    assert 4 * stats.beta.var(a, a) == pytest.approx(1 / d)
    with pytest.raises(ValueError, match="needs null='empirical'"):
        AnalyticCosineNull(5).top1_sf(0.1, 10, "evt")
    with pytest.raises(ValueError, match="`dim`"):
        AnalyticCosineNull(1)


def test_empirical_null_counts_the_pairs(rng):
    X, y = clustered(rng, 300, d=6)
    Z = as_float32_rows(X)
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    null = empirical_cosine_null(Z, y, n_queries=300, random_state=0)
    S = Z @ Z.T
    pairs = S[y[:, None] != y[None, :]]
    assert null.n_pairs == pairs.size
    for c in (-0.5, 0.0, 0.3, 0.8):
        direct = (1 + np.sum(pairs >= c)) / (pairs.size + 1)
        width = np.sum(np.abs(pairs - c) <= 2 / null.counts.size) / (pairs.size + 1)
        assert abs(null.sf(c) - direct) <= width + 1e-12
    # the maxima are each pseudo-query's best other-label similarity
    best = np.where(y[:, None] != y[None, :], S, -np.inf).max(axis=1)
    np.testing.assert_allclose(np.sort(null.maxima), np.sort(best), atol=1e-6)
    # inside the data the histogram p-value is the rank p-value of the pairs
    c = np.array([0.1, 0.5])
    np.testing.assert_allclose(
        null.sf(c), calibration.rank_pvalues(pairs, c), atol=np.max(width) + 1e-3
    )


# --------------------------------------------------------------------------------------
# bounded tails: cosine <= 1
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def isotropic_null():
    rng = np.random.default_rng(11)
    d, n = 16, 2000
    Z = unit(rng.standard_normal((n, d)))
    return empirical_cosine_null(Z, n_queries=2000, random_state=0), d, n


def test_per_pair_tail_is_bounded_and_conservative(isotropic_null):
    """Beyond the largest null pair the tail decays as (1 - c)^kappa to 0 at c = 1, from the
    rank p-value's floor; against the exact Beta law it is heavier (conservative)."""
    null, d, n = isotropic_null
    floor = 1.0 / (null.n_pairs + 1)
    c0 = null.tail_start
    assert c0 == np.max(null.maxima) < 1
    c = c0 + (1 - c0) * np.array([1e-9, 0.1, 0.5, 0.9, 0.999, 1 - 1e-9, 1.0])
    p = null.sf(c)
    assert p[0] == pytest.approx(floor, rel=1e-6) and p[-1] == 0.0
    assert np.all(np.diff(p) < 0)
    a = (d - 1) / 2
    assert 0.5 * a < null.tail_index <= 1.05 * a  # local exponent below the asymptotic one
    exact = AnalyticCosineNull(d).sf(c[1:-1])
    assert np.all(p[1:-1] >= 0.5 * exact)
    # monotone across the whole range, rank part included
    grid = np.linspace(-1, 1, 20001)
    assert np.all(np.diff(null.sf(grid)) <= 0)


@pytest.mark.parametrize("correction", ["sidak", "evt", None])
def test_top1_pvalue_vanishes_at_cosine_one(isotropic_null, correction):
    """A database item identical to the query (cosine 1, or 1 less a float32 rounding) is a
    match at every alpha >= 1/n: the EVT law is fitted to -log(1 - m), which sends the bound to
    +infinity, so no fitted end point can lie beyond cosine 1 (issue 17)."""
    null, d, n = isotropic_null
    for c in (1.0, 1 - 6e-8, 1 - 1.2e-7):
        assert null.top1_sf(c, n, correction) <= 1.0 / n
    assert null.top1_sf(1.0, n, correction) == 0.0
    c = np.linspace(0.0, 1.0, 5001)
    p = null.top1_sf(c, n, correction)
    assert np.all(np.diff(p) <= 1e-15)
    assert np.all(p >= null.sf(c))
    if correction == "evt":  # held within [one pair, the union bound]
        assert np.all(p <= np.minimum(1.0, n * null.sf(c)) + 1e-15)


def test_evt_on_the_issue_law_is_capped():
    """The issue's GEV, fitted to raw maxima (shape 0.061, loc 0.456, scale 0.148), put the end
    point at 2.87 > 1 and gave an identical vector p = 0.0152. On the log scale the same maxima
    give a law under which that vector's p-value is 0."""
    rng = np.random.default_rng(5)
    maxima = stats.genextreme.rvs(0.061, 0.456, 0.148, size=2000, random_state=rng)
    maxima = np.clip(maxima, -0.99, 0.999)
    counts = np.histogram(rng.uniform(-0.3, 0.9, 10**6), bins=1 << 15, range=(-1, 1))[0]
    from infogauss.retrieval.nulls import _fit_gev

    null = EmpiricalCosineNull(counts.astype(np.int64), maxima, 2000.0, *_fit_gev(maxima))
    assert null.top1_sf(1.0, 2020, "evt") == 0.0
    assert null.top1_sf(1 - 6e-8, 2020, "evt") <= 1 / 2020
    old_end = 0.456 + 0.148 / 0.061
    assert old_end > 2.8  # the law the old fit implied, for the record


# --------------------------------------------------------------------------------------
# duplicates
# --------------------------------------------------------------------------------------
def brute_force_groups(Z, tol):
    S = Z.astype(np.float64) @ Z.astype(np.float64).T
    _, comp = connected_components(1.0 - S <= tol, directed=False)
    smallest = np.full(comp.max() + 1, Z.shape[0])
    np.minimum.at(smallest, comp, np.arange(Z.shape[0]))
    return smallest[comp]


@pytest.mark.parametrize("d", [2, 3, 16, 128])
def test_find_duplicates_equals_brute_force(rng, d):
    base = unit(rng.standard_normal((400, d)))
    exact = base[rng.integers(0, 400, 60)]
    near = base[rng.integers(0, 400, 60)] + 1e-4 / np.sqrt(d) * rng.standard_normal((60, d))
    far = base[rng.integers(0, 400, 60)] + 0.05 * rng.standard_normal((60, d))
    chain = unit(base[:1] + 1.5e-3 * np.arange(6)[:, None] * np.eye(d)[1])  # neighbours only
    Z = unit(np.vstack([base, exact, near, far, chain]))
    Z = Z[rng.permutation(Z.shape[0])]
    tol = 2e-6 if d > 2 else 1e-6
    got = find_duplicates(Z, tol=tol)
    np.testing.assert_array_equal(got, brute_force_groups(Z, tol))
    assert np.unique(got).size < Z.shape[0] - 100  # the copies were found
    np.testing.assert_array_equal(find_duplicates(Z, tol=0), _identical_groups(Z))


def _identical_groups(Z):
    _, first, inverse = np.unique(Z, axis=0, return_index=True, return_inverse=True)
    smallest = np.full(first.size, Z.shape[0])
    np.minimum.at(smallest, inverse.ravel(), np.arange(Z.shape[0]))
    return smallest[inverse.ravel()]


def test_duplicate_groups_and_null_count_each_item_once(rng):
    base = unit(rng.standard_normal((500, 8)))
    Z = np.vstack([base, base[:250]])  # 250 items twice
    groups = find_duplicates(Z)
    listed = duplicate_groups(groups)
    assert len(listed) == 250 and all(g.tolist() == [i, 500 + i] for i, g in enumerate(listed))
    with_dups = empirical_cosine_null(Z, groups=groups, n_queries=500, random_state=0)
    distinct = empirical_cosine_null(base, n_queries=500, random_state=0)
    np.testing.assert_array_equal(with_dups.counts, distinct.counts)
    np.testing.assert_array_equal(with_dups.maxima, distinct.maxima)
    assert with_dups.maxima.max() < 0.999  # no pseudo-query met its own copy
    ignored = empirical_cosine_null(Z, n_queries=500, random_state=0)  # the old behaviour
    assert ignored.maxima.max() > 1 - 1e-6


def test_find_duplicates_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        find_duplicates(np.zeros(3))
    with pytest.raises(ValueError, match="`tol`"):
        find_duplicates(np.eye(3), tol=1.5)
    assert find_duplicates(np.zeros((0, 3))).shape == (0,)
