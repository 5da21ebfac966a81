"""Training loops: InfoNCE (``train_contrastive``) and its cross-entropy twin
(``train_supervised``) over the same encoder.

One loop serves both. Per step: rows of the (uint8 or float) dataset are indexed where the
dataset lives (a tensor already on the training device stays there: no host-to-device copy per
step), moved to the device, augmented by a batched :class:`~infogauss.contrastive.augment.Augmentation`
whose random parameters come from a generator seeded by ``(seed, epoch, step)``; the forward
pass runs under bf16 autocast with channels_last memory by default. Because every random draw
is a function of ``(seed, epoch, step)``, a run resumed from a checkpoint — saved atomically at
the end of every epoch and on SIGINT/SIGTERM — continues exactly (bitwise on the CPU).

Data parallel: launched under ``torchrun`` (or any initialised ``torch.distributed`` group),
``config.batch_size`` is the *global* batch; each rank takes its slice of every global batch,
draws the augmentation parameters of the whole batch and applies its rows, and the embeddings
are all-gathered with a gradient-preserving collective so that the negatives span all ranks.
The loss and gradients are then those of single-process training on the same global batch
(up to float summation order), for encoders without BatchNorm; BatchNorm statistics stay
per-rank (use ``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` on GPUs if that matters).
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import _io
from .._progress import progress as _progress
from ._config import _RUNTIME_FIELDS, TrainConfig, TrainResult
from ._torch import F, nn, torch
from .augment import Augmentation, ImageAugment, get_augmentation, slice_params
from .embed import embed
from .encoders import architecture_fingerprint
from .knn import knn_accuracy
from .losses import gaussian_regularizer, info_nce

__all__ = ["TrainConfig", "TrainResult", "train_contrastive", "train_supervised",
           "load_checkpoint", "CHECKPOINT_NAME", "LOG_NAME"]

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "last.pt"
LOG_NAME = "log.json"
_FORMAT = "infogauss.contrastive.checkpoint/1"

class _Supervised(nn.Module):
    """Encoder backbone + linear classifier (the cross-entropy twin)."""

    def __init__(self, encoder: nn.Module, n_classes: int, dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.classifier = nn.Linear(dim, n_classes)

    def forward(self, x):
        backbone = getattr(self.encoder, "backbone", self.encoder)
        return self.classifier(backbone(x))


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums the incoming gradients over ranks and keeps this rank's
    slice (works on gloo, which has no reduce_scatter)."""

    @staticmethod
    def forward(ctx, x):
        import torch.distributed as dist

        world = dist.get_world_size()
        out = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(out, x.contiguous())
        ctx.rank, ctx.n = dist.get_rank(), x.shape[0]
        return torch.cat(out, 0)

    @staticmethod
    def backward(ctx, grad):
        import torch.distributed as dist

        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n]


def _dist_info() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _maybe_init_distributed(device: torch.device) -> None:
    """Join the process group torchrun describes (WORLD_SIZE > 1) if nobody did yet."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def _agree_on_elapsed(elapsed: float, device: torch.device) -> float:
    """The largest elapsed time over the ranks (one scalar all_reduce)."""
    import torch.distributed as dist

    t = torch.tensor([elapsed], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def _mix(*ints: int) -> int:
    """A 63-bit seed from a tuple of ints (splitmix-style, stable across runs)."""
    h = 0x9E3779B97F4A7C15
    for v in ints:
        h ^= (int(v) + 0x9E3779B97F4A7C15 + ((h << 6) & 0xFFFFFFFFFFFFFFFF) + (h >> 2))
        h = (h * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    return h & 0x7FFFFFFFFFFFFFFF


def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        if x.dtype == np.float64:
            x = x.astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, torch.Tensor):
        return x.detach()  # used where it lives: a dataset already on the GPU is indexed there
    raise TypeError(f"`{name}` must be a numpy array or torch.Tensor, got {type(x).__name__}")


def _atomic_json(path: Path, obj) -> None:
    _io.write_text(path, json.dumps(obj, indent=2, default=str), name="checkpoint_dir")


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by the training loop (CPU tensors).

    Raises
    ------
    ValueError
        If the file is missing, unreadable or not an infogauss training checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"`checkpoint` must be an existing file, got {str(path)!r}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise ValueError(f"`checkpoint` {str(path)!r} is not a readable checkpoint: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != _FORMAT:
        raise ValueError(f"`checkpoint` {str(path)!r} is not an infogauss training checkpoint")
    return ckpt


class _SignalStop:
    """SIGINT/SIGTERM set a flag; the loop saves a checkpoint at the next step and re-raises."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict = {}

    def __enter__(self) -> _SignalStop:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signum = signum

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)

    def raise_if_stopped(self) -> None:
        if self.signum is not None:
            if self.signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + self.signum)


