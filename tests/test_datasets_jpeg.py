"""JPEG re-encoding of lossless OOD sets (to match the JPEG copy of CIFAR-10)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PIL")

from infogauss.datasets import jpeg_roundtrip  # noqa: E402


def test_jpeg_roundtrip_is_lossy_but_close(rng):
    # smooth images (JPEG's home ground) with a little noise
    yy, xx = np.mgrid[0:32, 0:32]
    base = (127 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0)).astype(np.float64)
    imgs = np.stack([np.stack([base, base[::-1], base.T]) for _ in range(4)])
    imgs = np.clip(imgs + rng.normal(0, 4, imgs.shape), 0, 255).astype(np.uint8)
    out = jpeg_roundtrip(imgs, quality=75)
    assert out.shape == imgs.shape and out.dtype == np.uint8
    err = np.abs(out.astype(int) - imgs.astype(int)).mean()
    assert 0.5 < err < 10  # changed (lossy), but still the same picture
    hi = np.abs(jpeg_roundtrip(imgs, quality=100).astype(int) - imgs.astype(int)).mean()
    assert hi < err


@pytest.mark.parametrize("quality", [0, 101, 7.5, True])
def test_jpeg_roundtrip_bad_quality(quality):
    with pytest.raises(ValueError, match="quality"):
        jpeg_roundtrip(np.zeros((1, 3, 8, 8), np.uint8), quality=quality)


def test_jpeg_roundtrip_bad_images():
    with pytest.raises((ValueError, TypeError), match="images"):
        jpeg_roundtrip(np.zeros((1, 8, 8), np.uint8))
