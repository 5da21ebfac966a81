"""``embed()``: run an encoder over a dataset, return float32 C-contiguous CPU numpy."""

from __future__ import annotations

import numpy as np

from .._progress import progress as _progress
from ._torch import nn, torch

__all__ = ["embed"]


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model) if hasattr(model, "module") else model


def _select_layer(model: nn.Module, layer: str) -> nn.Module:
    if layer not in ("backbone", "head"):
        raise ValueError(f"`layer` must be 'backbone' or 'head', got {layer!r}")
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        return model  # a plain module: its forward is the embedding
    if layer == "backbone":
        return backbone
    if getattr(model, "head", None) is None:
        raise ValueError("`layer` is 'head' but the encoder has no projection head")
    return model


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def _to_input(batch) -> torch.Tensor:
    if batch.dtype == torch.uint8:
        return batch.float().div_(255.0)
    return batch.float()


def embed(
    encoder: nn.Module,
    data,
    layer: str = "backbone",
    batch_size: int = 512,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    progress: bool = False,
) -> np.ndarray:
    """Embed ``data`` with ``encoder`` in eval mode, without gradients.

    Parameters
    ----------
    encoder : nn.Module
        An :class:`Encoder` (``layer`` picks ``backbone`` or ``head``) or any module (its
        ``forward`` is the embedding, whatever ``layer``).
    data : ndarray or Tensor
        uint8 images (N, 3, H, W) — scaled to [0, 1] as in training — or float features (N, D).
    layer : {"backbone", "head"}, default="backbone"
    batch_size : int, default=512
    device : str or torch.device, optional
        Where to compute. ``None`` (default) computes where the model already is and never
        moves it. If given and different, the model is moved there for the call and moved back
        afterwards (its training/eval mode is restored as well).
    precision : {"fp32", "bf16"}, default="fp32"
        ``bf16`` runs under autocast (faster on CPUs with bf16 units); the output is float32.
    progress : bool, default=False

    Returns
    -------
    ndarray of float32, shape (N, d), C-contiguous, on the CPU.

    Examples
    --------
    >>> from infogauss.contrastive import build_encoder
    >>> enc = build_encoder("linear", in_features=3, head=False)
    >>> embed(enc, np.ones((5, 3), np.float32)).shape
    (5, 3)
    """
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"`precision` must be 'fp32' or 'bf16', got {precision!r}")
    if int(batch_size) < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size!r}")
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8 and not np.issubdtype(data.dtype, np.floating):
            raise TypeError(f"`data` must be uint8 images or float features, got dtype {data.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(data))
    elif isinstance(data, torch.Tensor):
        x = data.detach()
    else:
        raise TypeError(f"`data` must be a numpy array or torch.Tensor, got {type(data).__name__}")
    if x.ndim < 2:
        raise ValueError(f"`data` must have a leading sample axis and features, got shape {tuple(x.shape)}")
    model = _unwrap(encoder)
    net = _select_layer(model, layer)
    home = _model_device(model)
    dev = torch.device(device) if device is not None else home
    was_training = model.training
    moved = dev != home
    if moved:
        model.to(dev)
    model.eval()
    out = np.empty((x.shape[0], 0), np.float32)
    chunks = []
    try:
        bar = _progress(range(0, x.shape[0], int(batch_size)), enabled=progress, desc="embed",
                        unit="batch")
        with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16,
                                                     enabled=precision == "bf16"):
            for i in bar:
                xb = _to_input(x[i:i + int(batch_size)].to(dev))
                if xb.ndim == 4:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                chunks.append(net(xb).float().reshape(xb.shape[0], -1).cpu())
    finally:
        if moved:
            model.to(home)
        model.train(was_training)
    if chunks:
        out = torch.cat(chunks).numpy()
    return np.ascontiguousarray(out, dtype=np.float32)
