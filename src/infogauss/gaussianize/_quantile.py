r"""Marginal quantile Gaussianization and its iterated, rotated form (RBIG).

Notes
-----
*Marginal map.* From ``m`` samples of a column, ``K`` quantiles ``q_k`` are taken at levels
``p_k = k/(K−1)`` (``numpy.percentile``, linear interpolation between order statistics, as
``sklearn.preprocessing.QuantileTransformer``). The level ``p`` of a value is interpolated
linearly between the ``(q_k, p_k)`` (averaged over the upward and downward interpolation, so a
value repeated over several quantiles — a post-ReLU zero — gets the middle of its levels, as in
scikit-learn). The level is then moved to the Hazen plotting position of the same rank,
``h = (p(m−1) + ½)/m``, and sent through the normal quantile function: ``z = Φ⁻¹(h)``. The
sample minimum thus maps to ``Φ⁻¹(½/m)`` rather than scikit-learn's fixed ``Φ⁻¹(10⁻⁷) ≈ −5.2``;
inside the range, ``Φ(z) = (Φ(z_sklearn)(m−1) + ½)/m`` exactly.

*Tails.* Beyond the fitted range the map continues linearly in Gaussian units,
``z = z_max + (x − q_max)/s_hi`` with ``s_hi = (q_max − q_median)/z_max`` (the scale a Gaussian
through the median and the extreme quantile would have; the column's standard deviation when
that is 0), and symmetrically below. The map is strictly increasing outside the fitted range
and continuous at its ends, so far-out values stay far out (scikit-learn clips them all to
±5.2) and the inverse is exact everywhere: inside, ``x = interp(p, p_k, q_k)`` with ``p`` from
``h = Φ(z)``; outside, the linear tail.

*RBIG* (Laparra, Camps-Valls & Malo 2011, "Iterative Gaussianization: from ICA to random
rotations"). ``T`` times: Gaussianize every coordinate marginally (the map above, fitted on the
current sample), then rotate by an orthogonal ``R_t`` — the principal axes of the current sample
(``"pca"``) or a Haar-random rotation (``"random"``). Each step is invertible, so the whole map
is: ``x_{t+1} = G_t(x_t) R_t`` and ``x_t = G_t⁻¹(x_{t+1} R_tᵀ)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from ..gaussian import random_orthonormal

__all__ = [
    "QuantileMaps",
    "fit_quantile_maps",
    "quantile_forward",
    "quantile_inverse",
    "fit_rotation",
]

ROTATIONS = ("pca", "random")


class QuantileMaps:
    """Fitted marginal maps of ``d`` columns (arrays only; see the module notes).

    Attributes
    ----------
    quantiles : ndarray of shape (K, d)
        Non-decreasing along axis 0.
    levels : ndarray of shape (K,)
        ``p_k = k/(K−1)``.
    references : ndarray of shape (K,)
        ``Φ⁻¹(h_k)``, the Gaussian value of each quantile.
    tails : ndarray of shape (2, d)
        ``s_lo``, ``s_hi``: slopes dx/dz of the linear tails (> 0).
    n_samples : int
        ``m``, the samples the quantiles come from.
    """

    __slots__ = ("quantiles", "levels", "references", "tails", "n_samples")

    def __init__(self, quantiles: np.ndarray, tails: np.ndarray, n_samples: int) -> None:
        self.quantiles = quantiles
        self.tails = tails
        self.n_samples = int(n_samples)
        self.levels = np.linspace(0.0, 1.0, quantiles.shape[0])
        self.references = special.ndtri(hazen(self.levels, self.n_samples))


def hazen(p: np.ndarray, m: int) -> np.ndarray:
    """Hazen plotting position ``(p(m−1) + ½)/m`` of the level ``p`` among ``m`` samples."""
    return (p * (m - 1) + 0.5) / m


def _unhazen(h: np.ndarray, m: int) -> np.ndarray:
    return (h * m - 0.5) / (m - 1) if m > 1 else np.full_like(h, 0.5)


def fit_quantile_maps(X: np.ndarray, n_quantiles: int) -> QuantileMaps:
    """Fit the marginal maps of the columns of ``X`` (float64, ≥ 2 rows, no constant column).

    Examples
    --------
    >>> X = np.random.default_rng(0).exponential(size=(1000, 2))
    >>> maps = fit_quantile_maps(X, 100)
    >>> z = quantile_forward(X, maps)
    >>> bool(abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05)
    True
    >>> bool(np.allclose(quantile_inverse(z, maps), X))
    True
    """
    m = X.shape[0]
    k = max(2, min(int(n_quantiles), m))
    ordered = np.sort(X, axis=0)
    q = _order_statistic_quantiles(ordered, np.linspace(0.0, 1.0, k))
    z_hi = float(special.ndtri(hazen(1.0, m)))  # = −z_lo
    median = _order_statistic_quantiles(ordered, np.array([0.5]))[0]
    fallback = np.maximum(X.std(axis=0), np.finfo(np.float64).tiny)
    s_lo = (median - q[0]) / z_hi
    s_hi = (q[-1] - median) / z_hi
    tails = np.vstack([np.where(s_lo > 0, s_lo, fallback), np.where(s_hi > 0, s_hi, fallback)])
    return QuantileMaps(q, tails, m)


def _order_statistic_quantiles(ordered: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles at ``levels`` from sorted columns: linear interpolation between the order
    statistics at position ``p(m−1)`` (``numpy.percentile``'s default), made non-decreasing."""
    pos = levels * (ordered.shape[0] - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, ordered.shape[0] - 1)
    frac = (pos - lo)[:, None]
    a, b = ordered[lo], ordered[hi]
    return np.maximum.accumulate(a + frac * (b - a), axis=0)


