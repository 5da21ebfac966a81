"""``to_torch``: fitted Gaussians and detectors as torch modules, equal to the numpy path."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
torch.set_num_threads(1)

from sklearn.exceptions import NotFittedError  # noqa: E402

from infogauss import GaussianModel  # noqa: E402
from infogauss.contrastive import to_torch  # noqa: E402
from infogauss.contrastive.export import AnomalyScorer, GaussianScorer, OODScorer  # noqa: E402
from infogauss.ood import MahalanobisOOD  # noqa: E402

from .conftest import assert_batch_close, correlated_gaussian  # noqa: E402

DTYPES = [(torch.float32, np.float32), (torch.float64, np.float64)]
DETECTORS = [("global", "distance"), ("class", "distance"), ("cluster", "distance"),
             ("relative", "distance"), ("global", "typicality"), ("class", "typicality"),
             ("cluster", "typicality")]


@pytest.fixture
def data(rng):
    X = correlated_gaussian(rng, 600, 12, offset=2.0)
    y = rng.integers(0, 3, 600)
    X += y[:, None] * 0.7  # class structure for the class-conditional methods
    return X, y, correlated_gaussian(rng, 200, 12, offset=2.5)


def _assert_relative_close(actual, expected, det, X, npdt):
    """``method="relative"`` is a difference of two squared distances: in float32 its rounding
    is BATCH_RTOL of the distances subtracted, not of their (cancelling) difference."""
    from infogauss.gaussian import BATCH_RTOL

    scale = det.class_distances(X).min(axis=1) + det.background_.mahalanobis(X)
    bound = BATCH_RTOL[np.dtype(npdt).name] * np.maximum(1.0, scale)
    excess = np.abs(np.asarray(actual, np.float64) - expected) - bound
    assert excess.max() <= 0, f"row {int(np.argmax(excess))} exceeds the bound by {excess.max()}"


def _scores(module, X, npdt):
    with torch.no_grad():
        return module(torch.from_numpy(X.astype(npdt))).numpy()


@pytest.mark.parametrize("method", ["solve", "matmul"])
@pytest.mark.parametrize("tdt,npdt", DTYPES, ids=["float32", "float64"])
def test_gaussian_model_equals_numpy(data, tdt, npdt, method):
    X, _, Xt = data
    model = GaussianModel().fit(X)
    Xc = Xt.astype(npdt)
    for output, ref in (("mahalanobis", model.mahalanobis(Xc)), ("score_samples", model.score_samples(Xc))):
        module = to_torch(model, tdt, output=output, method=method)
        out = _scores(module, Xt, npdt)
        assert out.dtype == npdt and out.shape == (len(Xt),)
        assert_batch_close(out, ref, npdt)


def test_float32_is_centred_accurately_at_large_offsets(rng):
    X = correlated_gaussian(rng, 800, 8, offset=1e4)  # mean 1e4, SD ~1: float32 keeps 3 digits
    model = GaussianModel().fit(X)
    X32 = X[:300].astype(np.float32)
    module = to_torch(model, torch.float32, output="mahalanobis")
    out = _scores(module, X32, np.float32)
    assert_batch_close(out, model.mahalanobis(X32), np.float32)
    # and close to float64 arithmetic on the same (rounded) rows: no catastrophic cancellation
    exact = model.mahalanobis(X32.astype(np.float64))
    assert np.max(np.abs(out - exact) / np.maximum(1, exact)) < 1e-3


@pytest.mark.parametrize("method,statistic", DETECTORS)
@pytest.mark.parametrize("tdt,npdt", DTYPES, ids=["float32", "float64"])
def test_mahalanobis_ood_equals_numpy(data, method, statistic, tdt, npdt):
    X, y, Xt = data
    det = MahalanobisOOD(method=method, statistic=statistic, n_clusters=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k-means / typicality warnings are not the subject
        det.fit(X, y if method in ("class", "relative") else None)
    Xc = np.concatenate([Xt, X[:50] + 6.0]).astype(npdt)  # some clear outliers
    for output in ("score_samples", "decision_function", "mahalanobis"):
        out = _scores(to_torch(det, tdt, output=output), Xc, npdt)
        if method == "relative":
            _assert_relative_close(out, getattr(det, output)(Xc), det, Xc, npdt)
        else:
            assert_batch_close(out, getattr(det, output)(Xc), npdt)
    pred = _scores(to_torch(det, tdt, output="predict"), Xc, npdt)
    assert pred.dtype == np.int64
    ref = det.predict(Xc)
    decision = det.decision_function(Xc)
    near = np.abs(decision) <= 1e-5 * np.maximum(1, np.abs(decision))  # a tie may round either way
    np.testing.assert_array_equal(pred[~near], ref[~near])
    assert set(np.unique(ref)) == {-1, 1}


@pytest.mark.pyod
@pytest.mark.parametrize("statistic", ["nll", "mahalanobis"])
def test_pyod_detector_equals_numpy(data, statistic):
    pytest.importorskip("pyod", reason="needs pyod: infogauss[pyod]")
    from infogauss.anomaly import GaussianLikelihoodDetector

    X, _, Xt = data
    det = GaussianLikelihoodDetector(statistic=statistic, random_state=0).fit(X)
    Xc = np.concatenate([Xt, X[:40] + 6.0])
    for tdt, npdt in DTYPES:
        module = to_torch(det, tdt)
        assert isinstance(module, AnomalyScorer)
        assert_batch_close(_scores(module, Xc, npdt), det.decision_function(Xc.astype(npdt)), npdt)
    pred = _scores(to_torch(det, torch.float64, output="predict"), Xc, np.float64)
    np.testing.assert_array_equal(pred, det.predict(Xc))


def test_no_state_shared_with_the_estimator(data):
    X, y, Xt = data
    model = GaussianModel().fit(X)
    det = MahalanobisOOD(method="class").fit(X, y)
    m_mod, d_mod = to_torch(model), to_torch(det, output="decision_function")
    before_m, before_d = _scores(m_mod, Xt, np.float32), _scores(d_mod, Xt, np.float32)
    model.location_ += 1.0  # in place, as a careless user might
    model.cholesky_ *= 2.0
    det.means_ += 1.0
    det.model_.cholesky_ *= 3.0
    det.offset_ = 1e6
    model.fit(X[::-1] * 5)  # and refitting replaces everything
    np.testing.assert_array_equal(_scores(m_mod, Xt, np.float32), before_m)
    np.testing.assert_array_equal(_scores(d_mod, Xt, np.float32), before_d)


def test_module_is_buffers_only_and_follows_to(data):
    X, y, Xt = data
    det = MahalanobisOOD(method="relative").fit(X, y)
    module = to_torch(det)
    assert isinstance(module, OODScorer) and not module.training
    assert list(module.parameters()) == []
    names = set(dict(module.named_buffers()))
    assert {"distances.center", "distances.factor", "distances.offsets", "background.factor",
            "offset"} <= names
    module.to("meta")  # any device: every array is a buffer
    assert all(b.device.type == "meta" for b in module.buffers())
    glob = MahalanobisOOD().fit(X)
    module64 = to_torch(glob).to(torch.float64)  # a later cast is followed by the inputs too
    out = _scores(module64, Xt, np.float32)
    assert out.dtype == np.float64  # float32 buffers, cast: float32-accurate
    assert_batch_close(out, glob.score_samples(Xt.astype(np.float32)), np.float32)


def test_nonfinite_rows_are_flagged_and_bad_input_refused(data):
    X, _, _ = data
    det = MahalanobisOOD().fit(X)
    x = torch.tensor(X[:3], dtype=torch.float32)
    x[1, 0] = float("nan")
    assert to_torch(det, output="predict")(x).tolist()[1] == -1
    model = GaussianModel().fit(X)
    with pytest.raises(ValueError, match=r"`x` must have shape \(n_samples, 12\), got \(3, 5\)"):
        to_torch(model)(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="`output` must be one of"):
        to_torch(model, output="predict")
    with pytest.raises(ValueError, match="`dtype` must be float32 or float64"):
        to_torch(model, dtype=torch.float16)
    with pytest.raises(ValueError, match="`method` must be one of"):
        to_torch(model, method="inverse")
    with pytest.raises(NotFittedError):
        to_torch(GaussianModel())
    with pytest.raises(TypeError, match="must be a fitted GaussianModel, MahalanobisOOD"):
        to_torch(object())
    assert isinstance(to_torch(model, "float64"), GaussianScorer)


@pytest.mark.parametrize("method", ["solve", "matmul"])
def test_torch_export_and_jit_trace(data, method):
    X, y, Xt = data
    det = MahalanobisOOD(method="class", statistic="typicality").fit(X, y)
    module = to_torch(det, method=method)
    xt = torch.tensor(Xt, dtype=torch.float32)
    ref = module(xt)
    n = torch.export.Dim("n")
    program = torch.export.export(module, (xt[:5],), dynamic_shapes=({0: n},))
    torch.testing.assert_close(program.module()(xt), ref, rtol=0, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)  # no trace-time shape checks
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates TorchScript
        traced = torch.jit.trace(module, xt[:5])
    torch.testing.assert_close(traced(xt), ref)


@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxscript", "onnxruntime")),
    reason="needs onnx, onnxscript and onnxruntime (pip install onnx onnxscript onnxruntime)",
)
def test_onnx_export_matches(data):
    import onnxruntime

    X, y, Xt = data
    det = MahalanobisOOD(method="cluster", n_clusters=3, random_state=0).fit(X)
    module = to_torch(det, method="matmul")  # ONNX has no triangular solve
    xt = torch.tensor(Xt, dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, (xt[:5],), dynamo=True, verbose=False,
                                    dynamic_shapes=({0: torch.export.Dim("n")},))
    session = onnxruntime.InferenceSession(program.model_proto.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: Xt.astype(np.float32)})[0]
    assert_batch_close(out, det.score_samples(Xt.astype(np.float32)), np.float32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("tdt,npdt", DTYPES, ids=["float32", "float64"])
def test_on_the_gpu(data, tdt, npdt):  # pragma: no cover - GPU only
    X, y, Xt = data
    det = MahalanobisOOD(method="class").fit(X, y)
    module = to_torch(det, tdt, device="cuda")
    out = module(torch.tensor(Xt, device="cuda")).cpu().numpy()
    assert_batch_close(out, det.score_samples(Xt.astype(npdt)), npdt)
