"""Batched augmentations: parameter statistics, determinism, exactness of identity params."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from infogauss.contrastive import (  # noqa: E402
    BitFlips,
    Identity,
    ImageAugment,
    SyntheticViews,
    get_augmentation,
    same_component_positives,
)


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8, generator=g)


def _params(aug, n=20000, shape=(3, 32, 32), seed=0):
    return aug.sample_params(n, shape, torch.Generator().manual_seed(seed))


def test_parameter_statistics_match_settings():
    aug = ImageAugment()
    p = _params(aug)
    n = p["flip"].shape[0]
    tol = 4 * math.sqrt(0.25 / n)
    assert p["flip"].float().mean().item() == pytest.approx(0.5, abs=tol)
    assert p["grey"].float().mean().item() == pytest.approx(0.2, abs=tol)
    assert p["jitter"].float().mean().item() == pytest.approx(0.8, abs=tol)
    x0, y0, w, h = p["crop"].unbind(1)
    frac = w * h / (32 * 32)
    assert frac.min() >= 0.2 - 1e-6 and frac.max() <= 1.0 + 1e-6
    assert frac.min() < 0.22 and frac.max() > 0.95  # the whole range is used
    ratio = w / h
    fallback = (w == 32) & (h == 32)
    assert (ratio[~fallback] >= 3 / 4 - 1e-5).all() and (ratio[~fallback] <= 4 / 3 + 1e-5).all()
    assert (x0 >= 0).all() and (x0 + w <= 32 + 1e-4).all()
    assert (y0 >= 0).all() and (y0 + h <= 32 + 1e-4).all()
    jit = p["jitter"]
    assert p["brightness"][jit].min() >= 0.6 and p["brightness"][jit].max() <= 1.4
    assert (p["brightness"][~jit] == 1).all() and (p["hue"][~jit] == 0).all()
    assert p["hue"].abs().max() <= 0.1


def test_paper_preset():
    aug = ImageAugment.paper()
    assert (aug.brightness, aug.contrast, aug.saturation, aug.hue) == (0.8, 0.8, 0.8, 0.2)
    p = _params(aug, 5000)
    assert p["hue"].abs().max() <= 0.2 and p["hue"].abs().max() > 0.15


def test_output_rates_seen_in_images(images):
    x = images.repeat(40, 1, 1, 1)  # 2560 images
    aug = ImageAugment(jitter_p=0.0, scale=(1.0, 1.0))
    out = aug(x, torch.Generator().manual_seed(3))
    grey = ((out[:, 0] - out[:, 1]).abs().amax((1, 2)) < 1e-5) & (
        (out[:, 1] - out[:, 2]).abs().amax((1, 2)) < 1e-5)
    assert grey.float().mean().item() == pytest.approx(0.2, abs=0.04)
    # with scale 1 and ratio in [3/4, 4/3] the crop is the full image (only ratio 1 fits)...
    # so each output is the image or its mirror (up to greyscale): check the flip rate
    colour = ~grey
    ref = x[colour].float() / 255
    same = (out[colour] - ref).abs().amax((1, 2, 3)) < 1e-4
    flipped = (out[colour] - ref.flip(-1)).abs().amax((1, 2, 3)) < 1e-4
    assert (same | flipped).all()
    assert flipped.float().mean().item() == pytest.approx(0.5, abs=0.05)


def test_identity_params_reproduce_input(images):
    aug = ImageAugment()
    n = images.shape[0]
    p = _params(aug, n, (3, 16, 16))
    p.update(crop=torch.tensor([[0.0, 0.0, 16.0, 16.0]]).expand(n, 4),
             flip=torch.zeros(n, dtype=torch.bool), brightness=torch.ones(n),
             contrast=torch.ones(n), saturation=torch.ones(n), hue=torch.zeros(n),
             grey=torch.zeros(n, dtype=torch.bool))
    out = aug.apply(images, p)
    assert torch.allclose(out, images.float() / 255, atol=1e-5)
    p["grey"] = torch.ones(n, dtype=torch.bool)
    out = aug.apply(images, p)
    luma = (0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]).float() / 255
    assert torch.allclose(out[:, 0], luma, atol=1e-5) and torch.allclose(out[:, 2], luma, atol=1e-5)


def test_same_seed_same_result(images):
    aug = ImageAugment()
    a = aug(images, torch.Generator().manual_seed(5))
    b = aug(images, torch.Generator().manual_seed(5))
    c = aug(images, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.dtype == torch.float32 and a.shape == images.shape
    assert a.min() >= 0 and a.max() <= 1


def test_rows_are_independent_of_the_batch(images):
    """A rank that applies rows lo:hi of the global parameters gets the same rows."""
    from infogauss.contrastive.augment import slice_params

    aug = ImageAugment()
    p = _params(aug, 64, (3, 16, 16))
    full = aug.apply(images, p)
    part = aug.apply(images[16:32], slice_params(p, 16, 32))
    assert torch.allclose(full[16:32], part, atol=1e-6)


def test_output_size(images):
    assert ImageAugment(size=8)(images).shape == (64, 3, 8, 8)


@pytest.mark.parametrize("bad,exc", [
    (torch.zeros(4, 3, 8, 8), TypeError),
    (torch.zeros(4, 8, 8, 3, dtype=torch.uint8), ValueError),
    (torch.zeros(3, 8, 8, dtype=torch.uint8), ValueError),
])
def test_bad_images(bad, exc):
    with pytest.raises(exc, match="`x` must"):
        ImageAugment()(bad)


@pytest.mark.parametrize("kw", [{"scale": (0.0, 1.0)}, {"flip_p": 1.5}, {"hue": 0.7},
                                {"brightness": -1}, {"ratio": (2.0, 1.0)}])
def test_bad_settings(kw):
    with pytest.raises(ValueError, match="`"):
        ImageAugment(**kw)


def test_synthetic_views_statistics():
    aug = SyntheticViews()
    x = torch.zeros(4000, 64)
    g = torch.Generator().manual_seed(0)
    p = aug.sample_params(4000, (64,), g)
    v = aug.apply(x, p)
    assert (v == 0).float().mean().item() == pytest.approx(0.1, abs=0.01)
    # x = 0: v = s * m * (sqrt(1 - a^2) eps + sigma xi), var = (1 - a^2 + sigma^2) E[s^2] (kept)
    kept = v[p["keep"]]
    expected = (1 - 0.36 + 0.04) * math.exp(2 * 0.01)
    assert kept.var().item() == pytest.approx(expected, rel=0.05)
    assert p["log_scale"].std().item() == pytest.approx(0.1, rel=0.1)
    x = torch.randn(4000, 64, generator=g)
    v = SyntheticViews(noise=0.0, dropout=0.0, log_scale_std=0.0)(x, g)
    corr = np.corrcoef(x.flatten().numpy(), v.flatten().numpy())[0, 1]
    assert corr == pytest.approx(0.6, abs=0.02)


def test_bitflips_rate():
    x = torch.zeros(200, 1000)
    x[:, :10] = 1
    v = BitFlips()(x, torch.Generator().manual_seed(0))
    assert (v[:, :10] == 1).all()
    assert v[:, 10:].mean().item() == pytest.approx(0.001, abs=0.0003)
    assert set(v.unique().tolist()) <= {0.0, 1.0}


def test_identity_and_lookup():
    x = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    assert torch.equal(Identity()(x), torch.ones(2, 3, 4, 4))
    assert isinstance(get_augmentation("paper"), ImageAugment)
    with pytest.raises(ValueError, match="`augment` must be one of"):
        get_augmentation("nope")


def test_same_component_positives():
    comp = np.array([0, 1, 0, 2, 1, 0, 3, 2, 2, 0])
    idx = same_component_positives(comp, torch.Generator().manual_seed(0)).numpy()
    assert (comp[idx] == comp).all()
    alone = comp == 3
    assert (idx[~alone] != np.arange(len(comp))[~alone]).all()
    assert (idx[alone] == np.arange(len(comp))[alone]).all()
