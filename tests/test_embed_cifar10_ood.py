"""``benchmarks/embed_cifar10.py --ood NAME=PATH``: every accepted format, and the JPEG rule."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PIL")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import embed_cifar10  # noqa: E402


def _images(rng, n=6, size=32):
    return rng.integers(0, 256, size=(n, 3, size, size), dtype=np.uint8)


def test_svhn_mat_is_read_and_reencoded(rng, tmp_path):
    from scipy.io import savemat

    imgs = _images(rng)
    savemat(tmp_path / "test_32x32.mat", {"X": imgs.transpose(2, 3, 1, 0), "y": np.full((6, 1), 10)})
    name, out, meta = embed_cifar10.load_ood(f"svhn={tmp_path / 'test_32x32.mat'}", jpeg_quality=75)
    assert name == "svhn" and out.shape == (6, 3, 32, 32) and out.dtype == np.uint8
    assert meta["jpeg_reencoded_quality"] == 75
    assert not np.array_equal(out, imgs)  # lossless source -> JPEG artefacts added
    _, raw, meta = embed_cifar10.load_ood(f"svhn={tmp_path / 'test_32x32.mat'}", jpeg_quality=0)
    np.testing.assert_array_equal(raw, imgs)
    assert meta["jpeg_reencoded_quality"] is None


def test_image_folder_other_sizes_and_greyscale(rng, tmp_path):
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / "set" / cls).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8), mode="L").save(
            tmp_path / "set" / cls / "x.png"
        )
    name, out, meta = embed_cifar10.load_ood(f"folder={tmp_path / 'set'}", jpeg_quality=75)
    assert out.shape == (2, 3, 32, 32)
    # greyscale repeats its channel (up to JPEG's chroma rounding)
    assert np.abs(out[:, 0].astype(int) - out[:, 1].astype(int)).max() <= 3
    assert meta["jpeg_reencoded_quality"] == 75  # PNG is lossless


def test_npy_and_bad_specs(rng, tmp_path):
    np.save(tmp_path / "x.npy", _images(rng, 3))
    name, out, _ = embed_cifar10.load_ood(f"arr={tmp_path / 'x.npy'}", jpeg_quality=0)
    assert out.shape == (3, 3, 32, 32)
    with pytest.raises(SystemExit, match="NAME=PATH"):
        embed_cifar10.load_ood("no-equals-sign", 75)
    (tmp_path / "x.txt").write_text("?")
    with pytest.raises(SystemExit, match="cannot read"):
        embed_cifar10.load_ood(f"t={tmp_path / 'x.txt'}", 75)
    np.save(tmp_path / "big.npy", _images(rng, 2, size=64))
    with pytest.raises(SystemExit, match="3x32x32"):
        embed_cifar10.load_ood(f"big={tmp_path / 'big.npy'}", 0)
