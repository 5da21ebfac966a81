"""InfoNCE (NT-Xent) and the paper's route-2 regulariser.

Both are computed from logits with :func:`torch.nn.functional.cross_entropy` (never the log of
a ratio of exponentials), on L2-normalised embeddings, in float32 whatever the autocast dtype.
"""

from __future__ import annotations

import math

from ._torch import F, torch

__all__ = ["info_nce", "gaussian_entropy", "gaussian_regularizer"]


def _check_pair(z_a, z_b) -> None:
    for name, z in (("z_a", z_a), ("z_b", z_b)):
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"`{name}` must be a torch.Tensor, got {type(z).__name__}")
        if z.ndim != 2:
            raise ValueError(f"`{name}` must have shape (n_samples, n_features), got {tuple(z.shape)}")
    if z_a.shape != z_b.shape:
        raise ValueError(
            f"`z_a` and `z_b` must have the same shape, got {tuple(z_a.shape)} and {tuple(z_b.shape)}"
        )
    if z_a.shape[0] < 2:
        raise ValueError(
            f"`z_a` must hold at least 2 samples (InfoNCE needs negatives), got {z_a.shape[0]}"
        )


def _check_temperature(temperature: float) -> float:
    t = float(temperature)
    if not math.isfinite(t) or t <= 0:
        raise ValueError(f"`temperature` must be a finite number > 0, got {temperature!r}")
    return t


def info_nce(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    temperature: float = 0.1,
    symmetric: bool = True,
) -> torch.Tensor:
    """InfoNCE loss of paired embeddings (row ``i`` of ``z_a`` and of ``z_b`` are positives).

    Parameters
    ----------
    z_a, z_b : Tensor of shape (n_samples, n_features)
        Embeddings of two views; they are L2-normalised here. ``n_samples >= 2``.
    temperature : float, default=0.1
        Softmax temperature ``tau > 0``.
    symmetric : bool, default=True
        ``True``: SimCLR's NT-Xent over the ``2N`` views, each view's negatives being the other
        ``2N - 2`` views (the ``2N - 1`` candidates exclude only itself).
        ``False``: the one-directional form of the paper's Eq. 2, anchors ``z_a`` against the
        ``N`` candidates ``z_b``.

    Returns
    -------
    loss : Tensor, scalar float32
        Mean over anchors of ``-log softmax(sim / tau)[positive]``, ``sim`` the cosine similarity.

    Notes
    -----
    Symmetric: with ``u = normalize([z_a; z_b])`` and ``s_ij = u_i . u_j / tau``,
    ``L = 1/(2N) sum_i [ -s_{i,p(i)} + log sum_{j != i} exp(s_ij) ]``, ``p(i) = i +- N``.
    If all similarities are equal the loss is ``log(2N - 1)`` (``log N`` one-directional).

    Examples
    --------
    >>> import torch
    >>> z = torch.ones(4, 3)
    >>> round(float(info_nce(z, z)), 4) == round(math.log(7), 4)
    True
    """
    _check_pair(z_a, z_b)
    t = _check_temperature(temperature)
    a = F.normalize(z_a.float(), dim=1)
    b = F.normalize(z_b.float(), dim=1)
    n = a.shape[0]
    if not symmetric:
        logits = a @ b.T / t
        labels = torch.arange(n, device=logits.device)
        return F.cross_entropy(logits, labels)
    u = torch.cat([a, b], dim=0)
    logits = u @ u.T / t
    eye = torch.eye(2 * n, dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(eye, float("-inf"))
    labels = torch.cat(
        [torch.arange(n, 2 * n, device=logits.device), torch.arange(0, n, device=logits.device)]
    )
    return F.cross_entropy(logits, labels)


def gaussian_entropy(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Differential entropy of a Gaussian with the batch covariance of ``z``.

    ``H_hat(z) = 0.5 * logdet(2 pi e (Cov(z) + eps I))``, the log-determinant taken from a
    Cholesky factor; ``eps`` keeps it finite when ``n_samples <= n_features``.

    Parameters
    ----------
    z : Tensor of shape (n_samples, n_features)
    eps : float, default=1e-4
        Ridge added to the covariance.

    Returns
    -------
    Tensor, scalar float32 (nats).
    """
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"`z` must have shape (n_samples >= 2, n_features), got {tuple(z.shape)}")
    z = z.float()
    d = z.shape[1]
    zc = z - z.mean(dim=0, keepdim=True)
    cov = zc.T @ zc / (z.shape[0] - 1)
    cov = cov + eps * torch.eye(d, dtype=cov.dtype, device=cov.device)
    chol = torch.linalg.cholesky(cov)
    logdet = 2.0 * torch.log(torch.diagonal(chol)).sum()
    return 0.5 * (d * math.log(2 * math.pi * math.e) + logdet)


def gaussian_regularizer(
    z: torch.Tensor, beta: float = 1.0, lam: float = 1.0, eps: float = 1e-4
) -> tuple[torch.Tensor, dict[str, float]]:
    """The paper's route-2 regulariser ``beta * (-H_hat(z) + lam * E||z||^2)``.

    Applied to the *unnormalised* embeddings. Maximising the entropy at a fixed second moment
    pushes the embedding distribution towards an isotropic Gaussian. The paper proposes it
    without testing it; it is off unless ``beta > 0`` in :class:`TrainConfig`.

    Returns
    -------
    value : Tensor, scalar
    terms : dict
        ``{"entropy": H_hat, "sq_norm": E||z||^2, "reg": value}`` as floats, for logging.
    """
    h = gaussian_entropy(z, eps=eps)
    sq = z.float().pow(2).sum(dim=1).mean()
    value = beta * (-h + lam * sq)
    return value, {"entropy": float(h.detach()), "sq_norm": float(sq.detach()), "reg": float(value.detach())}
