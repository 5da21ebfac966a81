"""Training loop: exact resume, signals, bad checkpoints, supervised twin, DDP == single process."""

import gc
import os
import signal
import socket

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from infogauss.contrastive import (  # noqa: E402
    ImageAugment,
    TrainConfig,
    build_encoder,
    load_checkpoint,
    train_contrastive,
    train_supervised,
)


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _vectors(n=96, d=12, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def _images(n=48, side=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 3, side, side), dtype=np.uint8)


def _cfg(tmp_path=None, **kw):
    base = dict(epochs=2, batch_size=16, lr=1e-2, augment="synthetic", precision="fp32",
                progress=False, warmup_epochs=0.5)
    if tmp_path is not None:
        base["checkpoint_dir"] = str(tmp_path)
    base.update(kw)
    return TrainConfig(**base)


def _mlp(d=12, seed=0):
    return build_encoder("mlp", in_features=d, hidden_dim=16, out_dim=8, projection_dim=4, seed=seed)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_runs_and_learns(tmp_path):
    res = train_contrastive(_mlp(), _vectors(), _cfg(tmp_path, epochs=3))
    assert res.epochs_completed == 3 and len(res.history) == 3
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    assert {"loss", "lr", "img_per_s", "aug_s", "data_s", "compute_s"} <= set(res.history[0])
    assert os.path.exists(res.checkpoint) and (tmp_path / "log.json").exists()
    ckpt = load_checkpoint(res.checkpoint)
    assert ckpt["epoch"] == 3 and ckpt["step"] == 0


def test_same_seed_same_model():
    a = train_contrastive(_mlp(), _vectors(), _cfg(epochs=1)).model
    b = train_contrastive(_mlp(), _vectors(), _cfg(epochs=1)).model
    _assert_same(_state(a), _state(b))


def test_two_epochs_equal_one_plus_resume(tmp_path):
    """bf16 autocast + channels_last CNN, BatchNorm and Adam state included: bitwise on CPU."""
    x = _images()
    cfg = dict(augment="simclr", precision="bf16", channels_last=True, epochs=2, batch_size=16,
               lr=1e-3)
    full = train_contrastive(build_encoder("small_cnn", seed=0), x,
                             _cfg(tmp_path / "full", **cfg)).model
    part = train_contrastive(build_encoder("small_cnn", seed=0), x,
                             _cfg(tmp_path / "part", stop_after_epochs=1, **cfg))
    assert part.epochs_completed == 1 and part.stopped_early
    assert part.resumed_after_epoch is None
    resumed = train_contrastive(build_encoder("small_cnn", seed=0), x,
                                _cfg(tmp_path / "part", resume=True, **cfg))
    assert resumed.epochs_completed == 2 and resumed.resumed_after_epoch == 1
    _assert_same(_state(full), _state(resumed.model))


class _SignalAt(ImageAugment):
    """Sends a signal to this process on the k-th call of apply (inside a training step)."""

    def __init__(self, at, signum):
        super().__init__()
        object.__setattr__(self, "calls", 0)
        object.__setattr__(self, "at", at)
        object.__setattr__(self, "signum", signum)

    def apply(self, x, params):
        object.__setattr__(self, "calls", self.calls + 1)
        if self.calls == self.at:
            os.kill(os.getpid(), self.signum)
        return super().apply(x, params)


@pytest.mark.parametrize("signum,exc", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, SystemExit)])
def test_signal_leaves_valid_checkpoint_and_resume_is_exact(tmp_path, signum, exc):
    x = _images(32, 8)
    cfg = dict(augment="simclr", precision="fp32", epochs=2, batch_size=8, lr=1e-3)
    ref = train_contrastive(build_encoder("small_cnn", seed=1), x, _cfg(tmp_path / "ref", **cfg)).model
    old = signal.getsignal(signum)
    with pytest.raises(exc):  # 2 apply calls per step: signal during step 3 of epoch 1 (of 4)
        train_contrastive(build_encoder("small_cnn", seed=1), x, _cfg(tmp_path / "run", **cfg),
                          augment=_SignalAt(5, signum))
    assert signal.getsignal(signum) is old  # handlers restored
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert (ckpt["epoch"], ckpt["step"]) == (0, 3)
    res = train_contrastive(build_encoder("small_cnn", seed=1), x,
                            _cfg(tmp_path / "run", resume=True, **cfg))
    _assert_same(_state(ref), _state(res.model))


