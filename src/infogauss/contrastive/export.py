"""Fitted Gaussians and detectors as small torch modules, for serving next to the encoder.

:func:`to_torch` turns a fitted :class:`~infogauss.GaussianModel`,
:class:`~infogauss.ood.MahalanobisOOD` or :class:`~infogauss.anomaly.GaussianLikelihoodDetector`
into an :class:`torch.nn.Module` whose ``forward`` computes one of the estimator's scoring
methods on a batch of embeddings, on whatever device the module is moved to (every array is a
registered buffer). The arrays are copied at export: changing the estimator afterwards does not
change the module. The module traces with :func:`torch.export.export` and
:func:`torch.jit.trace`; ``method="matmul"`` also exports to ONNX through
:func:`torch.onnx.export` (ONNX has no triangular solve).

The arithmetic is the numpy path's (:func:`infogauss.gaussian.mahalanobis_sq_to_means`): rows
are centred on the compute-dtype copy of the location, solved against the Cholesky factor, and
the rounding remainder of the location is folded into the solved means, so float32 keeps its
digits at large offsets; scores agree with the estimator's in the same dtype within
:data:`infogauss.gaussian.BATCH_RTOL` (tested for float32 and float64).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from scipy import linalg
from sklearn.utils.validation import check_is_fitted

from .. import gaussian as core
from ..model import GaussianModel
from ..ood import MahalanobisOOD
from ._torch import nn, torch

__all__ = ["to_torch", "GaussianScorer", "OODScorer", "AnomalyScorer", "EXPORT_METHODS"]

EXPORT_METHODS = ("solve", "matmul")
_NP_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


class _SquaredDistances(nn.Module):
    """Squared Mahalanobis distances of rows to ``K`` means sharing one Cholesky factor.

    ``z = L^{-1}(x - c)`` (``c``: the centre in the compute dtype) by a triangular solve
    (``"solve"``) or a product with ``L^{-T}`` precomputed in float64 (``"matmul"``); then
    ``d_k^2 = ||z - m_k||^2`` with ``m_k = L^{-1}(mu_k - c)`` solved in float64 at export,
    remainder of ``c`` included, and summed explicitly (no expansion, no cancellation).
    """

    def __init__(self, means: np.ndarray, chol: np.ndarray, center: np.ndarray,
                 dtype: torch.dtype, method: str) -> None:
        super().__init__()
        means = np.asarray(means, dtype=np.float64)
        chol = np.asarray(chol, dtype=np.float64)
        center = np.asarray(center, dtype=np.float64)
        cen = core._Centering(center, np.dtype(_NP_DTYPES[dtype]))
        offsets = linalg.solve_triangular(chol, (means - center + cen.rest).T, lower=True).T
        if method == "solve":
            factor = chol
        else:  # z = y L^{-T}: the transposed inverse factor, from a float64 triangular solve
            factor = linalg.solve_triangular(chol, np.eye(chol.shape[0]), lower=True).T
        self.method = method
        self.n_means = int(means.shape[0])
        self.register_buffer("center", torch.tensor(cen.loc, dtype=dtype))
        self.register_buffer("factor", torch.tensor(factor, dtype=dtype))
        self.register_buffer("offsets", torch.tensor(offsets, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x - self.center
        if self.method == "solve":
            z = torch.linalg.solve_triangular(self.factor, y.T, upper=False).T
        else:
            z = y @ self.factor
        cols = []
        for k in range(self.n_means):  # one (N, d) block at a time, whatever K
            dk = z - self.offsets[k]
            cols.append((dk * dk).sum(dim=1))
        return torch.stack(cols, dim=1)


class _Scorer(nn.Module):
    """Shared parts: the input boundary and the choice of output."""

    outputs: tuple[str, ...] = ()

    def __init__(self, n_features: int, dtype: torch.dtype, output: str) -> None:
        super().__init__()
        if output not in self.outputs:
            raise ValueError(f"`output` must be one of {self.outputs} for {type(self).__name__}, "
                             f"got {output!r}")
        self.n_features_in = int(n_features)
        self.output = output

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        """The dtype boundary: (n, d) rows cast to the module's dtype (which follows .to())."""
        if not torch.jit.is_tracing() and (x.dim() != 2 or x.shape[1] != self.n_features_in):
            raise ValueError(f"`x` must have shape (n_samples, {self.n_features_in}), got "
                             f"{tuple(x.shape)}")
        return x.to(self._dtype())

    def _dtype(self) -> torch.dtype:
        return self.distances.center.dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.output)(x)

    def extra_repr(self) -> str:
        return f"n_features={self.n_features_in}, output={self.output!r}"


