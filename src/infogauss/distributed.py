r"""Dask adapters: fit on a ``dask.array`` and score it lazily (the only module importing dask).

The Gaussian's sufficient statistics (:class:`~infogauss.GaussianStats`) merge exactly, so a
fit maps onto Dask as a tree reduction: every block (partition of rows) becomes one
``GaussianStats`` task, and these are merged ``split_every`` at a time until one remains,
which :meth:`GaussianModel.fit_stats` turns into the model. The result equals the in-memory
``GaussianModel().fit(X.compute())`` up to float64 rounding (tested to 1e-10), with the
threaded scheduler or a ``dask.distributed`` cluster alike; a lost worker only makes Dask
recompute the partitions it held. Scoring returns lazy dask arrays built with
``map_blocks``, one call of the model's own method per block (no formula is repeated here).

Install with ``pip install 'infogauss[dask]'``.

Examples
--------
>>> import numpy as np, dask.array as da
>>> from infogauss import GaussianModel
>>> from infogauss.distributed import fit_dask, score_samples
>>> X = np.random.default_rng(0).normal(size=(1000, 3))
>>> dX = da.from_array(X, chunks=(250, 3))
>>> model = fit_dask(GaussianModel(), dX, scheduler="threads")
>>> bool(np.allclose(model.covariance_, GaussianModel().fit(X).covariance_, atol=1e-12))
True
>>> score_samples(model, dX).shape
(1000,)
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

try:
    import dask
    import dask.array as da
    from dask.delayed import Delayed
except ImportError as exc:  # pragma: no cover - exercised only without dask
    raise ImportError(
        "infogauss.distributed needs dask; install it with `pip install 'infogauss[dask]'`"
    ) from exc

from . import gaussian as core
from . import streaming

__all__ = [
    "stats_from_dask",
    "fit_dask",
    "decision_function",
    "predict",
    "score_samples",
    "mahalanobis",
    "pvalues",
    "transform",
    "from_npy",
]

_DEFAULT_SPLIT_EVERY = 16


# --------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------
def _check_dask_array(X: Any, name: str, *, rechunk: bool) -> da.Array:
    """A 2-D real dask array whose blocks each hold whole rows (one chunk along axis 1)."""
    if not isinstance(X, da.Array):
        hint = ""
        if dask.is_dask_collection(X) and hasattr(X, "to_dask_array"):
            hint = "; convert a dask DataFrame with `.to_dask_array(lengths=True)`"
        elif isinstance(X, np.ndarray):
            hint = "; for in-memory arrays use GaussianModel.fit / infogauss.streaming"
        raise TypeError(f"`{name}` must be a dask.array.Array, got {type(X).__name__}{hint}")
    if X.dtype.kind == "c":
        raise TypeError(f"`{name}` must be real-valued, got complex dtype {X.dtype}")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must hold numbers (a numeric dtype), got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(
            f"`{name}` must be a 2-D dask array (n_samples, n_features), got shape {X.shape}"
        )
    if math.isnan(X.shape[1]):
        raise ValueError(
            f"`{name}` has an unknown number of columns; compute its chunk sizes first "
            "(e.g. `X.compute_chunk_sizes()`)"
        )
    if X.shape[1] == 0:
        raise ValueError(f"`{name}` must have at least 1 feature (column), got 0")
    if len(X.chunks[1]) > 1:
        if not rechunk:
            raise ValueError(
                f"`{name}` is chunked along the feature axis (column chunks {X.chunks[1]}), "
                "but every block must hold whole rows: the statistics of a row need all its "
                f"features. Rechunk first with `{name}.rechunk({{1: -1}})` or pass "
                "rechunk=True (blocks then hold all columns; shrink the row chunks if they "
                "become too large)"
            )
        X = X.rechunk({1: -1})
    return X


def _check_model_fitted(model: Any) -> int:
    d = getattr(model, "n_features_in_", None)
    if d is None or not (hasattr(model, "cholesky_") or hasattr(model, "model_")):
        raise ValueError(f"`model` ({type(model).__name__}) is not fitted; fit it first")
    return int(d)


# --------------------------------------------------------------------------------------
# Fitting: per-block statistics merged in a tree
# --------------------------------------------------------------------------------------
def _block_stats(
    block: np.ndarray, where: str, dtype: str, width: int
) -> core.GaussianStats | None:
    """Statistics of one block (None for an empty block); checks it matches its array."""
    if block.dtype != np.dtype(dtype):
        raise TypeError(
            f"`X` {where} has dtype {block.dtype}, but the dask array declares {dtype}; "
            "mixed dtypes across chunks are refused (cast with `X.astype(...)` so every "
            "block really has one dtype)"
        )
    if block.ndim != 2 or block.shape[1] != width:
        raise ValueError(
            f"`X` {where} has shape {block.shape}, but the dask array declares {width} columns; "
            "every block must have the same number of columns"
        )
    if block.shape[0] == 0:
        return None
    return core.stats_from_chunks([block], name=f"X {where}", blocks=False)


def _merge_many(*parts: core.GaussianStats | None) -> core.GaussianStats | None:
    total = None
    for part in parts:
        if part is not None:
            total = part if total is None else core.merge_stats(total, part)
    return total


def _final(total: core.GaussianStats | None) -> core.GaussianStats:
    if total is None:
        raise ValueError("`X` has no rows (every block is empty)")
    return total


def stats_from_dask(
    X: Any, *, rechunk: bool = False, split_every: int | None = None
) -> Delayed:
    """Lazy sufficient statistics of a dask array, as a tree reduction over its blocks.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Real numbers; NaN and infinity are refused when the blocks are computed.
    rechunk : bool, default=False
        If ``X`` is chunked along the feature axis, rechunk it to whole rows
        (``X.rechunk({1: -1})``) instead of refusing it.
    split_every : int, optional
        Fan-in of the merge tree (default 16): each merge task combines this many
        statistics, so the tree has ``ceil(log(n_blocks) / log(split_every))`` levels.

    Returns
    -------
    dask.delayed.Delayed
        Computes to a :class:`~infogauss.GaussianStats` equal to
        ``stats_from_array(X.compute())`` up to float64 rounding. Compute it with
        ``.compute()`` (default scheduler, or the active ``dask.distributed`` client) or
        ``client.compute(...)``.
    """
    X = _check_dask_array(X, "X", rechunk=rechunk)
    fan_in = _DEFAULT_SPLIT_EVERY if split_every is None else split_every
    if isinstance(fan_in, bool) or not isinstance(fan_in, (int, np.integer)) or fan_in < 2:
        raise ValueError(f"`split_every` must be an integer >= 2, got {split_every!r}")
    blocks = X.to_delayed(optimize_graph=True)[:, 0]
    row_chunks = X.chunks[0]
    known = not any(math.isnan(c) for c in row_chunks)
    starts = np.concatenate([[0], np.cumsum(row_chunks)]).astype(np.int64) if known else None
    dtype, width = str(X.dtype), int(X.shape[1])
    parts = []
    for i, block in enumerate(blocks):
        where = f"block {i}" + (f" (rows {starts[i]}:{starts[i + 1]})" if known else "")
        parts.append(dask.delayed(_block_stats, pure=True)(block, where, dtype, width))
    while len(parts) > 1:
        parts = [
            dask.delayed(_merge_many, pure=True)(*parts[i : i + fan_in])
            for i in range(0, len(parts), fan_in)
        ]
    return dask.delayed(_final, pure=True)(parts[0])


def fit_dask(
    model: Any,
    X: Any,
    *,
    rechunk: bool = False,
    split_every: int | None = None,
    **compute_kwargs: Any,
) -> Any:
    """Fit ``model`` to a dask array: per-block statistics merged in a tree reduction.

    The one dask entry point for fitting. ``MahalanobisOOD(method="global")`` is fitted as
    its in-memory ``fit`` would be (the same held-out calibration rows for the same
    ``random_state``); score it lazily with :func:`score_samples`, :func:`decision_function`
    or :func:`predict`.

    Parameters
    ----------
    model : GaussianModel, any estimator with ``fit_stats``, or MahalanobisOOD
        Fitted in place (its parameters — shrinkage, whitening — are used as in ``fit``).
    X : dask.array.Array of shape (n_samples, n_features)
    rechunk : bool, default=False
        Rechunk feature-axis splits to whole rows instead of refusing them.
    split_every : int, optional
        Fan-in of the merge tree (default 16).
    **compute_kwargs
        Passed to ``dask.compute`` (e.g. ``scheduler="threads"``). With a
        ``dask.distributed.Client`` active, it runs on that cluster.

    Returns
    -------
    model
        Fitted; identical to ``model.fit(X.compute())`` up to float64 rounding.
    """
    if hasattr(model, "_fit_global_stats"):  # MahalanobisOOD
        return _fit_detector(model, X, rechunk, split_every, compute_kwargs)
    if type(model).__name__ == "GaussianLikelihoodDetector":
        raise TypeError(
            "fit_dask does not fit GaussianLikelihoodDetector: the PyOD protocol keeps the score "
            "of every training row (decision_scores_) in memory; fit it on X.compute(), or fit "
            "MahalanobisOOD(method='global') with fit_dask for a detector that scores lazily"
        )
    if not hasattr(model, "fit_stats"):
        raise TypeError(
            f"`model` must be an estimator with a fit_stats method (e.g. GaussianModel) or a "
            f"MahalanobisOOD, got {type(model).__name__}"
        )
    check = getattr(model, "_validate_params_", None)
    if check is not None:  # fail on bad parameters before a long computation
        check()
    (stats,) = dask.compute(
        stats_from_dask(X, rechunk=rechunk, split_every=split_every), **compute_kwargs
    )
    return model.fit_stats(stats)


def _fit_detector(det: Any, X: Any, rechunk: bool, split_every: Any, compute_kwargs: dict) -> Any:
    """MahalanobisOOD(method="global") on a dask array: the held-out split and the fit as the
    in-memory ``fit`` makes them (same rows for the same ``random_state``), statistics by a
    tree reduction, calibration scores computed block by block."""
    from sklearn.utils import check_random_state

    det._validate_params_()
    X = _check_dask_array(X, "X", rechunk=rechunk)
    n = X.shape[0]
    if math.isnan(n):
        raise ValueError("`X` has unknown chunk sizes; compute them first (X.compute_chunk_sizes())")
    if det.method != "global" or det.statistic != "distance":
        det._fit_global_stats(None)  # raises the message naming what is supported
    fit_idx, cal_idx = det._split(int(n), None, check_random_state(det.random_state))
    X_fit = X if cal_idx is None else X[fit_idx]
    (stats,) = dask.compute(
        stats_from_dask(X_fit, split_every=split_every), **compute_kwargs
    )
    det._fit_global_stats(stats)
    if cal_idx is None:
        (scores,) = dask.compute(_map_rows(det, X_fit, "score_samples", False), **compute_kwargs)
        det.offset_ = float(np.percentile(scores, 100.0 * det.contamination))
    else:
        (scores,) = dask.compute(_map_rows(det, X[cal_idx], "score_samples", False),
                                 **compute_kwargs)  # fmt: skip
        det._set_calibration(scores)
    return det


def decision_function(model: Any, X: Any, *, rechunk: bool = False) -> da.Array:
    """Lazy ``model.decision_function`` of each row (e.g. a fitted MahalanobisOOD)."""
    return _map_rows(model, X, "decision_function", rechunk)


def predict(model: Any, X: Any, *, rechunk: bool = False) -> da.Array:
    """Lazy ``model.predict`` of each row (+1 in-distribution, -1 OOD for MahalanobisOOD)."""
    return _map_rows(model, X, "predict", rechunk).astype(np.int64)


# --------------------------------------------------------------------------------------
# Lazy scoring
# --------------------------------------------------------------------------------------
def _apply_block(
    block: np.ndarray, model: Any, method: str, kwargs: dict, tail: tuple, dtype: str
) -> np.ndarray:
    if block.shape[0] == 0:
        return np.empty((0, *tail), dtype=dtype)
    return getattr(model, method)(block, **kwargs)


def _map_rows(
    model: Any, X: Any, method: str, rechunk: bool, kwargs: dict | None = None
) -> da.Array:
    kwargs = kwargs or {}
    d = _check_model_fitted(model)
    X = _check_dask_array(X, "X", rechunk=rechunk)
    if X.shape[1] != d:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(model).__name__} is expecting {d} "
            "features as input"
        )
    if method == "transform":
        # the output dtype follows the model's rule for this input dtype
        probe = getattr(model, method)(np.zeros((1, d), dtype=X.dtype))
        k, dt = probe.shape[1], probe.dtype
        return X.map_blocks(
            _apply_block, model, method, kwargs, (k,), str(dt),
            chunks=(X.chunks[0], (k,)), dtype=dt, meta=np.empty((0, 0), dtype=dt),
        )  # fmt: skip
    return X.map_blocks(
        _apply_block, model, method, kwargs, (), "float64",
        drop_axis=1, chunks=(X.chunks[0],), dtype=np.float64,
        meta=np.empty((0,), dtype=np.float64),
    )  # fmt: skip


def score_samples(model: Any, X: Any, *, rechunk: bool = False) -> da.Array:
    """Lazy Gaussian log-density of each row (nats; higher = more normal).

    Parameters
    ----------
    model : fitted GaussianModel
    X : dask.array.Array of shape (n_samples, n_features)
    rechunk : bool, default=False
        Rechunk feature-axis splits instead of refusing them.

    Returns
    -------
    dask.array.Array of shape (n_samples,), float64
        Equal to ``model.score_samples(X.compute())``; nothing is computed yet.
    """
    return _map_rows(model, X, "score_samples", rechunk)


def mahalanobis(model: Any, X: Any, *, rechunk: bool = False) -> da.Array:
    """Lazy **squared** Mahalanobis distances (larger = farther from the mean).

    Returns
    -------
    dask.array.Array of shape (n_samples,), float64
        Equal to ``model.mahalanobis(X.compute())``.
    """
    return _map_rows(model, X, "mahalanobis", rechunk)


def pvalues(model: Any, X: Any, method: str = "f", *, rechunk: bool = False) -> da.Array:
    """Lazy upper-tail p-values of the squared distances (small = atypical).

    ``method`` is as in :meth:`GaussianModel.pvalues` (``"f"``, ``"beta"`` or ``"chi2"``).

    Returns
    -------
    dask.array.Array of shape (n_samples,), float64
    """
    if method not in core.PVALUE_METHODS:
        raise ValueError(f"`method` must be one of {core.PVALUE_METHODS}, got {method!r}")
    return _map_rows(model, X, "pvalues", rechunk, {"method": method})


def transform(model: Any, X: Any, *, rechunk: bool = False) -> da.Array:
    """Lazy whitened rows ``(X - location_) @ whitening_``.

    Returns
    -------
    dask.array.Array of shape (n_samples, n_components)
        float32 for float32 input (unless the model's ``dtype`` says otherwise), else
        float64; equal to ``model.transform(X.compute())``.
    """
    return _map_rows(model, X, "transform", rechunk)


# --------------------------------------------------------------------------------------
# Reading .npy files as dask arrays
# --------------------------------------------------------------------------------------
class _NpyRows:
    """Array-like view of a 2-D ``.npy`` file whose slices are read with explicit file
    reads (small to pickle: only the path and header travel to the workers)."""

    def __init__(self, header: streaming.NpyHeader) -> None:
        self.header = header
        self.shape = header.shape
        self.dtype = header.dtype.newbyteorder("=")
        self.ndim = 2

    def __getitem__(self, index: Any) -> np.ndarray:
        if not isinstance(index, tuple):
            index = (index,)
        rows, cols = (index + (slice(None),) * 2)[:2]
        if isinstance(rows, slice) and rows.step in (None, 1):
            start, stop, _ = rows.indices(self.shape[0])
            block = streaming.read_npy_rows(self.header, start, max(start, stop))
        else:  # rare: read the covering range, then index
            idx = np.arange(self.shape[0])[rows]
            lo, hi = (int(idx.min()), int(idx.max()) + 1) if np.size(idx) else (0, 0)
            block = streaming.read_npy_rows(self.header, lo, hi)[np.atleast_1d(idx) - lo]
            if np.ndim(idx) == 0:
                block = block[0]
        return block[..., cols]


def _file_token(header: streaming.NpyHeader) -> str:
    st = header.path.stat()  # a rewritten file gets new keys
    return dask.base.tokenize(str(header.path.resolve()), header, st.st_size, st.st_mtime_ns)


def from_npy(path: str | os.PathLike, chunk_size: int | None = None) -> da.Array:
    """A 2-D ``.npy`` file as a dask array whose blocks are read on the workers.

    Each task reads only its rows with explicit file reads (no memory map, no copy of the
    array in the task graph), so the file may be far larger than any machine's memory;
    every worker must see ``path`` (local disk for a ``LocalCluster``, a shared file
    system for a real cluster).

    Parameters
    ----------
    path : str or path-like
        2-D, C-order float file (see :func:`infogauss.streaming.read_npy_header`).
    chunk_size : int, optional
        Rows per block (default: about 32 MiB of float64 per block).

    Returns
    -------
    dask.array.Array of shape (n_rows, n_features)
        One chunk along the feature axis.
    """
    header = streaming.read_npy_header(path)
    chunk = core.default_chunk_size(header.n_features) if chunk_size is None else chunk_size
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"`chunk_size` must be an integer >= 1, got {chunk_size!r}")
    reader = _NpyRows(header)
    return da.from_array(
        reader, chunks=(int(chunk), -1), name=f"infogauss-npy-{_file_token(header)}",
        asarray=False, fancy=False, lock=False, inline_array=True,
        meta=np.empty((0, 0), dtype=reader.dtype),
    )  # fmt: skip
