"""Input side of :func:`~infogauss.contrastive.embed`: what the data yields (arrays, tensors,
Datasets, DataLoaders, iterables of tuples or dicts, PIL images), unpacked into one forward
call's arguments, and image layout and range checks."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._torch import torch

LAYOUTS = ("auto", "nchw", "nhwc")
POOLINGS = ("cls", "mean")
NAN_POLICIES = ("raise", "warn", "propagate")
_CHANNELS = (1, 3, 4)  # channel counts that auto-detection recognises (grey, RGB, RGBA)
_LABEL_KEYS = ("label", "labels")  # dropped from dict batches passed as keyword arguments
_TOKEN_KEYS = ("last_hidden_state", "token_embeddings")
_RANGE_SLACK = 1e-5  # float images may exceed [0, 1] by this much (rounding of augmentations)
_DATA_KINDS = ("`data` must be a numpy array, a torch.Tensor, a Dataset, a DataLoader or an iterable "
               "of batches (arrays, tensors, (x, y) tuples or dicts)")




# --------------------------------------------------------------------------------------
# Batches: what the data yields, unpacked into the arguments of one forward call
# --------------------------------------------------------------------------------------
@dataclass
class _Item:
    """One forward call: ``net(*args, **kwargs)`` on ``n`` rows (``mask``: attention mask)."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    mask: Any = None
    n: int = 0
    image: bool = False  # args[0] is a positional input that gets layout and scale rules


def _is_pil(obj: Any) -> bool:
    return type(obj).__module__.startswith("PIL.") and hasattr(obj, "getbands")


def _pil_array(img: Any) -> np.ndarray:
    a = np.array(img)  # a writable copy (np.asarray of a PIL image is read-only)
    return a[..., None] if a.ndim == 2 else a  # greyscale: one channel, last (HWC)