def _levels(x: np.ndarray, qj: np.ndarray, p: np.ndarray, tied: bool) -> np.ndarray:
    """Interpolated level of ``x``; over a run of equal quantiles, the middle of its levels."""
    up = np.interp(x, qj, p)
    if not tied:
        return up
    return 0.5 * (up - np.interp(-x, -qj[::-1], -p[::-1]))


def quantile_forward(X: np.ndarray, maps: QuantileMaps) -> np.ndarray:
    """Gaussianize the columns of ``X`` with ``maps`` (row by row independent)."""
    q, p, m = maps.quantiles, maps.levels, maps.n_samples
    out = np.empty(X.shape, dtype=np.float64)
    z_lo, z_hi = maps.references[0], maps.references[-1]
    for j in range(X.shape[1]):
        x, qj = X[:, j], q[:, j]
        z = special.ndtri(hazen(_levels(x, qj, p, bool(np.any(qj[1:] == qj[:-1]))), m))
        below, above = x < qj[0], x > qj[-1]
        z[below] = z_lo + (x[below] - qj[0]) / maps.tails[0, j]
        z[above] = z_hi + (x[above] - qj[-1]) / maps.tails[1, j]
        out[:, j] = z
    return out


def quantile_inverse(Z: np.ndarray, maps: QuantileMaps) -> np.ndarray:
    """Inverse of :func:`quantile_forward` (exact on every real value)."""
    q, p, m = maps.quantiles, maps.levels, maps.n_samples
    out = np.empty(Z.shape, dtype=np.float64)
    z_lo, z_hi = maps.references[0], maps.references[-1]
    for j in range(Z.shape[1]):
        z, qj = Z[:, j], q[:, j]
        x = np.interp(_unhazen(special.ndtr(z), m), p, qj)
        below, above = z < z_lo, z > z_hi
        x[below] = qj[0] + (z[below] - z_lo) * maps.tails[0, j]
        x[above] = qj[-1] + (z[above] - z_hi) * maps.tails[1, j]
        out[:, j] = x
    return out


def fit_rotation(Z: np.ndarray, rotation: str, seed: Any) -> np.ndarray:
    """Orthogonal ``d × d`` rotation of one RBIG step: principal axes of ``Z`` or Haar-random."""
    d = Z.shape[1]
    if rotation == "pca":
        centred = Z - Z.mean(axis=0)
        _, vecs = np.linalg.eigh(centred.T @ centred)
        return np.ascontiguousarray(vecs[:, ::-1])
    return random_orthonormal(d, d, seed=seed)
