"""MahalanobisOOD against brute-force numpy references, conformal validity and bad input (the
OOD benchmark's end-to-end run is in test_bench_ood_cifar10)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.covariance import ledoit_wolf
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from infogauss import gaussian as core
from infogauss.metrics import auroc, empirical_fpr
from infogauss.ood import (
    MahalanobisOOD,
    conformal_pvalues,
    mahalanobis_sq_to_means,
    min_calibration_size,
)

from .conftest import correlated_gaussian

ALPHAS = (0.01, 0.05, 0.1)


def _mixture(rng, n, d=6, k=3, *, sep=3.0, means=None):
    """Gaussian mixture with a fixed (per dimension) within-class covariance."""
    means = rng.normal(scale=sep, size=(k, d)) if means is None else means
    d = means.shape[1]
    y = rng.integers(0, len(means), n)
    A = np.eye(d) + 0.3 * np.random.default_rng(d).standard_normal((d, d)) / np.sqrt(d)
    return means[y] + rng.standard_normal((n, d)) @ A.T, y, means


# --------------------------------------------------------------------------------------
# brute-force references (np.linalg.solve, sklearn's ledoit_wolf, explicit loops)
# --------------------------------------------------------------------------------------
def _m2(X, mu, cov):
    D = X - mu
    return np.einsum("ij,ij->i", D, np.linalg.solve(cov, D.T).T)


def _cov(R, shrinkage, centered=False):
    if shrinkage == "ledoit_wolf":
        return ledoit_wolf(R, assume_centered=centered)[0]
    Rc = R if centered else R - R.mean(0)
    return Rc.T @ Rc / len(R)


def _ref_class_m2(X, y, Xq, shrinkage):
    classes = np.unique(y)
    means = np.stack([X[y == c].mean(0) for c in classes])
    resid = X - means[np.searchsorted(classes, y)]
    cov = _cov(resid, shrinkage, centered=True)
    return np.stack([_m2(Xq, m, cov) for m in means], axis=1)


def _ref_global_m2(X, Xq, shrinkage):
    return _m2(Xq, X.mean(0), _cov(X, shrinkage))


@pytest.mark.parametrize("shrinkage", ["ledoit_wolf", "empirical"])
def test_methods_match_brute_force(rng, shrinkage):
    X, y, means = _mixture(rng, 400)
    Xq = np.r_[_mixture(rng, 50, means=means)[0], rng.normal(scale=6, size=(10, 6))]
    ref_g = _ref_global_m2(X, Xq, shrinkage)
    ref_c = _ref_class_m2(X, y, Xq, shrinkage)

    det = MahalanobisOOD(method="global", shrinkage=shrinkage, calibration=None).fit(X)
    np.testing.assert_allclose(det.score_samples(Xq), -ref_g, rtol=1e-9)

    det = MahalanobisOOD(method="class", shrinkage=shrinkage, calibration=None).fit(X, y)
    np.testing.assert_allclose(det.class_distances(Xq), ref_c, rtol=1e-9)
    np.testing.assert_allclose(det.score_samples(Xq), -ref_c.min(1), rtol=1e-9)

    det = MahalanobisOOD(method="relative", shrinkage=shrinkage, calibration=None).fit(X, y)
    np.testing.assert_allclose(det.mahalanobis(Xq), ref_c.min(1) - ref_g, rtol=1e-9, atol=1e-9)

    det = MahalanobisOOD(method="cluster", n_clusters=3, random_state=0, shrinkage=shrinkage,
                         calibration=None).fit(X)
    km = KMeans(n_clusters=3, n_init="auto", random_state=0).fit(X)
    np.testing.assert_array_equal(det.kmeans_.labels_, km.labels_)
    ref_k = _ref_class_m2(X, km.labels_, Xq, shrinkage)
    np.testing.assert_allclose(det.score_samples(Xq), -ref_k.min(1), rtol=1e-9)

    det = MahalanobisOOD(method="relative", n_clusters=3, random_state=0,
                         shrinkage=shrinkage, calibration=None).fit(X)  # no labels: clusters
    np.testing.assert_allclose(det.mahalanobis(Xq), ref_k.min(1) - ref_g, rtol=1e-9, atol=1e-9)


def _out_of_fold_moments(X, shrinkage, det, folds=5):
    """Brute force: the squared distance of every row under a Gaussian fitted without its fold."""
    from sklearn.utils import check_random_state

    n = X.shape[0]
    perm = check_random_state(det.random_state).permutation(n)
    m2 = np.empty(n)
    for fold in np.array_split(perm, folds):
        rest = np.setdiff1d(np.arange(n), fold)
        m2[fold] = _ref_global_m2(X[rest], X[fold], shrinkage)
    return m2.mean(), m2.std()


def test_typicality_uses_the_law_of_the_shrunk_fit(rng):
    """Shrinkage moves held-out distances far from the F law: the analytic centre would rank
    in-distribution points below inflated ones (AUROC < 0.5); the held-out centre does not."""
    d, n = 60, 150
    scales = np.geomspace(1.0, 30.0, d)
    X = rng.standard_normal((n, d)) * scales
    X_in = rng.standard_normal((500, d)) * scales
    X_out = rng.standard_normal((500, d)) * scales * 0.75  # too close to the mean
    det = MahalanobisOOD(statistic="typicality", calibration=None, random_state=0).fit(X)
    law_mean = float(core.distance_law(n, d, "f").mean())
    m2_in = det.mahalanobis(X_in)
    assert abs(np.mean(m2_in) - law_mean) > 3 * np.std(m2_in) / np.sqrt(500)  # the law is off
    assert abs(det.typicality_center_ - np.mean(m2_in)) < abs(law_mean - np.mean(m2_in))
    assert auroc(det.score_samples(X_in), det.score_samples(X_out)) > 0.6


def test_typicality_matches_closed_form(rng):
    X = correlated_gaussian(rng, 300, 5)
    Xq = correlated_gaussian(rng, 40, 5)
    n, d = 300, 5
    m2 = _ref_global_m2(X, Xq, "ledoit_wolf")
    # moments of ((n+1)d/(n-d)) F(d, n-d), written out
    c, v1, v2 = (n + 1) * d / (n - d), d, n - d
    mean = c * v2 / (v2 - 2)
    var = c**2 * 2 * v2**2 * (v1 + v2 - 2) / (v1 * (v2 - 2) ** 2 * (v2 - 4))
    law_f = core.distance_law(n, d, "f")  # the analytic law behind pvalues(method="f")
    assert (law_f.mean(), law_f.var()) == (pytest.approx(mean), pytest.approx(var))
    det = MahalanobisOOD(statistic="typicality", calibration=None, random_state=0).fit(X)
    # the score is centred and scaled by the held-out law of the distances (out-of-fold fits)
    c_ref, s_ref = _out_of_fold_moments(X, "ledoit_wolf", det)
    assert det.typicality_center_ == pytest.approx(c_ref, rel=1e-10)
    assert det.typicality_scale_ == pytest.approx(s_ref, rel=1e-10)
    np.testing.assert_allclose(det.score_samples(Xq), -np.abs(m2 - c_ref) / s_ref, rtol=1e-9)
    # two-sided analytic p-value: P(|M - E M| >= |m2 - E M|) under the law
    law = stats.f(d, n - d, scale=c)
    t = np.abs(m2 - mean)
    ref = law.sf(mean + t) + law.cdf(np.maximum(mean - t, 0.0))
    np.testing.assert_allclose(det.pvalues(Xq, method="f"), ref, rtol=1e-7, atol=1e-12)
    # the mode is atypical in high dimension: the mean point scores below a typical point
    Xh = rng.standard_normal((2000, 100))
    det = MahalanobisOOD(statistic="typicality").fit(Xh)
    s = det.score_samples(np.r_[Xh.mean(0, keepdims=True), rng.standard_normal((1, 100))])
    assert s[0] < s[1]


def test_analytic_pvalues_match_scipy(rng):
    X = correlated_gaussian(rng, 200, 4)
    Xq = correlated_gaussian(rng, 30, 4)
    det = MahalanobisOOD(shrinkage="empirical", calibration=None).fit(X)
    m2 = _ref_global_m2(X, Xq, "empirical")
    n, d = 200, 4
    np.testing.assert_allclose(
        det.pvalues(Xq, method="f"), stats.f.sf(m2 * (n - d) / ((n + 1) * d), d, n - d), rtol=1e-8
    )
    np.testing.assert_allclose(det.pvalues(Xq, method="chi2"), stats.chi2.sf(m2, d), rtol=1e-8)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_many_means_function(rng, dtype):
    means = rng.normal(size=(4, 7)) + 50.0
    A = rng.standard_normal((7, 7))
    cov = A @ A.T + 7 * np.eye(7)
    X = (rng.normal(size=(300, 7)) + 50.0).astype(dtype)
    got = mahalanobis_sq_to_means(X, means, np.linalg.cholesky(cov), chunk_size=64)
    ref = np.stack([_m2(X.astype(np.float64), m, cov) for m in means], axis=1)
    np.testing.assert_allclose(got, ref, rtol=1e-9 if dtype == np.float64 else 2e-4)
    # one mean: the core's single-mean function
    L = np.linalg.cholesky(cov)
    np.testing.assert_allclose(
        mahalanobis_sq_to_means(X, means[:1], L)[:, 0], core.mahalanobis_sq(X, means[0], L),
        rtol=1e-5,
    )


@pytest.mark.parametrize(
    "params", [{"method": "global"}, {"method": "class"}, {"method": "cluster", "n_clusters": 3},
               {"method": "relative"}, {"statistic": "typicality", "method": "class"}],
)
def test_batch_equals_row_by_row(rng, params):
    X, y, means = _mixture(rng, 300)
    det = MahalanobisOOD(random_state=0, **params).fit(X, y)
    Xq = _mixture(rng, 9, means=means)[0]
    det.calibrate(_mixture(rng, 40, means=means)[0])
    for f in (det.score_samples, det.decision_function, det.pvalues, det.mahalanobis):
        batch = f(Xq)
        rows = np.array([f(Xq[i : i + 1])[0] for i in range(len(Xq))])
        np.testing.assert_allclose(batch, rows, rtol=1e-12, atol=1e-12)
    perm = rng.permutation(len(Xq))
    np.testing.assert_allclose(det.score_samples(Xq[perm]), det.score_samples(Xq)[perm], rtol=1e-12)


# --------------------------------------------------------------------------------------
# conformal calibration
# --------------------------------------------------------------------------------------
def test_conformal_pvalues_formula(rng):
    cal = np.round(rng.normal(size=40), 1)  # ties
    s = np.r_[np.round(rng.normal(size=30), 1), cal[:5]]
    ref = [(1 + np.sum(-cal >= -v)) / (len(cal) + 1) for v in s]
    np.testing.assert_allclose(conformal_pvalues(cal, s), ref)


def test_min_calibration_size():
    for a in (0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.001, 0.07):
        n = min_calibration_size(a)
        assert n == max(math.ceil(1 / a) - 1, 1)
        assert 1 / (n + 1) <= a < 1 / n


@pytest.mark.parametrize("method", ["global", "class", "cluster", "relative"])
def test_conformal_fpr_within_binomial_interval(method):
    """Repeated random splits of fresh in-distribution draws (non-Gaussian: Student t).

    Calibration sets are large (5,000) relative to the evaluation sets (500), so the
    per-split FPR is close to Binomial(500, alpha); the pooled FPR over 20 splits is checked
    against the binomial interval of 10,000 draws at alpha.
    """
    rng = np.random.default_rng(7)
    d, means = 5, rng.normal(scale=4.0, size=(3, 5))

    def draw(n):
        y = rng.integers(0, 3, n)
        return means[y] + rng.standard_t(4, size=(n, d)), y

    X, y = draw(600)
    det = MahalanobisOOD(method=method, n_clusters=3, random_state=0).fit(X, y)
    flags = {a: [] for a in ALPHAS}
    for _ in range(20):
        Xc, _ = draw(5000)
        Xe, _ = draw(500)
        det.calibrate(Xc)
        p = det.pvalues(Xe)
        for a in ALPHAS:
            f = det.predict(Xe, alpha=a) == -1
            np.testing.assert_array_equal(f, p <= a)
            assert empirical_fpr(f, a, confidence=0.999)["within_interval"]
            flags[a].append(f)
    for a in ALPHAS:
        r = empirical_fpr(np.concatenate(flags[a]), a, confidence=0.99)
        assert r["within_interval"], r


def test_calibrate_sets_offset_to_conformal_threshold(rng):
    X, _, means = _mixture(rng, 300)
    det = MahalanobisOOD(contamination=0.1, calibration=None).fit(X)
    s_train = det.score_samples(X)
    assert np.mean(s_train < det.offset_) == pytest.approx(0.1, abs=0.01)
    Xc, Xe = _mixture(rng, 200, means=means)[0], _mixture(rng, 300, means=means)[0]
    det.calibrate(Xc)
    assert det.n_calibration_ == 200
    np.testing.assert_array_equal(det.predict(Xe) == -1, det.pvalues(Xe) <= 0.1)
    np.testing.assert_array_equal(det.predict(Xe), det.predict(Xe, alpha=0.1))
    np.testing.assert_allclose(det.decision_function(Xe), det.score_samples(Xe) - det.offset_)
    # refitting forgets the calibration
    det.fit(X)
    with pytest.raises(NotFittedError, match="calibrate"):
        det.pvalues(Xe)


def test_default_fit_is_calibrated_on_a_held_out_split(rng):
    X, y, means = _mixture(rng, 600)
    det = MahalanobisOOD(random_state=0).fit(X)
    assert det.n_calibration_ == 120 and det.n_samples_seen_ == 480
    # offset_ is the conformal threshold of the held-out scores
    from infogauss.calibration import conformal_threshold

    assert det.offset_ == conformal_threshold(det.calibration_scores_, 0.05)
    Xe = _mixture(rng, 400, means=means)[0]
    np.testing.assert_array_equal(det.predict(Xe) == -1, det.pvalues(Xe) <= 0.05)
    # the same seed gives the same split; class labels stratify it (every class keeps rows)
    again = MahalanobisOOD(random_state=0).fit(X)
    np.testing.assert_array_equal(again.calibration_scores_, det.calibration_scores_)
    cls = MahalanobisOOD(method="class", random_state=0, calibration_size=50).fit(X, y)
    assert cls.n_calibration_ == 50 and len(cls.classes_) == len(np.unique(y))
    # the held-out share is raised to what the level needs
    assert MahalanobisOOD(contamination=0.01, random_state=0).fit(X).n_calibration_ == 120
    assert MahalanobisOOD(contamination=0.005, random_state=0).fit(X).n_calibration_ == 199


def test_default_fit_predict_meets_its_false_alarm_rate(rng):
    """fit(X).predict(X_new) without calibrate(): new in-distribution data flagged at <= 5%,
    where the training quantile (calibration=None) flags far more when n is small vs d."""
    d, reps, rates, naive = 40, 40, [], []
    for r in range(reps):
        A = rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
        X = rng.standard_t(5, size=(150, d)) @ A.T
        X_new = rng.standard_t(5, size=(400, d)) @ A.T
        rates.append(np.mean(MahalanobisOOD(random_state=r).fit(X).predict(X_new) == -1))
        naive.append(np.mean(MahalanobisOOD(calibration=None).fit(X).predict(X_new) == -1))
    # split-conformal: E[FPR] <= alpha exactly; 40 x 400 draws, sd of the mean about 0.6%
    assert np.mean(rates) <= 0.05 + 0.015
    assert np.mean(rates) >= 0.05 - 0.025  # and not uselessly conservative
    assert np.mean(naive) > 0.10


def test_too_few_rows_to_split_warns_and_says_so(rng):
    X = rng.standard_normal((30, 3))
    with pytest.warns(UserWarning, match="WITHOUT the false-alarm guarantee"):
        det = MahalanobisOOD().fit(X)
    assert not hasattr(det, "calibration_scores_") and det.n_samples_seen_ == 30


@pytest.mark.parametrize("size, exc, match", [
    (0.0, ValueError, "calibration_size"), (1.0, ValueError, "calibration_size"),
    (0, ValueError, "calibration_size"), ("20%", TypeError, "calibration_size"),
    (True, TypeError, "calibration_size")])
def test_bad_calibration_parameters(rng, size, exc, match):
    X = rng.standard_normal((100, 3))
    with pytest.raises(exc, match=match):
        MahalanobisOOD(calibration_size=size).fit(X)
    with pytest.raises(ValueError, match="`calibration` must be one of"):
        MahalanobisOOD(calibration="cross").fit(X)


def test_ood_is_detected(rng):
    X, y, means = _mixture(rng, 1000, d=8)
    Xin = _mixture(rng, 300, means=means)[0]
    Xout = _mixture(rng, 300, means=means + 2.5)[0]
    for params in ({"method": "global"}, {"method": "class"}, {"method": "relative"},
                   {"method": "cluster", "n_clusters": 3}):
        det = MahalanobisOOD(random_state=0, **params).fit(X, y)
        # the relative distance trades far-OOD power (a global shift) for near-OOD power
        floor = 0.75 if params["method"] == "relative" else 0.95
        assert auroc(det.score_samples(Xin), det.score_samples(Xout)) > floor, params


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------
def test_bad_input(rng):
    X, y, _ = _mixture(rng, 100)
    det = MahalanobisOOD().fit(X)
    with pytest.raises(ValueError, match=r"ceil\(1/alpha\) - 1 = 19 calibration points, got 10"):
        det.calibrate(X[:10])  # contamination=0.05
    det.calibrate(X[:30])
    with pytest.raises(ValueError, match=r"ceil\(1/alpha\) - 1 = 99 .* got 30"):
        det.predict(X, alpha=0.01)
    for bad in (0.0, 1.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="`alpha` must lie in"):
            det.predict(X, alpha=bad)
    with pytest.raises(TypeError, match="`alpha`"):
        det.predict(X, alpha="0.05")
    with pytest.raises(ValueError, match="6 features"):
        det.score_samples(X[:, :4])
    with pytest.raises(ValueError, match="6 features"):
        det.calibrate(X[:, :4])
    with pytest.raises(ValueError, match="`method` must be one of"):
        det.pvalues(X, method="beta")

    fresh = MahalanobisOOD()
    for f in (fresh.score_samples, fresh.decision_function, fresh.predict, fresh.pvalues,
              fresh.calibrate):
        with pytest.raises(NotFittedError):
            f(X)
    fitted = MahalanobisOOD(calibration=None).fit(X)
    with pytest.raises(NotFittedError, match="not calibrated yet"):
        fitted.pvalues(X)
    with pytest.raises(NotFittedError, match="not calibrated yet"):
        fitted.predict(X, alpha=0.1)
    assert fitted.pvalues(X, method="chi2").shape == (100,)  # analytic needs no calibration

    with pytest.raises(ValueError, match="empty class"):
        MahalanobisOOD(method="class").fit(X, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="not in `classes`"):
        MahalanobisOOD(method="class").fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="needs class labels"):
        MahalanobisOOD(method="class").fit(X)
    with pytest.raises(ValueError, match="one label per row"):
        MahalanobisOOD(method="class").fit(X, y[:-1])
    with pytest.raises(ValueError, match="NaN"):
        MahalanobisOOD(method="class").fit(X, np.r_[np.nan, y[1:].astype(float)])
    with pytest.raises(ValueError, match=r"`n_clusters` must be <= n_samples \(100\), got 101"):
        MahalanobisOOD(method="cluster", n_clusters=101).fit(X)
    with pytest.raises(ValueError, match="`method` must be one of"):
        MahalanobisOOD(method="knn").fit(X)
    with pytest.raises(ValueError, match="`statistic` must be one of"):
        MahalanobisOOD(statistic="density").fit(X)
    with pytest.raises(ValueError, match="typicality"):
        MahalanobisOOD(method="relative", statistic="typicality").fit(X, y)
    with pytest.raises(ValueError, match="contamination"):
        MahalanobisOOD(contamination=0.7).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        MahalanobisOOD().fit(np.r_[X, np.full((1, 6), np.nan)])
    rel = MahalanobisOOD(method="relative").fit(X, y).calibrate(X[:50])
    with pytest.raises(ValueError, match="no analytic p-values"):
        rel.pvalues(X, method="f")
    assert rel.pvalues(X).shape == (100,)


def test_clone_and_fit_predict(rng):
    X, y, _ = _mixture(rng, 200)
    det = MahalanobisOOD(method="class", contamination=0.1, calibration=None)
    pred = clone(det).fit_predict(X, y)
    assert set(np.unique(pred)) <= {-1, 1}
    assert np.mean(pred == -1) == pytest.approx(0.1, abs=0.02)


def _expected_failures(estimator) -> dict[str, str]:
    """With the default calibration="split", ``contamination`` is the false-alarm rate
    guaranteed on *new* data (a held-out split sets the threshold), not scikit-learn's share
    of *training* rows flagged; ``calibration=None`` keeps scikit-learn's convention and passes
    every check."""
    if estimator.calibration is None:
        return {}
    why = ("contamination is the rate guaranteed on new data (split-conformal threshold), "
           "not the fraction of training rows flagged")
    return {"check_outliers_train": why, "check_outliers_fit_predict": why}


@parametrize_with_checks(
    [
        MahalanobisOOD(),
        MahalanobisOOD(calibration=None),
        MahalanobisOOD(method="cluster", n_clusters=2, random_state=0),
        MahalanobisOOD(method="relative", n_clusters=2, random_state=0, calibration=None),
        MahalanobisOOD(statistic="typicality"),
        MahalanobisOOD(statistic="typicality", calibration=None, random_state=0),
    ],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_roc_plot(rng):
    pytest.importorskip("matplotlib")
    from infogauss.plotting._mpl import plt
    from infogauss.plotting.ood import plot_ood_roc

    s_in, s_out = rng.normal(1, 1, 50), rng.normal(0, 1, 40)
    ax = plot_ood_roc({"a": (s_in, s_out), "b": (s_in, -s_out)}, title="t", log_fpr=True)
    assert len(ax.get_lines()) >= 2 and "AUROC" in ax.get_legend().get_texts()[0].get_text()
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="non-empty mapping"):
        plot_ood_roc({})
    with pytest.raises(ValueError, match="must be a pair"):
        plot_ood_roc({"a": s_in})


def test_gaussianize_inside_the_detector(rng, tmp_path):
    """gaussianize= fits a Gaussianizer on the fitting rows only and scores through it."""
    import infogauss
    from infogauss import Gaussianizer

    W = rng.standard_normal((12, 12))
    X = np.maximum(0.0, rng.standard_normal((1500, 12)) @ W)  # post-ReLU features
    X_new = np.maximum(0.0, rng.standard_normal((600, 12)) @ W)
    det = MahalanobisOOD(random_state=0, gaussianize="quantile").fit(X)
    assert det.gaussianizer_.n_features_in_ == 12 and det.n_samples_seen_ == 1200
    # scores are the Gaussian's on the Gaussianized features
    Z = det.gaussianizer_.transform(X_new)
    np.testing.assert_allclose(det.score_samples(X_new), -det.model_.mahalanobis(Z), rtol=1e-12)
    # without a split, the map equals a Gaussianizer fitted on all of X by hand
    full = MahalanobisOOD(calibration=None, gaussianize=Gaussianizer(method="quantile")).fit(X)
    np.testing.assert_array_equal(full.gaussianizer_.transform(X_new),
                                  Gaussianizer(method="quantile").fit(X).transform(X_new))
    # calibrated on Gaussianized held-out rows: new data flagged near contamination
    assert abs(np.mean(det.predict(X_new) == -1) - 0.05) < 0.04
    back = infogauss.load(det.save(tmp_path / "g.npz"))
    np.testing.assert_array_equal(back.pvalues(X_new), det.pvalues(X_new))
    with pytest.raises(TypeError, match="`gaussianize` must be None, a Gaussianizer method"):
        MahalanobisOOD(gaussianize=3).fit(X)


@parametrize_with_checks([MahalanobisOOD(gaussianize="auto", calibration=None, random_state=0)])
def test_sklearn_compatible_with_gaussianize(estimator, check):
    check(estimator)
