"""Batched, seeded data augmentations (no per-image loop, no torchvision).

Every augmentation splits into ``sample_params(n, sample_shape, generator)`` — all per-sample
random numbers, drawn on the CPU from a :class:`torch.Generator` — and a deterministic
``apply(x, params)``. The split keeps runs reproducible and lets data-parallel ranks draw the
parameters of the *global* batch and apply only their own rows, so that training on several
processes equals training on one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._torch import F, torch

__all__ = [
    "Augmentation",
    "ImageAugment",
    "SyntheticViews",
    "BitFlips",
    "Identity",
    "get_augmentation",
    "same_component_positives",
    "slice_params",
]

# ITU-R 601 luma, as PIL's convert("L") and torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)
# RGB -> YIQ; a hue shift is a rotation of the (I, Q) plane.
_RGB2YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def _uniform(n, lo, hi, generator, shape=()) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand((n, *shape), generator=generator)


def slice_params(params: dict, start: int, stop: int) -> dict:
    """Rows ``start:stop`` of every per-sample parameter (for data-parallel ranks)."""
    return {k: v[start:stop] for k, v in params.items()}


class Augmentation:
    """Base class: ``aug(x, generator)`` = ``aug.apply(x, aug.sample_params(len(x), ...))``."""

    def sample_params(self, n: int, sample_shape: tuple, generator: torch.Generator) -> dict:
        raise NotImplementedError

    def apply(self, x: torch.Tensor, params: dict) -> torch.Tensor:
        raise NotImplementedError

    def check_input(self, x: torch.Tensor) -> None:
        """Raise TypeError/ValueError when ``x`` does not suit this augmentation."""

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"`x` must be a torch.Tensor, got {type(x).__name__}")
        self.check_input(x)
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        return self.apply(x, self.sample_params(x.shape[0], tuple(x.shape[1:]), generator))


def check_images(x, name: str = "images") -> None:
    """uint8 images of shape (N, 3, H, W), channels first."""
    if x.dtype != torch.uint8:
        raise TypeError(f"`{name}` must be uint8 images of shape (N, 3, H, W), got dtype {x.dtype}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"`{name}` must have shape (N, 3, H, W) (channels first), got {tuple(x.shape)}")


@dataclass(frozen=True)
class ImageAugment(Augmentation):
    """SimCLR image augmentations on uint8 (N, 3, H, W) tensors; output float32 in [0, 1].

    Random resized crop (area fraction in ``scale``, aspect ratio log-uniform in ``ratio``,
    10 tries then the whole image, as torchvision), horizontal flip, colour jitter applied with
    probability ``jitter_p`` (brightness, contrast, saturation, hue, in that fixed order), random
    greyscale. The crop and flip are one batched ``grid_sample`` (bilinear); the hue shift is a
    rotation of the YIQ chroma plane (a linear approximation of torchvision's HSV shift).

    Parameters
    ----------
    size : int or None
        Output side; ``None`` keeps the input size.
    scale, ratio : (float, float)
    flip_p, jitter_p, grey_p : float
    brightness, contrast, saturation, hue : float
        Jitter strengths: factors ``U[max(0, 1 - s), 1 + s]``; hue shift ``U[-hue, hue]`` turns.

    Examples
    --------
    >>> import torch
    >>> x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    >>> ImageAugment()(x, torch.Generator().manual_seed(0)).shape
    torch.Size([4, 3, 32, 32])
    """

    size: int | None = None
    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grey_p: float = 0.2

    def __post_init__(self) -> None:
        lo, hi = self.scale
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"`scale` must satisfy 0 < lo <= hi <= 1, got {self.scale}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"`ratio` must satisfy 0 < lo <= hi, got {self.ratio}")
        for name in ("flip_p", "jitter_p", "grey_p"):
            p = getattr(self, name)
            if not 0 <= p <= 1:
                raise ValueError(f"`{name}` must be a probability in [0, 1], got {p}")
        for name in ("brightness", "contrast", "saturation"):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.hue <= 0.5:
            raise ValueError(f"`hue` must be in [0, 0.5], got {self.hue}")

    @classmethod
    def paper(cls, **kwargs) -> ImageAugment:
        """The strong preset (colour jitter 0.8/0.8/0.8/0.2) used in the paper and SimCLR."""
        return cls(**{"brightness": 0.8, "contrast": 0.8, "saturation": 0.8, "hue": 0.2, **kwargs})

    def check_input(self, x) -> None:
        check_images(x, "x")

    def sample_params(self, n: int, sample_shape: tuple, generator: torch.Generator) -> dict:
        _, h_img, w_img = sample_shape
        area = float(h_img * w_img)
        tries = 10
        target = area * _uniform(n, *self.scale, generator, (tries,))
        log_r = _uniform(n, math.log(self.ratio[0]), math.log(self.ratio[1]), generator, (tries,))
        r = torch.exp(log_r)
        w = torch.sqrt(target * r)
        h = torch.sqrt(target / r)
        ok = (w <= w_img) & (h <= h_img)
        first = ok.to(torch.int64).argmax(dim=1, keepdim=True)
        any_ok = ok.any(dim=1)
        w = torch.where(any_ok, w.gather(1, first)[:, 0], torch.full((n,), float(w_img)))
        h = torch.where(any_ok, h.gather(1, first)[:, 0], torch.full((n,), float(h_img)))
        x0 = torch.rand(n, generator=generator) * (w_img - w)
        y0 = torch.rand(n, generator=generator) * (h_img - h)
        flip = torch.rand(n, generator=generator) < self.flip_p
        jitter = torch.rand(n, generator=generator) < self.jitter_p

        def factor(s):
            f = _uniform(n, max(0.0, 1 - s), 1 + s, generator)
            return torch.where(jitter, f, torch.ones(n))

        b, c, s = factor(self.brightness), factor(self.contrast), factor(self.saturation)
        hue = torch.where(jitter, _uniform(n, -self.hue, self.hue, generator), torch.zeros(n))
        grey = torch.rand(n, generator=generator) < self.grey_p
        return {
            "crop": torch.stack([x0, y0, w, h], dim=1),  # pixels, continuous
            "flip": flip,
            "jitter": jitter,
            "brightness": b,
            "contrast": c,
            "saturation": s,
            "hue": hue,
            "grey": grey,
            "input_hw": torch.tensor([[h_img, w_img]]).expand(n, 2),
        }

    def apply(self, x: torch.Tensor, params: dict) -> torch.Tensor:
        self.check_input(x)
        n, _, h_img, w_img = x.shape
        dev = x.device
        p = {k: v.to(dev) for k, v in params.items()}
        out = self.size or h_img
        x0, y0, w, h = p["crop"].unbind(1)
        # crop + flip: one sampling grid built by broadcasting (affine_grid is ~4x slower)
        sx = torch.where(p["flip"], -w / w_img, w / w_img)
        tx = 2 * (x0 + w / 2) / w_img - 1
        sy = h / h_img
        ty = 2 * (y0 + h / 2) / h_img - 1
        base = (torch.arange(out, device=dev, dtype=torch.float32) * 2 + 1) / out - 1
        gx = (sx.view(n, 1, 1) * base.view(1, 1, out) + tx.view(n, 1, 1)).expand(n, out, out)
        gy = (sy.view(n, 1, 1) * base.view(1, out, 1) + ty.view(n, 1, 1)).expand(n, out, out)
        grid = torch.stack([gx, gy], dim=-1)
        img = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border",
                            align_corners=False)
        # brightness, contrast, saturation, hue and greyscale as ONE per-sample affine map of
        # the pixels (a batched matmul) followed by one clamp to [0, 1]; torchvision clamps after
        # each op, which differs only on pixels that an early op pushes out of range.
        luma = torch.tensor(_LUMA, device=dev)
        flat = img.view(n, 3, out * out)
        b = (p["brightness"] / 255.0).view(n, 1, 1)  # the uint8 -> [0, 1] scaling folded in
        c = p["contrast"].view(n, 1, 1)
        mean = torch.einsum("ncp,c->n", flat, luma).view(n, 1, 1) * (b / (out * out))
        m = self._colour_matrix(p, luma)
        offset = (1 - c) * mean * m.sum(dim=2, keepdim=True)
        flat = torch.baddbmm(offset, (b * c) * m, flat).clamp_(0, 1)
        return flat.view(n, 3, out, out)

    @staticmethod
    def _colour_matrix(p: dict, luma: torch.Tensor) -> torch.Tensor:
        """Per-sample 3x3: saturation, then hue rotation, then optional greyscale."""
        dev = luma.device
        n = p["saturation"].shape[0]
        eye = torch.eye(3, device=dev)
        grey_m = luma.view(1, 3).expand(3, 3)  # every output channel = luma
        s = p["saturation"].view(n, 1, 1)
        m_sat = s * eye + (1 - s) * grey_m
        yiq = torch.tensor(_RGB2YIQ, device=dev)
        yiq_inv = torch.linalg.inv(yiq)
        ang = 2 * math.pi * p["hue"]
        rot = torch.zeros(n, 3, 3, device=dev)
        rot[:, 0, 0] = 1
        rot[:, 1, 1] = torch.cos(ang)
        rot[:, 1, 2] = -torch.sin(ang)
        rot[:, 2, 1] = torch.sin(ang)
        rot[:, 2, 2] = torch.cos(ang)
        m = yiq_inv @ rot @ yiq @ m_sat
        g = p["grey"].view(n, 1, 1)
        return torch.where(g, grey_m @ m, m)


@dataclass(frozen=True)
class SyntheticViews(Augmentation):
    """The paper's views of vector data: ``x' = s * m * (a x + sqrt(1 - a^2) eps + sigma xi)``.

    ``eps, xi ~ N(0, I)``; ``m`` a feature-dropout mask (each feature kept with probability
    ``1 - dropout``, no rescaling); ``s = exp(N(0, log_scale_std^2))`` one multiplicative scale
    per sample. Defaults are the paper's: ``a=0.6, sigma=0.2, dropout=0.1, log_scale_std=0.1``.
    """

    a: float = 0.6
    noise: float = 0.2
    dropout: float = 0.1
    log_scale_std: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.a <= 1:
            raise ValueError(f"`a` must be in [0, 1], got {self.a}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"`dropout` must be in [0, 1), got {self.dropout}")

    def check_input(self, x) -> None:
        if not x.is_floating_point() or x.ndim != 2:
            raise TypeError(
                f"`x` must be a float tensor of shape (n_samples, n_features), got "
                f"{x.dtype} of shape {tuple(x.shape)}"
            )

    def sample_params(self, n: int, sample_shape: tuple, generator: torch.Generator) -> dict:
        return {
            "eps": torch.randn((n, *sample_shape), generator=generator),
            "xi": torch.randn((n, *sample_shape), generator=generator),
            "keep": torch.rand((n, *sample_shape), generator=generator) >= self.dropout,
            "log_scale": self.log_scale_std * torch.randn((n, 1), generator=generator),
        }

    def apply(self, x: torch.Tensor, params: dict) -> torch.Tensor:
        p = {k: v.to(x.device) for k, v in params.items()}
        x = x.float()
        v = self.a * x + math.sqrt(1 - self.a**2) * p["eps"] + self.noise * p["xi"]
        return v * p["keep"] * torch.exp(p["log_scale"])


@dataclass(frozen=True)
class BitFlips(Augmentation):
    """Sparse-binary views: each zero becomes one with probability ``rate`` (0.1% default)."""

    rate: float = 0.001

    def check_input(self, x) -> None:
        if x.ndim != 2:
            raise ValueError(f"`x` must have shape (n_samples, n_features), got {tuple(x.shape)}")

    def sample_params(self, n: int, sample_shape: tuple, generator: torch.Generator) -> dict:
        return {"u": torch.rand((n, *sample_shape), generator=generator)}

    def apply(self, x: torch.Tensor, params: dict) -> torch.Tensor:
        x = x.float()
        flip = (x == 0) & (params["u"].to(x.device) < self.rate)
        return torch.where(flip, torch.ones_like(x), x)


@dataclass(frozen=True)
class Identity(Augmentation):
    """No augmentation: uint8 images become float in [0, 1], anything else float32."""

    def sample_params(self, n: int, sample_shape: tuple, generator: torch.Generator) -> dict:
        return {}

    def apply(self, x: torch.Tensor, params: dict) -> torch.Tensor:
        return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


_NAMED = {
    "simclr": ImageAugment,
    "paper": ImageAugment.paper,
    "synthetic": SyntheticViews,
    "bitflip": BitFlips,
    "none": Identity,
}


def get_augmentation(spec) -> Augmentation:
    """An :class:`Augmentation` from a name (``simclr``, ``paper``, ``synthetic``, ``bitflip``,
    ``none``) or an instance (returned as is)."""
    if isinstance(spec, Augmentation):
        return spec
    if isinstance(spec, str) and spec in _NAMED:
        return _NAMED[spec]()
    raise ValueError(f"`augment` must be one of {sorted(_NAMED)} or an Augmentation, got {spec!r}")


def same_component_positives(components, generator: torch.Generator | None = None) -> torch.Tensor:
    """For each sample, the index of another sample of the same mixture component.

    The paper's GMM positives: ``x`` and ``x[same_component_positives(c)]`` are paired views.
    Samples alone in their component are paired with themselves.

    Parameters
    ----------
    components : array-like of int, shape (n_samples,)
    generator : torch.Generator, optional

    Returns
    -------
    Tensor of int64, shape (n_samples,)
    """
    c = torch.as_tensor(components).long().flatten()
    n = c.shape[0]
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    order = torch.argsort(c, stable=True)
    sorted_c = c[order]
    _, counts = torch.unique_consecutive(sorted_c, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    group = torch.repeat_interleave(torch.arange(len(counts)), counts)
    rank = torch.arange(n) - starts[group]
    cnt = counts[group]
    u = torch.rand(n, generator=generator)
    offset = 1 + torch.floor(u * (cnt - 1).clamp(min=0)).long()
    partner_rank = torch.where(cnt > 1, (rank + offset) % cnt, rank)
    partner_sorted = starts[group] + partner_rank
    out = torch.empty(n, dtype=torch.long)
    out[order] = order[partner_sorted]
    return out
