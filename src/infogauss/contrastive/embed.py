"""``embed()``: run an encoder over data, return float32 C-contiguous CPU numpy.

What goes in: arrays and tensors (batched here), a ``Dataset`` (batched here), a ``DataLoader``
or any iterable of batches (tensors, arrays, ``(x, y, ...)`` tuples, dicts); images in NCHW or
NHWC (numpy's and PIL's layout), uint8 or float in [0, 1]; tokenizer output as dict batches.
What the encoder may return: a tensor, a dict, a tuple or a Hugging Face ``ModelOutput``
(``output=`` picks one, ``pool=`` pools token embeddings). What comes out: one row per input
row, float32, C-contiguous, on the CPU; non-finite rows raise. The user's model is borrowed:
its device, memory and the train/eval mode of every submodule are as they were afterwards.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._progress import progress as _progress
from ._inputs import (  # noqa: F401  (re-exported for text.py and tests)
    _CHANNELS,
    _DATA_KINDS,
    _LABEL_KEYS,
    _RANGE_SLACK,
    _TOKEN_KEYS,
    LAYOUTS,
    NAN_POLICIES,
    POOLINGS,
    _as_tensor,
    _batches,
    _check_dtype,
    _collate,
    _image_input,
    _is_number_list,
    _is_pil,
    _Item,
    _len_or_none,
    _pil_array,
    _pil_to_arrays,
    _rows,
    _shuffles,
    _tensor_values,
    _to_device,
    _to_nchw,
    _unpack,
)
from ._torch import nn, torch

__all__ = ["embed", "LAYOUTS", "POOLINGS", "NAN_POLICIES"]

# --------------------------------------------------------------------------------------
# The model: which module, which device, borrowed without side effects
# --------------------------------------------------------------------------------------
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


def _float_dtype(model: nn.Module) -> torch.dtype:
    """The floating dtype of the model's first floating parameter (or buffer); else float32."""
    for t in (*model.parameters(), *model.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.float32


def _known_width(model: nn.Module, layer: str) -> int | None:
    """Embedding width of an :class:`Encoder` without running it (None for other modules)."""
    head = getattr(model, "head", None)
    if hasattr(model, "backbone_dim") and (layer == "backbone" or head is None):
        return int(model.backbone_dim)
    if head is not None:
        linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
        if linears:
            return int(linears[-1].out_features)
    return None


class _Borrowed:
    """Eval mode, and ``device`` when given, for the duration of a ``with`` block.

    Nothing of the user's model is lost or converted: the train/eval flag of every submodule
    is restored one by one (a frozen BatchNorm inside a training model stays frozen), and a
    parameter or buffer not on ``device`` is replaced, in the module that holds it, by a copy
    there (one copy for a tied tensor); afterwards every module gets its original Parameter
    and buffer objects back (same storage, strides, memory format, gradients; optimiser
    references stay valid).
    """

    def __init__(self, model: nn.Module, device: torch.device | None) -> None:
        self.model = model
        self.device = device
        self._modes: list[tuple[nn.Module, bool]] = []
        self._swapped: list[tuple[nn.Module, str, torch.Tensor]] = []

    def __enter__(self) -> _Borrowed:
        self._modes = [(m, m.training) for m in self.model.modules()]
        try:
            if self.device is not None:
                self._move(self.device)
            self.model.eval()
        except BaseException:
            self._restore()
            raise
        return self

    def _move(self, dev: torch.device) -> None:
        copies: dict[int, torch.Tensor] = {}
        for mod in self.model.modules():
            held = [*mod.named_parameters(recurse=False), *mod.named_buffers(recurse=False)]
            for name, t in held:
                if t.device == dev:
                    continue
                if id(t) not in copies:
                    moved = t.detach().to(dev)
                    copies[id(t)] = (nn.Parameter(moved, requires_grad=t.requires_grad)
                                     if isinstance(t, nn.Parameter) else moved)
                self._swapped.append((mod, name, t))
                setattr(mod, name, copies[id(t)])

    def _restore(self) -> None:
        for mod, name, t in reversed(self._swapped):
            setattr(mod, name, t)
        for m, flag in self._modes:
            m.training = flag
        self._swapped = []

    def __exit__(self, *exc: object) -> None:
        self._restore()


# --------------------------------------------------------------------------------------
# Outputs: which tensor, pooled, one row per input row
# --------------------------------------------------------------------------------------
def _keys(out: Any) -> list:
    return list(out.keys()) if isinstance(out, Mapping) else []


def _select(out: Any, output: Any) -> tuple[torch.Tensor, str | None]:
    """The embedding tensor of a forward's output, and the key it came from."""
    key = None
    if isinstance(output, str):
        if isinstance(out, Mapping) and output in out:
            t, key = out[output], output
        elif not isinstance(out, (torch.Tensor, Mapping)) and hasattr(out, output):
            t, key = getattr(out, output), output
        else:
            raise ValueError(f"`output`={output!r} is not an output of the encoder "
                             f"(it returned a {type(out).__name__} with keys {_keys(out)})")
    elif isinstance(output, int) and not isinstance(output, bool):
        seq = out.to_tuple() if hasattr(out, "to_tuple") else out
        if not isinstance(seq, (tuple, list)):
            raise TypeError(f"`output`={output} indexes a tuple of outputs, but the encoder "
                            f"returned a {type(out).__name__}")
        if not -len(seq) <= output < len(seq):
            raise ValueError(f"`output`={output} is out of range: the encoder returned {len(seq)} outputs")
        t = seq[output]
    elif callable(output):
        t = output(out)
    elif isinstance(out, torch.Tensor):
        t = out
    elif isinstance(out, Mapping):
        present = [k for k in ("sentence_embedding", "last_hidden_state") if k in out]
        tensors = [k for k, v in out.items() if isinstance(v, torch.Tensor)]
        if present:
            key = present[0]
        elif len(tensors) == 1:
            key = tensors[0]
        else:
            raise TypeError(
                f"the encoder returned a {type(out).__name__} with outputs {list(out.keys())}: "
                "pass output=KEY (e.g. output='pooler_output'), an index or a callable"
            )
        t = out[key]
    elif isinstance(out, (tuple, list)) and len(out) == 1:
        t = out[0]
    elif isinstance(out, (tuple, list)):
        raise TypeError(f"the encoder returned a {type(out).__name__} of {len(out)} outputs: pass "
                        "output=INDEX (e.g. output=0) or a callable")
    else:
        raise TypeError(f"the encoder returned a {type(out).__name__}; pass output= (a key, an "
                        "index or a callable) that picks the embedding tensor")
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"the selected encoder output must be a tensor, got {type(t).__name__}")
    return t, key


