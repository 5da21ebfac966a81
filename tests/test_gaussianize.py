"""Gaussianizer: against scikit-learn's power and quantile transformers and a brute-force
censored likelihood; inverses, batch independence, streaming, persistence, the sklearn contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import optimize, special, stats
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PowerTransformer, QuantileTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

import infogauss
from infogauss import Gaussianizer, GaussianModel, persistence
from infogauss.diagnostics import anderson_critical_value, anderson_darling_normal
from infogauss.gaussianize import _power as pw
from infogauss.gaussianize import _quantile as qt
from infogauss.persistence import ModelFileError, digest

META = "__infogauss_meta__"
ALL = [
    dict(method="auto"), dict(method="yeo-johnson"), dict(method="box-cox"), dict(method="power"),
    dict(method="quantile", n_quantiles=50),
    dict(method="rbig", n_iterations=3, n_quantiles=50, random_state=0),
    dict(method="rbig", n_iterations=2, rotation="random", random_state=0),
]  # fmt: skip


def _ids(kw):
    return "-".join(str(v) for v in kw.values())


def _mixed(rng, n=600):
    """Signed, skewed, post-ReLU, strictly positive and constant columns."""
    return np.column_stack([
        rng.normal(size=n), rng.standard_t(4, size=n), np.maximum(0, rng.normal(0.3, 1, n)),
        rng.exponential(size=n), rng.lognormal(size=n), np.maximum(0, rng.normal(size=n)) ** 2,
        np.full(n, 3.0),
    ])  # fmt: skip


def _positive(rng, n=600):
    X = np.abs(_mixed(rng, n))
    X[:, [0, 1, 2, 5]] += 0.1  # strictly positive everywhere (Box–Cox's classic domain)
    return X


def _data_for(kw, rng, n=600):
    return _positive(rng, n) if kw["method"] == "box-cox" else _mixed(rng, n)


def _relu_embeddings(rng, n, d, seed_w=99):
    W = np.random.default_rng(seed_w).normal(size=(d, d)) / np.sqrt(d)
    return np.maximum(0.0, rng.normal(size=(n, d)) @ W)


# ------------------------------------------------------------------ the sklearn contract
@parametrize_with_checks([Gaussianizer(**kw) for kw in ALL])
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ------------------------------------------------------------------ against scikit-learn
@pytest.mark.parametrize("standardize", [True, False])
def test_yeo_johnson_matches_power_transformer(rng, standardize):
    X = _mixed(rng)[:, :6] * np.array([1, 2, 0.5, 3, 1, 1])
    ours = Gaussianizer(method="yeo-johnson", standardize=standardize).fit(X)
    ref = PowerTransformer(method="yeo-johnson", standardize=standardize).fit(X)
    np.testing.assert_allclose(ours.lambdas_, ref.lambdas_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.inverse_transform(ours.transform(X)), X, atol=1e-9)


@pytest.mark.parametrize("standardize", [True, False])
def test_box_cox_matches_power_transformer_on_positive_data(rng, standardize):
    X = _positive(rng)[:, :6]
    ours = Gaussianizer(method="box-cox", standardize=standardize).fit(X)
    ref = PowerTransformer(method="box-cox", standardize=standardize).fit(X)
    np.testing.assert_allclose(ours.lambdas_, ref.lambdas_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), rtol=1e-5, atol=1e-6)
    for j in range(X.shape[1]):  # and scipy's own MLE
        assert abs(ours.lambdas_[j] - stats.boxcox_normmax(X[:, j], method="mle")) < 1e-5


def test_quantile_matches_quantile_transformer_inside_the_range(rng):
    X = np.column_stack([rng.normal(size=2000), rng.exponential(size=2000),
                         np.maximum(0, rng.normal(size=2000))])  # fmt: skip
    ours = Gaussianizer(method="quantile", n_quantiles=200, standardize=False, subsample=None)
    ref = QuantileTransformer(n_quantiles=200, output_distribution="normal", subsample=None)
    ours.fit(X), ref.fit(X)
    np.testing.assert_allclose(ours.quantiles_[0], ref.quantiles_, rtol=0, atol=1e-12)
    Xt = np.column_stack([rng.normal(size=500), rng.exponential(size=500),
                          np.abs(rng.normal(size=500)) + 1e-3])  # fmt: skip
    inside = (Xt > ref.quantiles_[0] + 1e-6) & (Xt < ref.quantiles_[-1] - 1e-6)
    m = ours.n_quantile_samples_
    # same piecewise-linear CDF; ours moves the level p to the Hazen position (p(m-1) + 1/2)/m
    expected = (special.ndtr(ref.transform(Xt)) * (m - 1) + 0.5) / m
    np.testing.assert_allclose(special.ndtr(ours.transform(Xt))[inside], expected[inside],
                               rtol=0, atol=1e-10)  # fmt: skip


def test_quantile_tails_are_linear_not_clipped(rng):
    x = rng.normal(size=(1000, 1))
    g = Gaussianizer(method="quantile", standardize=False).fit(x)
    far = np.array([[-50.0], [-10.0], [10.0], [50.0]])
    z = g.transform(far)[:, 0]
    assert np.all(np.diff(z) > 0) and z[0] < -20 and z[-1] > 20  # sklearn gives ±5.2 for all
    np.testing.assert_allclose(g.inverse_transform(z[:, None]), far, rtol=1e-12)
    # continuous at the ends of the fitted range
    hi = x.max()
    assert abs(g.transform([[hi + 1e-9]])[0, 0] - g.transform([[hi]])[0, 0]) < 1e-6


# ------------------------------------------------------------------ the fits of λ
def _brute_force_tobit_lambda(x):
    """Maximise the censored Box–Cox likelihood over (λ, μ, log σ) with Nelder–Mead."""
    pos, n0 = x[x > 0], int(np.sum(x == 0))

    def nll(theta):
        lam, mu, log_s = theta
        if lam <= 0:
            return np.inf
        s = np.exp(log_s)
        u = (pos**lam - 1) / lam
        ll = stats.norm.logpdf(u, mu, s).sum() + (lam - 1) * np.log(pos).sum()
        return -(ll + n0 * stats.norm.logcdf((-1 / lam - mu) / s))

    best = min(
        (optimize.minimize(nll, [lam0, 0.0, 0.0], method="Nelder-Mead",
                           options={"xatol": 1e-9, "fatol": 1e-11, "maxiter": 20000})
         for lam0 in (0.3, 1.0)),
        key=lambda r: r.fun,
    )  # fmt: skip
    return best.x


@pytest.mark.parametrize("power, shift", [(1.0, 0.0), (0.5, 0.3), (2.0, -0.5)])
def test_censored_box_cox_matches_brute_force_likelihood(rng, power, shift):
    # x = ReLU(latent)^(1/λ0): the Box–Cox-Tobit model holds with λ0 = power
    x = np.maximum(0.0, rng.normal(shift, 1.0, size=3000)) ** (1 / power)
    lam, zero = pw.fit_box_cox(x, lambda_min=pw.LAMBDA_MIN_ZERO)
    lam_ref, mu, log_s = _brute_force_tobit_lambda(x)
    assert abs(lam - lam_ref) < 1e-4
    assert abs(lam - power) < 0.15
    # a zero goes to the latent's mean below the censoring point
    ref_zero = stats.truncnorm.mean(-np.inf, (-1 / lam_ref - mu) / np.exp(log_s), mu, np.exp(log_s))
    assert abs(zero - ref_zero) < 1e-3


def test_relu_of_a_gaussian_is_left_as_a_censored_gaussian(rng):
    x = np.maximum(0.0, rng.normal(size=(20000, 1)))
    g = Gaussianizer(standardize=False, subsample=None).fit(x)  # all rows: no random subsample
    assert abs(g.lambdas_[0] - 1) < 0.03
    # b(x; 1) = x - 1; a zero stands for E[Z | Z < 0] = -φ(0)/Φ(0) of the latent N(0, 1)
    assert abs(g.zero_values_[0] - (-1 - np.sqrt(2 / np.pi))) < 0.03
    back = g.inverse_transform(g.transform([[0.0], [2.0]]))
    assert back[0, 0] == 0.0 and abs(back[1, 0] - 2.0) < 1e-12


def test_auto_picks_per_column_and_is_scale_free_on_nonnegative_columns(rng):
    X = _mixed(rng, 2000)
    g = Gaussianizer().fit(X)
    assert list(g.transforms_) == ["yeo-johnson", "yeo-johnson", "box-cox", "box-cox",
                                   "box-cox", "box-cox", "identity"]  # fmt: skip
    assert np.all(g.lambdas_[2:6] >= pw.LAMBDA_MIN_ZERO)
    g2 = Gaussianizer().fit(X * 1000.0)
    np.testing.assert_allclose(g2.lambdas_, g.lambdas_, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(g2.transform(X * 1000.0)[:, :6], g.transform(X)[:, :6], atol=1e-5)


# ------------------------------------------------------------------ inverses, batches, dtypes
@pytest.mark.parametrize("kw", ALL, ids=_ids)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_inverse_round_trip_and_batch_independence(rng, kw, dtype):
    X = _data_for(kw, rng).astype(dtype)
    g = Gaussianizer(**kw).fit(X)
    Y = g.transform(X)
    assert Y.dtype == dtype and Y.shape == X.shape and np.all(np.isfinite(Y))
    tol = 1e-9 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(g.inverse_transform(Y), X, rtol=tol, atol=tol)
    rows = np.vstack([g.transform(X[i : i + 1]) for i in range(0, X.shape[0], 37)])
    if kw["method"] == "rbig":  # a matrix product: BLAS rounding varies with the batch size
        np.testing.assert_allclose(rows, Y[::37], rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_array_equal(rows, Y[::37])
    live = ~g.dead_features_
    if kw["method"] not in ("rbig",):
        np.testing.assert_array_equal(Y[:, ~live], X[:, ~live])  # dead: passed through
    np.testing.assert_allclose(Y[:, live].astype(float).mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(Y[:, live].astype(float).std(0), 1, atol=1e-3)


def test_out_of_image_values_are_refused_on_inverse(rng):
    x = rng.lognormal(size=(500, 1))
    g = Gaussianizer(method="box-cox", standardize=False).fit(x)
    assert g.lambdas_[0] < 0.1  # log-normal: λ ≈ 0
    g.lambdas_ = np.array([-0.5])  # an image bounded above by 2
    with pytest.raises(ValueError, match="outside the image"):
        g.inverse_transform([[5.0]])


def test_dead_columns_pass_through_unchanged(rng):
    X = rng.exponential(size=(400, 4))
    X[:, 1] = 7.25
    X[:, 2] = 1e-9 * rng.normal(size=400)  # tiny relative to the others
    X[:, 3] = 1e12 + np.round(rng.normal(size=400) * 1e-4, 4) * 0  # constant at a large offset
    for method in ("auto", "yeo-johnson", "power", "quantile", "rbig"):
        g = Gaussianizer(method=method, random_state=0).fit(X)
        assert list(g.dead_features_) == [False, True, True, True], method
        Y = g.transform(X)
        assert np.all(np.isfinite(Y))
        np.testing.assert_array_equal(Y[:, 1:], X[:, 1:])
    assert Gaussianizer(dead_tol=0).fit(X).dead_features_.tolist() == [False, True, False, True]


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_refused(rng, bad):
    X = rng.exponential(size=(50, 3))
    Xb = X.copy()
    Xb[4, 1] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        Gaussianizer().fit(Xb)
    g = Gaussianizer().fit(X)
    with pytest.raises(ValueError, match="NaN|infinity"):
        g.transform(Xb)


def test_box_cox_domain_is_enforced(rng):
    X = rng.exponential(size=(200, 2))
    with pytest.raises(ValueError, match="Negative values in data.*column 1"):
        Gaussianizer(method="box-cox").fit(X - [0, 5])
    g = Gaussianizer(method="box-cox").fit(X)
    with pytest.raises(ValueError, match="row 1, column 0.*Box–Cox"):
        g.transform([[1.0, 1.0], [-0.5, 1.0]])
    big = np.ones((70000, 2))
    big[66000, 1] = -1.0  # past the first block: the row number is still the row's
    with pytest.raises(ValueError, match="row 66000, column 1"):
        g.transform(big)
    lognormal = rng.lognormal(0, 2, size=(500, 1))
    g = Gaussianizer(method="box-cox").fit(lognormal)
    if g.lambdas_[0] <= 0:  # strictly positive fit with λ <= 0: zero is outside the domain
        with pytest.raises(ValueError, match="defined for x > 0"):
            g.transform([[0.0]])
    assert np.isfinite(Gaussianizer().fit(lognormal).transform([[0.0]])).all()  # auto: λ > 0


def test_a_failed_fit_leaves_the_estimator_as_it_was(rng):
    X = rng.exponential(size=(100, 2))
    g = Gaussianizer(method="box-cox").fit(X)
    before = g.transform(X)
    with pytest.raises(ValueError):
        g.fit(X - 5)
    np.testing.assert_array_equal(g.transform(X), before)


@pytest.mark.parametrize("kw, match", [
    (dict(method="boxcox"), "`method` must be one of"),
    (dict(power=0), "`power` must be a finite number > 0"),
    (dict(power="half"), "`power` must be a real number"),
    (dict(n_quantiles=1), "`n_quantiles` must be an integer >= 2"),
    (dict(n_iterations=0), "`n_iterations` must be an integer >= 1"),
    (dict(rotation="ica"), "`rotation` must be one of"),
    (dict(dead_tol=1.0), "`dead_tol` must lie in"),
    (dict(subsample=1), "`subsample` must be an integer >= 2"),
    (dict(standardize="yes"), "`standardize` must be True or False"),
])  # fmt: skip
def test_bad_parameters_are_refused_at_fit(rng, kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Gaussianizer(**kw).fit(rng.exponential(size=(20, 2)))


# ------------------------------------------------------------------ post-ReLU data
def _ad_pass_rate(Y):
    return float(np.mean(anderson_darling_normal(Y) < anderson_critical_value(Y.shape[0])))


def _skewed(rng, n):
    return np.column_stack([rng.exponential(size=(n, 8)), rng.lognormal(size=(n, 8)),
                            rng.chisquare(3, size=(n, 8))])  # fmt: skip


@pytest.mark.parametrize("method, min_rate", [
    ("auto", 0.6), ("box-cox", 0.6),  # exponential^λ is close to, not exactly, Gaussian
    # a quantile map fitted on m rows is off by O(1/sqrt(m)), which AD sees on held-out rows
    ("quantile", 0.7),
    # Yeo–Johnson on the raw scale (sklearn's) has no λ that straightens a log-normal: the
    # statistic drops, few columns pass
    ("yeo-johnson", 0.0),
])  # fmt: skip
def test_skewed_nonnegative_columns_become_gaussian(rng, method, min_rate):
    X, Xte = _skewed(rng, 5000), _skewed(rng, 1000)
    assert _ad_pass_rate(Xte) == 0.0
    Y = Gaussianizer(method=method).fit(X).transform(Xte)
    assert _ad_pass_rate(Y) >= min_rate
    assert np.all(anderson_darling_normal(Y) < anderson_darling_normal(Xte) / 3)


def test_rbig_gaussianizes_post_relu_embeddings_jointly(rng):
    # every column keeps its atom of 50% zeros under a monotone map; RBIG's rotations split it
    Xtr, Xte = _relu_embeddings(rng, 3000, 64), _relu_embeddings(rng, 3000, 64)
    raw = GaussianModel(shrinkage="empirical").fit(Xtr)
    assert _ad_pass_rate(raw.transform(Xte)) == 0.0
    auto = Pipeline([("g", Gaussianizer()), ("m", GaussianModel(shrinkage="empirical"))])
    assert _ad_pass_rate(auto.fit(Xtr).transform(Xte)) <= 0.1
    pipe = Pipeline([("g", Gaussianizer(method="rbig", random_state=0)),
                     ("m", GaussianModel(shrinkage="empirical"))]).fit(Xtr)  # fmt: skip
    assert _ad_pass_rate(pipe.transform(Xte)) >= 0.75


def test_auto_brings_held_out_pvalues_nearer_their_level(rng):
    Xtr, Xte = _relu_embeddings(rng, 3000, 32), _relu_embeddings(rng, 3000, 32)
    fpr = {}
    for name, g in (("raw", None), ("auto", Gaussianizer())):
        A, B = (Xtr, Xte) if g is None else (g.fit(Xtr).transform(Xtr), g.transform(Xte))
        p = GaussianModel(shrinkage="empirical").fit(A).pvalues(B, method="f")
        fpr[name] = float(np.mean(p < 0.05))
    assert fpr["raw"] > 0.08
    assert abs(fpr["auto"] - 0.05) < abs(fpr["raw"] - 0.05) / 2


# ------------------------------------------------------------------ pipelines
def test_pipeline_with_gaussian_model_in_grid_search(rng):
    X = np.maximum(0, rng.normal(size=(400, 6)) + 0.3) ** 2
    pipe = Pipeline([("gauss", Gaussianizer()), ("model", GaussianModel())])
    search = GridSearchCV(pipe, {"gauss__method": ["auto", "power", "quantile"],
                                 "gauss__standardize": [True, False]}, cv=3)  # fmt: skip
    search.fit(X)
    assert search.best_params_["gauss__method"] in ("auto", "power", "quantile")
    assert search.best_estimator_.score_samples(X[:5]).shape == (5,)
    names = search.best_estimator_[0].get_feature_names_out([f"f{i}" for i in range(6)])
    assert list(names) == [f"f{i}" for i in range(6)]


def test_feature_names(rng):
    X = rng.exponential(size=(100, 3))
    assert list(Gaussianizer().fit(X).get_feature_names_out()) == ["x0", "x1", "x2"]
    rbig = Gaussianizer(method="rbig", n_iterations=2).fit(X)
    assert list(rbig.get_feature_names_out()) == ["gaussianizer0", "gaussianizer1", "gaussianizer2"]


# ------------------------------------------------------------------ streaming
def test_power_streams_exactly(rng):
    X = np.maximum(0, rng.normal(size=(1000, 5)))
    X[:, 4] = 2.0
    one = Gaussianizer(method="power").fit(X)
    g = Gaussianizer(method="power")
    for part in np.array_split(X, [1, 2, 150, 700]):
        g.partial_fit(part)
    assert g.n_samples_seen_ == 1000
    for key in ("mean_", "scale_", "lambdas_", "dead_features_"):
        np.testing.assert_allclose(getattr(g, key), getattr(one, key), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(g.transform(X), one.transform(X), rtol=1e-10, atol=1e-12)


def test_partial_fit_single_rows_and_unfitted_state(rng):
    g = Gaussianizer(method="power").partial_fit(rng.exponential(size=(1, 3)))
    with pytest.raises(infogauss_not_fitted()):
        g.transform(np.ones((1, 3)))
    g.partial_fit(rng.exponential(size=(1, 3)))
    assert g.transform(np.ones((1, 3))).shape == (1, 3)


def infogauss_not_fitted():
    from sklearn.exceptions import NotFittedError

    return NotFittedError


@pytest.mark.parametrize("method", ["auto", "quantile", "rbig"])
def test_reservoir_streaming_equals_fit_below_the_subsample_size(rng, method):
    X = _mixed(rng, 900)
    one = Gaussianizer(method=method, subsample=1000, random_state=0).fit(X)
    g = Gaussianizer(method=method, subsample=1000, random_state=0)
    for part in np.array_split(X, 4):
        g.partial_fit(part)
    np.testing.assert_allclose(g.transform(X), one.transform(X), rtol=1e-12, atol=1e-12)


def test_reservoir_is_a_uniform_sample_beyond_its_size(rng):
    X = np.arange(20000, dtype=float)[:, None] * np.ones((1, 2))
    X[:, 1] = rng.permutation(20000)
    g = Gaussianizer(method="quantile", subsample=500, random_state=0)
    for part in np.array_split(X, 40):
        g.partial_fit(part)
    assert g.n_samples_seen_ == 20000 and g._reservoir.shape == (500, 2)
    kept = g._reservoir[:, 0]
    assert len(np.unique(kept)) == 500
    # uniform over the stream: the kept row indices look like a uniform sample of 0..19999
    assert stats.kstest(kept / 20000, "uniform").pvalue > 0.001


def test_partial_fit_continues_a_fit_but_not_a_loaded_file(rng, tmp_path):
    X, X2 = rng.exponential(size=(100, 2)), rng.exponential(size=(50, 2))
    g = Gaussianizer(method="quantile", random_state=0).fit(X).partial_fit(X2)
    both = Gaussianizer(method="quantile", random_state=0).fit(np.vstack([X, X2]))
    np.testing.assert_allclose(g.transform(X), both.transform(X), rtol=1e-12)
    with pytest.raises(ValueError, match="cannot continue.*loaded"):
        Gaussianizer.load(g.save(tmp_path / "q.npz")).partial_fit(X)
    p = Gaussianizer(method="power").fit(X)
    p.partial_fit(X)  # exact moments: continuing is fine
    np.testing.assert_allclose(p.mean_, Gaussianizer(method="power").fit(np.vstack([X, X])).mean_)


# ------------------------------------------------------------------ persistence
@pytest.mark.parametrize("kw", ALL, ids=_ids)
def test_save_load_is_bit_exact(rng, tmp_path, kw):
    X = _data_for(kw, rng)
    g = Gaussianizer(**kw).fit(X)
    path = g.save(tmp_path / "g.npz")
    with np.load(path, allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
    for back in (infogauss.load(path), Gaussianizer.load(path)):
        assert type(back) is Gaussianizer
        assert back.get_params() == g.get_params()
        np.testing.assert_array_equal(back.transform(X), g.transform(X))
        np.testing.assert_array_equal(back.inverse_transform(g.transform(X)),
                                      g.inverse_transform(g.transform(X)))  # fmt: skip


def test_loaded_power_model_keeps_streaming(rng, tmp_path):
    X = rng.exponential(size=(300, 3))
    g = Gaussianizer(method="power").partial_fit(X[:100])
    back = Gaussianizer.load(g.save(tmp_path / "p.npz")).partial_fit(X[100:])
    np.testing.assert_allclose(back.transform(X), Gaussianizer(method="power").fit(X).transform(X),
                               rtol=1e-10)  # fmt: skip


def test_state_nests_in_another_file(rng):
    X = _mixed(rng)
    g = Gaussianizer().fit(X)
    params, attrs, arrays = g._state()
    nested = persistence.prefixed("gauss_.", arrays)
    back = Gaussianizer._from_state("<nested>", {"params": params, "attrs": attrs},
                                    persistence.sub_state("gauss_.", nested))  # fmt: skip
    np.testing.assert_array_equal(back.transform(X), g.transform(X))


def _rewrite(path, out, mutate, *, rehash=True):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays.pop(META)[()]))
    mutate(meta, arrays)
    if rehash:  # a crafted file: a valid checksum over doctored contents
        meta["arrays"] = sorted(arrays)
        meta["sha256"] = digest(meta, arrays)
    np.savez(out, **arrays, **{META: np.array(json.dumps(meta))})
    return out


def _scale(key, factor):
    return lambda m, a: a.__setitem__(key, a[key] * factor)


@pytest.mark.parametrize("method, mutate, rehash, match", [
    ("auto", _scale("lambdas_", 1.0001), False, "failed its checksum"),
    ("auto", lambda m, a: m["attrs"].__setitem__("n_features_in_", 3), True, "dead_features_"),
    ("auto", _scale("lambdas_", 100.0), True, "lambdas_ outside"),
    ("auto", _scale("scale_", -1.0), True, "not a valid standardisation"),
    ("auto", lambda m, a: a.__setitem__("transforms_", a["transforms_"][::-1]), True,
     "do not fit method"),
    ("auto", lambda m, a: a.pop("zero_values_"), True, "lacks \\['zero_values_'\\]"),
    ("auto", _scale("zero_values_", -1.0), True, "zero_values_"),
    ("auto", lambda m, a: m["params"].__setitem__("method", "magic"), True, "invalid parameters"),
    ("auto", lambda m, a: m["attrs"].__setitem__("extra_", 1), True, "attributes \\['extra_'\\]"),
    ("quantile", lambda m, a: a.__setitem__("quantiles_", a["quantiles_"][:, ::-1]), True,
     "not non-decreasing"),
    ("quantile", _scale("tails_", -1.0), True, "positive slopes"),
    ("quantile", lambda m, a: m["attrs"].__setitem__("n_quantile_samples_", 7), True,
     "quantiles"),
    ("rbig", _scale("rotations_", 1.01), True, "not orthogonal"),
    ("rbig", lambda m, a: a.__setitem__("lambdas_", np.ones(7)), True, "should not"),
    ("power", _scale("lambdas_", 2.0), True, "fixed power"),
    ("power", lambda m, a: m["attrs"].__setitem__("stream_n", 5), True, "streaming count"),
])  # fmt: skip
def test_tampered_files_are_refused(rng, tmp_path, method, mutate, rehash, match):
    g = Gaussianizer(method=method, n_iterations=2, random_state=0).fit(_mixed(rng, 300))
    path = g.save(tmp_path / "g.npz")
    bad = _rewrite(path, tmp_path / "bad.npz", mutate, rehash=rehash)
    with pytest.raises(ModelFileError, match=match):
        infogauss.load(bad)


def test_wrong_kind_is_refused(rng, tmp_path):
    path = GaussianModel().fit(rng.normal(size=(50, 3))).save(tmp_path / "m.npz")
    with pytest.raises(ModelFileError, match="holds a GaussianModel, not a Gaussianizer"):
        Gaussianizer.load(path)


# ------------------------------------------------------------------ the functional core
def test_quantile_core_round_trip_with_ties(rng):
    X = np.column_stack([np.maximum(0, rng.normal(size=700)), rng.integers(0, 4, 700)])
    maps = qt.fit_quantile_maps(X.astype(float), 100)
    Z = qt.quantile_forward(X.astype(float), maps)
    np.testing.assert_allclose(qt.quantile_inverse(Z, maps), X, atol=1e-9)
    zeros = Z[X[:, 0] == 0, 0]
    assert np.ptp(zeros) == 0  # one atom, at the middle of its levels
    p0 = np.mean(X[:, 0] == 0)
    assert abs(special.ndtr(zeros[0]) - p0 / 2) < 0.01


def test_yeo_johnson_core_against_scipy(rng):
    x = rng.standard_t(3, size=500)
    for lam in (-1.5, 0.0, 0.7, 2.0, 3.1):
        np.testing.assert_allclose(pw.yeo_johnson(x, np.float64(lam)), stats.yeojohnson(x, lam),
                                   rtol=1e-12, atol=1e-12)  # fmt: skip
    assert abs(pw.fit_yeo_johnson(x) - stats.yeojohnson_normmax(x)) < 1e-5
