"""KernelDensityOOD against scipy's gaussian_kde and scikit-learn's KernelDensity; the
leave-one-out bandwidth against a brute-force search; calibration, persistence, bad input,
estimator checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp
from sklearn.covariance import ledoit_wolf
from sklearn.neighbors import KernelDensity
from sklearn.utils.estimator_checks import parametrize_with_checks

import infogauss
from infogauss.metrics import auroc
from infogauss.ood import KernelDensityOOD, MahalanobisOOD, kernel_log_density, loo_bandwidth
from infogauss.persistence import ModelFileError

from .conftest import assert_batch_close


def _ring(rng, n, noise=0.05, d_extra=0):
    theta = rng.uniform(0, 2 * np.pi, n)
    X = np.c_[np.cos(theta), np.sin(theta)] + noise * rng.standard_normal((n, 2))
    if d_extra:
        X = np.c_[X, 0.1 * rng.standard_normal((n, d_extra))]
    return X


def test_matches_scipy_gaussian_kde(rng):
    """shrinkage='empirical': h²·S/n kernels are gaussian_kde's f²·S/(n-1) with
    f = h·sqrt((n-1)/n)."""
    X = rng.standard_normal((300, 3)) @ np.array([[1.0, 0.3, 0], [0, 0.5, 0.2], [0, 0, 2.0]])
    Xq = np.r_[X[:20] + 0.1, rng.normal(scale=3, size=(10, 3))]
    h = 0.4
    det = KernelDensityOOD(bandwidth=h, shrinkage="empirical", calibration=None).fit(X)
    n = X.shape[0]
    ref = stats.gaussian_kde(X.T, bw_method=h * math.sqrt((n - 1) / n))
    np.testing.assert_allclose(det.score_samples(Xq), ref.logpdf(Xq.T), rtol=1e-10)


@pytest.mark.parametrize("shrinkage", ["ledoit_wolf", 0.3, 1.0, "diagonal"])
def test_matches_sklearn_kernel_density_on_whitened_rows(rng, shrinkage):
    X = _ring(rng, 400, d_extra=2)
    Xq = np.r_[_ring(rng, 20, d_extra=2), rng.normal(size=(10, 4))]
    det = KernelDensityOOD(bandwidth=0.3, shrinkage=shrinkage, calibration=None).fit(X)
    mean = X.mean(0)
    emp = np.cov(X.T, bias=True)
    nu = np.trace(emp) / 4
    if shrinkage == "ledoit_wolf":
        cov = ledoit_wolf(X)[0]
    elif shrinkage == "diagonal":
        cov = np.diag(np.diag(emp))
    else:
        cov = (1 - shrinkage) * emp + shrinkage * nu * np.eye(4)
    np.testing.assert_allclose(det.covariance_, cov, rtol=1e-10)
    # whiten independently (eigendecomposition, not the Cholesky factor): distances agree
    w, V = np.linalg.eigh(cov)
    W = V / np.sqrt(w)
    Z, Zq = (X - mean) @ W, (Xq - mean) @ W
    logdet = float(np.sum(np.log(w)))
    D = ((Zq[:, None, :] - Z[None]) ** 2).sum(-1)  # direct differences, no matrix product
    brute = logsumexp(-D / (2 * 0.09), axis=1) - math.log(400) - 2 * math.log(2 * math.pi * 0.09)
    np.testing.assert_allclose(det.score_samples(Xq), brute - 0.5 * logdet, rtol=1e-10)
    # scikit-learn's tree-based density, where it is exact (its far tails are approximate)
    kd = KernelDensity(kernel="gaussian", bandwidth=0.3).fit(Z)
    np.testing.assert_allclose(det.score_samples(Xq[:20]),
                               kd.score_samples(Zq[:20]) - 0.5 * logdet, rtol=1e-9)  # fmt: skip


def _brute_loo(Z, h):
    """Mean leave-one-out log-density of whitened rows, by refitting without each row."""
    out = []
    for i in range(Z.shape[0]):
        kd = KernelDensity(kernel="gaussian", bandwidth=h).fit(np.delete(Z, i, axis=0))
        out.append(kd.score_samples(Z[i : i + 1])[0])
    return float(np.mean(out))


def test_loo_bandwidth_maximises_the_brute_force_likelihood(rng):
    Z = _ring(rng, 80, d_extra=1) * 3.0
    h, ll = loo_bandwidth(Z, np.arange(80))
    assert ll == pytest.approx(_brute_loo(Z, h), rel=1e-9)  # n_nearest > n - 1: exact
    grid = h * np.exp(np.linspace(-0.5, 0.5, 21))
    lls = [_brute_loo(Z, g) for g in grid]
    assert max(lls) <= ll + 1e-7  # no grid point beats the optimum
    # the estimator: the same bandwidth on its whitened reference rows
    det = KernelDensityOOD(shrinkage=1.0, calibration=None).fit(Z)
    Zw = (Z - Z.mean(0)) / math.sqrt(np.trace(np.cov(Z.T, bias=True)) / Z.shape[1])
    h2, ll2 = loo_bandwidth(Zw, np.arange(80))
    assert det.bandwidth_ == pytest.approx(h2, rel=1e-6)
    logdet = 3 * math.log(np.trace(np.cov(Z.T, bias=True)) / 3)
    assert det.bandwidth_loglik_ == pytest.approx(ll2 - 0.5 * logdet, rel=1e-9)


def test_duplicates_leave_the_bandwidth_finite(rng):
    Z = rng.standard_normal((100, 3))
    h, _ = loo_bandwidth(Z, np.arange(100))
    dup = np.r_[Z, Z[:50]]  # half the rows twice: their own copy would drive h to 0
    h_dup, ll_dup = loo_bandwidth(dup, np.arange(150))
    assert np.isfinite(ll_dup) and 0.3 * h < h_dup < 3 * h
    with pytest.raises(ValueError, match="no two distinct rows"):
        loo_bandwidth(np.repeat(Z[:1], 10, axis=0), np.arange(10))


def test_leave_one_out_offset_without_calibration(rng):
    X = _ring(rng, 200)
    det = KernelDensityOOD(bandwidth=0.2, contamination=0.1, calibration=None).fit(X)
    Z = (X - X.mean(0)) @ np.linalg.inv(np.linalg.cholesky(det.covariance_)).T
    loo = [KernelDensity(bandwidth=0.2).fit(np.delete(Z, i, axis=0)).score_samples(Z[i : i + 1])[0]
           for i in range(200)]  # fmt: skip
    loo = np.array(loo) - 0.5 * np.linalg.slogdet(det.covariance_)[1]
    assert det.offset_ == pytest.approx(np.percentile(loo, 10), rel=1e-9)
    got = kernel_log_density(Z, Z, 0.2, logdet=np.linalg.slogdet(det.covariance_)[1],
                             leave_out=np.arange(200))  # fmt: skip
    np.testing.assert_allclose(got, loo, rtol=1e-9)


def test_batch_equals_row_by_row(rng):
    X = _ring(rng, 500, d_extra=3)
    det = KernelDensityOOD(random_state=0).fit(X)
    Xq = _ring(rng, 12, d_extra=3)
    for f in (det.score_samples, det.decision_function, det.pvalues):
        rows = np.array([f(Xq[i : i + 1])[0] for i in range(len(Xq))])
        assert_batch_close(rows, f(Xq), np.float64)
    full = det.score_samples(Xq)
    det.chunk_size = 3  # scoring blocks of 3 queries (the fit is unchanged)
    assert_batch_close(det.score_samples(Xq), full, np.float64)
    assert_batch_close(det.score_samples(Xq.astype(np.float32)),
                       det.score_samples(Xq.astype(np.float32).astype(np.float64)), np.float64)


def test_default_fit_predict_meets_its_false_alarm_rate(rng):
    rates = []
    for r in range(15):
        X, X_new = _ring(rng, 400, d_extra=2), _ring(rng, 400, d_extra=2)
        det = KernelDensityOOD(random_state=r).fit(X)
        rates.append(np.mean(det.predict(X_new) == -1))
    assert 0.05 - 0.025 <= np.mean(rates) <= 0.05 + 0.015  # 15 x 400 draws, sd about 0.7%


def test_kernel_density_sees_the_hole_of_a_ring(rng):
    X = _ring(rng, 1500)
    X_in = _ring(rng, 300)
    X_out = 0.3 * rng.standard_normal((300, 2))  # the ring's centre
    kde = KernelDensityOOD(random_state=0).fit(X)
    one = MahalanobisOOD(random_state=0).fit(X)
    assert auroc(kde.score_samples(X_in), kde.score_samples(X_out)) > 0.99
    assert auroc(one.score_samples(X_in), one.score_samples(X_out)) < 0.1  # the mode looks best


def test_ensemble_without_calibration_ranks_by_leave_one_out_scores(rng):
    """Its members' reference scores are their own fitting rows: a kernel density scores them
    leaving each row's own kernel out (else every row would look perfectly typical and every
    new point would get the smallest p-value)."""
    from infogauss.ood import EnsembleOOD

    X, X_in = _ring(rng, 1000), _ring(rng, 300)
    X_out = 0.3 * rng.standard_normal((300, 2))
    ens = EnsembleOOD([KernelDensityOOD(), KernelDensityOOD(shrinkage=1.0)], calibration=None,
                      random_state=0).fit(X)  # fmt: skip
    assert auroc(ens.score_samples(X_in), ens.score_samples(X_out)) > 0.99
    assert 0.02 < np.mean(ens.predict(X_in) == -1) < 0.1


def test_round_trip_is_bit_exact(rng, tmp_path):
    X = _ring(rng, 300, d_extra=1)
    for det in (KernelDensityOOD(random_state=0).fit(X),
                KernelDensityOOD(bandwidth=0.5, shrinkage=1.0, calibration=None).fit(X)):
        path = det.save(tmp_path / "kde.npz")
        Xq = _ring(rng, 30, d_extra=1) * 1.2
        for back in (infogauss.load(path), KernelDensityOOD.load(path)):
            assert type(back) is KernelDensityOOD
            assert back.bandwidth_ == det.bandwidth_
            fs = ["score_samples", "decision_function", "predict"]
            for f in fs + (["pvalues"] if det.calibration else []):
                np.testing.assert_array_equal(getattr(back, f)(Xq), getattr(det, f)(Xq))


def test_crafted_files_are_refused(rng, tmp_path):
    from .test_persistence import _rewrite

    det = KernelDensityOOD(random_state=0).fit(_ring(rng, 300))
    path = det.save(tmp_path / "kde.npz")
    cases = [
        (lambda m, a: a.__setitem__("cholesky_", a["cholesky_"] * 1.01), "not the Cholesky factor"),
        (lambda m, a: a.__setitem__("location_", a["location_"] + 1), "location_ is not the mean"),
        (lambda m, a: a.__setitem__("reference_", a["reference_"][:10]), "reference_"),
        (lambda m, a: m["attrs"].__setitem__("bandwidth_", -1.0), "bandwidth_ must be a positive number"),
        (lambda m, a: m["attrs"].pop("bandwidth_"), "has no numeric bandwidth_"),
        (lambda m, a: m["params"].__setitem__("bandwidth", "scott"), "invalid parameters"),
        (lambda m, a: a.pop("calibration_scores_"), "calibration_scores_"),
    ]
    for mutate, match in cases:
        with pytest.raises(ModelFileError, match=match):
            infogauss.load(_rewrite(path, tmp_path / "bad.npz", mutate, rehash=True))


def test_bad_input(rng):
    X = _ring(rng, 200)
    for bad in (0, -1.0, float("nan"), float("inf"), True, "scott"):
        with pytest.raises(ValueError, match="`bandwidth` must be 'loo' or a positive float"):
            KernelDensityOOD(bandwidth=bad).fit(X)
    with pytest.raises(ValueError, match="`n_bandwidth_rows` must be an integer >= 2, got 1"):
        KernelDensityOOD(n_bandwidth_rows=1).fit(X)
    with pytest.raises(ValueError, match="`shrinkage`"):
        KernelDensityOOD(shrinkage="graphical").fit(X)
    with pytest.raises(ValueError, match="no variance"):
        KernelDensityOOD(calibration=None).fit(np.ones((20, 2)))
    with pytest.raises(ValueError, match="`X` contains NaN or infinity.*too large to square"):
        KernelDensityOOD().fit(X * 1e200)
    det = KernelDensityOOD(random_state=0).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        det.score_samples(np.r_[X[:2], np.full((1, 2), np.nan)])
    with pytest.raises(ValueError, match="2 features"):
        det.score_samples(np.c_[X, X][:3])
    with pytest.raises(ValueError, match="`X` contains NaN or infinity"):
        det.score_samples(np.full((1, 2), 1e300))


def _expected_failures(est) -> dict[str, str]:
    """The split default as MahalanobisOOD (see tests/test_ood.py); without calibration the
    offset is a quantile of leave-one-out training scores."""
    if est.calibration is None:
        why = ("offset_ is the contamination quantile of the leave-one-out scores of the "
               "training rows (each row's own kernel left out, as for a new point): predict on "
               "the training rows, each scored with its own kernel, flags fewer")
    else:
        why = ("contamination is the rate guaranteed on new data (split-conformal threshold), "
               "not the fraction of training rows flagged")
    return {"check_outliers_train": why, "check_outliers_fit_predict": why}


@parametrize_with_checks(
    [
        KernelDensityOOD(random_state=0),
        KernelDensityOOD(bandwidth=0.5, shrinkage=1.0, calibration=None),
    ],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
