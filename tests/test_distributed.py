"""Dask adapters: fits on a real multi-process LocalCluster equal the in-memory fit."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from infogauss import GaussianModel
from infogauss.gaussian import stats_from_array
from tests.conftest import correlated_gaussian

pytestmark = pytest.mark.dask
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
idist = pytest.importorskip("infogauss.distributed")

ATTRS = ("location_", "covariance_", "cholesky_", "whitening_")


def assert_same_model(a, b, atol=1e-10):
    assert a.n_samples_seen_ == b.n_samples_seen_
    for attr in ATTRS:
        np.testing.assert_allclose(getattr(a, attr), getattr(b, attr), rtol=0, atol=atol)
    assert a.shrinkage_ == pytest.approx(b.shrinkage_, abs=1e-12)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
        dashboard_address=None, memory_limit="1GiB",
    )  # fmt: skip
    c = distributed.Client(cluster, set_as_default=False)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


@pytest.fixture
def X(rng):
    return correlated_gaussian(rng, 4000, 8, offset=100.0)


@pytest.mark.parametrize("shrinkage", ["ledoit_wolf", "oas", "empirical", 0.2])
def test_cluster_fit_equals_in_memory_fit(client, X, shrinkage):
    dX = da.from_array(X, chunks=(300, -1))  # 14 blocks, uneven last block
    model = idist.fit_dask(GaussianModel(shrinkage=shrinkage), dX, split_every=3, scheduler=client)
    assert_same_model(model, GaussianModel(shrinkage=shrinkage).fit(X))


def test_cluster_scoring_is_lazy_and_equal(client, X):
    model = GaussianModel().fit(X)
    dX = da.from_array(X.astype(np.float32), chunks=(700, -1))
    lazy = {
        "score_samples": idist.score_samples(model, dX),
        "mahalanobis": idist.mahalanobis(model, dX),
        "pvalues": idist.pvalues(model, dX, "chi2"),
        "transform": idist.transform(model, dX),
    }
    assert all(isinstance(v, da.Array) for v in lazy.values())
    assert lazy["transform"].dtype == np.float32 and lazy["transform"].shape == (4000, 8)
    computed = client.compute(list(lazy.values()), sync=True)
    X32 = X.astype(np.float32)
    expected = [model.score_samples(X32), model.mahalanobis(X32), model.pvalues(X32, "chi2"),
                model.transform(X32)]  # fmt: skip
    for got, want in zip(computed, expected):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_from_npy_on_the_cluster(client, tmp_path, X):
    path = tmp_path / "emb.npy"
    np.save(path, X.astype(np.float32))
    dX = idist.from_npy(path, chunk_size=512)
    assert dX.chunks[0][:2] == (512, 512) and dX.dtype == np.float32
    head = dX[1000:1003].compute(scheduler="sync")
    np.testing.assert_array_equal(head, X[1000:1003].astype(np.float32))
    model = idist.fit_dask(GaussianModel(), dX, scheduler=client)
    assert_same_model(model, GaussianModel().fit(X.astype(np.float32)))


def test_killed_worker_does_not_change_the_result(client, X):
    """Hard-kill (SIGKILL) a worker process that holds partial statistics mid-computation:
    the scheduler recomputes the lost partitions and the model is unchanged."""

    def slow(block):  # nested: pickled by value to the workers
        time.sleep(0.05)
        return block

    dX = da.from_array(X, chunks=(50, -1)).map_blocks(slow, dtype=X.dtype)  # 80 blocks
    future = client.compute(idist.stats_from_dask(dX, split_every=4))
    # wait until a worker holds some finished partitions, then kill that worker
    deadline = time.monotonic() + 30
    victim = None
    while victim is None and time.monotonic() < deadline:
        held = {
            w: keys for w, keys in client.has_what().items()
            if any("slow" in str(k) or "block_stats" in str(k) for k in keys)
        }  # fmt: skip
        victim = next(iter(held), None)
        time.sleep(0.02)
    assert victim is not None and not future.done()
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)  # the worker process this test's cluster started
    stats = future.result(timeout=120)
    deadline = time.monotonic() + 30
    while victim in client.scheduler_info()["workers"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert victim not in client.scheduler_info()["workers"]  # it really died
    expected = stats_from_array(X)
    assert stats.n == expected.n
    np.testing.assert_allclose(stats.mean, expected.mean, rtol=0, atol=1e-10)
    np.testing.assert_allclose(stats.scatter, expected.scatter, rtol=1e-12)
    np.testing.assert_allclose(stats.fourth, expected.fourth, rtol=1e-12)
    model = GaussianModel().fit_stats(stats)
    assert_same_model(model, GaussianModel().fit(X))
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next tests


def test_threaded_scheduler(X):
    dX = da.from_array(X, chunks=(1000, -1))
    for sched in ("threads", "sync"):
        model = idist.fit_dask(GaussianModel(whiten="pca"), dX, scheduler=sched)
        assert_same_model(model, GaussianModel(whiten="pca").fit(X))
    scores = idist.score_samples(model, dX).compute(scheduler="threads")
    np.testing.assert_allclose(scores, model.score_samples(X), rtol=1e-12)


def test_single_block_and_empty_blocks(X):
    one = idist.fit_dask(GaussianModel(), da.from_array(X, chunks=-1), scheduler="sync")
    assert_same_model(one, GaussianModel().fit(X))
    dX = da.from_array(X, chunks=(1000, -1))
    filtered = dX[dX[:, 0] > np.median(X[:, 0])]  # unknown (nan) row chunks
    model = idist.fit_dask(GaussianModel(), filtered, scheduler="sync")
    assert_same_model(model, GaussianModel().fit(X[X[:, 0] > np.median(X[:, 0])]))
    with pytest.raises(ValueError, match="no rows"):
        idist.fit_dask(GaussianModel(), dX[dX[:, 0] > 1e9], scheduler="sync")


def test_feature_axis_chunks_are_refused_or_rechunked(X):
    dX = da.from_array(X, chunks=(1000, 4))
    with pytest.raises(ValueError, match=r"chunked along the feature axis.*rechunk\(\{1: -1\}\)"):
        idist.fit_dask(GaussianModel(), dX, scheduler="sync")
    model = idist.fit_dask(GaussianModel(), dX, rechunk=True, scheduler="sync")
    assert_same_model(model, GaussianModel().fit(X))
    with pytest.raises(ValueError, match="feature axis"):
        idist.score_samples(model, dX)
    np.testing.assert_allclose(
        idist.mahalanobis(model, dX, rechunk=True).compute(scheduler="sync"), model.mahalanobis(X)
    )


def test_mixed_block_dtypes_are_refused(X):
    import dask

    parts = [
        da.from_delayed(dask.delayed(X[:2000]), shape=(2000, 8), dtype=np.float64),
        # declared float64 but really float32: a lying partition
        da.from_delayed(dask.delayed(X[2000:].astype(np.float32)), shape=(2000, 8),
                        dtype=np.float64),
    ]  # fmt: skip
    with pytest.raises(TypeError, match=r"block 1 \(rows 2000:4000\) has dtype float32.*mixed"):
        idist.fit_dask(GaussianModel(), da.concatenate(parts), scheduler="sync")


def test_bad_input(X):
    with pytest.raises(TypeError, match="must be a dask.array.Array, got ndarray"):
        idist.fit_dask(GaussianModel(), X)
    with pytest.raises(ValueError, match="2-D"):
        idist.fit_dask(GaussianModel(), da.from_array(X[:, 0]))
    with pytest.raises(TypeError, match="numeric dtype"):
        idist.fit_dask(GaussianModel(), da.from_array(X.astype(str)))
    with pytest.raises(TypeError, match="complex"):
        idist.fit_dask(GaussianModel(), da.from_array(X.astype(complex)))
    with pytest.raises(TypeError, match="fit_stats"):
        idist.fit_dask(object(), da.from_array(X))
    with pytest.raises(ValueError, match="shrinkage"):  # before any computation
        idist.fit_dask(GaussianModel(shrinkage="bogus"), da.from_array(X))
    with pytest.raises(ValueError, match="split_every"):
        idist.stats_from_dask(da.from_array(X), split_every=1)
    Xn = X.copy()
    Xn[3500, 2] = np.inf
    with pytest.raises(ValueError, match=r"block 3 \(rows 3000:4000\).*NaN or infinity"):
        idist.fit_dask(GaussianModel(), da.from_array(Xn, chunks=(1000, -1)), scheduler="sync")
    model = GaussianModel().fit(X)
    with pytest.raises(ValueError, match="has 5 features, but GaussianModel is expecting 8"):
        idist.score_samples(model, da.from_array(X[:, :5]))
    with pytest.raises(ValueError, match="not fitted"):
        idist.transform(GaussianModel(), da.from_array(X))
    with pytest.raises(ValueError, match="`method` must be one of"):
        idist.pvalues(model, da.from_array(X), "normal")


@pytest.mark.parametrize("calibration", ["split", None])
def test_cluster_fit_of_the_ood_detector_equals_in_memory(client, X, calibration):
    """MahalanobisOOD(method="global") on a 2-worker LocalCluster: the same held-out rows,
    the same Gaussian (to 1e-10), the same threshold; scoring stays lazy."""
    from infogauss import MahalanobisOOD

    dX = da.from_array(X, chunks=(300, -1))
    lazy = idist.fit_dask(MahalanobisOOD(random_state=3, calibration=calibration), dX,
                          scheduler=client)  # fmt: skip
    ref = MahalanobisOOD(random_state=3, calibration=calibration).fit(X)
    assert_same_model(lazy.model_, ref.model_)
    assert lazy.n_samples_seen_ == ref.n_samples_seen_
    assert lazy.offset_ == pytest.approx(ref.offset_, rel=1e-10)
    if calibration:
        np.testing.assert_allclose(lazy.calibration_scores_, ref.calibration_scores_, rtol=1e-10)
    scores = idist.score_samples(lazy, dX)
    assert isinstance(scores, da.Array)
    np.testing.assert_allclose(scores.compute(scheduler=client), ref.score_samples(X), rtol=1e-10)
    np.testing.assert_array_equal(idist.predict(lazy, dX).compute(scheduler=client),
                                  lazy.predict(X))


def test_fit_dask_refuses_what_it_cannot_fit_exactly(X):
    from infogauss import MahalanobisOOD

    dX = da.from_array(X, chunks=(1000, -1))
    with pytest.raises(ValueError, match="method='global' with statistic='distance' only"):
        idist.fit_dask(MahalanobisOOD(method="class"), dX)
    pytest.importorskip("pyod")
    from infogauss.anomaly import GaussianLikelihoodDetector

    with pytest.raises(TypeError, match="decision_scores_.*X.compute"):
        idist.fit_dask(GaussianLikelihoodDetector(), dX)
