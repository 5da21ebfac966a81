"""GaussianLikelihoodDetector: the PyOD protocol, pure per-sample scores, and scipy references."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
from scipy import stats
from sklearn.base import clone

from infogauss.metrics import auroc

from .conftest import correlated_gaussian

pytestmark = pytest.mark.pyod
pytest.importorskip("pyod")

from infogauss.anomaly import GaussianLikelihoodDetector  # noqa: E402


@pytest.fixture
def data(rng):
    X = correlated_gaussian(rng, 450, 5)
    return X[:400], X[400:]


def test_pyod_protocol(data):
    X, Xq = data
    det = GaussianLikelihoodDetector(contamination=0.1, calibration=None).fit(X)  # PyOD's meaning
    # exact equality, not allclose (pyod #200 is the fault avoided)
    np.testing.assert_array_equal(det.decision_scores_, det.decision_function(X))
    assert det.labels_.dtype.kind == "i" and set(np.unique(det.labels_)) == {0, 1}
    assert det.labels_.mean() == pytest.approx(0.1, abs=0.01)
    assert det.threshold_ == pytest.approx(np.percentile(det.decision_scores_, 90))
    pred = det.predict(Xq)
    np.testing.assert_array_equal(pred, (det.decision_function(Xq) > det.threshold_).astype(int))
    proba = det.predict_proba(Xq)
    assert proba.shape == (50, 2) and np.allclose(proba.sum(1), 1.0)
    assert ((proba >= 0) & (proba <= 1)).all()
    conf = det.predict_confidence(Xq)
    assert conf.shape == (50,) and ((conf >= 0) & (conf <= 1)).all()
    pred2, conf2 = det.predict(Xq, return_confidence=True)
    np.testing.assert_array_equal(pred2, pred)
    np.testing.assert_allclose(conf2, conf)


def test_default_threshold_is_calibrated_on_held_out_rows(rng):
    """threshold_ flags new normal points at <= contamination (split conformal), where PyOD's
    training quantile flags more; decision_scores_ still equal decision_function(X_train)."""
    d, rates, naive = 30, [], []
    for r in range(30):
        A = rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
        X = rng.standard_t(4, size=(200, d)) @ A.T
        X_new = rng.standard_t(4, size=(500, d)) @ A.T
        det = GaussianLikelihoodDetector(contamination=0.1, random_state=r).fit(X)
        assert det.n_calibration_ == 40
        np.testing.assert_array_equal(det.decision_scores_, det.decision_function(X))
        np.testing.assert_array_equal(det.labels_, (det.decision_scores_ > det.threshold_))
        rates.append(np.mean(det.predict(X_new)))
        naive.append(np.mean(GaussianLikelihoodDetector(contamination=0.1, calibration=None)
                             .fit(X).predict(X_new)))  # fmt: skip
    assert 0.1 - 0.03 <= np.mean(rates) <= 0.1 + 0.015
    assert np.mean(naive) > 0.14


def test_clone_and_params():
    det = GaussianLikelihoodDetector(contamination=0.05, statistic="mahalanobis", shrinkage="oas")
    c = clone(det)
    assert c.get_params() == det.get_params()
    assert c is not det and not hasattr(c, "model_")


def test_scores_against_scipy(data):
    X, Xq = data
    det = GaussianLikelihoodDetector(shrinkage="empirical", calibration=None).fit(X)
    cov = np.cov(X, rowvar=False, bias=True)
    ref = -stats.multivariate_normal(X.mean(0), cov).logpdf(Xq)
    np.testing.assert_allclose(det.decision_function(Xq), ref, rtol=1e-9)
    det = GaussianLikelihoodDetector(statistic="mahalanobis", shrinkage="empirical",
                                     calibration=None).fit(X)
    D = Xq - X.mean(0)
    ref = np.einsum("ij,ij->i", D, np.linalg.solve(cov, D.T).T)
    np.testing.assert_allclose(det.decision_function(Xq), ref, rtol=1e-9)


@pytest.mark.parametrize("statistic", ["nll", "mahalanobis"])
def test_batch_equals_row_by_row(data, statistic):
    X, Xq = data
    det = GaussianLikelihoodDetector(statistic=statistic).fit(X)
    batch = det.decision_function(Xq)
    rows = np.array([det.decision_function(Xq[i : i + 1])[0] for i in range(len(Xq))])
    np.testing.assert_allclose(batch, rows, rtol=1e-12)
    before = det.decision_scores_.copy()
    det.decision_function(Xq * 10)  # scoring never mutates the detector
    np.testing.assert_array_equal(det.decision_scores_, before)


def test_auroc_floor_on_shift(rng):
    A = np.eye(8) + 0.3 * rng.standard_normal((8, 8))  # one covariance for all three sets
    X, Xin, Xout = (rng.standard_normal((n, 8)) @ A.T for n in (1000, 300, 300))
    Xout += 1.5
    det = GaussianLikelihoodDetector().fit(X)
    assert auroc(-det.decision_function(Xin), -det.decision_function(Xout)) > 0.9


def test_bad_input(data):
    X, _ = data
    with pytest.raises(ValueError, match="contamination"):
        GaussianLikelihoodDetector(contamination=0.8).fit(X)
    with pytest.raises(ValueError, match="`statistic` must be one of"):
        GaussianLikelihoodDetector(statistic="lof").fit(X)
    det = GaussianLikelihoodDetector().fit(X)
    with pytest.raises(ValueError, match="5 features"):
        det.decision_function(X[:, :3])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        GaussianLikelihoodDetector().decision_function(X)


def test_missing_pyod_names_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "pyod" or m.startswith("pyod.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "pyod", None)
    monkeypatch.delitem(sys.modules, "infogauss.anomaly")
    with pytest.raises(ImportError, match=r"pip install 'infogauss\[pyod\]'"):
        importlib.import_module("infogauss.anomaly")
    monkeypatch.undo()
    assert importlib.import_module("infogauss.anomaly").GaussianLikelihoodDetector
