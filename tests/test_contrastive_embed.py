"""``embed()`` on the inputs users have: loaders, datasets, NHWC, dict/tuple outputs, edge cases."""

from __future__ import annotations

import warnings
from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
torch.set_num_threads(1)

from torch.utils.data import DataLoader, Dataset, TensorDataset  # noqa: E402

from infogauss.contrastive import build_encoder, embed  # noqa: E402
from infogauss.contrastive.embed import _Borrowed  # noqa: E402

nn = torch.nn


@pytest.fixture
def images(rng):
    return rng.integers(0, 256, (7, 3, 8, 8), dtype=np.uint8)  # NCHW uint8


@pytest.fixture
def cnn():
    return build_encoder("small_cnn", widths=(4, 4, 8), seed=0)


def _ref(model, x_float_nchw):
    """The embedding computed by hand: eval mode, NCHW float input."""
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model.backbone(torch.as_tensor(x_float_nchw)).numpy()
    model.train(was)
    return out


# ------------------------------------------------------------------ images: layout and scale
def test_nhwc_equals_nchw_and_matches_reference(cnn, images):
    z = embed(cnn, images)
    nhwc = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
    np.testing.assert_allclose(embed(cnn, nhwc), z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(embed(cnn, nhwc, layout="nhwc"), z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(z, _ref(cnn, images.astype(np.float32) / 255), rtol=1e-4, atol=1e-5)


def test_nhwc_into_linear_encoder_is_not_scrambled(images):
    enc = build_encoder("linear", in_features=3 * 8 * 8, head=False, seed=0)
    z = embed(enc, images)
    z_nhwc = embed(enc, np.ascontiguousarray(images.transpose(0, 2, 3, 1)))
    np.testing.assert_allclose(z_nhwc, z, rtol=1e-5, atol=1e-6)


def test_layout_ambiguous_or_unknown_is_refused(cnn):
    with pytest.raises(ValueError, match="cannot tell the channel axis.*layout='nchw'"):
        embed(cnn, np.zeros((2, 3, 8, 3), np.uint8))  # both axes could be channels
    with pytest.raises(ValueError, match="cannot tell the channel axis"):
        embed(nn.Flatten(), np.zeros((2, 8, 8, 8), np.float32))  # neither
    z = embed(nn.Flatten(), np.zeros((2, 8, 8, 8), np.float32), layout="nchw")
    assert z.shape == (2, 512)
    with pytest.raises(ValueError, match="`layout`='nhwc' is for 4-D images"):
        embed(nn.Linear(3, 2), np.ones((2, 3), np.float32), layout="nhwc")
    with pytest.raises(ValueError, match="`layout` must be one of"):
        embed(nn.Linear(3, 2), np.ones((2, 3), np.float32), layout="chw")


def test_float_images_range_and_scale(cnn, images):
    z = embed(cnn, images)
    as_float = images.astype(np.float32)
    with pytest.raises(ValueError, match=r"float images must lie in \[0, 1\].*scale=1/255"):
        embed(cnn, as_float)  # [0, 255] floats are not silently taken unscaled
    np.testing.assert_allclose(embed(cnn, as_float, scale=1 / 255), z, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(embed(cnn, as_float / 255), z, rtol=1e-4, atol=1e-5)
    # scale=1.0 feeds them unchanged (e.g. already normalised images)
    normalised = (as_float / 255 - 0.5) / 0.25
    np.testing.assert_allclose(embed(cnn, normalised, scale=1.0), _ref(cnn, normalised),
                               rtol=1e-4, atol=1e-5)
    for bad in (0, -1.0, float("nan"), True):
        with pytest.raises(ValueError, match="`scale` must be a positive finite number"):
            embed(cnn, images, scale=bad)


def test_half_precision_inputs_and_model(rng):
    net = nn.Sequential(nn.Linear(6, 4), nn.Tanh())
    x = torch.tensor(rng.standard_normal((5, 6)), dtype=torch.float32)
    for dt in (torch.bfloat16, torch.float16):
        xh = x.to(dt)
        z = embed(net, xh)
        assert z.dtype == np.float32
        np.testing.assert_allclose(z, embed(net, xh.float()), rtol=1e-6, atol=1e-7)
    z64 = embed(net, x.double())
    np.testing.assert_allclose(z64, embed(net, x), rtol=1e-6, atol=1e-7)
    # a bf16 model gets bf16 inputs; the model stays bf16
    net16 = nn.Sequential(nn.Linear(6, 4), nn.Tanh()).to(torch.bfloat16)
    zb = embed(net16, x)
    assert zb.dtype == np.float32 and zb.shape == (5, 4)
    assert all(p.dtype == torch.bfloat16 for p in net16.parameters())


# ------------------------------------------------------------------ data containers
def test_loader_dataset_iterables_equal_array(cnn, images, rng):
    z = embed(cnn, images, batch_size=3)
    y = rng.integers(0, 2, len(images))
    tx = torch.from_numpy(images)
    ds = TensorDataset(tx, torch.from_numpy(y))
    cases = {
        "tensor": tx,
        "dataset": ds,
        "loader (x, y)": DataLoader(ds, batch_size=2),
        "list of arrays": [images[:4], images[4:]],
        "generator of tuples": ((images[s:s + 2], y[s:s + 2]) for s in range(0, 7, 2)),
        "dicts + input_key": [{"image": images[:5], "label": y[:5]}, {"image": images[5:], "label": y[5:]}],
        "dict data + input_key": {"image": images, "label": y},
    }
    for name, data in cases.items():
        key = "image" if "input_key" in name else None
        np.testing.assert_allclose(embed(cnn, data, batch_size=3, input_key=key), z,
                                   rtol=1e-5, atol=1e-6, err_msg=name)


class _PILDataset(Dataset):
    def __init__(self, arrays):
        from PIL import Image

        self.images = [Image.fromarray(a) for a in arrays]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], i


def test_pil_images_in_a_dataset_and_a_list(cnn, images):
    pytest.importorskip("PIL")
    nhwc = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
    z = embed(cnn, images)
    np.testing.assert_allclose(embed(cnn, _PILDataset(nhwc), batch_size=4), z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(embed(cnn, _PILDataset(nhwc).images), z, rtol=1e-5, atol=1e-6)


def test_shuffling_loader_warns(images, cnn):
    loader = DataLoader(TensorDataset(torch.from_numpy(images)), batch_size=4, shuffle=True)
    with pytest.warns(UserWarning, match="shuffles"):
        assert embed(cnn, loader).shape == (7, 512)


def test_refused_inputs():
    net = nn.Linear(3, 2)
    with pytest.raises(TypeError, match="`data` must be a numpy array.*nested list of numbers"):
        embed(net, [[1.0, 2.0, 3.0]])
    with pytest.raises(TypeError, match="`data` must be a numpy array"):
        embed(net, "some text")
    with pytest.raises(TypeError, match="`data` must be a numpy array"):
        embed(net, 3)
    with pytest.raises(TypeError, match="`data` must be uint8 images or float features.*dict batches"):
        embed(net, torch.ones((2, 3), dtype=torch.int64))
    with pytest.raises(ValueError, match="leading sample axis.*batch 0"):
        embed(net, [np.ones(3, np.float32)])  # a list of single samples
    with pytest.raises(ValueError, match="`input_key`='x' is not a key"):
        embed(net, [{"image": np.ones((2, 3), np.float32)}], input_key="x")
    with pytest.raises(TypeError, match="`input_key` selects from dict or tuple batches"):
        embed(net, np.ones((2, 3), np.float32), input_key=0)
    with pytest.raises(ValueError, match="`batch_size` must be >= 1"):
        embed(net, np.ones((2, 3), np.float32), batch_size=0)
    with pytest.raises(ValueError, match="`nan_policy` must be one of"):
        embed(net, np.ones((2, 3), np.float32), nan_policy="omit")


# ------------------------------------------------------------------ empty inputs
def test_zero_rows_give_zero_by_d():
    net = nn.Sequential(nn.Linear(3, 5), nn.ReLU())
    for x in (np.empty((0, 3), np.float32), torch.empty((0, 3)), [np.empty((0, 3), np.float32)]):
        z = embed(net, x)
        assert z.shape == (0, 5) and z.dtype == np.float32 and z.flags["C_CONTIGUOUS"]
    enc = build_encoder("mlp", in_features=3, out_dim=6, hidden_dim=8, projection_dim=4)
    empty_loader = DataLoader(TensorDataset(torch.empty((0, 3))), batch_size=4)
    assert embed(enc, empty_loader).shape == (0, 6)  # an Encoder knows its width
    assert embed(enc, empty_loader, layer="head").shape == (0, 4)
    with pytest.raises(ValueError, match="yielded no batches.*np.empty"):
        embed(net, empty_loader)
    cnn = build_encoder("small_cnn", widths=(4, 4, 8))
    assert embed(cnn, np.empty((0, 32, 32, 3), np.uint8)).shape == (0, 512)


# ------------------------------------------------------------------ non-finite embeddings
def test_nan_embeddings_raise_naming_batch_and_rows():
    net = nn.Linear(3, 2)
    x = np.ones((6, 3), np.float32)
    x[4, 1] = np.nan
    msg = r"NaN or infinite embeddings for 1 row\(s\) of batch 2 \(rows \[4\]"
    with pytest.raises(ValueError, match=msg):
        embed(net, x, batch_size=2)
    with pytest.warns(RuntimeWarning, match=r"rows \[4\]"):
        z = embed(net, x, batch_size=2, nan_policy="warn")
    assert np.isnan(z[4]).all() and np.isfinite(np.delete(z, 4, axis=0)).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = embed(net, x, nan_policy="propagate")
    assert np.isnan(z[4]).all()


# ------------------------------------------------------------------ module outputs
class _DictOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 4)

    def forward(self, x):
        h = self.lin(x)
        return {"features": h, "logits": h[:, :2]}


class _TupleOut(_DictOut):
    def forward(self, x):
        h = self.lin(x)
        return h, h[:, :2]


class _Output(OrderedDict):  # the shape of a Hugging Face ModelOutput
    def to_tuple(self):
        return tuple(self.values())


class _Tokens(nn.Module):
    """A tiny token model: (input_ids, attention_mask) -> last_hidden_state (N, T, D)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        h = self.emb(input_ids)
        return _Output(last_hidden_state=h, pooler_output=h[:, 0].tanh())


def test_dict_tuple_outputs_and_output_selection(rng):
    x = rng.standard_normal((5, 3)).astype(np.float32)
    d, t = _DictOut(), _TupleOut()
    t.lin = d.lin
    with torch.no_grad():
        ref = d.lin(torch.from_numpy(x)).numpy()
    with pytest.raises(TypeError, match="outputs \\['features', 'logits'\\]: pass output=KEY"):
        embed(d, x)
    np.testing.assert_allclose(embed(d, x, output="features"), ref, rtol=1e-6)
    np.testing.assert_allclose(embed(d, x, output=lambda o: o["logits"]), ref[:, :2], rtol=1e-6)
    with pytest.raises(TypeError, match="tuple of 2 outputs: pass output=INDEX"):
        embed(t, x)
    np.testing.assert_allclose(embed(t, x, output=0), ref, rtol=1e-6)
    np.testing.assert_allclose(embed(t, x, output=-1), ref[:, :2], rtol=1e-6)
    with pytest.raises(ValueError, match="`output`='nope' is not an output"):
        embed(d, x, output="nope")
    with pytest.raises(ValueError, match="out of range"):
        embed(t, x, output=5)


def test_token_outputs_pool_with_attention_mask():
    model = _Tokens()
    ids = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0], [6, 7, 8, 9]])
    mask = (ids > 0).long()
    batch = {"input_ids": ids, "attention_mask": mask, "labels": torch.zeros(3)}
    with torch.no_grad():
        h = model.emb(ids)
    ref_mean = np.stack([h[i, : int(mask[i].sum())].mean(0).numpy() for i in range(3)])
    with pytest.raises(ValueError, match="token embeddings of shape \\(3, 4, 4\\).*pool='mean'"):
        embed(model, [batch])
    np.testing.assert_allclose(embed(model, [batch], pool="mean"), ref_mean, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(embed(model, batch, pool="mean", batch_size=2), ref_mean,
                               rtol=1e-6, atol=1e-7)  # a dict `data`, split by rows
    np.testing.assert_allclose(embed(model, [batch], pool="cls"), h[:, 0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(embed(model, [batch], output="pooler_output"),
                               h[:, 0].tanh().numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="`pool`='mean' pools token embeddings of shape \\(N, T, D\\)"):
        embed(model, [batch], output="pooler_output", pool="mean")
    with pytest.raises(TypeError, match="could not be called with the batch's keys"):
        embed(nn.Linear(3, 2), [{"inputs": torch.ones(2, 3)}])


# ------------------------------------------------------------------ the user's model is borrowed
def test_model_state_is_restored(images):
    cnn = build_encoder("small_cnn", widths=(4, 4, 8), seed=0)
    cnn.train()
    frozen = cnn.backbone[2]  # a BatchNorm the user froze inside a training model
    frozen.eval()
    cnn.to(memory_format=torch.channels_last)
    before = {k: (v.data_ptr(), v.stride(), v.dtype, v.device) for k, v in cnn.state_dict().items()}
    params = [id(p) for p in cnn.parameters()]
    stats = cnn.backbone[2].running_mean.clone()
    embed(cnn, images)
    embed(cnn, images, device="cpu")
    assert cnn.training and not frozen.training
    assert all(m.training for m in cnn.modules() if m is not frozen)
    assert {k: (v.data_ptr(), v.stride(), v.dtype, v.device) for k, v in cnn.state_dict().items()} == before
    assert [id(p) for p in cnn.parameters()] == params
    assert torch.equal(cnn.backbone[2].running_mean, stats)  # eval: no running-stat updates


def test_borrowed_moves_and_gives_back_the_original_tensors():
    """The device round trip on a CPU-only machine: the meta device stands in for a GPU."""
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    net[0].weight.grad = torch.ones_like(net[0].weight)
    params = {id(p): (p, p.data.data_ptr()) for p in net.parameters()}
    buffers = {k: b for k, b in net.named_buffers()}
    with _Borrowed(net, torch.device("meta")):
        assert all(p.device.type == "meta" for p in net.parameters())
        assert all(b.device.type == "meta" for b in net.buffers())
        assert not net.training
    for p, ptr in params.values():
        assert p.device.type == "cpu" and p.data.data_ptr() == ptr
    assert all(net.get_buffer(k) is b for k, b in buffers.items())
    assert net.training and net[0].weight.grad is not None
    tied = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    tied[1].weight = tied[0].weight
    original = tied[0].weight
    with _Borrowed(tied, torch.device("meta")):
        assert tied[1].weight is tied[0].weight and tied[0].weight.device.type == "meta"
    assert tied[0].weight is original and tied[1].weight is original


def test_returns_a_copy_not_a_view_of_the_input(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    for data in (x, [x]):
        z = embed(nn.Identity(), data)
        z[:] = 0
        assert np.all(x != 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_argument_leaves_the_model_on_the_cpu(images):  # pragma: no cover - GPU only
    cnn = build_encoder("small_cnn", widths=(4, 4, 8), seed=0)
    ptrs = [p.data_ptr() for p in cnn.parameters()]
    z_cpu = embed(cnn, images)
    z_gpu = embed(cnn, images, device="cuda")
    assert all(p.device.type == "cpu" for p in cnn.parameters())
    assert [p.data_ptr() for p in cnn.parameters()] == ptrs
    np.testing.assert_allclose(z_gpu, z_cpu, rtol=1e-3, atol=1e-4)
    gpu_model = build_encoder("small_cnn", widths=(4, 4, 8), seed=0).cuda()
    z = embed(gpu_model, images)  # device=None: where the model is
    assert next(gpu_model.parameters()).is_cuda and z.dtype == np.float32
