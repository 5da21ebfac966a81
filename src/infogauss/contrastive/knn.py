"""Weighted k-nearest-neighbour classification on embeddings (the InstDisc / SimCLR monitor)."""

from __future__ import annotations

import numpy as np

from ._torch import F, torch

__all__ = ["knn_predict", "knn_accuracy"]


def _as_float_tensor(x, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.ndim != 2:
        raise ValueError(f"`{name}` must have shape (n_samples, n_features), got {tuple(t.shape)}")
    return t.detach().to("cpu", torch.float32)


def knn_predict(train_z, train_y, test_z, k: int = 200, temperature: float = 0.1,
                n_classes: int | None = None, chunk: int = 1024) -> np.ndarray:
    """Predict labels by a similarity-weighted vote of the ``k`` nearest training embeddings.

    Cosine similarity ``s``; each of the ``k`` neighbours votes for its class with weight
    ``exp(s / temperature)`` (Wu et al. 2018, the SimCLR/MoCo kNN monitor).

    Parameters
    ----------
    train_z : array of shape (n_train, d)
    train_y : int array of shape (n_train,)
    test_z : array of shape (n_test, d)
    k : int, default=200
    temperature : float, default=0.1

    Returns
    -------
    ndarray of int64, shape (n_test,)
    """
    a = F.normalize(_as_float_tensor(train_z, "train_z"), dim=1)
    b = F.normalize(_as_float_tensor(test_z, "test_z"), dim=1)
    y = torch.as_tensor(np.asarray(train_y)).long().flatten()
    if y.shape[0] != a.shape[0]:
        raise ValueError(f"`train_y` must have {a.shape[0]} labels, got {y.shape[0]}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"`test_z` must have {a.shape[1]} features, got {b.shape[1]}")
    if k < 1:
        raise ValueError(f"`k` must be >= 1, got {k}")
    if temperature <= 0:
        raise ValueError(f"`temperature` must be > 0, got {temperature}")
    k = min(int(k), a.shape[0])
    c = int(n_classes or int(y.max()) + 1)
    out = []
    for i in range(0, b.shape[0], chunk):
        sim = b[i:i + chunk] @ a.T
        top_s, top_i = sim.topk(k, dim=1)
        w = torch.exp(top_s / temperature)
        votes = torch.zeros(sim.shape[0], c).scatter_add_(1, y[top_i], w)
        out.append(votes.argmax(dim=1))
    return torch.cat(out).numpy().astype(np.int64) if out else np.zeros(0, np.int64)


def knn_accuracy(train_z, train_y, test_z, test_y, k: int = 200, temperature: float = 0.1) -> float:
    """Fraction of ``test_y`` predicted by :func:`knn_predict`."""
    ty = np.asarray(test_y).astype(np.int64).ravel()
    n_classes = int(max(np.max(train_y), ty.max())) + 1
    pred = knn_predict(train_z, train_y, test_z, k=k, temperature=temperature, n_classes=n_classes)
    return float(np.mean(pred == ty))
