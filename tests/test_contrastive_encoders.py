"""Encoders, embed() and the kNN monitor."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from infogauss.contrastive import (  # noqa: E402
    Encoder,
    architecture_fingerprint,
    build_encoder,
    embed,
    knn_accuracy,
    knn_predict,
)


@pytest.mark.parametrize("name,kw,x_shape,dims", [
    ("linear", {"in_features": 10}, (4, 10), (10, 128)),
    ("mlp", {"in_features": 10, "out_dim": 6}, (4, 10), (6, 128)),
    ("small_cnn", {}, (2, 3, 32, 32), (512, 128)),
    ("resnet18", {}, (2, 3, 32, 32), (512, 128)),
])
def test_shapes(name, kw, x_shape, dims):
    enc = build_encoder(name, **kw)
    enc.eval()
    x = torch.rand(x_shape)
    with torch.no_grad():
        assert enc.backbone(x).shape == (x_shape[0], dims[0])
        assert enc(x).shape == (x_shape[0], dims[1])
    assert enc.backbone_dim == dims[0]


def test_parameter_counts():
    n = sum(p.numel() for p in build_encoder("small_cnn").backbone.parameters())
    assert 0.8e6 < n < 2e6
    n = sum(p.numel() for p in build_encoder("resnet18", head=False).parameters())
    assert 11.0e6 < n < 11.3e6


def test_seeded_init_and_no_head():
    a, b = build_encoder("mlp", in_features=5, seed=3), build_encoder("mlp", in_features=5, seed=3)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert build_encoder("linear", in_features=5, head=False).head is None


def test_fingerprint():
    a = build_encoder("mlp", in_features=5)
    same = build_encoder("mlp", in_features=5, seed=9)
    assert architecture_fingerprint(a) == architecture_fingerprint(same)
    assert architecture_fingerprint(a) != architecture_fingerprint(build_encoder("mlp", in_features=6))


def test_bad_names():
    with pytest.raises(ValueError, match="`name` must be one of"):
        build_encoder("vgg")
    with pytest.raises(ValueError, match="`in_features` must be a positive int"):
        build_encoder("mlp")
    with pytest.raises(ValueError, match="`out_dim` of 'small_cnn' is 512"):
        build_encoder("small_cnn", out_dim=64)


def test_embed_contract():
    enc = build_encoder("small_cnn", seed=0)
    enc.train()
    x = np.random.default_rng(0).integers(0, 256, (5, 3, 16, 16), dtype=np.uint8)
    z = embed(enc, x, batch_size=2)
    assert z.dtype == np.float32 and z.flags["C_CONTIGUOUS"] and z.shape == (5, 512)
    assert enc.training  # mode restored
    assert next(enc.parameters()).device.type == "cpu"
    h = embed(enc, x, layer="head")
    assert h.shape == (5, 128)
    # uint8 images are scaled exactly like training inputs
    enc.eval()
    with torch.no_grad():
        ref = enc.backbone(torch.from_numpy(x).float() / 255).numpy()
    np.testing.assert_allclose(z, ref, rtol=1e-4, atol=1e-5)
    zb = embed(enc, x, precision="bf16")
    assert zb.dtype == np.float32 and np.abs(zb - z).max() < 0.1 * np.abs(z).max() + 1e-3
    z_dev = embed(enc, x, device="cpu")
    np.testing.assert_allclose(z_dev, z, rtol=1e-5, atol=1e-6)


def test_embed_plain_module_and_errors():
    net = torch.nn.Linear(3, 2)
    z = embed(net, np.ones((4, 3), np.float64))
    assert z.shape == (4, 2) and z.dtype == np.float32
    with pytest.raises(ValueError, match="`layer` must be"):
        embed(net, np.ones((4, 3)), layer="middle")
    with pytest.raises(ValueError, match="no projection head"):
        embed(build_encoder("linear", in_features=3, head=False), np.ones((2, 3)), layer="head")
    with pytest.raises(TypeError, match="`data` must be uint8 images or float"):
        embed(net, np.ones((4, 3), np.int32))
    with pytest.raises(TypeError, match="`data` must be a numpy array"):
        embed(net, [[1, 2, 3]])
    assert isinstance(build_encoder("linear", in_features=3), Encoder)


def _knn_brute(tr, ytr, te, k, t):
    trn = tr / np.linalg.norm(tr, axis=1, keepdims=True)
    ten = te / np.linalg.norm(te, axis=1, keepdims=True)
    out = []
    for q in ten:
        s = trn @ q
        idx = np.argsort(-s, kind="stable")[:k]
        votes = np.zeros(ytr.max() + 1)
        for i in idx:
            votes[ytr[i]] += np.exp(s[i] / t)
        out.append(np.argmax(votes))
    return np.array(out)


def test_knn_matches_brute_force():
    rng = np.random.default_rng(0)
    tr, te = rng.standard_normal((300, 8)), rng.standard_normal((50, 8))
    ytr = rng.integers(0, 4, 300)
    for k in (1, 7, 200):
        np.testing.assert_array_equal(knn_predict(tr, ytr, te, k=k), _knn_brute(tr, ytr, te, k, 0.1))
    acc = knn_accuracy(tr, ytr, tr, ytr, k=1)
    assert acc == 1.0
    with pytest.raises(ValueError, match="`test_z` must have 8 features"):
        knn_predict(tr, ytr, te[:, :3])
