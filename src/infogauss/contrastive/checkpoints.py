"""Rebuild a trained encoder from what ``infogauss train`` (or :func:`train_contrastive`) wrote."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ._torch import torch
from .encoders import Encoder, build_encoder
from .train import CHECKPOINT_NAME, load_checkpoint

__all__ = ["load_encoder", "resolve_checkpoint"]


def resolve_checkpoint(checkpoint: str | os.PathLike, *, name: str = "checkpoint") -> Path:
    """The ``.pt`` file that ``checkpoint`` names: a run directory's ``last.pt`` (else its
    ``encoder.pt``), or the file itself.

    Raises
    ------
    ValueError
        If there is no such file.
    """
    p = Path(checkpoint)
    if p.is_dir():
        p = p / CHECKPOINT_NAME if (p / CHECKPOINT_NAME).exists() else p / "encoder.pt"
    if not p.is_file():
        raise ValueError(f"`{name}` must be a run directory or a .pt file, got {str(checkpoint)!r}")
    return p


def load_encoder(checkpoint: str | os.PathLike, *, name: str = "checkpoint") -> Encoder:
    """Rebuild an :class:`~infogauss.contrastive.Encoder` with its trained weights.

    Parameters
    ----------
    checkpoint : str or path-like
        A run directory of ``infogauss train``, a training checkpoint ``last.pt``
        (:func:`~infogauss.contrastive.load_checkpoint`; the encoder of a supervised run
        without its classifier), or a state_dict ``.pt`` with ``<name>.config.json`` or
        ``config.json`` (holding the encoder spec under ``"encoder"``) next to it.
    name : str, default="checkpoint"
        How ``checkpoint`` is named in error messages (a command passes its flag).

    Returns
    -------
    Encoder
        On the CPU, in the mode :func:`build_encoder` gives.

    Raises
    ------
    ValueError
        If the path holds no checkpoint, no encoder spec, or weights that do not fit the spec.
    """
    p = resolve_checkpoint(checkpoint, name=name)
    try:
        ckpt = load_checkpoint(p)
        spec, state = json.loads(ckpt["encoder_spec"]), ckpt["model"]
        if ckpt.get("task") == "supervised":
            state = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    except ValueError:
        cfg_path = next((c for c in (p.with_name(p.stem + ".config.json"), p.parent / "config.json")
                         if c.is_file()), None)
        if cfg_path is None:
            raise ValueError(f"`{name}` {str(p)!r} is neither a training checkpoint nor a "
                             "state_dict with a config.json next to it") from None
        spec = json.loads(cfg_path.read_text())["encoder"]
        state = torch.load(p, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    if not spec:
        raise ValueError(f"`{name}` {str(p)!r} does not record how to build its encoder")
    spec = dict(spec)
    kind = spec.pop("name")
    enc = build_encoder(kind, **spec)
    try:
        enc.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"`{name}` {str(p)!r} does not match its encoder spec: {exc}") from exc
    return enc
