"""CalibratedRetriever against scikit-learn's estimator checks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

pytest.importorskip("faiss")

from infogauss.retrieval import CalibratedRetriever  # noqa: E402

pytestmark = pytest.mark.faiss

_ONE_DIMENSION = (
    "the check sets n_components=1, a 1-dimensional whitened space, where every cosine is +1 "
    "or -1: fit refuses it with a ValueError naming n_components (the property the check "
    "tests is covered by test_fit_does_not_overwrite_parameters and the batch == row tests)"
)
EXPECTED_FAILURES = {
    # the signature is fit(database_embeddings, labels=None): labels are database item labels,
    # not a target, and renaming them y would misdescribe them
    "check_fit_score_takes_y": "fit(database_embeddings, labels=None) takes database labels",
    "check_dont_overwrite_parameters": _ONE_DIMENSION,
    "check_methods_sample_order_invariance": _ONE_DIMENSION,
    "check_methods_subset_invariance": _ONE_DIMENSION,
    "check_fit2d_predict1d": _ONE_DIMENSION,
}


@parametrize_with_checks(
    [
        CalibratedRetriever(),
        CalibratedRetriever(null="analytic"),
        CalibratedRetriever(index="hnsw", null="empirical", correction="evt"),
    ],
    expected_failed_checks=lambda estimator: EXPECTED_FAILURES,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("labels", [None, "int"])
def test_fit_does_not_overwrite_parameters(rng, labels):
    """What check_dont_overwrite_parameters tests, at a whitened dimension retrieval supports:
    fit changes no parameter, and every public attribute it adds ends with '_'."""
    X = 3 * rng.uniform(size=(40, 4))
    y = None if labels is None else X[:, 0].astype(int)
    est = CalibratedRetriever(index_params={"M": 8}, index="hnsw")
    params = {k: (dict(v) if isinstance(v, dict) else v) for k, v in est.get_params().items()}
    before = set(vars(est))
    est.fit(X, y)
    assert est.get_params() == params
    added = [a for a in set(vars(est)) - before if not a.startswith("_")]
    assert added and all(a.endswith("_") for a in added), added
    assert set(vars(clone(est))) == before


def test_one_whitened_dimension_is_refused_by_name(rng):
    """Issue 17: with a 1-D whitened space the error used to blame the labels."""
    X = rng.standard_normal((50, 3))
    for kwargs in ({"n_components": 1, "whiten": "pca"}, {}):
        data = X if kwargs else X[:, :1]
        with pytest.raises(ValueError, match="at least 2 whitened dimensions, got 1"):
            CalibratedRetriever(**kwargs).fit(data, np.arange(50) % 3)


def test_sparse_input_is_refused_by_name():
    from scipy import sparse

    X = np.eye(5, 3)
    for kind in (sparse.dok_array, sparse.csr_matrix, sparse.coo_array, sparse.lil_array):
        with pytest.raises(TypeError, match="sparse input is not supported"):
            CalibratedRetriever().fit(kind(X))


def test_failed_fit_leaves_the_estimator_as_it_was(rng):
    X = rng.standard_normal((200, 6)).astype(np.float32)
    r = CalibratedRetriever().fit(X)
    state = dict(vars(r))
    with pytest.raises(ValueError, match="at least 2 whitened dimensions"):
        r.fit(X[:, :1])
    assert vars(r).keys() == state.keys()
    assert all(vars(r)[k] is v for k, v in state.items())
    assert r.search(X[:2], 1).indices[:, 0].tolist() == [0, 1]
