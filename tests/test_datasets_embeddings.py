"""``infogauss.datasets.embeddings``: the embedding-set directory every benchmark reads, written
whole or one part at a time, and refused when it is inconsistent."""

from __future__ import annotations

import json

import numpy as np
import pytest

from infogauss.datasets import (
    EmbeddingSet,
    read_embedding_set,
    write_embedding_part,
    write_embedding_set,
)
from infogauss.datasets.embeddings import part_files, set_prefix


def _write(tmp_path, rng, d=8, **kw):
    X = rng.standard_normal((200, d))
    Xt = rng.standard_normal((60, d))
    return write_embedding_set(
        tmp_path / "emb", train=X, train_labels=rng.integers(0, 3, 200), test=Xt,
        test_labels=rng.integers(0, 3, 60),
        ood={"shift": Xt + 3, "other": rng.standard_normal((30, d))},
        meta={"synthetic": True}, **kw)


def test_write_and_read_back(tmp_path, rng):
    d = _write(tmp_path, rng)
    names = sorted(p.name for p in d.iterdir())
    assert names == ["cifar10_test.npy", "cifar10_test_labels.npy", "cifar10_train.npy",
                     "cifar10_train_labels.npy", "meta.json", "ood_other.npy", "ood_shift.npy"]
    e = read_embedding_set(d)
    assert isinstance(e, EmbeddingSet) and e.prefix == "cifar10" and e.dim == 8
    assert e.train.dtype == np.float32 and e.train.shape == (200, 8) and e.train.flags.c_contiguous
    assert e.train_labels.dtype == np.int64
    assert sorted(e.ood) == ["other", "shift"] and e.meta == {"synthetic": True, "prefix": "cifar10"}
    assert e.summary() == {"directory": str(d), "dim": 8, "n_train": 200, "n_test": 60,
                           "n_classes": 3, "ood": {"other": 30, "shift": 60}}
    assert read_embedding_set(d, mmap=True).train.shape == (200, 8)


def test_embeddings_loader_refuses_what_is_inconsistent(tmp_path, rng):
    d = _write(tmp_path, rng)
    np.save(d / "ood_bad.npy", np.zeros((5, 7), np.float32))
    with pytest.raises(ValueError, match="dimension 7"):
        read_embedding_set(d)
    (d / "ood_bad.npy").unlink()
    nan = np.load(d / "ood_shift.npy")
    nan[0, 0] = np.nan
    np.save(d / "ood_nan.npy", nan)
    with pytest.raises(ValueError, match="NaN or infinity"):
        read_embedding_set(d)
    (d / "ood_nan.npy").unlink()
    np.save(d / "cifar10_test_labels.npy", np.zeros(59, np.int64))
    with pytest.raises(ValueError, match="60 integer labels"):
        read_embedding_set(d)
    (d / "cifar10_test_labels.npy").unlink()
    with pytest.raises(FileNotFoundError, match="cifar10_test_labels.npy"):
        read_embedding_set(d)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_embedding_set(tmp_path / "nothing")
    with pytest.raises(ValueError, match="one dimension"):
        write_embedding_set(tmp_path / "x", train=np.zeros((3, 2)), train_labels=[0, 1, 0],
                            test=np.zeros((2, 2)), test_labels=[0, 1],
                            ood={"a": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="OOD set name"):
        write_embedding_set(tmp_path / "x", train=np.zeros((3, 2)), train_labels=[0, 1, 0],
                            test=np.zeros((2, 2)), test_labels=[0, 1], ood={"../a": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="length 3"):
        write_embedding_set(tmp_path / "x", train=np.zeros((3, 2)), train_labels=[0, 1],
                            test=np.zeros((2, 2)), test_labels=[0, 1], ood={})


def test_ood_sets_may_be_optional(tmp_path, rng):
    d = _write(tmp_path, rng)
    for p in d.glob("ood_*.npy"):
        p.unlink()
    with pytest.raises(FileNotFoundError, match="no ood_<name>.npy"):
        read_embedding_set(d)
    assert read_embedding_set(d, require_ood=False).ood == {}


def test_the_prefix_is_recorded_and_found(tmp_path, rng):
    d = _write(tmp_path, rng, prefix="digits")
    assert (d / "digits_train.npy").exists() and json.loads((d / "meta.json").read_text())[
        "prefix"] == "digits"
    assert read_embedding_set(d).prefix == "digits"  # no need to be told
    assert set_prefix(d) == "digits"
    with pytest.raises(ValueError, match="set's own 'digits'"):
        set_prefix(d, "cifar10")
    with pytest.raises(ValueError, match="`prefix` must match"):
        write_embedding_set(tmp_path / "y", train=np.zeros((3, 2)), train_labels=[0, 1, 0],
                            test=np.zeros((2, 2)), test_labels=[0, 1], ood={}, prefix="a/b")


def test_parts_one_at_a_time_make_a_set(tmp_path, rng):
    d = tmp_path / "set"
    X, y = rng.standard_normal((50, 4)), rng.integers(0, 2, 50)
    w = write_embedding_part(d, "train", X, y, meta={"checkpoint": "c.pt"})
    assert sorted(w) == ["embeddings", "labels", "meta"]
    write_embedding_part(d, "test", X[:20], y[:20])
    write_embedding_part(d, "ood:svhn", X[:10] + 5)
    e = read_embedding_set(d)
    np.testing.assert_array_equal(e.train, X.astype(np.float32))
    assert sorted(e.ood) == ["svhn"] and e.test.shape == (20, 4)
    assert e.meta["parts"]["train"] == {"rows": 50, "dim": 4, "checkpoint": "c.pt"}
    assert set(e.meta["parts"]) == {"train", "test", "ood:svhn"}
    # the same layout as a whole write
    assert sorted(p.name for p in d.iterdir()) == [
        "cifar10_test.npy", "cifar10_test_labels.npy", "cifar10_train.npy",
        "cifar10_train_labels.npy", "meta.json", "ood_svhn.npy"]
    with pytest.raises(ValueError, match="dimension 5"):
        write_embedding_part(d, "ood:wide", rng.standard_normal((3, 5)))
    write_embedding_part(d, "train", rng.standard_normal((7, 4)), np.zeros(7, int))  # replaced
    assert read_embedding_set(d).train.shape == (7, 4)
    with pytest.raises(ValueError, match="`labels` must be given"):
        write_embedding_part(d, "test", X)
    with pytest.raises(ValueError, match="`labels` must be None"):
        write_embedding_part(d, "ood:x", X, y)
    with pytest.raises(ValueError, match="`part` must be"):
        write_embedding_part(d, "validation", X, y)


def test_part_files():
    assert part_files("train") == {"embeddings": "cifar10_train.npy",
                                   "labels": "cifar10_train_labels.npy"}
    assert part_files("test", "digits")["labels"] == "digits_test_labels.npy"
    assert part_files("ood:tin_crop") == {"embeddings": "ood_tin_crop.npy"}
    with pytest.raises(ValueError, match="OOD set name"):
        part_files("ood:")
