"""``infogauss bench embed_cifar10``: every accepted ``--ood NAME=PATH`` format, the JPEG rule,
and a tiny run that reports progress and provenance."""

from __future__ import annotations

import json
import logging
import types

import numpy as np
import pytest

pytest.importorskip("PIL")
from infogauss.bench import embed_cifar10  # noqa: E402


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


@pytest.mark.torch
def test_embed_cifar10_reports_progress_and_provenance(tmp_path, monkeypatch, caplog, rng):
    """A tiny run with the image loaders swapped for random images: one line per set, the
    files written, a summary; meta.json records the commit; the set reads back."""
    pytest.importorskip("torch")
    from infogauss.datasets import read_embedding_set

    def fake(n):
        return types.SimpleNamespace(
            images=rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
            labels=rng.integers(0, 10, n).astype(np.int64))

    monkeypatch.setattr(embed_cifar10, "load_cifar10_zip", lambda path, split: fake(
        40 if split == "train" else 20))
    monkeypatch.setattr(embed_cifar10, "load_tinyimagenet_zip", lambda path, mode, seed: fake(10))
    out = tmp_path / "emb"
    with caplog.at_level(logging.INFO, logger="benchmarks"):
        rc = embed_cifar10.main(["--untrained", "small_cnn", "--widths", "4", "8", "8", "--out",
                                 str(out), "--precision", "fp32", "--data", str(tmp_path),
                                 "--no-progress"])
    assert rc == 0
    text = caplog.text
    for line in ("[1/4] cifar10 train: 40 images", "[2/4] cifar10 test: 20 images",
                 "[4/4] ood tin_crop: 10 images", f"wrote {out}/{{cifar10_train.npy,",
                 "done in"):
        assert line in text, line
    meta = json.loads((out / "meta.json").read_text())
    assert {"sha", "dirty", "modified"} <= set(meta["environment"]["git"])
    assert np.load(out / "ood_tin_resize.npy").shape[0] == 10
    emb = read_embedding_set(out)
    assert emb.train.shape[0] == 40 and sorted(emb.ood) == ["tin_crop", "tin_resize"]


@pytest.mark.torch
def test_in_classes_makes_a_leave_classes_out_set(tmp_path, monkeypatch, rng):
    pytest.importorskip("torch")
    from infogauss.datasets import read_embedding_set

    labels = {"train": np.arange(40) % 10, "test": np.arange(20) % 10}
    monkeypatch.setattr(embed_cifar10, "load_cifar10_zip", lambda path, split: types.SimpleNamespace(
        images=rng.integers(0, 256, (labels[split].size, 3, 32, 32), dtype=np.uint8),
        labels=labels[split].astype(np.int64)))  # fmt: skip
    out = tmp_path / "emb6"
    assert embed_cifar10.main(["--untrained", "small_cnn", "--widths", "4", "8", "8", "--out",
                               str(out), "--precision", "fp32", "--data", str(tmp_path),
                               "--no-tinyimagenet", "--in-classes", "0", "1", "2", "3", "4", "5",
                               "--no-progress"]) == 0  # fmt: skip
    emb = read_embedding_set(out)
    assert emb.train.shape[0] == 24 and set(emb.train_labels) == set(range(6))
    assert emb.test.shape[0] == 12 and list(emb.ood) == ["cifar10_held_out"]
    assert emb.ood["cifar10_held_out"].shape[0] == 8
    with pytest.raises(SystemExit, match="classes 0-9, got \\[12\\]"):
        embed_cifar10.main(["--untrained", "small_cnn", "--out", str(tmp_path / "x"), "--data",
                            str(tmp_path), "--no-tinyimagenet", "--in-classes", "12"])  # fmt: skip