def _check_resume_compatible(ckpt: dict, config: TrainConfig, fingerprint: str, task: str) -> None:
    if ckpt.get("task") != task:
        raise ValueError(f"`checkpoint` was written by a {ckpt.get('task')} run, not a {task} run")
    if ckpt.get("fingerprint") != fingerprint:
        raise ValueError(
            "`checkpoint` was written for another architecture (fingerprint "
            f"{ckpt.get('fingerprint')}), got a model with fingerprint {fingerprint}"
        )
    old = {k: v for k, v in ckpt.get("config", {}).items() if k not in _RUNTIME_FIELDS}
    new = {k: v for k, v in config.to_dict().items() if k not in _RUNTIME_FIELDS}
    diff = [f"{k}: checkpoint {old.get(k)!r} != config {new.get(k)!r}"
            for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    if diff:
        raise ValueError("`config` differs from the checkpoint's: " + "; ".join(diff))


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def _lr_lambda(total: int, warmup: int, floor: float, clock: dict | None = None):
    """Linear warm-up over ``warmup`` steps, then cosine to ``floor``; over steps, or over the
    fraction of the time budget in ``clock["progress"]`` when a clock is given."""
    def f(step: int) -> float:
        if clock is not None:
            cos = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, clock["progress"])))
            return min((step + 1) / warmup, cos) if warmup else cos
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    return f


def train_contrastive(encoder: nn.Module, data, config: TrainConfig | None = None, *,
                      augment: Augmentation | None = None, knn_data=None) -> TrainResult:
    """Train ``encoder`` with InfoNCE on two augmented views of every sample.

    Parameters
    ----------
    encoder : nn.Module
        An :class:`~infogauss.contrastive.encoders.Encoder` or any module mapping a batch to
        (N, d) (its output is the vector InfoNCE sees).
    data : ndarray or Tensor, or a pair of them
        uint8 images (N, 3, H, W) for image augmentations, float (N, D) for vector data. A
        tensor is used where it is: one already on the training device (e.g. the whole of
        CIFAR-10 on a GPU) is batched there without a host-to-device copy per step. A pair
        ``(x_a, x_b)`` of equally shaped arrays gives fixed positive pairs (e.g. GMM
        same-component positives), each side then augmented by ``augment``.
    config : TrainConfig, optional
    augment : Augmentation, optional
        Overrides ``config.augment``.
    knn_data : tuple (x_train, y_train, x_test, y_test), optional
        Labelled data for the kNN-accuracy monitor on backbone embeddings.

    Returns
    -------
    TrainResult
    """
    return _fit(encoder, data, None, config, augment, knn_data, task="contrastive")


def train_supervised(encoder: nn.Module, data, labels, config: TrainConfig | None = None, *,
                     augment: Augmentation | None = None, knn_data=None) -> TrainResult:
    """Train the cross-entropy twin: ``encoder``'s backbone + a linear classifier.

    Same loop, schedule, augmentation and checkpointing as :func:`train_contrastive`, one
    augmented view per sample; ``config.temperature`` is unused. ``result.classifier`` holds
    the classifier, ``result.model`` the encoder (its projection head, if any, untouched).

    Parameters
    ----------
    labels : int array of shape (n_samples,)
        Class indices ``0 .. n_classes - 1``.
    """
    y = np.asarray(labels)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"`labels` must be a 1-D int array, got dtype {y.dtype} and shape {y.shape}")
    if y.size and y.min() < 0:
        raise ValueError(f"`labels` must be >= 0, got min {y.min()}")
    return _fit(encoder, data, y.astype(np.int64), config, augment, knn_data, task="supervised")


