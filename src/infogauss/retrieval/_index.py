"""The faiss index over unit whitened vectors (the only ``import faiss`` in infogauss).

``index`` may be a registered name (``"flat"``, ``"ivf"``, ``"hnsw"``: one entry each in
:data:`_NAMED`), any :func:`faiss.index_factory` description (built with the inner-product
metric), or a user-built, empty inner-product :class:`faiss.Index` (trained or not; it is
cloned, never modified). Search parameters (``nprobe`` for IVF, ``efSearch`` for HNSW) are
passed per call as faiss ``SearchParameters``, so a search never changes the index.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

try:
    import faiss
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "infogauss.retrieval.CalibratedRetriever needs faiss, which is not installed: "
        "pip install 'infogauss[faiss]' (or install faiss-cpu / faiss-gpu directly)"
    ) from exc

from .._validation import check_positive_int

__all__ = ["INDEX_TYPES"]


@dataclass(frozen=True)
class _Named:
    """One registered index type: defaults, its factory string, how to configure it."""

    keys: tuple[str, ...]  # accepted index_params
    defaults: Callable[[int, dict], dict]  # (n_database, user params) -> full params
    factory: Callable[[dict], str]  # params -> faiss.index_factory description
    configure: Callable[[Any, dict], None]  # before train/add


def _default_nlist(n: int) -> int:
    return int(max(1, min(round(4 * math.sqrt(n)), n // 39)))


def _ivf_defaults(n: int, user: dict) -> dict:
    nlist = user.get("nlist", _default_nlist(n))
    if nlist > n:
        raise ValueError(f"`index_params['nlist']` must be <= the database size ({n}), got {nlist}")
    return {"nlist": nlist, "nprobe": min(user.get("nprobe", min(nlist, 32)), nlist)}


def _configure_hnsw(index: Any, params: dict) -> None:
    faiss.downcast_index(index).hnsw.efConstruction = params["efConstruction"]


_NAMED: dict[str, _Named] = {
    "flat": _Named((), lambda n, user: {}, lambda p: "Flat", lambda index, p: None),
    "ivf": _Named(("nlist", "nprobe"), _ivf_defaults, lambda p: f"IVF{p['nlist']},Flat",
                  lambda index, p: None),
    "hnsw": _Named(
        ("M", "efConstruction", "efSearch"),
        lambda n, user: {"M": 32, "efConstruction": 40, "efSearch": 64, **user},
        lambda p: f"HNSW{p['M']},Flat",
        _configure_hnsw,
    ),
}  # fmt: skip
INDEX_TYPES = tuple(_NAMED)
_SEARCH_KEYS = ("nprobe", "efSearch")  # index_params of factory strings and user-built indexes
# indexes whose inner products are those of the stored float32 vectors (no compression)
_EXACT_TYPES = (faiss.IndexFlat, faiss.IndexIVFFlat, faiss.IndexHNSWFlat, faiss.IndexRefineFlat)


def index_kind(index: Any) -> str:
    """``"flat"``/``"ivf"``/``"hnsw"``, ``"factory"`` (another string) or ``"user"``."""
    if isinstance(index, str):
        return index if index in _NAMED else "factory"
    if isinstance(index, faiss.Index):
        return "user"
    raise TypeError(
        f"`index` must be one of {INDEX_TYPES}, a faiss.index_factory string or an empty "
        f"faiss.Index with the inner-product metric, got {type(index).__name__}"
    )


def check_index_param(index: Any, index_params: Any) -> str:
    """Validate ``index`` and ``index_params`` before any data is seen; return the kind."""
    kind = index_kind(index)
    if index_params is not None and not isinstance(index_params, dict):
        raise TypeError(f"`index_params` must be a dict or None, got {type(index_params).__name__}")
    allowed = _NAMED[kind].keys if kind in _NAMED else _SEARCH_KEYS
    unknown = sorted(set(index_params or {}) - set(allowed))
    if unknown:
        what = f"index={index!r}" if kind != "user" else "a user-built index"
        raise ValueError(f"`index_params` for {what} accepts {list(allowed)}, got unknown {unknown}")
    for key, value in (index_params or {}).items():
        check_positive_int(value, f"index_params[{key!r}]")
    if kind == "user":
        if index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise ValueError(
                "`index` must use the inner-product metric (faiss.METRIC_INNER_PRODUCT), got "
                f"metric_type={index.metric_type}: p-values are laws of cosines, which are the "
                "inner products of the unit vectors the retriever adds"
            )
        if index.ntotal != 0:
            raise ValueError(
                f"`index` must be empty (the retriever adds the database; row i gets id i), got "
                f"an index holding {index.ntotal} vectors"
            )
    return kind


def _unwrap(index: Any) -> Any:
    """The index under pre-transforms and refinement (where IVF/HNSW settings live)."""
    index = faiss.downcast_index(index)
    while isinstance(index, (faiss.IndexPreTransform, faiss.IndexRefine)):
        inner = index.index if isinstance(index, faiss.IndexPreTransform) else index.base_index
        index = faiss.downcast_index(inner)
    return index


def describe(index: Any) -> str:
    return type(faiss.downcast_index(index)).__name__


def build_index(
    index: Any, index_params: dict | None, Z: np.ndarray, seed: int | None
) -> tuple[Any, dict, bool]:
    """Build, train and fill the index over ``Z``; return ``(index, params, exact)``.

    ``params`` holds the resolved construction and search parameters (``nprobe``/``efSearch``
    defaults for IVF/HNSW structures); ``exact`` says whether the index returns the inner
    products of the stored vectors (otherwise the caller rescores).
    """
    n, dim = Z.shape
    kind = index_kind(index)
    user = dict(index_params or {})
    if kind in _NAMED:
        params = _NAMED[kind].defaults(n, user)
        built = faiss.index_factory(dim, _NAMED[kind].factory(params), faiss.METRIC_INNER_PRODUCT)
        _NAMED[kind].configure(built, params)
    elif kind == "factory":
        try:
            built = faiss.index_factory(dim, index, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise ValueError(
                f"`index` must be one of {INDEX_TYPES} or a valid faiss.index_factory string; "
                f"{index!r} is neither: {_faiss_message(exc)}"
            ) from exc
        params = {"factory": index}
    else:
        if index.d != dim:
            raise ValueError(
                f"`index` has dimension {index.d}, but the whitened database has {dim} "
                "dimensions (dim_); build it with d = dim_"
            )
        built = faiss.clone_index(index)
        params = {}
    inner = _unwrap(built)
    ivf = faiss.try_extract_index_ivf(built)
    if ivf is not None:
        ivf.cp.seed = 1234 if seed is None else int(seed)
        params.setdefault("nprobe", user.get("nprobe", ivf.nprobe if kind == "user" else
                                             min(ivf.nlist, 32)))  # fmt: skip
        params["nprobe"] = min(params["nprobe"], ivf.nlist)
    if isinstance(inner, faiss.IndexHNSW):
        params.setdefault("efSearch", user.get("efSearch", inner.hnsw.efSearch if kind == "user"
                                               else 64))  # fmt: skip
    try:
        if not built.is_trained:
            built.train(Z)
        built.add(Z)
    except RuntimeError as exc:
        raise ValueError(f"faiss could not build the index {describe(built)}: "
                         f"{_faiss_message(exc)}") from exc  # fmt: skip
    return built, params, is_exact(built)


def is_exact(index: Any) -> bool:
    """Whether ``index`` returns the inner products of the stored vectors (no compression)."""
    top = faiss.downcast_index(index)
    return isinstance(top, _EXACT_TYPES) and not isinstance(top, faiss.IndexPreTransform)


def search_parameters(
    index: Any, params: dict, k: int, nprobe: int | None, ef_search: int | None
) -> tuple[Any, list]:
    """faiss SearchParameters for one call (and the objects to keep alive while it runs)."""
    inner = _unwrap(index)
    is_ivf = faiss.try_extract_index_ivf(index) is not None
    is_hnsw = isinstance(inner, faiss.IndexHNSW)
    if nprobe is not None:
        nprobe = check_positive_int(nprobe, "nprobe")
        if not is_ivf:
            raise ValueError(f"`nprobe` applies to IVF indexes only; this index is {describe(index)}")
    if ef_search is not None:
        ef_search = check_positive_int(ef_search, "ef_search")
        if not is_hnsw:
            raise ValueError(
                f"`ef_search` applies to HNSW indexes only; this index is {describe(index)}"
            )
    if is_ivf:
        base = faiss.SearchParametersIVF(nprobe=nprobe or params["nprobe"])
    elif is_hnsw:
        base = faiss.SearchParametersHNSW(efSearch=max(ef_search or params["efSearch"], k))
    else:
        return None, []
    keep = [base]
    layer, wrapped = faiss.downcast_index(index), base
    chain = []
    while isinstance(layer, (faiss.IndexPreTransform, faiss.IndexRefine)):
        chain.append(layer)
        inner = layer.index if isinstance(layer, faiss.IndexPreTransform) else layer.base_index
        layer = faiss.downcast_index(inner)
    for layer in reversed(chain):
        if isinstance(layer, faiss.IndexRefine):
            wrapped = faiss.IndexRefineSearchParameters(base_index_params=wrapped,
                                                        k_factor=layer.k_factor)  # fmt: skip
        else:
            wrapped = faiss.SearchParametersPreTransform(index_params=wrapped)
        keep.append(wrapped)
    return wrapped, keep


def search(
    index: Any, Z: np.ndarray, k: int, params: dict, *, nprobe: int | None = None,
    ef_search: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Top-``k`` inner products and ids (int64; -1 = missing) of the rows of ``Z``."""
    sp, _keep = search_parameters(index, params, k, nprobe, ef_search)
    sims, ids = index.search(Z, k, params=sp)
    return sims, ids.astype(np.int64, copy=False)


