"""GaussianMixtureOOD against scikit-learn's GaussianMixture (parameters set by hand), scipy's
multivariate_normal and k-means + ledoit_wolf by hand; calibration, persistence, bad input,
estimator checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.linalg import solve_triangular
from scipy.special import logsumexp
from sklearn.cluster import KMeans
from sklearn.covariance import ledoit_wolf
from sklearn.mixture import GaussianMixture
from sklearn.utils.estimator_checks import parametrize_with_checks

import infogauss
from infogauss.metrics import auroc
from infogauss.ood import GaussianMixtureOOD, MahalanobisOOD
from infogauss.persistence import ModelFileError

from .conftest import assert_batch_close


def _blobs(rng, n, d=4, k=3, means=None):
    means = rng.normal(scale=6.0, size=(k, d)) if means is None else means
    y = rng.integers(0, len(means), n)
    scales = 0.5 + np.arange(len(means))[:, None] * 0.5  # a different spread per blob
    return means[y] + rng.standard_normal((n, means.shape[1])) * scales[y], means


def _sklearn_mixture(det):
    """sklearn's GaussianMixture carrying our parameters (its own log-density code)."""
    tied = det.tied
    gm = GaussianMixture(n_components=det.n_components, covariance_type="tied" if tied else "full")
    gm.weights_, gm.means_, gm.covariances_ = det.weights_, det.means_, det.covariances_
    d = det.means_.shape[1]
    covs = [det.covariances_] if tied else det.covariances_
    prec = [solve_triangular(np.linalg.cholesky(C), np.eye(d), lower=True).T for C in covs]
    gm.precisions_cholesky_ = prec[0] if tied else np.stack(prec)
    return gm


@pytest.mark.parametrize("tied", [False, True])
def test_matches_kmeans_ledoit_wolf_and_sklearn_mixture(rng, tied):
    X, means = _blobs(rng, 900)
    Xq = np.r_[_blobs(rng, 40, means=means)[0], rng.normal(scale=8, size=(10, 4))]
    det = GaussianMixtureOOD(n_components=3, tied=tied, calibration=None, random_state=0).fit(X)
    # the components by hand: k-means, then scikit-learn's Ledoit-Wolf per cluster (or pooled)
    km = KMeans(n_clusters=3, n_init="auto", random_state=0).fit(X)
    lab = km.labels_
    np.testing.assert_array_equal(det.kmeans_.labels_, lab)
    ref_means = np.stack([X[lab == j].mean(0) for j in range(3)])
    np.testing.assert_allclose(det.means_, ref_means, rtol=1e-12)
    np.testing.assert_allclose(det.weights_, np.bincount(lab) / len(X))
    if tied:
        resid = X - ref_means[lab]
        np.testing.assert_allclose(det.covariances_, ledoit_wolf(resid, assume_centered=True)[0],
                                   rtol=1e-10)  # fmt: skip
    else:
        for j in range(3):
            np.testing.assert_allclose(det.covariances_[j], ledoit_wolf(X[lab == j])[0], rtol=1e-10)
    # the density: sklearn's mixture and scipy's multivariate normal give the same numbers
    gm = _sklearn_mixture(det)
    np.testing.assert_allclose(det.score_samples(Xq), gm.score_samples(Xq), rtol=1e-10)
    covs = [det.covariances_] * 3 if tied else det.covariances_
    comp = np.column_stack([np.log(det.weights_[j]) + stats.multivariate_normal(
        det.means_[j], covs[j]).logpdf(Xq) for j in range(3)])  # fmt: skip
    np.testing.assert_allclose(det.component_log_density(Xq), comp, rtol=1e-10)
    np.testing.assert_allclose(det.score_samples(Xq), logsumexp(comp, axis=1), rtol=1e-10)
    mx = GaussianMixtureOOD(n_components=3, tied=tied, aggregate="max", calibration=None,
                            random_state=0).fit(X)  # fmt: skip
    np.testing.assert_allclose(mx.score_samples(Xq), comp.max(axis=1), rtol=1e-10)


@pytest.mark.parametrize("shrinkage", ["oas", "empirical", 0.25, "diagonal"])
def test_other_shrinkages_match_the_core(rng, shrinkage):
    from infogauss import gaussian as core

    X, _ = _blobs(rng, 600)
    det = GaussianMixtureOOD(n_components=3, shrinkage=shrinkage, calibration=None,
                             random_state=0).fit(X)  # fmt: skip
    lab = det.kmeans_.labels_
    for j in range(3):
        ref, s = core.covariance_from_stats(core.stats_from_array(X[lab == j]), shrinkage)
        np.testing.assert_array_equal(det.covariances_[j], ref)
        assert np.isnan(det.shrinkage_[j]) if s is None else det.shrinkage_[j] == s
    gm = _sklearn_mixture(det)
    np.testing.assert_allclose(det.score_samples(X[:50]), gm.score_samples(X[:50]), rtol=1e-10)


