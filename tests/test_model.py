"""GaussianModel: scikit-learn contract, streaming, persistence and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from scipy import stats
from sklearn.base import clone
from sklearn.covariance import EmpiricalCovariance
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from infogauss import GaussianModel
from tests.conftest import correlated_gaussian


@parametrize_with_checks(
    [
        GaussianModel(),
        GaussianModel(shrinkage="oas", whiten="pca"),
        GaussianModel(shrinkage=0.1, whiten="pca", chunk_size=7),
    ]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("shrinkage", ["empirical", "ledoit_wolf", "oas", 0.3, "diagonal"])
def test_partial_fit_equals_fit(rng, shrinkage):
    X = correlated_gaussian(rng, 600, 20, offset=2.0)
    one = GaussianModel(shrinkage=shrinkage).fit(X)
    many = GaussianModel(shrinkage=shrinkage)
    for part in np.split(X, [1, 5, 50, 51, 300]):
        many.partial_fit(part)
    assert many.n_samples_seen_ == 600
    np.testing.assert_allclose(many.location_, one.location_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(many.covariance_, one.covariance_, rtol=0, atol=1e-10)
    if shrinkage != "diagonal":
        assert abs(many.shrinkage_ - one.shrinkage_) <= 1e-10


def test_partial_fit_single_rows_then_score(rng):
    X = correlated_gaussian(rng, 30, 3)
    from sklearn.exceptions import NotFittedError

    m = GaussianModel(shrinkage="empirical")
    m.partial_fit(X[:1])  # one row is kept, but defines no Gaussian yet
    with pytest.raises(NotFittedError):
        m.score_samples(X)
    for row in X[1:]:
        m.partial_fit(row[None, :])
    ref = GaussianModel(shrinkage="empirical").fit(X)
    np.testing.assert_allclose(m.covariance_, ref.covariance_, atol=1e-12)


def test_mahalanobis_is_squared_and_matches_sklearn(rng):
    X = correlated_gaussian(rng, 300, 8)
    m = GaussianModel(shrinkage="empirical").fit(X)
    np.testing.assert_allclose(
        m.mahalanobis(X), EmpiricalCovariance().fit(X).mahalanobis(X), rtol=1e-9
    )
    np.testing.assert_allclose(
        m.score_samples(X),
        stats.multivariate_normal(m.location_, m.covariance_).logpdf(X),
        rtol=1e-9,
    )
    assert m.entropy() == pytest.approx(
        stats.multivariate_normal(m.location_, m.covariance_).entropy()
    )


def test_scoring_is_per_sample(rng):
    X = correlated_gaussian(rng, 200, 6)
    m = GaussianModel(chunk_size=16).fit(X)
    Q = correlated_gaussian(rng, 37, 6)
    batch = m.score_samples(Q)
    rows = np.array([m.score_samples(q[None, :])[0] for q in Q])
    np.testing.assert_allclose(batch, rows, rtol=1e-13)
    np.testing.assert_allclose(m.transform(Q)[5], m.transform(Q[5:6])[0], rtol=1e-13)


def test_float32_model_path(rng):
    X = correlated_gaussian(rng, 3000, 32, offset=1e4).astype(np.float32)
    m32 = GaussianModel().fit(X)
    m64 = GaussianModel().fit(X.astype(np.float64))
    np.testing.assert_allclose(m32.covariance_, m64.covariance_, rtol=1e-12)
    np.testing.assert_allclose(m32.mahalanobis(X), m64.mahalanobis(X.astype(np.float64)), rtol=1e-4)
    assert m32.transform(X).dtype == np.float32
    assert GaussianModel(dtype="float64").fit(X).transform(X).dtype == np.float64


def test_pvalues_method(rng):
    X = rng.standard_normal((2000, 20))
    m = GaussianModel(shrinkage="empirical").fit(X)
    p = m.pvalues(rng.standard_normal((2000, 20)))
    assert stats.kstest(p, "uniform").pvalue > 1e-3
    pb = m.pvalues(X, method="beta")
    assert stats.kstest(pb, "uniform").pvalue > 1e-3
    with pytest.raises(ValueError, match="method"):
        m.pvalues(X, method="exact")


def test_sample_and_pipeline(rng):
    X = correlated_gaussian(rng, 500, 4)
    m = GaussianModel().fit(X)
    S = m.sample(20000, random_state=0)
    np.testing.assert_allclose(S.mean(0), m.location_, atol=0.05)
    pipe = make_pipeline(StandardScaler(), GaussianModel()).fit(X)
    assert pipe.score_samples(X[:3]).shape == (3,)
    assert clone(m).get_params() == m.get_params()
    assert m.get_feature_names_out().tolist()[:2] == ["gaussianmodel0", "gaussianmodel1"]


# ------------------------------------------------------------------ persistence
def test_save_load_round_trip_bit_exact(rng, tmp_path):
    X = correlated_gaussian(rng, 300, 9)
    m = GaussianModel(shrinkage="oas", whiten="pca", n_components=4, dtype="float32").fit(X)
    path = m.save(tmp_path / "model.npz")
    back = GaussianModel.load(path)
    for key in ("location_", "covariance_", "cholesky_", "whitening_"):
        np.testing.assert_array_equal(getattr(back, key), getattr(m, key))
    assert back.get_params() == {**m.get_params(), "dtype": "float32"}
    assert back.shrinkage_ == m.shrinkage_
    np.testing.assert_array_equal(back.score_samples(X), m.score_samples(X))
    # statistics travel too: streaming can continue after a reload
    more = correlated_gaussian(rng, 50, 9)
    np.testing.assert_array_equal(
        back.partial_fit(more).covariance_, m.partial_fit(more).covariance_
    )


def test_save_writes_no_pickle(rng, tmp_path):
    m = GaussianModel().fit(correlated_gaussian(rng, 50, 3))
    path = m.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["__infogauss_meta__"][()]))
        assert all(npz[k].dtype != object for k in npz.files)
    assert meta["format_version"] == 2 and meta["infogauss_version"]
    assert meta["kind"] == "GaussianModel"


def _rewrite(path, out, mutate):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    mutate(arrays)
    np.savez(out, **arrays)
    return out


def test_load_rejects_bad_files(rng, tmp_path):
    m = GaussianModel().fit(correlated_gaussian(rng, 50, 3))
    good = m.save(tmp_path / "good.npz")
    raw = good.read_bytes()

    with pytest.raises(FileNotFoundError):
        GaussianModel.load(tmp_path / "missing.npz")

    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="not a readable infogauss model"):
        GaussianModel.load(tmp_path / "trunc.npz")

    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a readable infogauss model"):
        GaussianModel.load(tmp_path / "text.npz")

    np.savez(tmp_path / "other.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="not an infogauss model"):
        GaussianModel.load(tmp_path / "other.npz")

    def tamper(a):
        a["location_"] = a["location_"] + 1e-3

    with pytest.raises(ValueError, match="checksum"):
        GaussianModel.load(_rewrite(good, tmp_path / "tampered.npz", tamper))

    def future(a):
        meta = json.loads(str(a["__infogauss_meta__"][()]))
        meta["format_version"] = 99
        a["__infogauss_meta__"] = np.array(json.dumps(meta))

    with pytest.raises(ValueError, match="format 99.*upgrade"):
        GaussianModel.load(_rewrite(good, tmp_path / "future.npz", future))

    def reshape(a):
        a["location_"] = np.zeros(4)
        a["covariance_"] = np.eye(4)
        meta = json.loads(str(a["__infogauss_meta__"][()]))
        from infogauss.persistence import digest

        meta["sha256"] = digest(meta, {k: v for k, v in a.items() if k != "__infogauss_meta__"})
        a["__infogauss_meta__"] = np.array(json.dumps(meta))

    with pytest.raises(ValueError, match="location_ has shape"):
        GaussianModel.load(_rewrite(good, tmp_path / "shape.npz", reshape))

    # a zip member flipped on disk is caught (CRC or checksum)
    data = bytearray(raw)
    with zipfile.ZipFile(good) as zf:
        info = zf.getinfo("location_.npy")
    pos = info.header_offset + 30 + len(info.filename) + 130
    data[pos] ^= 0xFF
    (tmp_path / "flipped.npz").write_bytes(bytes(data))
    with pytest.raises(ValueError):
        GaussianModel.load(tmp_path / "flipped.npz")


def test_save_is_atomic_and_keeps_suffix(rng, tmp_path):
    m = GaussianModel().fit(correlated_gaussian(rng, 50, 3))
    path = m.save(tmp_path / "model.bin")
    assert path.name == "model.bin" and path.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "X, exc, match",
    [
        (np.array([[1.0, np.nan], [2.0, 3.0], [0.0, 1.0]]), ValueError, "NaN"),
        (np.array([[1.0, np.inf], [2.0, 3.0], [0.0, 1.0]]), ValueError, "infinity"),
        (np.ones(5), ValueError, r"`X` must be a 2-D array .*Reshape your data"),
        (np.ones((3, 2, 2)), ValueError, r"`X` must be a 2-D array .*shape \(3, 2, 2\)"),
        (np.empty((0, 3)), ValueError, "0 sample"),
        (np.ones((1, 3)), ValueError, "1 sample"),
        (np.array([["a", "b"], ["c", "d"]]), (ValueError, TypeError), "convert|numeric|string"),
        (np.ones((4, 2)) * (1 + 1j), ValueError, "Complex"),
    ],
)
def test_fit_bad_input(X, exc, match):
    with pytest.raises(exc, match=match):
        GaussianModel().fit(X)


def test_predict_bad_input(rng):
    m = GaussianModel().fit(correlated_gaussian(rng, 50, 3))
    with pytest.raises(ValueError, match="X has 2 features, but GaussianModel is expecting 3"):
        m.score_samples(np.ones((4, 2)))
    with pytest.raises(ValueError, match="NaN or infinity"):
        m.mahalanobis(np.array([[0.0, 1.0, np.nan]]))
    with pytest.raises(ValueError, match=r"`X` must be a 2-D array .*Reshape your data"):
        m.transform(np.ones(3))
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        GaussianModel().score_samples(np.ones((2, 3)))


def test_empirical_needs_more_samples_than_features(rng):
    with pytest.raises(ValueError, match="shrinkage='empirical' needs more samples than features"):
        GaussianModel(shrinkage="empirical").fit(rng.standard_normal((5, 8)))
    GaussianModel().fit(rng.standard_normal((5, 8)))  # Ledoit-Wolf copes


def test_constant_columns(rng):
    X = rng.standard_normal((100, 4))
    X[:, 1] = 7.0
    with pytest.raises(ValueError, match=r"coordinates \[1\] have zero variance.*shrinkage"):
        GaussianModel(shrinkage="empirical").fit(X)
    assert np.isfinite(GaussianModel().fit(X).score_samples(X)).all()
    with pytest.raises(ValueError, match="every feature of X is constant"):
        GaussianModel().fit(np.ones((10, 3)))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"shrinkage": 1.5}, r"\[0, 1\]"),
        ({"shrinkage": -0.1}, r"\[0, 1\]"),
        ({"shrinkage": "ledoit"}, "shrinkage` must be one of"),
        ({"whiten": "svd"}, "whiten` must be one of"),
        ({"dtype": "float16"}, "dtype` must be"),
        ({"chunk_size": 0}, "chunk_size` must be"),
        ({"whiten": "pca", "n_components": 9}, "n_components` must be <= n_features"),
    ],
)
def test_bad_params(rng, params, match):
    with pytest.raises(ValueError, match=match):
        GaussianModel(**params).fit(rng.standard_normal((20, 3)))


class _FakeCudaTensor:
    class device:  # noqa: N801 - mimics torch.device
        type = "cuda"

    __module__ = "torch"

    def __array__(self, *a, **k):  # pragma: no cover - must not be reached
        raise AssertionError("the tensor was converted")


def test_device_tensor_refused(rng):
    m = GaussianModel().fit(correlated_gaussian(rng, 50, 3))
    with pytest.raises(TypeError, match="device.*cpu"):
        m.score_samples(_FakeCudaTensor())
    with pytest.raises(TypeError, match="device"):
        GaussianModel().fit(_FakeCudaTensor())


def test_import_needs_no_optional_dependency():
    code = (
        "import sys\n"
        "BLOCKED = {'torch', 'faiss', 'pyod', 'dask', 'distributed', 'matplotlib', 'tqdm', 'PIL'}\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError(f'blocked {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import numpy as np, infogauss\n"
        "m = infogauss.GaussianModel().fit(np.random.default_rng(0).normal(size=(50, 3)))\n"
        "m.score_samples(np.zeros((1, 3))); m.pvalues(np.zeros((1, 3)))\n"
        "assert not BLOCKED & {k.split('.')[0] for k in sys.modules}, sorted(sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


# ------------------------------------------------------------------ small batches, threads
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_batches_take_the_per_row_path_and_agree(rng, dtype):
    """1- and 2-row calls use one triangular solve per row; results agree with big batches
    to BATCH_RTOL and with a float64 reference to the documented float32 accuracy."""
    from infogauss.gaussian import _TRSV_MAX_ROWS

    from .conftest import assert_batch_close

    X = correlated_gaussian(rng, 400, 40, offset=1e3).astype(dtype)
    model = GaussianModel().fit(X)
    big = model.mahalanobis(X[:50])
    rows = np.concatenate([model.mahalanobis(X[i : i + 1]) for i in range(50)])
    pairs = np.concatenate([model.mahalanobis(X[i : i + _TRSV_MAX_ROWS]) for i in range(0, 50, 2)])
    assert_batch_close(rows, big, dtype)
    assert_batch_close(pairs, big, dtype)
    ref = GaussianModel(dtype="float64").fit(X.astype(np.float64)).mahalanobis(X[:50].astype(np.float64))
    np.testing.assert_allclose(rows, ref, rtol=1e-4)


def test_scoring_from_many_threads_equals_serial(rng):
    """Fitted estimators are read-only when scoring: 8 threads at once give serial results."""
    import threading

    X = correlated_gaussian(rng, 3000, 16).astype(np.float32)
    model = GaussianModel().fit(X)
    from infogauss import MahalanobisOOD

    det = MahalanobisOOD(method="class", random_state=0).fit(X, (X[:, 0] > 0).astype(int))
    serial = {"m2": model.mahalanobis(X), "lp": model.score_samples(X[:1]), "ood": det.pvalues(X)}
    before = dict(model.__dict__)
    out, errors = [], []

    def work(i):
        try:
            for _ in range(5):
                out.append((model.mahalanobis(X), model.score_samples(X[:1]), det.pvalues(X)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(out) == 40
    for m2, lp, p in out:
        np.testing.assert_array_equal(m2, serial["m2"])
        np.testing.assert_array_equal(lp, serial["lp"])
        np.testing.assert_array_equal(p, serial["ood"])
    assert model.__dict__.keys() == before.keys()


# ------------------------------------------------------------------ silent failures (issue 19)
def _long_double_m2(X, Q):
    Xl = X.astype(np.longdouble)
    mu = Xl.mean(0)
    D = Xl - mu
    S = np.array((D.T @ D) / len(X), dtype=np.float64)
    Dq = np.array(Q.astype(np.longdouble) - mu, dtype=np.float64)
    return np.einsum("ij,ij->i", Dq, np.linalg.solve(S, Dq.T).T), S


def test_large_offset_float64_keeps_digits_or_warns(rng):
    """Mean 1e8 used to give squared distances off by 1e-5 relative, silently."""
    import warnings

    from infogauss import PrecisionWarning

    Z = correlated_gaussian(rng, 2000, 8)
    for offset, tol in [(1e4, 1e-9), (1e8, 5e-6)]:
        X = Z + offset
        ref, S = _long_double_m2(X, X[:200])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = GaussianModel(shrinkage="empirical").fit(X)
        precision = [w for w in caught if issubclass(w.category, PrecisionWarning)]
        # the covariance is exact to rounding whatever the offset (two-pass mean)
        assert np.max(np.abs(model.covariance_ - S)) <= 1e-13 * np.max(np.abs(S))
        assert np.max(np.abs(model.mahalanobis(X[:200]) - ref) / ref) <= tol
        assert bool(precision) == (offset >= 1e8)
    assert "Subtract a rough centre" in str(precision[0].message)


def test_ill_conditioned_float32_scoring_warns(rng):
    """A float32 fit with condition number 1e12 used to score 9e-3 off float64, silently."""
    import warnings

    from infogauss import PrecisionWarning

    d = 32
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    for cond, expect in [(1e2, False), (1e12, True)]:
        ev = np.geomspace(1.0, 1.0 / cond, d)
        X = ((rng.standard_normal((4000, d)) * np.sqrt(ev)) @ Q.T).astype(np.float32)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            GaussianModel(shrinkage="empirical").fit(X)
        got = any(issubclass(w.category, PrecisionWarning) for w in caught)
        assert got == expect, cond
        with warnings.catch_warnings(record=True) as caught:  # float64 scoring: no warning
            warnings.simplefilter("always")
            GaussianModel(shrinkage="empirical", dtype="float64").fit(X)
        assert not any(issubclass(w.category, PrecisionWarning) for w in caught)


def test_failed_refit_leaves_the_model_as_it_was(rng):
    """A refit that raises used to leave n_features_in_ new and location_ old."""
    X = correlated_gaussian(rng, 100, 3)
    model = GaussianModel().fit(X)
    before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in model.__dict__.items()}
    with pytest.raises(ValueError, match="constant"):
        model.fit(np.ones((50, 5)))
    with pytest.raises(ValueError):
        model.partial_fit(np.ones((5, 7)))
    assert model.__dict__.keys() == before.keys()
    for k, v in before.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(model.__dict__[k], v)
    np.testing.assert_array_equal(model.mahalanobis(X), GaussianModel().fit(X).mahalanobis(X))


def test_nan_in_a_chunked_fit_names_its_row_in_the_data(rng):
    X = correlated_gaussian(rng, 3000, 4)
    X[2345, 2] = np.nan
    with pytest.raises(ValueError, match=r"first at row 2345\)"):
        GaussianModel(chunk_size=1000).fit(X)


def test_unclear_errors_made_clear(rng):
    with pytest.raises(ValueError, match="too small to square in float64.*rescale X"):
        GaussianModel().fit(rng.standard_normal((100, 3)) * 1e-200)
    with pytest.raises(ValueError, match=r"rows have different lengths: row 0 has 2 values, row 1 has 1"):
        GaussianModel().fit([[1.0, 2.0], [3.0]])
    from infogauss import MahalanobisOOD

    with pytest.raises(ValueError, match=r"k-means found only 1 distinct cluster.*duplicates"):
        MahalanobisOOD(method="cluster", n_clusters=3, calibration=None).fit(np.ones((50, 2)))