def _pool(t: torch.Tensor, pool: str, mask: Any) -> torch.Tensor:
    if t.ndim != 3:
        raise ValueError(f"`pool`={pool!r} pools token embeddings of shape (N, T, D), but the "
                         f"encoder output has shape {tuple(t.shape)}")
    if pool == "cls":
        return t[:, 0]
    t = t.float()
    if mask is None:
        return t.mean(dim=1)
    m = torch.as_tensor(mask).to(t.device, torch.float32)
    if m.shape != t.shape[:2]:
        raise ValueError(f"the attention mask has shape {tuple(m.shape)}, but the token "
                         f"embeddings have shape {tuple(t.shape)}")
    m = m.unsqueeze(-1)
    return (t * m).sum(dim=1) / m.sum(dim=1).clamp_min(1e-9)


def _one_row_of_zeros(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return torch.zeros((1, *obj.shape[1:]), dtype=obj.dtype, device=obj.device)
    if isinstance(obj, Mapping):
        return {k: _one_row_of_zeros(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(_one_row_of_zeros(v) for v in obj)
    return obj


@dataclass
class _Run:
    """How to turn forward outputs into embedding rows."""

    output: Any = None
    pool: str | None = None
    nan_policy: str = "raise"
    layout: str = "auto"
    scale: float | None = None


def _rows_of(out: Any, item: _Item, i: int, how: _Run) -> torch.Tensor:
    t, key = _select(out, how.output)
    if how.pool is not None:
        t = _pool(t, how.pool, item.mask)
    elif t.ndim == 3 and (key in _TOKEN_KEYS or item.mask is not None):
        raise ValueError(
            f"the encoder returns token embeddings of shape {tuple(t.shape)}"
            + (f" ({key})" if key else "")
            + ": pass pool='mean' (averaged under the batch's attention_mask) or pool='cls'"
        )
    if t.ndim == 0 or t.shape[0] != item.n:
        raise ValueError(f"the encoder returned {tuple(t.shape)} for batch {i} of {item.n} rows: "
                         "the selected output needs one row per input row")
    return t.reshape(item.n, -1)


def _run(model: nn.Module, net: nn.Module, batches: Iterable, *, unpack: Callable[[Any, int], _Item],
         device: Any, precision: str, progress: bool, how: _Run, n_batches: int | None,
         n_rows: int | None, width_hint: int | None, row_ids: Any = None) -> np.ndarray:
    """The loop shared by :func:`embed` and :func:`~infogauss.contrastive.embed_texts`.

    ``row_ids[k]`` is the caller's index of the ``k``-th row fed (for messages; default ``k``).
    """
    home = _model_device(model)
    dev = home if device is None else torch.empty(0, device=device).device
    fdtype = _float_dtype(model)
    out: np.ndarray | None = None
    chunks: list[np.ndarray] = []
    bad_rows: list[int] = []
    template: _Item | None = None
    seen = 0
    with _Borrowed(model, dev if device is not None else None):
        bar = _progress(batches, enabled=progress, desc="embed", unit="batch", total=n_batches)
        with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16,
                                                     enabled=precision == "bf16"):
            i = -1
            for i, batch in enumerate(bar):
                item = _place(unpack(batch, i), i, dev, fdtype, how)
                if item.n == 0:
                    template = template or item
                    continue
                z = _rows_of(_call(net, item, i), item, i, how).float()
                ok = torch.isfinite(z).all(dim=1)
                if not bool(ok.all()):
                    rows = (seen + torch.nonzero(~ok).flatten().cpu()).tolist()
                    if row_ids is not None:
                        rows = sorted(int(row_ids[r]) for r in rows)
                    if how.nan_policy == "raise":
                        raise ValueError(_nan_message(rows, i))
                    bad_rows += rows
                z = z.cpu().numpy()
                width = out.shape[1] if out is not None else (chunks[0].shape[1] if chunks else None)
                if width is not None and z.shape[1] != width:
                    raise ValueError(
                        f"batch {i} gives embeddings of width {z.shape[1]}, earlier batches {width}"
                        " (outputs of varying length: pool token outputs with pool='mean' or 'cls')"
                    )
                if n_rows is not None:
                    if out is None:
                        out = np.empty((n_rows, z.shape[1]), np.float32)
                    out[seen:seen + z.shape[0]] = z
                else:
                    chunks.append(z)
                seen += z.shape[0]
            if seen == 0:
                width = width_hint
                if width is None and template is not None:
                    width = _dummy_width(net, template, how)
                if width is None:
                    raise ValueError(
                        "`data` yielded no batches, so the embedding width is unknown: pass an "
                        "empty array of the input's shape instead (e.g. np.empty((0, 3, 32, 32), "
                        "np.uint8)) to get an array of shape (0, d)"
                    )
                return np.empty((0, width), np.float32)
    if bad_rows and how.nan_policy == "warn":
        warnings.warn(_nan_message(bad_rows, None), RuntimeWarning, stacklevel=3)
    if out is None:  # concatenate copies: no row shares memory with a tensor the model returned
        out = np.concatenate(chunks)
    return np.ascontiguousarray(out, dtype=np.float32)


def _nan_message(rows: list[int], batch: int | None) -> str:
    where = f" of batch {batch}" if batch is not None else ""
    more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
    return (
        f"the encoder returned NaN or infinite embeddings for {len(rows)} row(s){where} (rows "
        f"{rows[:10]}{more} of the data): check those inputs for NaN/inf and the model for "
        "diverged weights (precision='bf16' can also overflow); nan_policy='warn' returns them"
    )


def _place(item: _Item, i: int, dev: torch.device, fdtype: torch.dtype, how: _Run) -> _Item:
    args = item.args
    if item.image:
        args = (_image_input(args[0], i, dev, fdtype, how.layout, how.scale),)
    else:
        args = _to_device(args, dev, fdtype)
    mask = item.mask if item.mask is None else torch.as_tensor(item.mask).to(dev)
    return _Item(args, _to_device(item.kwargs, dev, fdtype), mask, item.n, item.image)


def _call(net: nn.Module, item: _Item, i: int) -> Any:
    try:
        return net(*item.args, **item.kwargs)
    except TypeError as exc:
        if item.kwargs and i == 0:
            raise TypeError(
                f"the encoder could not be called with the batch's keys {list(item.kwargs)} as "
                f"keyword arguments ({exc}); pass input_key=KEY to feed one entry positionally"
            ) from exc
        raise


def _dummy_width(net: nn.Module, template: _Item, how: _Run) -> int:
    """Width of the embedding from one forward on a row of zeros (for empty inputs)."""
    one = _Item(_one_row_of_zeros(template.args), _one_row_of_zeros(template.kwargs),
                _one_row_of_zeros(template.mask), 1, template.image)
    try:
        return int(_rows_of(_call(net, one, 0), one, 0, how).shape[1])
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise ValueError(f"`data` has no rows and the embedding width could not be learnt from a "
                         f"forward on one row of zeros: {exc}") from exc


# --------------------------------------------------------------------------------------
# Public function
# --------------------------------------------------------------------------------------
def _check_options(batch_size: Any, precision: str, layout: str, scale: Any, output: Any,
                   pool: Any, nan_policy: str) -> int:
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"`precision` must be 'fp32' or 'bf16', got {precision!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"`layout` must be one of {LAYOUTS}, got {layout!r}")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, numbers.Real)
                              or not np.isfinite(scale) or scale <= 0):
        raise ValueError(f"`scale` must be a positive finite number or None, got {scale!r}")
    if pool is not None and pool not in POOLINGS:
        raise ValueError(f"`pool` must be one of {POOLINGS} or None, got {pool!r}")
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"`nan_policy` must be one of {NAN_POLICIES}, got {nan_policy!r}")
    if output is not None and not isinstance(output, (str, int)) and not callable(output):
        raise TypeError(f"`output` must be a key, an index, a callable or None, got {output!r}")
    return int(batch_size)