def test_batch_equals_row_by_row(rng):
    X, means = _blobs(rng, 600)
    for tied in (False, True):
        det = GaussianMixtureOOD(n_components=3, tied=tied, random_state=0).fit(X)
        Xq = _blobs(rng, 10, means=means)[0]
        for f in (det.score_samples, det.decision_function, det.pvalues):
            rows = np.array([f(Xq[i : i + 1])[0] for i in range(len(Xq))])
            assert_batch_close(rows, f(Xq), np.float64)
        assert_batch_close(det.score_samples(Xq.astype(np.float32)), det.score_samples(
            Xq.astype(np.float32)[::-1])[::-1], np.float64)  # fmt: skip


def test_default_fit_predict_meets_its_false_alarm_rate(rng):
    rates = []
    for r in range(15):
        means = rng.normal(scale=5, size=(3, 4))
        X = means[rng.integers(0, 3, 400)] + rng.standard_t(5, size=(400, 4))
        X_new = means[rng.integers(0, 3, 400)] + rng.standard_t(5, size=(400, 4))
        det = GaussianMixtureOOD(n_components=3, random_state=r).fit(X)
        rates.append(np.mean(det.predict(X_new) == -1))
    assert 0.05 - 0.025 <= np.mean(rates) <= 0.05 + 0.015  # 15 x 400 draws, sd about 0.7%


def test_mixture_beats_one_gaussian_between_the_modes(rng):
    X, means = _blobs(rng, 1500, k=2)
    X_in = _blobs(rng, 300, means=means)[0]
    X_out = means.mean(0) + rng.standard_normal((300, 4))  # between the two blobs
    mix = GaussianMixtureOOD(n_components=2, random_state=0).fit(X)
    one = MahalanobisOOD(random_state=0).fit(X)
    assert auroc(mix.score_samples(X_in), mix.score_samples(X_out)) > 0.99
    assert auroc(one.score_samples(X_in), one.score_samples(X_out)) < 0.65  # near chance


@pytest.mark.parametrize("tied", [False, True])
def test_round_trip_is_bit_exact(rng, tmp_path, tied):
    X, means = _blobs(rng, 500)
    det = GaussianMixtureOOD(n_components=3, tied=tied, random_state=0).fit(X)
    path = det.save(tmp_path / "mix.npz")
    Xq = _blobs(rng, 30, means=means)[0] * 1.2
    for back in (infogauss.load(path), GaussianMixtureOOD.load(path)):
        assert type(back) is GaussianMixtureOOD and not hasattr(back, "kmeans_")
        for f in ("score_samples", "decision_function", "predict", "pvalues"):
            np.testing.assert_array_equal(getattr(back, f)(Xq), getattr(det, f)(Xq))


def test_crafted_files_are_refused(rng, tmp_path):
    from .test_persistence import _rewrite

    det = GaussianMixtureOOD(n_components=3, random_state=0).fit(_blobs(rng, 500)[0])
    path = det.save(tmp_path / "mix.npz")
    cases = [
        (lambda m, a: a.__setitem__("cholesky_", a["cholesky_"] * 1.01), "not the Cholesky factor"),
        (lambda m, a: a.__setitem__("weights_", a["weights_"] * 2), "sum to 1"),
        (lambda m, a: a.__setitem__("means_", a["means_"][:2]), "means_"),
        (lambda m, a: m["params"].__setitem__("n_components", 2), "n_components_"),
        (lambda m, a: m["params"].__setitem__("aggregate", "mean"), "invalid parameters"),
        (lambda m, a: m["params"].__setitem__("n_components", "auto"), "n_components_grid_"),
        (lambda m, a: a.pop("calibration_scores_"), "calibration_scores_"),
    ]
    for mutate, match in cases:
        with pytest.raises(ModelFileError, match=match):
            infogauss.load(_rewrite(path, tmp_path / "bad.npz", mutate, rehash=True))


