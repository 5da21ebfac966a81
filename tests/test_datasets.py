"""Dataset readers on small files written here in the official formats (no torch needed)."""

import io
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from infogauss import datasets as ds


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INFOGAUSS_CACHE", str(tmp_path / "cache"))


def _write_cifar_batches(root, n_per_batch=4, seed=0):
    rng = np.random.default_rng(seed)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    truth = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n_per_batch)]
        with open(d / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * n_per_batch}, f)
        truth[name] = (data, labels)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in ds.CIFAR10_CLASSES]}, f)
    return d, truth


def test_cifar10_pickles(tmp_path):
    d, truth = _write_cifar_batches(tmp_path)
    tr = ds.load_cifar10(tmp_path, "train")
    assert tr.images.shape == (20, 3, 32, 32) and tr.images.dtype == np.uint8
    assert tr.labels.dtype == np.int64
    np.testing.assert_array_equal(tr.images[4:8].reshape(4, -1), truth["data_batch_2"][0])
    np.testing.assert_array_equal(tr.labels[:4], truth["data_batch_1"][1])
    # channel order: the first 1024 bytes are the red plane
    np.testing.assert_array_equal(tr.images[0, 0].ravel(), truth["data_batch_1"][0][0, :1024])
    te = ds.load_cifar10(d, "test")  # the batches directory itself also works
    assert te.images.shape == (4, 3, 32, 32) and te.classes[0] == "airplane"


def test_cifar10_missing_and_corrupt(tmp_path):
    layout = "(?s)data_batch_1.*Expected layout.*cifar-10-batches-py.*How to get it"
    with pytest.raises(ValueError, match=layout):
        ds.load_cifar10(tmp_path)
    d, _ = _write_cifar_batches(tmp_path)
    (d / "test_batch").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt"):
        ds.load_cifar10(tmp_path, "test")
    with pytest.raises(ValueError, match="`split` must be"):
        ds.load_cifar10(tmp_path, "val")


def test_svhn_mat(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (32, 32, 3, 6), dtype=np.uint8)
    y = np.array([[10], [1], [2], [10], [9], [5]], dtype=np.uint8)
    savemat(tmp_path / "test_32x32.mat", {"X": x, "y": y})
    d = ds.load_svhn(tmp_path, "test")
    assert d.images.shape == (6, 3, 32, 32) and d.images.dtype == np.uint8
    np.testing.assert_array_equal(d.labels, [0, 1, 2, 0, 9, 5])
    np.testing.assert_array_equal(d.images[2], x[:, :, :, 2].transpose(2, 0, 1))
    with pytest.raises(ValueError, match="(?s)SVHN train.*train_32x32.mat.*download_svhn"):
        ds.load_svhn(tmp_path, "train")
    (tmp_path / "train_32x32.mat").write_bytes(b"junk")
    with pytest.raises(ValueError, match="corrupt"):
        ds.load_svhn(tmp_path, "train")