def add(index: Any, Z: np.ndarray) -> None:
    try:
        index.add(Z)
    except RuntimeError as exc:
        raise ValueError(f"faiss could not add to the index {describe(index)}: "
                         f"{_faiss_message(exc)}") from exc  # fmt: skip


def serialize(index: Any) -> np.ndarray:
    """The index as a uint8 array (``faiss.serialize_index``)."""
    return np.asarray(faiss.serialize_index(index), dtype=np.uint8)


def deserialize(data: np.ndarray) -> Any:
    try:
        return faiss.deserialize_index(np.ascontiguousarray(data, dtype=np.uint8))
    except RuntimeError as exc:
        raise ValueError(f"faiss could not read the index: {_faiss_message(exc)}") from exc


def check_loaded(index: Any, dim: int, ntotal: int | None) -> None:
    """Raise ValueError unless ``index`` is a trained inner-product index of ``dim`` dims."""
    if not isinstance(index, faiss.Index):
        raise ValueError(f"the stored index is a {type(index).__name__}, not a faiss.Index")
    if index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise ValueError(f"the stored index has metric_type {index.metric_type}, not inner product")
    if index.d != dim:
        raise ValueError(f"the stored index has dimension {index.d}, expected {dim}")
    if ntotal is not None and (index.ntotal != ntotal or not index.is_trained):
        raise ValueError(f"the stored index holds {index.ntotal} vectors, expected {ntotal}")


def _faiss_message(exc: Exception) -> str:
    """The informative last line of a faiss C++ error."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
