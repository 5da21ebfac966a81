"""The shared real data (../shared/data); skipped when it is absent."""

from pathlib import Path

import numpy as np
import pytest

from infogauss import datasets as ds

pytestmark = pytest.mark.data
DATA = Path(__file__).parents[1] / ".." / "shared" / "data"


def _need(name):
    p = DATA / name
    if not p.is_file():
        pytest.skip(f"real data {name} not found at {DATA.resolve()} (see shared/data/README.md)")
    return p


def test_cifar10_zip_official_order():
    p = _need("cifar10_jpeg.zip")
    te = ds.load_cifar10_zip(p, "test")
    assert te.images.shape == (10000, 3, 32, 32) and te.images.dtype == np.uint8
    # the official test_batch begins: cat, ship, ship, airplane, frog, frog, automobile, frog
    np.testing.assert_array_equal(te.labels[:8], [3, 8, 8, 0, 6, 6, 1, 6])
    assert (np.bincount(te.labels) == 1000).all()
    mean = te.images.reshape(len(te.images), 3, -1).mean((0, 2)) / 255
    np.testing.assert_allclose(mean, [0.494, 0.485, 0.450], atol=0.01)


def test_tinyimagenet_resize():
    p = _need("tinyimagenet_test_jpeg.zip")
    d = ds.load_tinyimagenet_zip(p, "resize")
    assert d.images.shape == (10000, 3, 32, 32)