# ------------------------------------------------------------------ restarts and "auto"
def test_untied_restarts_average_the_runs_densities(rng):
    X, means = _blobs(rng, 900)
    Xq = np.r_[_blobs(rng, 40, means=means)[0], rng.normal(scale=8, size=(10, 4))]
    det = GaussianMixtureOOD(n_components=3, n_restarts=4, calibration=None, random_state=7).fit(X)
    seeds = np.random.RandomState(7).randint(np.iinfo(np.int32).max, size=4)
    runs = [GaussianMixtureOOD(n_components=3, calibration=None, random_state=int(s)).fit(X)
            for s in seeds]  # fmt: skip
    ref = logsumexp(np.stack([r.score_samples(Xq) for r in runs]), axis=0) - np.log(4)
    np.testing.assert_allclose(det.score_samples(Xq), ref, rtol=1e-12)
    assert det.means_.shape == (12, 4) and det.covariances_.shape == (12, 4, 4)
    np.testing.assert_allclose(det.weights_.sum(), 1.0, rtol=1e-14)
    gm = _sklearn_mixture(det)  # the stacked mixture through scikit-learn's own density code
    gm.n_components = 12
    np.testing.assert_allclose(det.score_samples(Xq), gm.score_samples(Xq), rtol=1e-10)


def test_tied_restarts_share_the_runs_average_within_cluster_covariance(rng):
    X, means = _blobs(rng, 900)
    det = GaussianMixtureOOD(n_components=3, n_restarts=3, tied=True, shrinkage="empirical",
                             calibration=None, random_state=1).fit(X)  # fmt: skip
    seeds = np.random.RandomState(1).randint(np.iinfo(np.int32).max, size=3)
    resid = []
    for s in seeds:  # by hand: each run's k-means residuals about their own cluster means
        lab = KMeans(n_clusters=3, n_init="auto", random_state=int(s)).fit(X).labels_
        resid.append(X - np.stack([X[lab == j].mean(0) for j in range(3)])[lab])
    ref = np.mean([r.T @ r / len(X) for r in resid], axis=0)
    np.testing.assert_allclose(det.covariances_, ref, rtol=1e-10)
    gm = _sklearn_mixture(det)
    gm.n_components = 9
    np.testing.assert_allclose(det.score_samples(X[:50]), gm.score_samples(X[:50]), rtol=1e-10)


@pytest.mark.parametrize("tied", [False, True])
def test_auto_finds_the_number_of_well_separated_blobs(rng, tied):
    means = rng.normal(scale=12.0, size=(4, 3))
    if tied:  # one shared covariance: blobs of one spread (else more components fit better)
        X = means[rng.integers(0, 4, 2400)] + rng.standard_normal((2400, 3))
    else:
        X = _blobs(rng, 2400, d=3, means=means)[0]
    det = GaussianMixtureOOD(n_components="auto", tied=tied, calibration=None, random_state=0).fit(X)
    assert det.n_components_ == 4
    assert det.n_components_grid_[: 4].tolist() == [1, 2, 4, 8]
    assert int(det.n_components_grid_[np.argmax(det.n_components_loglik_)]) == 4
    # the refit on all rows is the int fit of the chosen count (same k-means seed)
    ref = GaussianMixtureOOD(n_components=4, tied=tied, calibration=None, random_state=0).fit(X)
    np.testing.assert_array_equal(det.means_, ref.means_)
    np.testing.assert_array_equal(det.score_samples(X[:20]), ref.score_samples(X[:20]))


def test_auto_keeps_one_component_for_one_gaussian(rng):
    X = rng.standard_normal((3000, 5)) @ rng.normal(size=(5, 5))
    det = GaussianMixtureOOD(n_components="auto", tied=True, calibration=None, random_state=0).fit(X)
    assert det.n_components_ <= 2
    assert np.all(np.isfinite(det.n_components_loglik_))


def test_auto_ignores_constant_columns_and_falls_back_to_one_component(rng):
    X = rng.standard_normal((400, 3))
    with_dead = np.c_[X, np.ones(400)]  # a dead unit: its shrunk variance falls with the count
    det = GaussianMixtureOOD(n_components="auto", tied=True, calibration=None, random_state=0)
    assert det.fit(with_dead).n_components_ == det.fit(X).n_components_ <= 2
    tiny = GaussianMixtureOOD(n_components="auto", tied=True, calibration=None).fit(X[:3])
    assert tiny.n_components_ == 1 and np.isfinite(tiny.score_samples(X[:5])).all()


