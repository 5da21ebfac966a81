"""NormAwareOOD against a by-hand reference (scikit-learn's Ledoit-Wolf on the unit vectors, a
dense joint Gaussian solved with numpy), the norm-only OOD case, no loss where direction
carries the signal, persistence, bad input, estimator checks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.covariance import ledoit_wolf
from sklearn.utils.estimator_checks import parametrize_with_checks

import infogauss
from infogauss.metrics import auroc
from infogauss.ood import MahalanobisOOD, NormAwareOOD
from infogauss.persistence import ModelFileError

from .conftest import assert_batch_close


def _unit(X):
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _gaussian(rng, n, d, offset=0.0):
    """n draws of one fixed d-dim Gaussian (the same law on every call)."""
    A = np.random.default_rng(d).standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
    return rng.standard_normal((n, d)) @ A.T + offset


def test_score_matches_the_formula_by_hand(rng):
    X = _gaussian(rng, 500, 6, offset=1.0)
    Xq = np.r_[_gaussian(rng, 30, 6, offset=1.0), 3 * X[:5]]
    det = NormAwareOOD(calibration=None, norm_weight=0.7).fit(X)
    U, Uq = _unit(X), _unit(Xq)
    cov = ledoit_wolf(U)[0]  # scikit-learn's Ledoit-Wolf Gaussian of the unit vectors
    D = Uq - U.mean(0)
    m2 = np.einsum("ij,ij->i", D, np.linalg.solve(cov, D.T).T)
    ell = np.log(np.linalg.norm(X, axis=1))
    z = (np.log(np.linalg.norm(Xq, axis=1)) - ell.mean()) / (ell.std(ddof=1) * np.sqrt(1 + 1 / 500))
    np.testing.assert_allclose(det.squared_deviations(Xq), np.c_[m2, z**2], rtol=1e-9)
    np.testing.assert_allclose(det.score_samples(Xq), -(m2 + 0.7 * z**2), rtol=1e-9)
    # norm_weight=1: the squared Mahalanobis distance of (u, log|x|) under the block Gaussian
    joint = NormAwareOOD(calibration=None).fit(X)
    C = np.zeros((7, 7))
    C[:6, :6], C[6, 6] = cov, ell.var(ddof=1) * (1 + 1 / 500)
    Dj = np.c_[D, np.log(np.linalg.norm(Xq, axis=1)) - ell.mean()]
    ref = np.einsum("ij,ij->i", Dj, np.linalg.solve(C, Dj.T).T)
    np.testing.assert_allclose(joint.score_samples(Xq), -ref, rtol=1e-9)
    # norm_weight=0 is the plain Mahalanobis detector of the unit vectors
    plain = NormAwareOOD(calibration=None, norm_weight=0).fit(X)
    np.testing.assert_allclose(plain.score_samples(Xq), -m2, rtol=1e-9)
    np.testing.assert_allclose(plain.score_samples(Xq), MahalanobisOOD(calibration=None).fit(
        U).score_samples(Uq), rtol=1e-12)  # fmt: skip


def test_a_norm_only_shift_is_caught(rng):
    """OOD = in-distribution x 5: the same directions. The normalised Mahalanobis detector
    cannot tell them apart (AUROC 1/2); the norm term separates them completely."""
    d = 32
    X, X_in = _gaussian(rng, 2000, d), _gaussian(rng, 500, d)
    X_out = 5 * X_in
    det = NormAwareOOD(random_state=0).fit(X)
    assert auroc(det.score_samples(X_in), det.score_samples(X_out)) == 1.0
    assert np.mean(det.predict(X_out) == -1) == 1.0
    plain = MahalanobisOOD(random_state=0).fit(_unit(X))
    assert abs(auroc(plain.score_samples(_unit(X_in)), plain.score_samples(_unit(X_out))) - 0.5) < 0.01
    blind = NormAwareOOD(norm_weight=0, random_state=0).fit(X)
    assert abs(auroc(blind.score_samples(X_in), blind.score_samples(X_out)) - 0.5) < 0.01


def test_no_real_loss_where_direction_carries_the_signal(rng):
    d = 16
    A = np.random.default_rng(3).standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
    mean = np.full(d, 1.5)
    X = rng.standard_normal((3000, d)) @ A.T + mean
    X_in = rng.standard_normal((600, d)) @ A.T + mean
    turn = np.r_[np.full(d // 2, 1.5), np.full(d // 2, -1.5)] * 0.6 + mean * 0.4
    X_out = rng.standard_normal((600, d)) @ A.T + turn  # another direction, similar norms
    raw = MahalanobisOOD(random_state=0).fit(X)
    det = NormAwareOOD(random_state=0).fit(X)
    a_raw = auroc(raw.score_samples(X_in), raw.score_samples(X_out))
    a_det = auroc(det.score_samples(X_in), det.score_samples(X_out))
    assert a_raw > 0.8 and a_det > a_raw - 0.03, (a_raw, a_det)


def test_conformal_false_alarm_rate(rng):
    rates = [np.mean(NormAwareOOD(random_state=r).fit(_gaussian(rng, 400, 8) + 1)
                     .predict(_gaussian(rng, 400, 8) + 1) == -1) for r in range(15)]
    assert 0.05 - 0.025 <= np.mean(rates) <= 0.05 + 0.02


def test_batch_equals_row_by_row_and_normalised_input(rng):
    X = _gaussian(rng, 400, 5)
    det = NormAwareOOD(base=MahalanobisOOD(method="cluster", n_clusters=3), random_state=0).fit(X)
    Xq = _gaussian(rng, 10, 5) * 2
    for f in (det.score_samples, det.decision_function, det.pvalues):
        rows = np.array([f(Xq[i : i + 1])[0] for i in range(len(Xq))])
        assert_batch_close(rows, f(Xq), np.float64)
    # already unit embeddings: the log-norm spread is 0 up to rounding; the model stays usable
    unit = NormAwareOOD(random_state=0).fit(_unit(X))
    assert unit.log_norm_scale_ == 1e-6
    s = unit.score_samples(np.r_[_unit(Xq), 2 * _unit(Xq)])
    assert np.isfinite(s[:10]).all() and np.all(s[10:] < s[:10].min())


@pytest.mark.parametrize("base", [None, MahalanobisOOD(method="class", shrinkage="oas")])
def test_round_trip_is_bit_exact(rng, tmp_path, base):
    X = _gaussian(rng, 400, 5)
    y = (X[:, 0] > 0).astype(int)
    det = NormAwareOOD(base=base, random_state=0).fit(X, y)
    path = det.save(tmp_path / "norm.npz")
    Xq = _gaussian(rng, 30, 5) * 1.5
    for back in (infogauss.load(path), NormAwareOOD.load(path)):
        assert type(back) is NormAwareOOD
        assert (back.base is None) == (base is None)
        if base is not None:
            assert back.base.get_params() == base.get_params()
        for f in ("score_samples", "decision_function", "predict", "pvalues", "squared_deviations"):
            np.testing.assert_array_equal(getattr(back, f)(Xq), getattr(det, f)(Xq))


def test_crafted_files_are_refused(rng, tmp_path):
    from .test_persistence import _rewrite

    path = NormAwareOOD(random_state=0).fit(_gaussian(rng, 300, 4)).save(tmp_path / "n.npz")
    cases = [
        (lambda m, a: m["attrs"].__setitem__("log_norm_scale_", 0.0), "log_norm"),
        (lambda m, a: m["attrs"].__setitem__("n_features_in_", 5), "base_ does not match"),
        (lambda m, a: a.__setitem__("base_.means_", a["base_.means_"][:, :2]), "means_"),
        (lambda m, a: m["params"].__setitem__("norm_weight", -1.0), "invalid parameters"),
    ]
    for mutate, match in cases:
        with pytest.raises(ModelFileError, match=match):
            infogauss.load(_rewrite(path, tmp_path / "bad.npz", mutate, rehash=True))


def test_directions_and_norms_at_any_scale(rng):
    """Rows are scaled by their largest entry before the norm: no overflow or underflow."""
    X = _gaussian(rng, 300, 4)
    Xq = _gaussian(rng, 10, 4)
    ref = NormAwareOOD(random_state=0).fit(X)
    for scale in (1e200, 1e-200):
        det = NormAwareOOD(random_state=0).fit(X * scale)
        np.testing.assert_allclose(det.score_samples(Xq * scale), ref.score_samples(Xq),
                                   rtol=1e-9, atol=1e-9)  # fmt: skip
        assert det.log_norm_mean_ == pytest.approx(ref.log_norm_mean_ + np.log(scale))


def test_bad_input(rng):
    X = _gaussian(rng, 200, 4)
    with pytest.raises(ValueError, match="row 200 has zero norm"):
        NormAwareOOD().fit(np.r_[X, np.zeros((1, 4))])
    with pytest.raises(ValueError, match="at least 2 features.*got 1 feature"):
        NormAwareOOD().fit(X[:, :1])
    with pytest.raises(TypeError, match="`base` must be a MahalanobisOOD"):
        NormAwareOOD(base="mahalanobis").fit(X)
    for base in (MahalanobisOOD(method="relative"), MahalanobisOOD(statistic="typicality")):
        with pytest.raises(ValueError, match="`base` must use statistic='distance'"):
            NormAwareOOD(base=base).fit(X)
    for w in (-1.0, float("nan"), "auto"):
        with pytest.raises(ValueError, match="`norm_weight` must be"):
            NormAwareOOD(norm_weight=w).fit(X)
    det = NormAwareOOD(random_state=0).fit(X)
    with pytest.raises(ValueError, match="row 1 has zero norm"):
        det.score_samples(np.r_[X[:1], np.zeros((1, 4))])
    with pytest.raises(ValueError, match=r"`X` contains NaN or infinity \(first at row 2\)"):
        det.score_samples(np.r_[X[:2], np.full((1, 4), np.inf)])
    with pytest.raises(ValueError, match="4 features"):
        det.score_samples(X[:, :3])


def _expected_failures(est) -> dict[str, str]:
    """The split default as MahalanobisOOD (tests/test_ood.py); all-zero rows refused."""
    out = {"check_estimators_dtypes": "data cast to integers has all-zero rows, which have no "
                                      "direction: NormAwareOOD refuses them"}
    if est.calibration is not None:
        why = ("contamination is the rate guaranteed on new data (split-conformal threshold), "
               "not the fraction of training rows flagged")
        out.update(check_outliers_train=why, check_outliers_fit_predict=why)
    return out


@parametrize_with_checks([NormAwareOOD(), NormAwareOOD(calibration=None)],
                         expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)
