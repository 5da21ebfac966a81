"""The paper's synthetic data: Laplace, a 25-component Gaussian mixture, sparse binary (1024-d)."""

from __future__ import annotations

import numpy as np

__all__ = ["make_laplace", "make_gmm", "make_sparse_binary"]


def _check(n_samples: int, n_features: int) -> None:
    if int(n_samples) < 1:
        raise ValueError(f"`n_samples` must be >= 1, got {n_samples!r}")
    if int(n_features) < 1:
        raise ValueError(f"`n_features` must be >= 1, got {n_features!r}")


def make_laplace(n_samples: int, n_features: int = 1024, scale: float = 1.0,
                 seed: int | None = 0) -> np.ndarray:
    """i.i.d. Laplace(0, ``scale``) features: a heavy-tailed, non-Gaussian input.

    Returns
    -------
    ndarray of float32, shape (n_samples, n_features)

    Examples
    --------
    >>> make_laplace(3, 4).shape
    (3, 4)
    """
    _check(n_samples, n_features)
    if scale <= 0:
        raise ValueError(f"`scale` must be > 0, got {scale!r}")
    rng = np.random.default_rng(seed)
    return rng.laplace(0.0, scale, size=(int(n_samples), int(n_features))).astype(np.float32)


def make_gmm(n_samples: int, n_features: int = 1024, n_components: int = 25,
             separation: float = 3.0, seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """A mixture of ``n_components`` unit-covariance Gaussians, equiprobable.

    Component means lie at distance ``separation`` from the origin in uniformly random
    directions; samples are ``mean[c] + N(0, I)``.

    Returns
    -------
    x : ndarray of float32, shape (n_samples, n_features)
    components : ndarray of int64, shape (n_samples,)
        The component of each sample (positives are pairs from the same component).
    """
    _check(n_samples, n_features)
    if int(n_components) < 1:
        raise ValueError(f"`n_components` must be >= 1, got {n_components!r}")
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((int(n_components), int(n_features)))
    means = separation * g / np.linalg.norm(g, axis=1, keepdims=True)
    comp = rng.integers(0, int(n_components), size=int(n_samples))
    x = means[comp] + rng.standard_normal((int(n_samples), int(n_features)))
    return x.astype(np.float32), comp.astype(np.int64)


def make_sparse_binary(n_samples: int, n_features: int = 1024, density: float = 0.05,
                       seed: int | None = 0) -> np.ndarray:
    """Bernoulli(``density``) binary vectors (most entries zero).

    Returns
    -------
    ndarray of float32 with values in {0, 1}, shape (n_samples, n_features)
    """
    _check(n_samples, n_features)
    if not 0 < density < 1:
        raise ValueError(f"`density` must be in (0, 1), got {density!r}")
    rng = np.random.default_rng(seed)
    return (rng.random((int(n_samples), int(n_features))) < density).astype(np.float32)