def test_auto_steps_down_when_the_refit_leaves_a_component_too_small(rng, monkeypatch):
    import infogauss.ood._mixture as M

    real = M._fit_components
    X = _blobs(rng, 600)[0]
    chosen = GaussianMixtureOOD(n_components="auto", calibration=None, random_state=0).fit(X)
    K = chosen.n_components_
    assert K >= 2

    def refit_fails(X_, k, *a):  # the selection (480 rows) fits K; the refit on all rows not
        if k == K and X_.shape[0] == 600:
            raise ValueError("k-means component 0 holds 2 row(s)")
        return real(X_, k, *a)

    monkeypatch.setattr(M, "_fit_components", refit_fails)
    det = GaussianMixtureOOD(n_components="auto", calibration=None, random_state=0).fit(X)
    np.testing.assert_array_equal(det.n_components_grid_, chosen.n_components_grid_)
    assert det.n_components_ == K // 2 and det.means_.shape == (K // 2, 4)
    with pytest.raises(ValueError, match="holds 2 row"):
        GaussianMixtureOOD(n_components=K, calibration=None, random_state=0).fit(X)


def test_auto_with_restarts_round_trips_bit_exact(rng, tmp_path):
    X, means = _blobs(rng, 800)
    det = GaussianMixtureOOD(n_components="auto", n_restarts=3, tied=True, random_state=0).fit(X)
    back = infogauss.load(det.save(tmp_path / "auto.npz"))
    assert back.n_components_ == det.n_components_
    np.testing.assert_array_equal(back.n_components_grid_, det.n_components_grid_)
    Xq = _blobs(rng, 30, means=means)[0] * 1.2
    for f in ("score_samples", "decision_function", "pvalues"):
        np.testing.assert_array_equal(getattr(back, f)(Xq), getattr(det, f)(Xq))


def test_bad_input(rng):
    X, _ = _blobs(rng, 200)
    with pytest.raises(ValueError, match=r"`n_components` must be <= n_samples \(200\), got 201"):
        GaussianMixtureOOD(n_components=201, calibration=None).fit(X)
    with pytest.raises(ValueError, match="`n_components` must be an integer >= 1, got 0"):
        GaussianMixtureOOD(n_components=0).fit(X)
    with pytest.raises(ValueError, match="distinct component"):
        GaussianMixtureOOD(n_components=4, calibration=None).fit(np.repeat(X[:3], 20, axis=0))
    outlier = np.r_[X, np.full((1, 4), 1e3)]  # k-means gives it a component of its own
    with pytest.raises(ValueError, match="holds 1 row.*tied=True"):
        GaussianMixtureOOD(n_components=4, calibration=None, random_state=0).fit(outlier)
    GaussianMixtureOOD(n_components=4, tied=True, calibration=None, random_state=0).fit(outlier)
    with pytest.raises(ValueError, match="`n_components` must be a positive int or 'auto'"):
        GaussianMixtureOOD(n_components="many").fit(X)
    with pytest.raises(ValueError, match="`n_restarts` must be an integer >= 1, got 0"):
        GaussianMixtureOOD(n_restarts=0).fit(X)
    with pytest.raises(ValueError, match="`aggregate` must be one of"):
        GaussianMixtureOOD(aggregate="mean").fit(X)
    with pytest.raises(TypeError, match="`tied`"):
        GaussianMixtureOOD(tied="yes").fit(X)
    with pytest.raises(ValueError, match="`shrinkage`"):
        GaussianMixtureOOD(shrinkage="graphical").fit(X)
    with pytest.raises(ValueError, match="`X` contains NaN or infinity.*too large to square"):
        GaussianMixtureOOD(n_components=2).fit(X * 1e200)
    with pytest.raises(ValueError, match="`X` varies on a scale too small to square"):
        GaussianMixtureOOD(n_components=2).fit(X * 1e-200)
    from infogauss import PrecisionWarning

    with pytest.warns(PrecisionWarning, match="times its spread"):
        GaussianMixtureOOD(n_components=2, random_state=0).fit(X + 1e12)
    det = GaussianMixtureOOD(n_components=3, random_state=0).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        det.score_samples(np.r_[X[:2], np.full((1, 4), np.nan)])
    with pytest.raises(ValueError, match="4 features"):
        det.score_samples(X[:, :3])


def _expected_failures(est) -> dict[str, str]:
    """The split default as MahalanobisOOD (see tests/test_ood.py)."""
    if est.calibration is None:
        return {}
    why = ("contamination is the rate guaranteed on new data (split-conformal threshold), "
           "not the fraction of training rows flagged")
    return {"check_outliers_train": why, "check_outliers_fit_predict": why}


# untied components need 3 rows each: the checks' 10-row data sets get one untied component
@parametrize_with_checks(
    [
        GaussianMixtureOOD(n_components=1, random_state=0),
        GaussianMixtureOOD(n_components=2, tied=True, calibration=None, random_state=0),
        GaussianMixtureOOD(n_components=2, tied=True, aggregate="max", random_state=0),
        GaussianMixtureOOD(n_components="auto", n_restarts=2, tied=True, random_state=0),
    ],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
