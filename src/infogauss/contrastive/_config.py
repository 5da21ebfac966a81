"""The configuration and result of a training run (see :mod:`infogauss.contrastive.train`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np

from ._torch import nn
from .losses import _check_temperature

# Fields that change how a run is executed or observed but not what it computes; a checkpoint
# may be resumed with different values of these.
_RUNTIME_FIELDS = frozenset({
    "device", "checkpoint_dir", "resume", "progress", "knn_every", "knn_k", "knn_temperature",
    "time_budget_s", "stop_after_epochs",
})


@dataclass
class TrainConfig:
    """Everything a training run needs besides the encoder and the data.

    Parameters
    ----------
    epochs : int
        Length of the schedule (cosine decay spans ``epochs``).
    batch_size : int
        Global batch (all ranks together); >= 2 for InfoNCE. The last incomplete batch of
        each epoch is dropped.
    optimizer : {"adam", "sgd"}
    lr, momentum, weight_decay : float
        Weight decay applies to weights of ndim > 1 (not to biases and norm parameters).
    warmup_epochs : float
        Linear warm-up length, then cosine decay to ``min_lr_ratio * lr``.
    temperature : float
        InfoNCE temperature (> 0).
    symmetric : bool
        NT-Xent over 2N views (True) or the one-directional Eq. 2 (False).
    augment : str
        ``simclr`` | ``paper`` | ``synthetic`` | ``bitflip`` | ``none`` (see
        :func:`~infogauss.contrastive.augment.get_augmentation`); an Augmentation instance may
        be passed to the train function instead.
    crop_size : int or list of int, optional
        Output side of the random resized crop of the image presets (default: the input's). Training
        on smaller crops than the evaluation images is cheaper (fewer pixels per step; see
        ``benchmarks/train_throughput.py``) and, because the crop magnifies objects, puts them at
        about the scale a full 32 px image shows at test time ("FixRes", Touvron et al. 2019).
        Encoders ending in a global pool accept either size. A list of sides is progressive resizing
        (as in fast.ai's and FFCV's ImageNet recipes): the schedule's progress (steps, or the time
        budget with ``schedule="time"``) is cut into that many equal parts and part ``k`` trains on
        crops of side ``crop_size[k]``, e.g. ``[16, 20, 24]``; the history records the side at the
        end of each epoch.
    reg_beta, reg_lambda : float
        Route-2 regulariser ``reg_beta * (-H(z) + reg_lambda * E||z||^2)``; off when 0.
    precision : {"bf16", "fp32"}
        bf16 autocast (CPU and CUDA) or plain float32.
    channels_last : bool
        channels_last memory for 4-D inputs.
    seed : int
        Seeds the shuffling and augmentation (not the model's initialisation).
    device : str, optional
        Default: where the model's parameters are. Training moves the model there.
    checkpoint_dir : str, optional
        Where ``last.pt`` and ``log.json`` are written atomically after every epoch.
    resume : bool
        Continue from ``checkpoint_dir/last.pt`` when it exists.
    progress : bool
        tqdm bar (loss, img/s, ETA).
    knn_every : int
        With ``knn_data``: kNN accuracy every this many epochs (0: only after the last one).
    knn_k, knn_temperature : kNN monitor settings (k=200, t=0.1 as InstDisc/SimCLR).
    time_budget_s : float, optional
        Stop (with a checkpoint) once this many seconds of training have elapsed.
    stop_after_epochs : int, optional
        Stop after this many completed epochs (the schedule still spans ``epochs``).
    schedule : {"steps", "time"}
        ``steps``: cosine over ``epochs`` (deterministic, exactly resumable). ``time``: cosine
        over the wall-clock ``time_budget_s`` (the learning rate reaches its floor when the
        budget runs out, whatever the machine's speed; ``epochs`` is then an upper bound and
        runs are not bitwise reproducible).
    """

    epochs: int = 100
    batch_size: int = 256
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-6
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.0
    temperature: float = 0.2
    symmetric: bool = True
    augment: str = "simclr"
    crop_size: int | list[int] | None = None
    reg_beta: float = 0.0
    reg_lambda: float = 1.0
    precision: str = "bf16"
    channels_last: bool = True
    seed: int = 0
    device: str | None = None
    checkpoint_dir: str | None = None
    resume: bool = False
    progress: bool = True
    knn_every: int = 0
    knn_k: int = 200
    knn_temperature: float = 0.1
    time_budget_s: float | None = None
    stop_after_epochs: int | None = None
    schedule: str = "steps"

    def validate(self) -> TrainConfig:
        """Raise ValueError naming the first bad field; return self."""
        if int(self.epochs) < 1:
            raise ValueError(f"`epochs` must be >= 1, got {self.epochs!r}")
        if int(self.batch_size) < 2:
            raise ValueError(
                f"`batch_size` must be >= 2 (InfoNCE needs negatives), got {self.batch_size!r}"
            )
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"`optimizer` must be 'adam' or 'sgd', got {self.optimizer!r}")
        if not self.lr > 0:
            raise ValueError(f"`lr` must be > 0, got {self.lr!r}")
        if self.weight_decay < 0:
            raise ValueError(f"`weight_decay` must be >= 0, got {self.weight_decay!r}")
        if self.warmup_epochs < 0:
            raise ValueError(f"`warmup_epochs` must be >= 0, got {self.warmup_epochs!r}")
        _check_temperature(self.temperature)
        if self.crop_size is not None:
            sides = self.crop_size if isinstance(self.crop_size, (list, tuple)) else [self.crop_size]
            if not sides or any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1
                                for c in sides):
                raise ValueError("`crop_size` must be a positive int, a non-empty list of positive "
                                 f"ints (progressive resizing) or None, got {self.crop_size!r}")
            if isinstance(self.crop_size, (list, tuple)):
                # one canonical form, so that a resumed run compares equal to its checkpoint
                self.crop_size = [int(c) for c in sides]
            else:
                self.crop_size = int(self.crop_size)
        if self.precision not in ("bf16", "fp32"):
            raise ValueError(f"`precision` must be 'bf16' or 'fp32', got {self.precision!r}")
        if self.reg_beta < 0:
            raise ValueError(f"`reg_beta` must be >= 0, got {self.reg_beta!r}")
        if self.schedule not in ("steps", "time"):
            raise ValueError(f"`schedule` must be 'steps' or 'time', got {self.schedule!r}")
        if self.schedule == "time" and not self.time_budget_s:
            raise ValueError("`schedule`='time' needs `time_budget_s`, got None")
        if self.resume and not self.checkpoint_dir:
            raise ValueError("`resume` needs `checkpoint_dir`, got checkpoint_dir=None")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"`config` has unknown keys {unknown}; known: {sorted(names)}")
        return cls(**d)


@dataclass
class TrainResult:
    """What a training run returns.

    Attributes
    ----------
    model : nn.Module
        The trained encoder (unwrapped from DDP), on the training device.
    history : list of dict
        One record per completed epoch: ``epoch, loss, lr, img_per_s, seconds, data_s, aug_s,
        compute_s`` (+ ``knn_acc``, ``accuracy``, regulariser terms when present).
    checkpoint : str or None
        Path of the last checkpoint.
    epochs_completed : int
    stopped_early : bool
        True when ``time_budget_s`` or ``stop_after_epochs`` ended the run.
    classifier : nn.Module or None
        The linear classifier of ``train_supervised``.
    resumed_after_epoch : int or None
        Completed epochs in the checkpoint this call resumed from (``resume=True`` and a
        checkpoint found); ``None`` for a run that started from scratch.
    """

    model: nn.Module
    history: list = field(default_factory=list)
    checkpoint: str | None = None
    epochs_completed: int = 0
    stopped_early: bool = False
    classifier: nn.Module | None = None
    resumed_after_epoch: int | None = None
