"""LocalGaussianOOD against brute-force neighbours and dense numpy Gaussians (np.linalg.solve,
scikit-learn's shrinkage), the calibration split, persistence, bad input, estimator checks."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from sklearn.covariance import ledoit_wolf_shrinkage, oas
from sklearn.utils.estimator_checks import parametrize_with_checks

import infogauss
from infogauss import calibration
from infogauss import gaussian as core
from infogauss.metrics import auroc
from infogauss.ood import LocalGaussianOOD, MahalanobisOOD, local_mahalanobis_sq
from infogauss.ood._local import local_shrinkage
from infogauss.persistence import ModelFileError

from .conftest import assert_batch_close, correlated_gaussian

SEARCHES = ["numpy", pytest.param("faiss", marks=pytest.mark.faiss)]


def _search(search):
    if search == "faiss":
        pytest.importorskip("faiss")
    return search


# --------------------------------------------------------------------------------------
# brute-force references
# --------------------------------------------------------------------------------------
def _brute_knn(R, X, k):
    """All distances by explicit differences; order by distance, then row (stable sort)."""
    D = ((X[:, None, :] - R[None, :, :]) ** 2).sum(-1)
    idx = np.argsort(D, axis=1, kind="stable")[:, :k]
    return np.sqrt(np.take_along_axis(D, idx, 1)), idx


def _ref_intensity(N, shrinkage):
    if shrinkage == "ledoit_wolf":
        return ledoit_wolf_shrinkage(N)
    if shrinkage == "oas":
        return oas(N)[1]
    return 0.0 if shrinkage == "empirical" else float(shrinkage)


def _ref_m2(N, x, shrinkage, n_components=None):
    """Dense d x d covariance of the neighbours, solved with np.linalg.solve."""
    k, d = N.shape
    mu = N.mean(0)
    C = (N - mu).T @ (N - mu) / k
    s = _ref_intensity(N, shrinkage)
    nu = np.trace(C) / d
    if n_components is None:
        S = (1 - s) * C + s * nu * np.eye(d)
    else:
        lam, V = np.linalg.eigh(C)
        lam, V = lam[::-1], V[:, ::-1]
        q = n_components
        floor = (1 - s) * lam[q:].sum() / (d - q) + s * nu  # mean of the discarded variances
        Vq = V[:, :q]
        S = Vq @ np.diag((1 - s) * lam[:q] + s * nu) @ Vq.T + floor * (np.eye(d) - Vq @ Vq.T)
    v = x - mu
    return float(v @ np.linalg.solve(S, v))


# --------------------------------------------------------------------------------------
# the core function and the shrinkage intensities
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("k, d", [(12, 30), (40, 6)])  # Gram side (k <= d), covariance side
@pytest.mark.parametrize("shrinkage", ["ledoit_wolf", "oas", 0.3])
@pytest.mark.parametrize("n_components", [None, 4])
def test_local_distance_matches_dense_solve(rng, k, d, shrinkage, n_components):
    N = correlated_gaussian(rng, 5 * k, d)[: 5 * k].reshape(5, k, d) + 3.0
    X = correlated_gaussian(rng, 5, d) * 1.5 + 3.0
    got = local_mahalanobis_sq(N, X, shrinkage=shrinkage, n_components=n_components)
    ref = [_ref_m2(N[b], X[b], shrinkage, n_components) for b in range(5)]
    np.testing.assert_allclose(got, ref, rtol=1e-8)


def test_unshrunk_full_rank_and_shrinkage_intensities(rng):
    N = correlated_gaussian(rng, 4 * 50, 5).reshape(4, 50, 5)
    X = correlated_gaussian(rng, 4, 5)
    got = local_mahalanobis_sq(N, X, shrinkage="empirical")
    np.testing.assert_allclose(got, [_ref_m2(N[b], X[b], "empirical") for b in range(4)],
                               rtol=1e-9)  # fmt: skip
    # the O(k^2 d) moments give scikit-learn's and the core's intensities
    for k, d in [(8, 20), (50, 5)]:
        Y = correlated_gaussian(rng, k, d) + 2.0
        Yc = Y - Y.mean(0)
        sq = (Yc**2).sum(1)
        G = Yc @ Yc.T
        mom = ([sq.sum() / k], [(G**2).sum() / k**2], [(sq**2).sum()])
        stats = core.stats_from_array(Y)
        assert local_shrinkage("ledoit_wolf", k, d, *mom)[0] == pytest.approx(
            core.ledoit_wolf_shrinkage_from_stats(stats), rel=1e-10)
        assert local_shrinkage("ledoit_wolf", k, d, *mom)[0] == pytest.approx(
            ledoit_wolf_shrinkage(Y), rel=1e-10)
        assert local_shrinkage("oas", k, d, *mom)[0] == pytest.approx(
            core.oas_shrinkage_from_stats(stats), rel=1e-10)


# --------------------------------------------------------------------------------------
# the estimator against brute force
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("search", SEARCHES)
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_neighbours_and_scores_match_brute_force(rng, search, metric):
    X = correlated_gaussian(rng, 400, 6, offset=2.0)
    Xq = np.r_[correlated_gaussian(rng, 20, 6, offset=2.0), rng.normal(scale=5, size=(5, 6))]
    det = LocalGaussianOOD(n_neighbors=25, metric=metric, calibration=None,
                           search=_search(search)).fit(X)  # fmt: skip
    assert det.search_ == search
    norm = (lambda A: A / np.linalg.norm(A, axis=1, keepdims=True)) if metric == "cosine" \
        else (lambda A: A)  # fmt: skip
    R, Q = norm(X), norm(Xq)
    np.testing.assert_allclose(det.reference_, R, rtol=1e-15, atol=1e-15)
    R = det.reference_
    dist, idx = det.kneighbors(Xq)
    ref_dist, ref_idx = _brute_knn(R, Q, 25)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-12, atol=1e-12)
    ref = [_ref_m2(R[ref_idx[i]], Q[i], "ledoit_wolf") for i in range(len(Q))]
    np.testing.assert_allclose(det.local_mahalanobis(Xq), ref, rtol=1e-8)
    np.testing.assert_allclose(det.score_samples(Xq), -np.array(ref), rtol=1e-8)


@pytest.mark.parametrize("search", SEARCHES)
def test_ties_are_broken_by_reference_row(rng, search):
    """Lattice data: many reference rows at exactly the same distance from a query."""
    X = rng.integers(0, 3, size=(300, 4)).astype(float)
    Xq = rng.integers(0, 3, size=(30, 4)).astype(float)
    det = LocalGaussianOOD(n_neighbors=40, calibration=None, search=_search(search)).fit(X)
    _, idx = det.kneighbors(Xq)
    np.testing.assert_array_equal(idx, _brute_knn(X, Xq, 40)[1])
    rows = np.array([det.kneighbors(Xq[i : i + 1])[1][0] for i in range(len(Xq))])
    np.testing.assert_array_equal(rows, idx)


def test_faiss_and_numpy_agree(rng):
    pytest.importorskip("faiss")
    X = correlated_gaussian(rng, 600, 10)
    Xq = correlated_gaussian(rng, 50, 10) * 1.3
    a = LocalGaussianOOD(n_neighbors=30, search="numpy", random_state=0).fit(X)
    b = LocalGaussianOOD(n_neighbors=30, search="faiss", random_state=0).fit(X)
    np.testing.assert_array_equal(a.kneighbors(Xq)[1], b.kneighbors(Xq)[1])
    assert_batch_close(b.score_samples(Xq), a.score_samples(Xq), np.float64)
    assert a.offset_ == pytest.approx(b.offset_, rel=1e-12)


def test_missing_faiss_is_named_only_when_asked_for(rng, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss -> ImportError
    # ... and the package's faiss fence, which may already hold the module
    monkeypatch.setitem(sys.modules, "infogauss.retrieval._index", None)
    X = rng.normal(size=(100, 3))
    assert LocalGaussianOOD(n_neighbors=10, search="auto").fit(X).search_ == "numpy"
    with pytest.raises(ImportError, match=r"infogauss\[faiss\]"):
        LocalGaussianOOD(n_neighbors=10, search="faiss").fit(X)


@pytest.mark.parametrize("search", SEARCHES)
def test_batch_equals_row_by_row(rng, search):
    X = correlated_gaussian(rng, 500, 8)
    det = LocalGaussianOOD(n_neighbors=40, n_components=5, search=_search(search),
                           random_state=0).fit(X)  # fmt: skip
    Xq = np.r_[correlated_gaussian(rng, 12, 8), rng.normal(scale=4, size=(3, 8))]
    for f in (det.score_samples, det.decision_function, det.pvalues):
        rows = np.array([f(Xq[i : i + 1])[0] for i in range(len(Xq))])
        assert_batch_close(rows, f(Xq), np.float64)
    perm = rng.permutation(len(Xq))
    assert_batch_close(det.score_samples(Xq[perm]), det.score_samples(Xq)[perm], np.float64)
    blocked = LocalGaussianOOD(**{**det.get_params(), "chunk_size": 4}).fit(X)
    assert_batch_close(blocked.score_samples(Xq), det.score_samples(Xq), np.float64)


# --------------------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------------------
def test_held_out_rows_are_not_their_own_neighbours(rng):
    X = correlated_gaussian(rng, 300, 4)
    det = LocalGaussianOOD(n_neighbors=20, random_state=3).fit(X)
    fit_idx, cal_idx = calibration.holdout_split(300, 0.05, 0.2, np.random.RandomState(3))
    np.testing.assert_array_equal(det.reference_, X[fit_idx])  # held-out rows are left out
    _, nbrs = _brute_knn(X[fit_idx], X[cal_idx], 20)
    ref = [-_ref_m2(X[fit_idx][nbrs[i]], X[cal_idx][i], "ledoit_wolf") for i in range(len(cal_idx))]
    np.testing.assert_allclose(det.calibration_scores_, np.sort(ref), rtol=1e-8)
    assert det.offset_ == calibration.conformal_threshold(det.calibration_scores_, 0.05)
    assert det.kneighbors(X[cal_idx])[0].min() > 0  # no held-out row finds itself


@pytest.mark.parametrize("search", SEARCHES)
def test_uncalibrated_offset_is_the_leave_one_out_quantile(rng, search):
    """calibration=None: each reference row is scored under its k nearest *other* rows (brute
    force), and offset_ is their contamination quantile."""
    X = np.r_[correlated_gaussian(rng, 250, 5), np.repeat(rng.normal(size=(1, 5)), 4, axis=0)]
    det = LocalGaussianOOD(n_neighbors=20, calibration=None, search=_search(search)).fit(X)
    ref = []
    for i in range(len(X)):
        others = np.delete(np.arange(len(X)), i)
        _, nb = _brute_knn(X[others], X[i : i + 1], 20)
        ref.append(-_ref_m2(X[others][nb[0]], X[i], "ledoit_wolf"))
    np.testing.assert_allclose(det._fit_scores(det.reference_), ref, rtol=1e-8)
    assert det.offset_ == np.percentile(det._fit_scores(det.reference_), 5.0)
    assert np.isfinite(ref).all()  # the duplicates: their other copies are at distance 0
    labels = LocalGaussianOOD(n_neighbors=20, calibration=None, search=_search(search)).fit_predict(X)
    np.testing.assert_array_equal(labels, np.where(np.array(ref) < det.offset_, -1, 1))
    assert abs(np.mean(labels == -1) - 0.05) < 0.01


def test_uncalibrated_threshold_is_near_its_rate_on_new_data(rng):
    """The leave-one-out threshold flags about `contamination` of new data (a training row
    among its own neighbours flagged most of them in 20 dimensions)."""
    A = rng.standard_normal((20, 20)) / 4 + np.eye(20)
    rates = []
    for _ in range(5):
        X, X_new = rng.standard_normal((600, 20)) @ A.T, rng.standard_normal((600, 20)) @ A.T
        det = LocalGaussianOOD(n_neighbors=30, calibration=None, search="numpy").fit(X)
        rates.append(np.mean(det.predict(X_new) == -1))
    assert 0.03 <= np.mean(rates) <= 0.08  # 5 x 600 draws: sd about 0.4%


def test_default_fit_predict_meets_its_false_alarm_rate(rng):
    rates = []
    for r in range(15):
        A = rng.standard_normal((5, 5)) / 2 + np.eye(5)
        X, X_new = rng.standard_t(5, size=(300, 5)) @ A.T, rng.standard_t(5, size=(400, 5)) @ A.T
        rates.append(np.mean(LocalGaussianOOD(n_neighbors=30, search="numpy",
                                              random_state=r).fit(X).predict(X_new) == -1))
    assert 0.05 - 0.03 <= np.mean(rates) <= 0.05 + 0.02  # 15 x 400 draws: sd about 0.9%


def test_local_gaussian_sees_what_one_gaussian_cannot(rng):
    """A noisy ring of radius 5 and OOD points on a ring of radius 3.5 inside it: closer to
    the mean than the data, so one Gaussian calls them typical; each local Gaussian is a thin
    arc they lie 5 radial standard deviations off."""
    def ring(n, radius=5.0):
        t = rng.uniform(0, 2 * np.pi, n)
        return np.c_[np.cos(t), np.sin(t)] * radius + rng.normal(scale=0.3, size=(n, 2))

    X, X_in, X_out = ring(1500), ring(300), ring(300, 3.5)
    loc = LocalGaussianOOD(n_neighbors=50, random_state=0).fit(X)
    glob = MahalanobisOOD(random_state=0).fit(X)
    assert auroc(loc.score_samples(X_in), loc.score_samples(X_out)) > 0.99
    assert auroc(glob.score_samples(X_in), glob.score_samples(X_out)) < 0.2


# --------------------------------------------------------------------------------------
# persistence
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("params", [{}, {"metric": "cosine", "n_components": 3},
                                    {"calibration": None, "shrinkage": 0.2}])
def test_round_trip_is_bit_exact(rng, tmp_path, params):
    X = correlated_gaussian(rng, 200, 5)
    det = LocalGaussianOOD(n_neighbors=15, random_state=0, **params).fit(X)
    path = det.save(tmp_path / "local.npz")
    Xq = correlated_gaussian(rng, 30, 5) * 1.5
    for back in (infogauss.load(path), LocalGaussianOOD.load(path)):
        assert type(back) is LocalGaussianOOD and back.get_params() == det.get_params()
        for f in ("score_samples", "decision_function", "predict"):
            np.testing.assert_array_equal(getattr(back, f)(Xq), getattr(det, f)(Xq))
        if params.get("calibration", "split"):
            np.testing.assert_array_equal(back.pvalues(Xq), det.pvalues(Xq))


def test_crafted_files_are_refused(rng, tmp_path):
    from .test_persistence import _rewrite

    det = LocalGaussianOOD(n_neighbors=15, random_state=0).fit(correlated_gaussian(rng, 200, 5))
    path = det.save(tmp_path / "local.npz")
    cases = [
        (lambda m, a: a.__setitem__("reference_", a["reference_"][:10]), "n_neighbors=15 exceeds|match"),
        (lambda m, a: a.__setitem__("reference_", a["reference_"][:, :2]), "reference_"),
        (lambda m, a: m["params"].__setitem__("n_neighbors", 1), "invalid parameters"),
        (lambda m, a: m["attrs"].__setitem__("offset_", 1.0), "conformal threshold"),
        (lambda m, a: m["attrs"].__setitem__("extra_", 1), r"attributes \['extra_'\]"),
    ]
    for mutate, match in cases:
        bad = _rewrite(path, tmp_path / "bad.npz", mutate, rehash=True)
        with pytest.raises(ModelFileError, match=match):
            infogauss.load(bad)


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------
def test_bad_input(rng):
    X = rng.normal(size=(100, 4))
    with pytest.raises(ValueError, match=r"`n_neighbors` must be <= the number of reference rows, 80"):
        LocalGaussianOOD(n_neighbors=90).fit(X)  # 20 rows held out
    with pytest.raises(ValueError, match=r"`n_neighbors` must be <= the number of rows of X minus one, 99, "
                                         r"with calibration=None"):
        LocalGaussianOOD(n_neighbors=100, calibration=None).fit(X)  # no row has 100 others
    for k in (0, 1, 2):
        with pytest.raises(ValueError, match=rf"`n_neighbors` must be an integer >= 3, got {k}"):
            LocalGaussianOOD(n_neighbors=k).fit(X)
    with pytest.raises(TypeError, match="`n_neighbors`"):
        LocalGaussianOOD(n_neighbors=5.5).fit(X)
    with pytest.raises(ValueError, match="`n_components` must be <= n_neighbors - 1 = 9"):
        LocalGaussianOOD(n_neighbors=10, n_components=10).fit(X)
    with pytest.raises(ValueError, match="`n_components` must be <= the number of features"):
        LocalGaussianOOD(n_neighbors=10, n_components=5).fit(X)
    with pytest.raises(ValueError, match="singular"):
        LocalGaussianOOD(n_neighbors=4, shrinkage="empirical").fit(X)
    LocalGaussianOOD(n_neighbors=4, shrinkage="empirical", n_components=2).fit(X)  # fine
    with pytest.raises(ValueError, match="`shrinkage` must be one of"):
        LocalGaussianOOD(shrinkage="diagonal").fit(X)
    with pytest.raises(ValueError, match="`metric` must be one of"):
        LocalGaussianOOD(metric="manhattan").fit(X)
    with pytest.raises(ValueError, match="`search` must be one of"):
        LocalGaussianOOD(search="annoy").fit(X)
    with pytest.raises(ValueError, match="zero norm"):
        LocalGaussianOOD(n_neighbors=5, metric="cosine").fit(np.r_[X, np.zeros((1, 4))])
    with pytest.raises(ValueError, match="no variance"):
        LocalGaussianOOD(n_neighbors=5).fit(np.ones((50, 3)))
    det = LocalGaussianOOD(n_neighbors=10, random_state=0).fit(X)
    with pytest.raises(ValueError, match="NaN or infinity"):
        det.score_samples(np.r_[X[:3], np.full((1, 4), np.nan)])
    with pytest.raises(ValueError, match="4 features"):
        det.score_samples(X[:, :3])
    with pytest.raises(ValueError, match="zero norm"):
        LocalGaussianOOD(n_neighbors=5, metric="cosine").fit(X).score_samples(np.zeros((1, 4)))


def test_scales_whose_squares_overflow_or_underflow_are_named(rng):
    from infogauss import PrecisionWarning

    X = rng.normal(size=(100, 3))
    with pytest.raises(ValueError, match="`X` contains NaN or infinity.*too large to square"):
        LocalGaussianOOD(n_neighbors=10).fit(X * 1e200)
    with pytest.raises(ValueError, match="`X` varies on a scale too small to square"):
        LocalGaussianOOD(n_neighbors=10).fit(X * 1e-200)
    det = LocalGaussianOOD(n_neighbors=10, random_state=0).fit(X)
    with pytest.raises(ValueError, match="`X` contains NaN or infinity.*too large"):
        det.score_samples(X[:3] * 1e200)
    with pytest.warns(PrecisionWarning, match="times its spread"):
        LocalGaussianOOD(n_neighbors=10, random_state=0).fit(X + 1e12)


def test_duplicate_neighbourhoods_stay_finite(rng):
    X = np.r_[np.repeat(rng.normal(size=(1, 3)), 30, axis=0), rng.normal(size=(100, 3))]
    det = LocalGaussianOOD(n_neighbors=10, calibration=None).fit(X)
    s = det.score_samples(np.r_[X[:1], X[:1] + 1e-3])
    assert np.isfinite(s).all() and s[0] > s[1]


# --------------------------------------------------------------------------------------
# scikit-learn contract
# --------------------------------------------------------------------------------------
def _expected_failures(est) -> dict[str, str]:
    """The split default as MahalanobisOOD (tests/test_ood.py); cosine refuses zero rows."""
    out = {}
    if est.calibration is not None:
        why = ("contamination is the rate guaranteed on new data (split-conformal threshold), "
               "not the fraction of training rows flagged")
        out.update(check_outliers_train=why, check_outliers_fit_predict=why)
    else:
        why = ("calibration=None sets offset_ from leave-one-out scores (a row is not its own "
               "neighbour, as for new data; tested in test_uncalibrated_*): predict on the "
               "training rows, each among its own neighbours, flags fewer than contamination, "
               "and fit_predict labels the leave-one-out scores instead (as LOF does)")
        out.update(check_outliers_train=why, check_outliers_fit_predict=why)
    if est.metric == "cosine":
        out["check_estimators_dtypes"] = ("data cast to integers has all-zero rows, which have "
                                          "no direction: metric='cosine' refuses them")
    return out


@parametrize_with_checks(
    [
        LocalGaussianOOD(n_neighbors=5),
        LocalGaussianOOD(n_neighbors=5, calibration=None, search="numpy"),
        LocalGaussianOOD(n_neighbors=5, calibration=None, metric="cosine", n_components=1),
    ],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