def _pil_to_arrays(obj: Any) -> Any:
    if _is_pil(obj):
        return _pil_array(obj)
    if isinstance(obj, Mapping):
        return {k: _pil_to_arrays(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(_pil_to_arrays(v) for v in obj)
    return obj


def _collate(samples: list) -> Any:
    """``default_collate`` after PIL images become HWC uint8 arrays."""
    return torch.utils.data.default_collate([_pil_to_arrays(s) for s in samples])


def _check_dtype(dtype: Any) -> None:
    if dtype == torch.uint8 or (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        return
    raise TypeError(
        f"`data` must be uint8 images or float features, got dtype {dtype}; token ids go in "
        "dict batches (e.g. {'input_ids': ..., 'attention_mask': ...}), which are passed to the "
        "encoder as keyword arguments"
    )


def _as_tensor(x: Any, i: int) -> torch.Tensor:
    """The positional input of batch ``i`` as a CPU (or already placed) tensor."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    elif isinstance(x, np.ndarray):
        if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"`data` must be uint8 images or float features, got dtype {x.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(x))
    elif isinstance(x, (list, tuple)) and x and all(_is_pil(v) for v in x):
        t = torch.from_numpy(np.stack([_pil_array(v) for v in x]))
    else:
        raise TypeError(f"{_DATA_KINDS}; batch {i} holds a {type(x).__name__} as its input")
    _check_dtype(t.dtype)
    if t.ndim < 2:
        raise ValueError(
            f"`data` must have a leading sample axis and features, got shape {tuple(t.shape)} "
            f"in batch {i} (a single sample? stack samples into one array)"
        )
    return t


def _tensor_values(d: Mapping) -> dict:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
            for k, v in d.items()}


def _rows(obj: Any) -> int:
    for v in (obj.values() if isinstance(obj, Mapping) else (obj,)):
        if isinstance(v, torch.Tensor) and v.ndim >= 1:
            return int(v.shape[0])
    raise ValueError("a dict batch must hold at least one tensor or array with a leading sample axis")


def _unpack(batch: Any, input_key: str | int | None, i: int) -> _Item:
    """One batch of the data as the arguments of one forward call."""
    if isinstance(batch, Mapping):
        if isinstance(input_key, str):
            if input_key not in batch:
                raise ValueError(
                    f"`input_key`={input_key!r} is not a key of batch {i} (keys {list(batch)})"
                )
            x = _as_tensor(batch[input_key], i)
            mask = batch.get("attention_mask")
            return _Item((x,), mask=mask, n=int(x.shape[0]), image=True)
        if input_key is not None:
            raise TypeError(f"`input_key` must be a key (str) for dict batches, got {input_key!r}")
        kwargs = {k: v for k, v in _tensor_values(batch).items() if k not in _LABEL_KEYS}
        return _Item((), kwargs, mask=kwargs.get("attention_mask"), n=_rows(kwargs))
    if isinstance(batch, (tuple, list)) and batch and not all(_is_pil(v) for v in batch):
        if isinstance(input_key, str):
            raise TypeError(f"`input_key`={input_key!r} names a dict entry, but batch {i} is a "
                            f"{type(batch).__name__} (pass an index, e.g. input_key=0)")
        k = 0 if input_key is None else input_key
        if not -len(batch) <= k < len(batch):
            raise ValueError(f"`input_key`={k} is out of range for batch {i} of length {len(batch)}")
        batch = batch[k]
    elif input_key is not None:
        raise TypeError(f"`input_key` selects from dict or tuple batches, but batch {i} is a "
                        f"{type(batch).__name__}")
    x = _as_tensor(batch, i)
    return _Item((x,), n=int(x.shape[0]), image=True)


def _is_number_list(data: Any) -> bool:
    def flat(v: Any) -> bool:
        return isinstance(v, numbers.Number) or (
            isinstance(v, (list, tuple)) and all(isinstance(w, numbers.Number) for w in v)
        )

    return isinstance(data, (list, tuple)) and bool(data) and all(flat(v) for v in data)


def _shuffles(loader: Any) -> bool:
    return isinstance(getattr(loader, "sampler", None), torch.utils.data.RandomSampler)


def _batches(data: Any, batch_size: int) -> tuple[Iterable, int | None, int | None]:
    """Raw batches of ``data``, their number and the number of rows (None where unknown)."""
    if isinstance(data, (list, tuple)) and data and all(_is_pil(v) for v in data):
        data = np.stack([_pil_array(v) for v in data])  # a list of images is one array
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8 and not np.issubdtype(data.dtype, np.floating):
            raise TypeError(f"`data` must be uint8 images or float features, got dtype {data.dtype}")
        data = torch.from_numpy(np.ascontiguousarray(data))
    if isinstance(data, torch.Tensor):
        x = data.detach()
        if x.ndim < 2:
            raise ValueError(
                f"`data` must have a leading sample axis and features, got shape {tuple(x.shape)}"
            )
        n = int(x.shape[0])
        starts = range(0, n, batch_size) if n else range(1)  # an empty array: one empty batch
        return (x[s:s + batch_size] for s in starts), len(starts), n
    if isinstance(data, Mapping):  # one big dict batch (e.g. a tokenizer's output)
        values = _tensor_values(data)
        n = _rows(values)
        for k, v in values.items():
            if isinstance(v, torch.Tensor) and v.ndim >= 1 and v.shape[0] != n:
                raise ValueError(f"every entry of a dict `data` needs {n} rows; {k!r} has {v.shape[0]}")
        starts = range(0, n, batch_size) if n else range(1)
        gen = ({k: (v[s:s + batch_size] if isinstance(v, torch.Tensor) and v.ndim >= 1 else v)
                for k, v in values.items()} for s in starts)
        return gen, len(starts), n
    if isinstance(data, torch.utils.data.DataLoader):
        if _shuffles(data):
            warnings.warn(
                "the DataLoader shuffles (shuffle=True): embeddings follow its random order, not "
                "the dataset's; pass a DataLoader with shuffle=False (or the Dataset itself) to "
                "keep rows aligned with labels",
                UserWarning,
                stacklevel=3,
            )
        return data, _len_or_none(data), None
    if isinstance(data, torch.utils.data.Dataset):
        loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False,
                                             collate_fn=_collate)
        return loader, _len_or_none(loader), None
    if isinstance(data, (str, bytes)) or _is_number_list(data) or not isinstance(data, Iterable):
        detail = ("a nested list of numbers: convert it with np.asarray(data, dtype=np.float32)"
                  if _is_number_list(data) else f"a {type(data).__name__}")
        raise TypeError(f"{_DATA_KINDS}; got {detail}")
    return data, _len_or_none(data), None


def _len_or_none(obj: Any) -> int | None:
    try:
        return len(obj)
    except TypeError:
        return None


# --------------------------------------------------------------------------------------
# Inputs on the device: layout, scale and dtype
# --------------------------------------------------------------------------------------
def _to_nchw(x: torch.Tensor, layout: str, i: int) -> torch.Tensor:
    if x.ndim != 4:
        if layout != "auto":
            raise ValueError(f"`layout`={layout!r} is for 4-D images, but batch {i} has shape "
                             f"{tuple(x.shape)}; use layout='auto' for other inputs")
        return x
    if layout == "nchw":
        return x
    if layout == "nhwc":
        return x.permute(0, 3, 1, 2)
    first, last = x.shape[1] in _CHANNELS, x.shape[3] in _CHANNELS
    if first and not last:
        return x
    if last and not first:
        return x.permute(0, 3, 1, 2)  # a view, channels_last in memory: no copy
    raise ValueError(
        f"cannot tell the channel axis of images of shape {tuple(x.shape)} (batch {i}): "
        f"layout='auto' needs exactly one of the second or last axes in {_CHANNELS}; "
        "pass layout='nchw' (N, C, H, W) or layout='nhwc' (N, H, W, C)"
    )


def _to_device(obj: Any, dev: torch.device, fdtype: torch.dtype) -> Any:
    """Tensors inside ``obj`` on ``dev``; floating ones in the model's dtype."""
    if isinstance(obj, torch.Tensor):
        return obj.to(dev, fdtype) if obj.is_floating_point() else obj.to(dev)
    if isinstance(obj, Mapping):
        return {k: _to_device(v, dev, fdtype) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to_device(v, dev, fdtype) for v in obj)
    return obj


def _image_input(x: torch.Tensor, i: int, dev: torch.device, fdtype: torch.dtype,
                 layout: str, scale: float | None) -> torch.Tensor:
    """A positional input: NCHW, uint8 / 255 (or ``* scale``), float range checked, dtype."""
    x = _to_nchw(x, layout, i).to(dev)  # uint8 travels as uint8 (4x fewer bytes)
    work = torch.float64 if fdtype == torch.float64 else torch.float32
    if x.dtype == torch.uint8:
        x = x.to(work)
        x = x / 255.0 if scale is None else x * scale
    else:
        x = x.to(work)  # bf16 / fp16 / fp64 inputs: computed in the working precision
        if scale is not None:
            x = x * scale
        elif x.ndim == 4 and x.numel():
            lo, hi = (float(v) for v in torch.aminmax(x))
            if lo < -_RANGE_SLACK or hi > 1.0 + _RANGE_SLACK:
                raise ValueError(
                    f"float images must lie in [0, 1] (uint8 images are divided by 255), but "
                    f"batch {i} has values in [{lo:.4g}, {hi:.4g}]: pass scale=1/255 for images "
                    "in [0, 255], or scale=1.0 to feed them unchanged (e.g. already normalised)"
                )
    if x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x.to(fdtype)
