"""A fitted ``CalibratedRetriever`` as (params, attrs, arrays) for :mod:`infogauss.persistence`.

Arrays: the nested GaussianModel's (prefixed ``model__``), the faiss index as
``faiss.serialize_index`` bytes (uint8), the unit raw database, the sorted database
Mahalanobis distances, the duplicate groups, the labels, the exact copy a compressed index is
rescored from, the empirical null's histogram and maxima, the isotonic calibrator's knots and,
for a user-built ``index`` parameter, that (empty) index. Everything else is JSON. Loading
checks every shape and the index's size, dimension and metric, so a file that passes its
checksum but was written inconsistently is refused too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import persistence
from ..model import GaussianModel
from . import _index
from ._result import CALIBRATORS
from .neighbour import NeighbourNull
from .nulls import AnalyticCosineNull, EmpiricalCosineNull

_MODEL = "model__"
_CAL = "relevance__"


def state(r: Any) -> tuple[dict, dict, dict]:
    params = r.get_params(deep=False)
    arrays: dict[str, np.ndarray] = {}
    if _index.index_kind(r.index) == "user":
        arrays["index_param"] = _index.serialize(r.index)
        params["index"] = None
    m_params, m_attrs, m_arrays = r.model_._state()
    arrays.update(persistence.prefixed(_MODEL, m_arrays))
    arrays["index"] = _index.serialize(r.index_)
    arrays["database_unit"] = r._database_unit
    arrays["database_m2"] = r._database_m2
    arrays["groups"] = r._groups
    if r.labels_ is not None:
        arrays["labels"] = r.labels_
    if r._exact_copy is not None:
        arrays["exact_copy"] = r._exact_copy
    attrs: dict[str, Any] = {
        "model": {"params": m_params, "attrs": m_attrs},
        "n_features_in_": int(r.n_features_in_),
        "feature_names_in_": [str(f) for f in getattr(r, "feature_names_in_", [])] or None,
        "dim_": int(r.dim_),
        "n_database_": int(r.n_database_),
        "n_fit": int(r._n_fit),
        "ood_law": r._ood_law,
        "index_params_": dict(r.index_params_),
        "index_param_is_index": "index_param" in arrays,
    }
    if isinstance(r.null_, EmpiricalCosineNull):
        arrays["null_counts"] = r.null_.counts
        arrays["null_maxima"] = r.null_.maxima
        attrs["null"] = {
            "kind": "empirical", "n_candidates": r.null_.n_candidates,
            "gev_shape": r.null_.gev_shape, "gev_loc": r.null_.gev_loc,
            "gev_scale": r.null_.gev_scale,
        }  # fmt: skip
    elif isinstance(r.null_, NeighbourNull):
        arrays["null_whitened"] = r.null_.whitened
        if r.null_.raw is not None:
            arrays["null_raw"] = r.null_.raw
            arrays["null_fused"] = r.null_.fused
        attrs["null"] = {"kind": "neighbour", "n_reference": r.null_.n_reference,
                         "n_candidates": r.null_.n_candidates}  # fmt: skip
    else:
        attrs["null"] = {"kind": "analytic", "dim": int(r.null_.dim)}
    if r._relevance is not None:
        cal_attrs, cal_arrays = r._relevance.state()
        arrays.update(persistence.prefixed(_CAL, cal_arrays))
        attrs["relevance"] = {
            "method": r.relevance_method_, "attrs": cal_attrs,
            "ece": r.relevance_ece_, "brier": r.relevance_brier_,
        }  # fmt: skip
    return params, attrs, arrays


def _expect(path: Any, arrays: dict, key: str, shape: tuple, kinds: str) -> np.ndarray:
    a = arrays.get(key)
    if a is None:
        raise persistence.ModelFileError(path, f"is missing array {key!r}")
    if a.shape != shape or a.dtype.kind not in kinds:
        raise persistence.ModelFileError(
            path, f"array {key} has shape {a.shape} and dtype {a.dtype}, expected {shape}"
        )
    return a


def from_state(cls: type, path: Any, meta: dict, arrays: dict) -> Any:
    err = persistence.ModelFileError
    params = persistence.check_params(path, cls, dict(meta["params"]))
    attrs = meta["attrs"]
    try:
        if attrs.get("index_param_is_index"):
            params["index"] = _index.deserialize(arrays["index_param"])
        r = cls(**params)
        r._validate_params_()
        model_meta = {"params": attrs["model"]["params"], "attrs": attrs["model"]["attrs"]}
        n, d, dim = int(attrs["n_database_"]), int(attrs["n_features_in_"]), int(attrs["dim_"])
        n_fit = int(attrs["n_fit"])
        ood_law, index_params, null_meta = attrs["ood_law"], attrs["index_params_"], attrs["null"]
    except err:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise err(path, f"has invalid parameters or attributes: {exc!r}") from exc
    model = GaussianModel._from_state(path, model_meta, persistence.sub_state(_MODEL, arrays))
    if model.n_features_in_ != d or not (2 <= dim <= d) or not (2 <= n_fit <= n):
        raise err(path, f"has inconsistent sizes (n_features_in_={d}, dim_={dim}, n={n})")
    if ood_law not in ("f", "empirical") or not isinstance(index_params, dict):
        raise err(path, "has an invalid ood_law or index_params_")
    unit = _expect(path, arrays, "database_unit", (n, d), "f")
    m2 = _expect(path, arrays, "database_m2", (n,), "f")
    groups = _expect(path, arrays, "groups", (n,), "i").astype(np.int64)
    if np.any(groups > np.arange(n)) or np.any(groups < 0) or np.any(groups[groups] != groups):
        raise err(path, "array groups does not describe duplicate groups")
    labels = _expect(path, arrays, "labels", (n,), "biufU") if "labels" in arrays else None
    exact_copy = None
    if "exact_copy" in arrays:
        exact_copy = np.ascontiguousarray(_expect(path, arrays, "exact_copy", (n, dim), "f"))
    try:
        index = _index.deserialize(arrays["index"])
        _index.check_loaded(index, dim, n)
        if exact_copy is None and not _index.is_exact(index):
            raise ValueError("a compressed index needs its exact copy, which is missing")
        if null_meta.get("kind") == "empirical":
            counts = arrays["null_counts"]
            maxima = arrays["null_maxima"]
            if counts.ndim != 1 or counts.dtype.kind not in "iu" or np.any(counts < 0):
                raise ValueError("array null_counts is not a histogram")
            if maxima.ndim != 1 or maxima.size < 2 or maxima.dtype != np.float64:
                raise ValueError("array null_maxima is not a sample of maxima")
            null = EmpiricalCosineNull(
                counts=counts.astype(np.int64), maxima=maxima,
                n_candidates=float(null_meta["n_candidates"]),
                gev_shape=float(null_meta["gev_shape"]), gev_loc=float(null_meta["gev_loc"]),
                gev_scale=float(null_meta["gev_scale"]),
            )  # fmt: skip
        elif null_meta.get("kind") == "neighbour":
            null = _neighbour_null(arrays, null_meta, n)
        elif null_meta.get("kind") == "analytic":
            null = AnalyticCosineNull(int(null_meta["dim"]))
        else:
            raise ValueError(f"unknown null kind {null_meta.get('kind')!r}")
        relevance = None
        rel = attrs.get("relevance")
        if rel is not None:
            relevance = CALIBRATORS[rel["method"]].from_state(
                rel["attrs"], persistence.sub_state(_CAL, arrays)
            )
    except err:
        raise
    except KeyError as exc:
        raise err(path, f"is missing the array or metadata entry {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise err(path, str(exc) if isinstance(exc, ValueError) else repr(exc)) from exc
    if null_meta["kind"] != r.null:
        raise err(path, f"its null ({null_meta['kind']}) does not match null={r.null!r}")
    r.model_, r.index_, r.index_params_, r.null_ = model, index, index_params, null
    r.dim_, r.n_database_, r.n_features_in_, r.labels_ = dim, n, d, labels
    if attrs.get("feature_names_in_"):
        r.feature_names_in_ = np.asarray(attrs["feature_names_in_"], dtype=object)
    r._ood_law, r._n_fit = ood_law, n_fit
    r._database_m2, r._database_unit = m2, np.ascontiguousarray(unit, dtype=np.float32)
    r._exact_copy, r._relevance = exact_copy, relevance
    r._set_groups(groups)
    if rel is not None:
        r.relevance_method_ = rel["method"]
        r.relevance_ece_, r.relevance_brier_ = float(rel["ece"]), float(rel["brier"])
    return r


def _neighbour_null(arrays: dict, meta: dict, n: int) -> NeighbourNull:
    """The neighbour null's sorted samples, checked (a ValueError says what is wrong)."""
    n_ref, n_cand = int(meta["n_reference"]), int(meta["n_candidates"])
    if not (1 <= n_ref < n_cand < n):
        raise ValueError(f"the neighbour null has invalid sizes K={n_ref}, C={n_cand}")
    samples = [arrays["null_whitened"]]
    if "null_raw" in arrays or "null_fused" in arrays:
        samples += [arrays["null_raw"], arrays["null_fused"]]
    for a in samples:
        if (a.ndim != 1 or a.dtype != np.float64 or a.shape != samples[0].shape or a.size < 2
                or not np.isfinite(a).all() or np.any(np.diff(a) < 0)):  # fmt: skip
            raise ValueError("the neighbour null's samples are not sorted finite float64 arrays")
    raw, fused = (samples[1], samples[2]) if len(samples) == 3 else (None, None)
    return NeighbourNull(samples[0], raw, fused, n_ref, n_cand)