def embed(
    encoder: nn.Module,
    data: Any,
    layer: str = "backbone",
    batch_size: int = 512,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    progress: bool = False,
    *,
    layout: str = "auto",
    scale: float | None = None,
    input_key: str | int | None = None,
    output: str | int | Callable[[Any], Any] | None = None,
    pool: str | None = None,
    nan_policy: str = "raise",
) -> np.ndarray:
    """Embed ``data`` with ``encoder`` in eval mode, without gradients.

    Parameters
    ----------
    encoder : nn.Module
        An :class:`Encoder` (``layer`` picks ``backbone`` or ``head``) or any module: its
        ``forward`` is the embedding, whatever ``layer``; a DDP/DataParallel wrapper is
        unwrapped.
    data : ndarray, Tensor, dict, Dataset, DataLoader or iterable of batches
        * an array or tensor of shape (N, ...): split into ``batch_size`` rows;
        * a list of PIL images: stacked into one (N, H, W, C) uint8 array;
        * a dict of arrays/tensors with N rows each (e.g. a tokenizer's output): split into
          ``batch_size`` rows, each passed as keyword arguments (see below);
        * a ``torch.utils.data.Dataset``: batched by a ``DataLoader(batch_size, shuffle=False)``
          (PIL images are converted to HWC uint8 arrays);
        * a ``DataLoader`` or any other iterable: its batches as they come (``batch_size`` is
          not used; a shuffling DataLoader warns, since rows then follow its random order).

        A batch is a tensor or array; a tuple or list ``(x, y, ...)`` whose ``input_key``-th
        entry (default 0) is the input; or a dict, whose ``input_key`` entry is the input
        when given, else the whole dict (less ``label``/``labels``) is passed as keyword
        arguments ``encoder(**batch)`` (Hugging Face's convention; its ``attention_mask``
        is used by ``pool="mean"``).

        A positional input must be uint8 or floating. uint8 is divided by 255 (as in
        training); 4-D float images must lie in [0, 1] unless ``scale`` is given; bf16,
        fp16 and fp64 inputs are converted to the model's floating dtype.
    layer : {"backbone", "head"}, default="backbone"
    batch_size : int, default=512
    device : str or torch.device, optional
        Where to compute. ``None`` (default) computes where the model's first parameter is
        and never moves anything. If given, parameters and buffers elsewhere are copied there
        for the call and the model gets its own tensors back afterwards (see Notes).
    precision : {"fp32", "bf16"}, default="fp32"
        ``bf16`` runs under autocast (faster on CPUs with bf16 units); the output is float32.
    progress : bool, default=False
    layout : {"auto", "nchw", "nhwc"}, default="auto"
        Layout of 4-D image inputs; NHWC is permuted to the NCHW that torch models take.
        ``"auto"`` decides when exactly one of the second and last axes has 1, 3 or 4 entries,
        and raises a ValueError when both or neither do.
    scale : float, optional
        Multiply positional inputs by ``scale`` instead of the default rule (uint8 / 255,
        float images checked to lie in [0, 1]): ``1/255`` for float images in [0, 255],
        ``1.0`` to feed images unchanged (e.g. already normalised).
    input_key : str or int, optional
        The input entry of dict batches (a key) or tuple batches (an index, default 0).
    output : str, int or callable, optional
        Picks the embedding from what the encoder returns: a key of a dict or ``ModelOutput``,
        an index of a tuple, or a callable ``output(returned) -> Tensor``. Default: the tensor
        returned; of a dict, ``"sentence_embedding"`` (sentence-transformers), else
        ``"last_hidden_state"`` (then ``pool`` is required), else its only tensor; a tuple
        other than a 1-tuple raises a TypeError asking for ``output``.
    pool : {"cls", "mean"}, optional
        Pool token embeddings (N, T, D): the first token, or the mean over tokens under the
        batch's ``attention_mask`` (all tokens without one). Without ``pool``, outputs of more
        than 2 axes are flattened, except token embeddings, which raise.
    nan_policy : {"raise", "warn", "propagate"}, default="raise"
        What to do with NaN or infinite embeddings: raise a ValueError naming the batch and
        the rows, warn (RuntimeWarning naming the rows) and return them, or return them.

    Returns
    -------
    ndarray of float32, shape (N, d), C-contiguous, on the CPU.
        One row per input row, in the order of ``data``. With no rows, shape (0, d): ``d``
        comes from one forward on a row of zeros (an :class:`Encoder` knows it without one).

    Notes
    -----
    The model is borrowed, not changed: the train/eval flag of every submodule is restored
    one by one, nothing is cast or converted to another memory format, and tensors copied to
    ``device`` are dropped afterwards, each parameter getting back its original tensor (same
    storage and strides; Parameter objects never change). Inputs follow the model: they are
    moved to ``device`` and cast to its floating dtype (bf16 models get bf16 inputs).

    Examples
    --------
    >>> from infogauss.contrastive import build_encoder
    >>> enc = build_encoder("linear", in_features=3, head=False)
    >>> embed(enc, np.ones((5, 3), np.float32)).shape
    (5, 3)
    >>> embed(enc, np.ones((0, 3), np.float32)).shape
    (0, 3)
    """
    bs = _check_options(batch_size, precision, layout, scale, output, pool, nan_policy)
    if isinstance(input_key, bool) or (input_key is not None and not isinstance(input_key, (str, int))):
        raise TypeError(f"`input_key` must be a str, an int or None, got {input_key!r}")
    model = _unwrap(encoder)
    if not isinstance(model, nn.Module):
        raise TypeError(f"`encoder` must be a torch.nn.Module, got {type(encoder).__name__}")
    net = _select_layer(model, layer)
    batches, n_batches, n_rows = _batches(data, bs)
    how = _Run(output=output, pool=pool, nan_policy=nan_policy, layout=layout, scale=scale)
    return _run(model, net, batches, unpack=lambda b, i: _unpack(b, input_key, i), device=device,
                precision=precision, progress=progress, how=how, n_batches=n_batches,
                n_rows=n_rows, width_hint=_known_width(model, layer))
