"""GaussianModel takes dask arrays directly (through infogauss.distributed)."""

from __future__ import annotations

import numpy as np
import pytest

from infogauss import GaussianModel
from tests.conftest import correlated_gaussian

da = pytest.importorskip("dask.array")
pytestmark = pytest.mark.dask


def test_fit_and_score_dask_array(rng):
    import dask

    X = correlated_gaussian(rng, 2000, 6, offset=2.0)
    dX = da.from_array(X, chunks=(300, 6))
    with dask.config.set(scheduler="threads"):
        lazy = GaussianModel(shrinkage="oas").fit(dX)
        ref = GaussianModel(shrinkage="oas").fit(X)
        np.testing.assert_allclose(lazy.covariance_, ref.covariance_, rtol=0, atol=1e-10)
        assert lazy.shrinkage_ == pytest.approx(ref.shrinkage_, abs=1e-12)
        for method in ("score_samples", "mahalanobis", "transform", "pvalues"):
            out = getattr(lazy, method)(dX)
            assert isinstance(out, da.Array), method
            np.testing.assert_allclose(out.compute(), getattr(ref, method)(X), rtol=1e-10)