def _fit(encoder, data, labels, config, augment, knn_data, task: str) -> TrainResult:
    config = (config or TrainConfig()).validate()
    if not isinstance(encoder, nn.Module):
        raise TypeError(f"`encoder` must be a torch.nn.Module, got {type(encoder).__name__}")
    aug = get_augmentation(augment if augment is not None else config.augment)
    if config.crop_size is not None:
        if not isinstance(aug, ImageAugment):
            raise ValueError(f"`crop_size` applies to the image augmentations (simclr, paper), got "
                             f"{type(aug).__name__}")
        crop_sides = config.crop_size if isinstance(config.crop_size, list) else [config.crop_size]
        if augment is not None and aug.size is not None and [aug.size] != crop_sides:
            raise ValueError(f"`crop_size`={config.crop_size} conflicts with the augmentation's "
                             f"size={aug.size}")
        stage_augs = [replace(aug, size=c) for c in crop_sides]
        aug = stage_augs[0]
    else:
        stage_augs = [aug]
    paired = isinstance(data, tuple)
    if paired:
        if task != "contrastive" or len(data) != 2:
            raise ValueError("`data` may be a pair (x_a, x_b) only for contrastive training")
        xa, xb = _as_tensor(data[0], "data[0]"), _as_tensor(data[1], "data[1]")
        if xa.shape != xb.shape:
            raise ValueError(f"`data` pair must have equal shapes, got {tuple(xa.shape)} and "
                             f"{tuple(xb.shape)}")
    else:
        xa = xb = _as_tensor(data, "data")
    n = xa.shape[0]
    if n == 0:
        raise ValueError("`data` must not be empty, got 0 samples")
    aug.check_input(xa[:1])
    batch = int(config.batch_size)
    if n < batch:
        raise ValueError(f"`data` must hold at least batch_size={batch} samples, got {n}")
    if labels is not None and labels.shape[0] != n:
        raise ValueError(f"`labels` must have {n} entries (one per sample), got {labels.shape[0]}")

    home = next((p.device for p in encoder.parameters()), torch.device("cpu"))
    device = torch.device(config.device) if config.device else home
    _maybe_init_distributed(device)
    rank, world = _dist_info()
    if batch % world:
        raise ValueError(f"`batch_size` must be divisible by the world size {world}, got {batch}")
    local = batch // world
    lo, hi = rank * local, (rank + 1) * local

    model: nn.Module = encoder
    n_classes = None
    if task == "supervised":
        n_classes = int(labels.max()) + 1
        dim = getattr(encoder, "backbone_dim", None)
        if dim is None:
            raise TypeError("`encoder` must expose `backbone_dim` (an Encoder) for train_supervised")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_mix(config.seed, 7))
            model = _Supervised(encoder, n_classes, dim)
        y_all = torch.from_numpy(labels)
    image_input = xa.ndim == 4
    use_cl = config.channels_last and image_input
    model.to(device)
    if use_cl:
        model.to(memory_format=torch.channels_last)
    fingerprint = architecture_fingerprint(model)
    core = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        # the supervised twin leaves the projection head unused
        model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
                    find_unused_parameters=task == "supervised")

    groups = _param_groups(core, config.weight_decay)
    if config.optimizer == "adam":
        opt = torch.optim.Adam(groups, lr=config.lr)
    else:
        opt = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=True)
    steps = n // batch
    total = steps * int(config.epochs)
    warmup = int(round(config.warmup_epochs * steps))
    clock = {"progress": 0.0, "elapsed": 0.0} if config.schedule == "time" else None
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, _lr_lambda(total, warmup, config.min_lr_ratio, clock))

    ckpt_dir = Path(config.checkpoint_dir) if config.checkpoint_dir else None
    ckpt_path = ckpt_dir / CHECKPOINT_NAME if ckpt_dir else None
    if ckpt_dir and rank == 0:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    history: list[dict] = []
    start_epoch, start_step, partial, elapsed_before = 0, 0, None, 0.0
    resumed_after_epoch = None
    if config.resume and ckpt_path is not None and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        _check_resume_compatible(ckpt, config, fingerprint, task)
        core.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["rng"])
        start_epoch, start_step = int(ckpt["epoch"]), int(ckpt["step"])
        resumed_after_epoch = start_epoch
        history = json.loads(ckpt["history"])
        partial = json.loads(ckpt["partial"]) if ckpt.get("partial") else None
        elapsed_before = float(ckpt.get("elapsed", 0.0))
        log.info("resumed from %s at epoch %d step %d", ckpt_path, start_epoch, start_step)
        if clock is not None:
            clock["progress"] = elapsed_before / config.time_budget_s

    def save(epoch: int, step: int, part: dict | None) -> None:
        if ckpt_path is None or rank != 0:
            return
        state = {
            "format": _FORMAT, "task": task, "model": core.state_dict(),
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "rng": torch.get_rng_state(), "epoch": epoch, "step": step,
            "config": config.to_dict(), "fingerprint": fingerprint,
            "encoder_spec": json.dumps(getattr(encoder, "spec", None)),
            "n_classes": n_classes, "history": json.dumps(history),
            "partial": json.dumps(part) if part else "",
            "elapsed": elapsed_before + time.perf_counter() - t_start,
        }
        _io.atomic_write(ckpt_path, lambda fh: torch.save(state, fh), name="checkpoint_dir")
        _atomic_json(ckpt_dir / LOG_NAME, {"task": task, "config": config.to_dict(),
                                           "history": history})

    def knn_eval() -> float | None:
        if knn_data is None or rank != 0:
            return None
        x_tr, y_tr, x_te, y_te = knn_data
        enc = core.encoder if task == "supervised" else core
        prec = config.precision
        z_tr = embed(enc, x_tr, layer="backbone", batch_size=1024, precision=prec)
        z_te = embed(enc, x_te, layer="backbone", batch_size=1024, precision=prec)
        return knn_accuracy(z_tr, y_tr, z_te, y_te, k=config.knn_k,
                            temperature=config.knn_temperature)

    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
    sample_shape = tuple(xa.shape[1:])
    last_epoch = int(config.epochs)
    if config.stop_after_epochs is not None:
        last_epoch = min(last_epoch, int(config.stop_after_epochs))
    t_start = time.perf_counter()
    stopped_early = last_epoch < int(config.epochs)
    bar = _progress(total=(last_epoch - start_epoch) * steps * batch - start_step * batch,
                    enabled=config.progress and rank == 0, unit="img", unit_scale=True,
                    desc=task, dynamic_ncols=True)
    model.train()
    with _SignalStop() as stop, bar:
        for epoch in range(start_epoch, last_epoch):
            acc = partial or {"loss": 0.0, "n": 0, "correct": 0, "data_s": 0.0, "aug_s": 0.0,
                              "compute_s": 0.0, "seconds": 0.0, "reg": {}}
            partial = None
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(_mix(config.seed, epoch)))
            first = start_step if epoch == start_epoch else 0
            budget_hit = False
            for step in range(first, steps):
                t0 = time.perf_counter()
                rows = perm[step * batch:(step + 1) * batch][lo:hi]
                a_in = xa.index_select(0, rows.to(xa.device)).to(device, non_blocking=True)
                b_in = a_in if not paired else xb.index_select(0, rows.to(xb.device)).to(
                    device, non_blocking=True)
                t1 = time.perf_counter()
                if len(stage_augs) > 1:  # progressive resizing: the part of the schedule we are in
                    done = clock["progress"] if clock is not None else (epoch * steps + step) / total
                    aug = stage_augs[min(len(stage_augs) - 1, int(done * len(stage_augs)))]
                g = torch.Generator().manual_seed(_mix(config.seed, epoch, step, 1))
                pa = slice_params(aug.sample_params(batch, sample_shape, g), lo, hi)
                va = aug.apply(a_in, pa)
                if task == "contrastive":
                    pb = slice_params(aug.sample_params(batch, sample_shape, g), lo, hi)
                    views = torch.cat([va, aug.apply(b_in, pb)], 0)
                else:
                    views = va
                if use_cl:
                    views = views.contiguous(memory_format=torch.channels_last)
                t2 = time.perf_counter()
                with autocast:
                    out = model(views)
                out = out.float()
                terms = {}
                if task == "contrastive":
                    if world > 1:  # one collective: rows (rank, view, i) -> views of the global batch
                        g_out = _GatherWithGrad.apply(out).view(world, 2, local, -1)
                        za = g_out[:, 0].reshape(batch, -1)
                        zb = g_out[:, 1].reshape(batch, -1)
                    else:
                        za, zb = out[:local], out[local:]
                    loss = info_nce(za, zb, config.temperature, config.symmetric)
                    if config.reg_beta > 0:
                        reg, terms = gaussian_regularizer(torch.cat([za, zb]), config.reg_beta,
                                                          config.reg_lambda)
                        loss = loss + reg
                else:
                    yb = y_all.index_select(0, rows).to(device)
                    loss = F.cross_entropy(out, yb)
                    acc["correct"] += int((out.argmax(1) == yb).sum())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                elapsed = elapsed_before + time.perf_counter() - t_start
                if world > 1 and config.time_budget_s is not None:
                    # one clock for all ranks: rank-local clocks would give the replicas
                    # different learning rates (schedule="time") and let one rank stop a step
                    # before the others, which then wait forever in the next collective
                    elapsed = _agree_on_elapsed(elapsed, device)
                if clock is not None:
                    clock["progress"] = elapsed / config.time_budget_s
                sched.step()
                lv = float(loss.detach())
                if not math.isfinite(lv):
                    raise FloatingPointError(
                        f"loss became {lv} at epoch {epoch} step {step}; lower `lr` or use fp32"
                    )
                t3 = time.perf_counter()
                acc["loss"] += lv * local
                acc["n"] += local
                acc["data_s"] += t1 - t0
                acc["aug_s"] += t2 - t1
                acc["compute_s"] += t3 - t2
                acc["seconds"] += t3 - t0
                for k, v in terms.items():
                    acc["reg"][k] = acc["reg"].get(k, 0.0) + v * local
                bar.update(batch)
                bar.set_postfix(loss=f"{lv:.4f}", epoch=epoch, refresh=False)
                if stop.signum is not None:
                    save(epoch, step + 1, acc)
                    bar.close()
                    stop.raise_if_stopped()
                if config.time_budget_s is not None and elapsed >= config.time_budget_s:
                    budget_hit = True
                    break
            complete = acc["n"] >= steps * local
            rec = {"epoch": epoch + 1, "loss": acc["loss"] / max(1, acc["n"]),
                   "lr": opt.param_groups[0]["lr"],
                   "img_per_s": acc["n"] * world / max(acc["seconds"], 1e-9),
                   "seconds": acc["seconds"], "data_s": acc["data_s"], "aug_s": acc["aug_s"],
                   "compute_s": acc["compute_s"]}
            if config.crop_size is not None:
                rec["crop_size"] = aug.size
            if task == "supervised":
                rec["accuracy"] = acc["correct"] / max(1, acc["n"])
            for k, v in acc["reg"].items():
                rec[k] = v / max(1, acc["n"])
            due = knn_data is not None and (
                epoch + 1 == last_epoch or budget_hit
                or (config.knn_every > 0 and (epoch + 1) % config.knn_every == 0))
            if due:
                t_k = time.perf_counter()
                rec["knn_acc"] = knn_eval()
                rec["knn_s"] = time.perf_counter() - t_k
                model.train()
            if not complete:  # budget ran out mid-epoch: resumable position, partial record
                save(epoch, step + 1, acc)
                rec["partial_epoch"] = acc["n"] / (steps * local)
                history.append(rec)
                stopped_early = True
                break
            history.append(rec)
            log.info("epoch %d: %s", epoch + 1, rec)
            save(epoch + 1, 0, None)
            if budget_hit:
                stopped_early = True
                break
    if world > 1:
        torch.distributed.barrier()
    return TrainResult(
        model=core.encoder if task == "supervised" else core,
        history=history,
        checkpoint=str(ckpt_path) if ckpt_path else None,
        epochs_completed=sum(1 for r in history if "partial_epoch" not in r),
        stopped_early=stopped_early,
        classifier=core.classifier if task == "supervised" else None,
        resumed_after_epoch=resumed_after_epoch,
    )