def _png(arr):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_image_folder_dir_and_zip(tmp_path):
    pytest.importorskip("PIL")
    rng = np.random.default_rng(0)
    root = tmp_path / "folder"
    arrays = {}
    for c in ("dog", "cat"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            a = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            (root / c / f"{i}.png").write_bytes(_png(a))
            arrays[(c, i)] = a
    d = ds.load_image_folder(root)
    assert d.classes == ("cat", "dog") and d.images.shape == (6, 3, 8, 8)
    np.testing.assert_array_equal(d.labels, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(d.images[3], arrays[("dog", 0)].transpose(2, 0, 1))
    assert any((tmp_path / "cache").glob("*-images.npy"))
    again = ds.load_image_folder(root)  # from the cache
    np.testing.assert_array_equal(again.images, d.images)
    zpath = tmp_path / "folder.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for (c, i), a in arrays.items():
            zf.writestr(f"top/{c}/{i}.png", _png(a))
    z = ds.load_image_folder(zpath, cache=False)
    np.testing.assert_array_equal(z.images, d.images)
    np.testing.assert_array_equal(ds.load_image_folder(root, size=4).images.shape, (6, 3, 4, 4))
    with pytest.raises(ValueError, match="Expected layout"):
        ds.load_image_folder(tmp_path / "nope")


def test_cifar10_zip_layout(tmp_path):
    pytest.importorskip("PIL")
    rng = np.random.default_rng(0)
    zpath = tmp_path / "cifar10_jpeg.zip"
    truth = {}
    with zipfile.ZipFile(zpath, "w") as zf:
        for idx, cls in [(2, "truck"), (0, "cat"), (1, "airplane")]:
            a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            zf.writestr(f"test/{cls}/{idx:05d}.png", _png(a))
            truth[idx] = (a, ds.CIFAR10_CLASSES.index(cls))
    d = ds.load_cifar10_zip(zpath, "test")
    np.testing.assert_array_equal(d.labels, [truth[i][1] for i in range(3)])
    for i in range(3):
        np.testing.assert_array_equal(d.images[i], truth[i][0].transpose(2, 0, 1))
    with pytest.raises(ValueError, match="(?s)CIFAR-10 train images.*Expected layout"):
        ds.load_cifar10_zip(zpath, "train")
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK junk")
    with pytest.raises(ValueError, match="Expected layout"):
        ds.load_cifar10_zip(bad)


def test_tinyimagenet_zip_layout(tmp_path):
    pytest.importorskip("PIL")
    rng = np.random.default_rng(0)
    zpath = tmp_path / "tiny.zip"
    colour = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("test/test_1.JPEG", _png(grey))
        zf.writestr("test/test_0.JPEG", _png(colour))
    r = ds.load_tinyimagenet_zip(zpath, "resize")
    assert r.images.shape == (2, 3, 32, 32) and (r.labels == -1).all()
    box = colour.reshape(32, 2, 32, 2, 3).astype(float).mean((1, 3))
    assert np.abs(r.images[0].transpose(1, 2, 0) - box).max() <= 1
    assert (r.images[1, 0] == r.images[1, 1]).all()  # greyscale -> RGB
    c1 = ds.load_tinyimagenet_zip(zpath, "crop", seed=3)
    c2 = ds.load_tinyimagenet_zip(zpath, "crop", seed=3, cache=False)
    np.testing.assert_array_equal(c1.images, c2.images)
    found = any((colour[i:i + 32, j:j + 32].transpose(2, 0, 1) == c1.images[0]).all()
                for i in range(33) for j in range(33))
    assert found


def test_arrays(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5, 3, 4, 4), dtype=np.uint8)
    y = np.arange(5)
    np.savez(tmp_path / "a.npz", images=x, labels=y)
    d = ds.load_arrays(tmp_path / "a.npz")
    np.testing.assert_array_equal(d.images, x)
    np.testing.assert_array_equal(d.labels, y)
    np.savez(tmp_path / "b.npz", x=x.transpose(0, 2, 3, 1), y=y)  # channels last
    np.testing.assert_array_equal(ds.load_arrays(tmp_path / "b.npz").images, x)
    np.save(tmp_path / "c.npy", x)
    assert (ds.load_arrays(tmp_path / "c.npy").labels == -1).all()
    np.savez(tmp_path / "bad.npz", images=x.astype(np.float32))
    with pytest.raises(TypeError, match="`images` must be uint8"):
        ds.load_arrays(tmp_path / "bad.npz")
    np.savez(tmp_path / "empty.npz", images=np.zeros((0, 3, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="`images` must not be empty"):
        ds.load_arrays(tmp_path / "empty.npz")
    np.savez(tmp_path / "wrong.npz", images=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"`images` must have shape \(N, 3, H, W\)"):
        ds.load_arrays(tmp_path / "wrong.npz")
    np.savez(tmp_path / "nokey.npz", foo=x)
    with pytest.raises(ValueError, match="must hold an array named"):
        ds.load_arrays(tmp_path / "nokey.npz")
    (tmp_path / "corrupt.npz").write_bytes(b"nope")
    with pytest.raises(ValueError, match="not a readable"):
        ds.load_arrays(tmp_path / "corrupt.npz")
    with pytest.raises(ValueError, match="must be an existing"):
        ds.load_arrays(tmp_path / "missing.npz")


def test_synthetic_generators():
    x = ds.make_laplace(2000, 1024, seed=0)
    assert x.shape == (2000, 1024) and x.dtype == np.float32
    assert np.var(x) == pytest.approx(2.0, rel=0.02)  # Laplace(0, 1) variance 2
    x2 = ds.make_laplace(2000, 1024, seed=0)
    np.testing.assert_array_equal(x, x2)
    g, comp = ds.make_gmm(500, 1024, seed=0)
    assert g.shape == (500, 1024) and set(np.unique(comp)) <= set(range(25))
    assert len(np.unique(comp)) == 25
    b = ds.make_sparse_binary(300, 1024, density=0.02, seed=0)
    assert set(np.unique(b)) == {0.0, 1.0} and b.mean() == pytest.approx(0.02, rel=0.1)
    with pytest.raises(ValueError, match="`density` must be in"):
        ds.make_sparse_binary(3, density=1.5)
    with pytest.raises(ValueError, match="`n_samples` must be >= 1"):
        ds.make_gmm(0)


def test_datasets_do_not_import_torch():
    code = ("import sys, infogauss.datasets as d; d.make_gmm(3, 4); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})