def test_resume_refuses_other_architecture_and_config(tmp_path):
    train_contrastive(_mlp(), _vectors(), _cfg(tmp_path, epochs=1))
    other = build_encoder("mlp", in_features=12, hidden_dim=32, out_dim=8, projection_dim=4)
    with pytest.raises(ValueError, match="another architecture"):
        train_contrastive(other, _vectors(), _cfg(tmp_path, epochs=1, resume=True))
    with pytest.raises(ValueError, match="`config` differs.*lr"):
        train_contrastive(_mlp(), _vectors(), _cfg(tmp_path, epochs=1, lr=0.5, resume=True))
    # runtime fields may change
    train_contrastive(_mlp(), _vectors(), _cfg(tmp_path, epochs=1, resume=True, knn_every=3))


def test_corrupt_checkpoint(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        train_contrastive(_mlp(), _vectors(), _cfg(tmp_path, resume=True))
    with pytest.raises(ValueError, match="must be an existing file"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("kw,match", [
    ({"batch_size": 1}, "`batch_size` must be >= 2"),
    ({"temperature": 0.0}, "`temperature` must be"),
    ({"temperature": -1.0}, "`temperature` must be"),
    ({"optimizer": "lamb"}, "`optimizer` must be"),
    ({"precision": "fp16"}, "`precision` must be"),
    ({"epochs": 0}, "`epochs` must be"),
    ({"schedule": "time"}, "`schedule`='time' needs"),
    ({"crop_size": 0}, "`crop_size` must be a positive int"),
    ({"crop_size": 24.0}, "`crop_size` must be a positive int"),
    ({"crop_size": 8}, "`crop_size` applies to the image augmentations"),
    ({"crop_size": []}, "`crop_size` must be a positive int, a non-empty list"),
    ({"crop_size": [16, 0]}, "`crop_size` must be a positive int, a non-empty list"),
    ({"crop_size": [16, "24"]}, "`crop_size` must be a positive int, a non-empty list"),
])
def test_bad_config(kw, match):
    with pytest.raises(ValueError, match=match):
        train_contrastive(_mlp(), _vectors(), _cfg(**kw))


def test_bad_data():
    with pytest.raises(ValueError, match="`data` must not be empty"):
        train_contrastive(_mlp(), np.zeros((0, 12), np.float32), _cfg())
    with pytest.raises(ValueError, match="at least batch_size"):
        train_contrastive(_mlp(), _vectors(8), _cfg())
    with pytest.raises(TypeError, match="`x` must be uint8 images"):
        train_contrastive(build_encoder("small_cnn"), np.zeros((32, 3, 8, 8), np.float32),
                          _cfg(augment="simclr"))
    with pytest.raises(ValueError, match=r"`x` must have shape \(N, 3, H, W\)"):
        train_contrastive(build_encoder("small_cnn"), np.zeros((32, 8, 8, 3), np.uint8),
                          _cfg(augment="simclr"))
    with pytest.raises(TypeError, match="`data` must be a numpy array"):
        train_contrastive(_mlp(), [[1.0]], _cfg())
    with pytest.raises(TypeError, match="`encoder` must be a torch.nn.Module"):
        train_contrastive("mlp", _vectors(), _cfg())


class _Shapes(torch.nn.Module):
    """Records the input shapes it sees; global pooling makes it size-agnostic."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.seen = set()

    def forward(self, x):
        self.seen.add(tuple(x.shape[2:]))
        return self.conv(x).mean(dim=(2, 3))


def test_crop_size_trains_on_smaller_crops():
    net = _Shapes()
    res = train_contrastive(net, _images(side=16), _cfg(augment="simclr", crop_size=8, epochs=1))
    assert net.seen == {(8, 8)} and res.epochs_completed == 1
    net = _Shapes()
    train_contrastive(net, _images(side=16), _cfg(augment="simclr", epochs=1))
    assert net.seen == {(16, 16)}
    # an Augmentation instance takes the size too; a conflicting one is refused
    net = _Shapes()
    train_contrastive(net, _images(side=16), _cfg(crop_size=8, epochs=1), augment=ImageAugment(size=8))
    assert net.seen == {(8, 8)}
    with pytest.raises(ValueError, match="conflicts with the augmentation's size=12"):
        train_contrastive(_Shapes(), _images(side=16), _cfg(crop_size=8), augment=ImageAugment(size=12))


def test_progressive_crop_sizes_follow_the_schedule():
    """[4, 8, 12] over 3 epochs of 3 steps: one side per third of the steps, recorded per epoch."""
    net = _Shapes()
    res = train_contrastive(net, _images(side=16), _cfg(augment="simclr", crop_size=(4, 8, 12),
                                                         epochs=3))
    assert [h["crop_size"] for h in res.history] == [4, 8, 12]
    assert net.seen == {(4, 4), (8, 8), (12, 12)}
    # 2 parts over 3 epochs of 3 steps: steps 0-4 (progress < 1/2) at 4 px, 5-8 at 8 px
    sides = []

    class _Sides(_Shapes):
        def forward(self, x):
            sides.append(x.shape[-1])
            return super().forward(x)

    train_contrastive(_Sides(), _images(side=16), _cfg(augment="simclr", crop_size=[4, 8], epochs=3))
    assert sides == [4] * 5 + [8] * 4
    # an augmentation instance of another size conflicts; one of the single size does not
    with pytest.raises(ValueError, match="conflicts with the augmentation's size=4"):
        train_contrastive(_Shapes(), _images(side=16), _cfg(crop_size=[4, 8]), augment=ImageAugment(size=4))
    net = _Shapes()
    train_contrastive(net, _images(side=16), _cfg(crop_size=[8], epochs=1), augment=ImageAugment(size=8))
    assert net.seen == {(8, 8)}


def test_progressive_crop_sizes_resume_exactly(tmp_path):
    """The side depends on the position in the schedule, so a resumed run picks it up bitwise."""
    x = _images(32, 16)
    cfg = dict(augment="simclr", precision="fp32", epochs=2, batch_size=8, lr=1e-3,
               crop_size=(8, 12, 16))
    full = train_contrastive(build_encoder("small_cnn", seed=0), x, _cfg(tmp_path / "full", **cfg))
    train_contrastive(build_encoder("small_cnn", seed=0), x,
                      _cfg(tmp_path / "part", stop_after_epochs=1, **cfg))
    # the tuple comes back from the checkpoint as a list: resuming with either form works
    resumed = train_contrastive(build_encoder("small_cnn", seed=0), x,
                                _cfg(tmp_path / "part", resume=True, **{**cfg, "crop_size": [8, 12, 16]}))
    _assert_same(_state(full.model), _state(resumed.model))
    assert [h["crop_size"] for h in resumed.history] == [h["crop_size"] for h in full.history] == [12, 16]
    with pytest.raises(ValueError, match="`config` differs.*crop_size"):
        train_contrastive(build_encoder("small_cnn", seed=0), x,
                          _cfg(tmp_path / "part", resume=True, **{**cfg, "crop_size": [8, 16]}))


def test_paired_data_and_any_module():
    from infogauss.contrastive import same_component_positives
    from infogauss.datasets import make_gmm

    x, comp = make_gmm(64, 16, n_components=4, seed=0)
    pos = same_component_positives(comp).numpy()
    net = torch.nn.Sequential(torch.nn.Linear(16, 8))
    res = train_contrastive(net, (x, x[pos]), _cfg(augment="none", epochs=2))
    assert res.model is net and len(res.history) == 2


def test_regularizer_terms_logged():
    res = train_contrastive(_mlp(), _vectors(), _cfg(epochs=1, reg_beta=0.01))
    assert {"entropy", "sq_norm", "reg"} <= set(res.history[0])


def test_supervised_twin_and_knn_monitor(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 96)
    x = (rng.standard_normal((96, 12)) + 3 * np.eye(12)[y]).astype(np.float32)
    enc = _mlp()
    res = train_supervised(enc, x, y, _cfg(tmp_path, epochs=10, augment="none"),
                           knn_data=(x, y, x, y))
    assert res.model is enc and res.classifier.out_features == 3
    assert res.history[-1]["accuracy"] > 0.8
    assert res.history[-1]["knn_acc"] > 0.8
    assert load_checkpoint(tmp_path / "last.pt")["task"] == "supervised"
    with pytest.raises(ValueError, match="supervised run, not a contrastive run"):
        train_contrastive(_mlp(), x, _cfg(tmp_path, epochs=10, augment="none", resume=True))
    with pytest.raises(TypeError, match="`labels` must be a 1-D int array"):
        train_supervised(_mlp(), x, y.astype(float), _cfg())


def test_time_budget_stops_with_checkpoint(tmp_path):
    res = train_contrastive(_mlp(), _vectors(), _cfg(tmp_path, epochs=1000, schedule="time",
                                                     time_budget_s=0.5))
    assert res.stopped_early and res.epochs_completed < 1000
    assert load_checkpoint(tmp_path / "last.pt")["elapsed"] >= 0.5


# ---------------------------------------------------------------- DDP (gloo, 2 processes)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, out, cfg_kw=None):
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        res = train_contrastive(_mlp(), _vectors(), _cfg(**(cfg_kw or {"epochs": 2})))
        torch.save({"state": res.model.state_dict(), "loss": res.history[-1]["loss"],
                    "n_hist": len(res.history)}, f"{out}.{rank}")
        # tear down together and only after the DDP wrapper (and its gloo reducer) is gone:
        # a rank exiting while its peer still uses the group, or a reducer collected after the
        # group is destroyed, aborts the process ("terminate called without an active exception")
        del res
        gc.collect()
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_ddp_gloo_equals_single_process(tmp_path):
    import torch.multiprocessing as mp

    single = train_contrastive(_mlp(), _vectors(), _cfg(epochs=2))
    out = str(tmp_path / "ddp.pt")
    mp.spawn(_ddp_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    ddp = torch.load(f"{out}.0", weights_only=True)
    ref = single.model.state_dict()
    for k, v in ddp["state"].items():
        assert torch.allclose(v, ref[k], atol=1e-5, rtol=0), k
    assert ddp["loss"] == pytest.approx(single.history[-1]["loss"], abs=1e-5)


def test_ddp_time_budget_ranks_share_one_clock(tmp_path):
    """schedule="time" under DDP: the ranks agree on the elapsed time, so they take the same
    learning rates, stop at the same step (no rank left waiting in a collective) and end with
    identical replicas."""
    import torch.multiprocessing as mp

    out = str(tmp_path / "ddp.pt")
    kw = {"epochs": 1000, "schedule": "time", "time_budget_s": 1.0}
    mp.spawn(_ddp_worker, args=(2, _free_port(), out, kw), nprocs=2, join=True)
    r0, r1 = (torch.load(f"{out}.{r}", weights_only=True) for r in (0, 1))
    assert r0["n_hist"] == r1["n_hist"] and r0["loss"] == r1["loss"]
    _assert_same(r0["state"], r1["state"])