class GaussianScorer(_Scorer):
    """A :class:`~infogauss.GaussianModel` as a module (made by :func:`to_torch`).

    ``forward(x)`` is ``mahalanobis(x)`` (**squared** distances, larger = farther) or
    ``score_samples(x)`` (log-density in nats, higher = more normal), by ``output``.
    """

    outputs = ("score_samples", "mahalanobis")

    def __init__(self, model: GaussianModel, dtype: torch.dtype, output: str, method: str) -> None:
        super().__init__(model.n_features_in_, dtype, output)
        loc = model.location_
        self.distances = _SquaredDistances(loc[None, :], model.cholesky_, loc, dtype, method)
        # log p at the mean (m² = 0) from the core's formula: log p(x) = that - m²/2
        at_mean = core.log_density(loc[None, :], loc, model.cholesky_, dtype=np.float64)[0]
        self.register_buffer("log_density_at_mean", torch.tensor(at_mean, dtype=dtype))

    def mahalanobis(self, x: torch.Tensor) -> torch.Tensor:
        return self.distances(self._input(x))[:, 0]

    def score_samples(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_density_at_mean - 0.5 * self.mahalanobis(x)


class OODScorer(_Scorer):
    """A :class:`~infogauss.ood.MahalanobisOOD` as a module (made by :func:`to_torch`).

    ``output``: ``"score_samples"`` (higher = more in-distribution), ``"decision_function"``
    (``score_samples - offset_``, negative = flagged), ``"predict"`` (int64, +1 inlier, -1
    out-of-distribution; a non-finite score is flagged) or ``"mahalanobis"`` (the method's
    **squared**-distance statistic). ``predict`` is the ``alpha=None`` decision at the
    detector's ``offset_``; conformal p-values are not exported.
    """

    outputs = ("score_samples", "decision_function", "predict", "mahalanobis")

    def __init__(self, det: MahalanobisOOD, dtype: torch.dtype, output: str, method: str) -> None:
        super().__init__(det.n_features_in_, dtype, output)
        g = det.model_
        self.distances = _SquaredDistances(det.means_, g.cholesky_, g.location_, dtype, method)
        self.relative = det.method == "relative"
        if self.relative:
            bg = det.background_
            self.background = _SquaredDistances(bg.location_[None, :], bg.cholesky_, bg.location_,
                                                dtype, method)
        self.typicality = det.statistic == "typicality"
        center, scale = ((det.typicality_center_, det.typicality_scale_) if self.typicality
                         else (0.0, 1.0))
        self.register_buffer("typicality_center", torch.tensor(center, dtype=dtype))
        self.register_buffer("typicality_scale", torch.tensor(scale, dtype=dtype))
        self.register_buffer("offset", torch.tensor(det.offset_, dtype=dtype))

    def mahalanobis(self, x: torch.Tensor) -> torch.Tensor:
        x = self._input(x)
        m2 = self.distances(x).min(dim=1).values
        if self.relative:
            m2 = m2 - self.background(x)[:, 0]
        return m2

    def score_samples(self, x: torch.Tensor) -> torch.Tensor:
        m2 = self.mahalanobis(x)
        if self.typicality:
            return -(m2 - self.typicality_center).abs() / self.typicality_scale
        return -m2

    def decision_function(self, x: torch.Tensor) -> torch.Tensor:
        return self.score_samples(x) - self.offset

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        keep = self.decision_function(x) >= 0  # NaN compares False: flagged
        return torch.where(keep, 1, -1).to(torch.int64)


class AnomalyScorer(_Scorer):
    """A :class:`~infogauss.anomaly.GaussianLikelihoodDetector` as a module (PyOD's protocol).

    ``output``: ``"decision_function"`` (anomaly score, **higher = more abnormal**: negative
    log-density in nats, or the **squared** Mahalanobis distance, by the detector's
    ``statistic``) or ``"predict"`` (int64, 1 = anomaly when the score exceeds ``threshold_``,
    0 = inlier; a non-finite score is an anomaly).
    """

    outputs = ("decision_function", "predict")

    def __init__(self, det: Any, dtype: torch.dtype, output: str, method: str) -> None:
        super().__init__(det.n_features_in_, dtype, output)
        self.gaussian = GaussianScorer(det.model_, dtype, "mahalanobis", method)
        self.nll = det.statistic == "nll"
        self.register_buffer("threshold", torch.tensor(det.threshold_, dtype=dtype))

    def decision_function(self, x: torch.Tensor) -> torch.Tensor:
        return -self.gaussian.score_samples(x) if self.nll else self.gaussian.mahalanobis(x)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        normal = self.decision_function(x) <= self.threshold  # NaN compares False: anomaly
        return torch.where(normal, 0, 1).to(torch.int64)


def _torch_dtype(dtype: Any) -> torch.dtype:
    if dtype in _NP_DTYPES:
        return dtype
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name == "float32":
        return torch.float32
    if name == "float64":
        return torch.float64
    raise ValueError(f"`dtype` must be float32 or float64 (torch or numpy), got {dtype!r}")


def to_torch(
    estimator: Any,
    dtype: Any = torch.float32,
    *,
    output: str | None = None,
    method: str = "solve",
    device: str | torch.device | None = None,
) -> nn.Module:
    """A fitted Gaussian or detector as a torch module that scores batches of embeddings.

    Parameters
    ----------
    estimator : GaussianModel, MahalanobisOOD or GaussianLikelihoodDetector
        Fitted. Every ``method``/``statistic`` of :class:`~infogauss.ood.MahalanobisOOD` is
        supported (global, class, cluster, relative; distance, typicality).
    dtype : {torch.float32, torch.float64}, default=torch.float32
        Compute dtype of the module; inputs are cast to it. Scores agree with the estimator
        scoring the same rows in that dtype within :data:`infogauss.gaussian.BATCH_RTOL`
        (for ``method="relative"``, a difference of two squared distances, the bound is
        relative to the distances subtracted: their float32 rounding does not cancel).
    output : str, optional
        Which scoring method ``forward`` computes (every one is also a method of the module):
        ``GaussianModel``: ``"score_samples"`` (default; log-density, higher = more normal) or
        ``"mahalanobis"`` (**squared** distances). ``MahalanobisOOD``: ``"score_samples"``
        (default), ``"decision_function"``, ``"predict"`` (+1/-1) or ``"mahalanobis"``.
        ``GaussianLikelihoodDetector``: ``"decision_function"`` (default; higher = more
        abnormal) or ``"predict"`` (0/1).
    method : {"solve", "matmul"}, default="solve"
        ``"solve"``: a triangular solve against the Cholesky factor per batch (the numpy
        path's arithmetic). ``"matmul"``: one product with the transposed inverse factor,
        computed once in float64 by a triangular solve; the form ONNX can express, and a plain
        GEMM on accelerators. Its rounding grows with the condition number of the factor.
    device : str or torch.device, optional
        Where to create the buffers (default CPU); ``module.to(device)`` moves them later.

    Returns
    -------
    GaussianScorer, OODScorer or AnomalyScorer
        In eval mode, no parameters (only buffers), no state shared with ``estimator``.
        ``forward(x)`` takes a tensor of shape (n_samples, n_features) and returns shape
        (n_samples,) (float in ``dtype``; int64 for ``"predict"``). Non-finite rows are not
        refused (the module stays free of data-dependent control flow, so it exports); they
        give non-finite scores, and ``predict`` flags them.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from infogauss import GaussianModel
    >>> X = np.random.default_rng(0).normal(size=(200, 3))
    >>> model = GaussianModel().fit(X)
    >>> scorer = to_torch(model, output="mahalanobis")
    >>> d2 = scorer(torch.zeros(2, 3))
    >>> bool(np.allclose(d2.numpy(), model.mahalanobis(np.zeros((2, 3), np.float32)), rtol=1e-5))
    True
    """
    dt = _torch_dtype(dtype)
    if method not in EXPORT_METHODS:
        raise ValueError(f"`method` must be one of {EXPORT_METHODS}, got {method!r}")
    anomaly = sys.modules.get("infogauss.anomaly")  # imported already if such a detector exists
    if isinstance(estimator, GaussianModel):
        check_is_fitted(estimator, "cholesky_")
        module: nn.Module = GaussianScorer(estimator, dt, output or "score_samples", method)
    elif isinstance(estimator, MahalanobisOOD):
        check_is_fitted(estimator, "model_")
        module = OODScorer(estimator, dt, output or "score_samples", method)
    elif anomaly is not None and isinstance(estimator, anomaly.GaussianLikelihoodDetector):
        check_is_fitted(estimator, "model_")
        module = AnomalyScorer(estimator, dt, output or "decision_function", method)
    else:
        raise TypeError(
            "`estimator` must be a fitted GaussianModel, MahalanobisOOD or "
            f"GaussianLikelihoodDetector, got {type(estimator).__name__}"
        )
    if device is not None:
        module.to(device)
    return module.eval()
