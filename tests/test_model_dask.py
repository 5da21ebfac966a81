"""Dask has one entry point (infogauss.distributed); the estimators refuse lazy arrays clearly."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from infogauss import GaussianModel, MahalanobisOOD
from tests.conftest import correlated_gaussian

da = pytest.importorskip("dask.array")
pytestmark = pytest.mark.dask


def test_fit_and_score_dask_array_through_the_one_entry_point(rng):
    import dask

    from infogauss import distributed

    X = correlated_gaussian(rng, 2000, 6, offset=2.0)
    dX = da.from_array(X, chunks=(300, 6))
    with dask.config.set(scheduler="threads"):
        lazy = distributed.fit_dask(GaussianModel(shrinkage="oas"), dX)
        ref = GaussianModel(shrinkage="oas").fit(X)
        np.testing.assert_allclose(lazy.covariance_, ref.covariance_, rtol=0, atol=1e-10)
        assert lazy.shrinkage_ == pytest.approx(ref.shrinkage_, abs=1e-12)
        for method in ("score_samples", "mahalanobis", "transform", "pvalues"):
            out = getattr(distributed, method)(lazy, dX)
            assert isinstance(out, da.Array), method
            np.testing.assert_allclose(out.compute(), getattr(ref, method)(X), rtol=1e-10)


@pytest.mark.parametrize("estimator", [GaussianModel(), MahalanobisOOD()])
def test_estimators_refuse_dask_arrays_without_computing_them(rng, estimator):
    X = correlated_gaussian(rng, 200, 3)
    computed = []

    def spy(block):
        computed.append(block.shape)
        return block

    dX = da.from_array(X, chunks=(50, 3)).map_blocks(spy)
    computed.clear()  # map_blocks calls spy on empty arrays to infer the output's meta
    with pytest.raises(TypeError, match=r"`X` is a lazy dask.*infogauss.distributed.fit_dask"):
        estimator.fit(dX)
    fitted = GaussianModel().fit(X)
    with pytest.raises(TypeError, match="`X` is a lazy dask"):
        fitted.score_samples(dX)
    assert computed == []


def test_model_module_imports_nothing_of_dask():
    code = ("import sys, infogauss.model, infogauss.ood; "
            "sys.exit(int(any(m.split('.')[0] == 'dask' for m in sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
