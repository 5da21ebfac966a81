r"""The paper's CIFAR-10 evidence in one call on one GPU: ResNet-18 trained with InfoNCE and its
cross-entropy twin, their Table 1 rows and the OOD suite, inside a wall-clock budget.

    python benchmarks/gpu_paper_run.py --dry-run                  # the plan, in about a second
    python benchmarks/gpu_paper_run.py --budget-minutes 9         # the run (one GPU)
    python benchmarks/gpu_paper_run.py --tiny --device cpu        # the same stages, CPU-sized
    python benchmarks/gpu_paper_run.py --render runs/gpu_paper_run/gpu_paper_run.json

``benchmarks/GPU_RUN.md`` gives the one command a session with a GPU runs.

Stages, in order; each writes its result into ``<out>/gpu_paper_run.json`` as soon as it ends
(an atomic rewrite), so a run cut off at any point keeps what finished (a stage that was
running says ``"status": "running"``):

1. ``environment``: GPU name and memory, torch / CUDA / cuDNN versions, the commit (``_env``;
   ``--commit`` where the copy of the tree has no ``.git``) and a digest of the sources.
2. ``data``: CIFAR-10 train/test and Tiny ImageNet resize/crop from ``--data`` (the shared JPEG
   zips), with the loaders and seeds ``embed_cifar10.py`` uses; decoded once (in the evaluation
   worker processes when there are any), the training images moved to the device as uint8.
3. ``train_contrastive``: ``train_contrastive`` (InfoNCE, SimCLR augmentations on the device,
   bf16 autocast, channels_last, cosine over the stage's wall-clock budget:
   ``TrainConfig(schedule="time")``), checkpoints every epoch under ``--work`` (not committed);
   a failure after the first epoch is evaluated from the last checkpoint. The trained encoder's
   ``state_dict`` + config (``<work>/contrastive.pt``) is what the next stage loads.
4. ``embed_contrastive``: backbone and head embeddings of train/test/TIN written in the
   ``_embeddings.py`` layout (``<work>/emb/contrastive`` and ``..._head``), kNN accuracy
   (k = 200, cosine, exp(s/0.1) weights, all train -> all test) on both layers.
5. ``train_supervised``: the cross-entropy twin (same encoder, backbone + linear classifier),
   on a smaller budget.
6. ``embed_supervised``: backbone embeddings, the twin's test accuracy and kNN accuracy.
7. ``table1_contrastive``, ``table1_supervised``: ``paper_table1.cifar_rows`` on the test
   embeddings (norm CV, AD pass at full n and at n = 100 / 500, beside the paper's numbers).
8. ``ood_contrastive``, ``ood_supervised``, ``ood_contrastive_head``: ``ood_cifar10.benchmark``
   (every detector, CIFAR-10 test vs TIN resize / crop). Stages 7-8 run in ``--eval-workers``
   CPU processes while the GPU trains the twin (inline when 0); whatever has not finished at the
   end of the budget is recorded as ``"cut"``.

``summary`` in the JSON collects what the issue asks for (kNN accuracy and epochs of the InfoNCE
encoder, the twin's test accuracy, Table 1 rows beside the paper's, AUROC of every detector,
GPU and wall times); ``gpu_paper_run.md`` renders it and ``gpu_paper_run.log`` is the log.

Budget: ``--contrastive-share`` and ``--supervised-share`` are fractions of the total budget
given to the two training stages; the rest is for setup, data, embedding and evaluation,
whose durations are estimates (``--dry-run`` prints them and their basis). A stage that starts
later than planned trains that much less, so the stages after it keep their time.

Learning rate: Adam (the optimiser of our other CIFAR-10 runs) with the square-root rule
``lr = base_lr * sqrt(batch / 256)`` (``--lr-rule linear`` for ``base_lr * batch / 256``):
for adaptive optimisers the square-root rule is the one that keeps the training dynamics
(Malladi et al., 2022, "On the SDEs and scaling rules for adaptive gradient algorithms"); the
linear rule is SGD's (Goyal et al., 2017), and SimCLR's LARS uses square-root scaling for long
schedules at large batches too (Chen et al., 2020, appendix B.1).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import importlib
import json
import logging
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ood_cifar10  # noqa: E402
import paper_table1  # noqa: E402
from _embeddings import write_embeddings  # noqa: E402
from _env import ROOT, environment, setup_logging, show_progress, write_json  # noqa: E402
from embed_cifar10 import SHARED  # noqa: E402

from infogauss.datasets import load_cifar10_zip, load_tinyimagenet_zip  # noqa: E402

# torch (and infogauss.contrastive, which needs it) is imported by the stages that use it, as
# embed_cifar10.py does: --dry-run and the evaluation workers never import it.

log = logging.getLogger("benchmarks.gpu_paper_run")

RESULTS_NAME = "gpu_paper_run.json"
LOG_NAME = "gpu_paper_run.log"
MD_NAME = "gpu_paper_run.md"
DEFAULT_OUT = ROOT / "runs" / "gpu_paper_run"
CIFAR_ZIP = "cifar10_jpeg.zip"
TIN_ZIP = "tinyimagenet_test_jpeg.zip"
CROP_SEED = 0  # embed_cifar10.py's --crop-seed default: the TIN crop set is the same one
KNN_K, KNN_T = 200, 0.1
#: (stage, embeddings directory under <work>/emb, job kind), queued after the embedding stage
#: of their encoder; "late" after the twin's stages, whatever they gave (lowest priority)
EVAL_JOBS = {
    "contrastive": [("table1_contrastive", "contrastive", "table1"),
                    ("ood_contrastive", "contrastive", "ood")],
    "supervised": [("table1_supervised", "supervised", "table1"),
                   ("ood_supervised", "supervised", "ood")],
    "late": [("ood_contrastive_head", "contrastive_head", "ood")],
}
MAIN_STAGES = ("environment", "data", "train_contrastive", "embed_contrastive", "train_supervised",
               "embed_supervised")
ALL_STAGES = MAIN_STAGES + tuple(j[0] for jobs in EVAL_JOBS.values() for j in jobs)


# --------------------------------------------------------------------------------------
# Configuration and plan
# --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Estimates:
    """Durations the plan assumes (seconds) and the training speeds (images per second; an
    InfoNCE image is one pair of views)."""

    setup_s: float
    data_s: float
    img_per_s_contrastive: float
    img_per_s_supervised: float
    compile_s: float
    compile_speedup: float
    embed_s: float  # one encoder: train + test + TIN sets, backbone and head
    table1_row_s: float  # one Table 1 row (one layer)
    ood_s: float  # the OOD suite on one embeddings directory
    basis: str


ESTIMATES = {
    "cuda": Estimates(
        15, 25, 10_000, 20_000, 60, 1.3, 15, 45, 130,
        "stated, not measured (no GPU run yet): ResNet-18 with the CIFAR stem costs 0.56 GMAC "
        "per 32x32 image forward, ~3.3 GFLOP per trained view; at the ~75 TFLOP/s an eager bf16 "
        "channels_last ResNet reaches on an H100-class GPU that is ~20k views/s, i.e. ~10k "
        "InfoNCE images/s (2 views) and ~20k cross-entropy images/s. Evaluation times scale "
        "what was measured on 2 shared CPU cores (Table 1 row 10k x 512: null simulations "
        "dominate; OOD suite: EllipticEnvelope on 5000 x 64 dominates, ~250 s there) to 16 idle "
        "cores"),
    "cpu": Estimates(
        10, 30, 48, 96, 0, 1.0, 900, 120, 600,
        "ResNet-18 InfoNCE training runs at ~48 img/s on 2 CPU cores (issue 22); the rest "
        "scaled from small runs on the same machine"),
    "tiny": Estimates(
        5, 2, 800, 1600, 0, 1.0, 2, 3, 20,
        "small_cnn (8, 16, 32) on a few hundred images, 2 shared CPU cores"),
}

# n_test 512 keeps the n = 500 AD column; the OOD options shrink only the MCD baseline's work
TINY = {"encoder": "small_cnn", "widths": (8, 16, 32), "n_train": 512, "n_test": 512,
        "n_ood": 256, "batch_size": 64, "budget_minutes": 2.0, "contrastive_share": 0.03,
        "supervised_share": 0.015, "table1_preset": "smoke",
        "ood_args": ("--mcd-max-train", "256", "--mcd-dims", "16", "--splits", "5")}
FULL = {"encoder": "resnet18", "widths": None, "n_train": None, "n_test": None, "n_ood": None,
        "batch_size": 1024, "budget_minutes": 9.0, "contrastive_share": 0.45,
        "supervised_share": 0.10, "table1_preset": "gpu", "ood_args": ()}
COMPILE_AUTO_MIN_S = 480.0  # auto compiles only a training stage at least this long (see plan)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    budget_s: float
    contrastive_share: float
    supervised_share: float
    batch_size: int
    base_lr: float
    lr_rule: str
    lr: float
    weight_decay: float
    warmup_epochs: float
    temperature: float
    augment: str
    crop_size: int | None
    encoder: str
    widths: tuple | None
    precision: str
    compile: str
    device: str  # "cuda" | "cpu" (resolved; "auto" resolved without torch in a dry run)
    device_assumed: bool
    tiny: bool
    n_train: int | None
    n_test: int | None
    n_ood: int | None
    data: str
    out: str
    work: str
    eval_workers: int
    table1_preset: str
    ood_args: tuple
    seed: int
    commit: str | None
    progress: bool
    stop_after: str | None

    @property
    def estimates(self) -> Estimates:
        return ESTIMATES["tiny" if self.tiny else self.device]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget-minutes", type=float, default=None,
                   help="total wall-clock budget (default 9; --tiny: 2)")
    p.add_argument("--contrastive-share", type=float, default=None,
                   help="fraction of the budget for InfoNCE training (default 0.45; --tiny 0.03)")
    p.add_argument("--supervised-share", type=float, default=None,
                   help="fraction for the cross-entropy twin (default 0.10; --tiny 0.015); 0 skips it")
    p.add_argument("--batch-size", type=int, default=None, help="default 1024 (--tiny: 64)")
    p.add_argument("--base-lr", type=float, default=1e-3, help="Adam learning rate at batch 256")
    p.add_argument("--lr-rule", choices=["sqrt", "linear"], default="sqrt",
                   help="lr = base_lr * (batch/256)^(1/2) (sqrt) or ^1 (linear)")
    p.add_argument("--weight-decay", type=float, default=1e-5)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--temperature", type=float, default=0.2)
    p.add_argument("--augment", choices=["simclr", "paper"], default="simclr")
    p.add_argument("--crop-size", type=int, default=None, help="training crop side (default 32)")
    p.add_argument("--encoder", choices=["resnet18", "small_cnn"], default=None,
                   help="default resnet18 (--tiny: small_cnn with widths 8 16 32)")
    p.add_argument("--widths", type=int, nargs=3, default=None, help="small_cnn stage widths")
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--compile", choices=["auto", "on", "off"], default="auto",
                   help=f"torch.compile the training forward; auto: on CUDA for a training stage "
                        f"of at least {COMPILE_AUTO_MIN_S:.0f} s")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--tiny", action="store_true",
                   help="CPU-sized configuration: a few hundred images, small_cnn, seconds")
    p.add_argument("--data", default=str(SHARED), help="directory with the shared zips")
    p.add_argument("--out", default=str(DEFAULT_OUT),
                   help=f"results directory ({RESULTS_NAME}, {LOG_NAME}, {MD_NAME})")
    p.add_argument("--work", default=None,
                   help="checkpoints and embeddings (default <out>/work; large, never committed)")
    p.add_argument("--eval-workers", type=int, default=None,
                   help="CPU processes for data loading and evaluation (default 3 on CUDA, 0 = "
                        "inline otherwise)")
    p.add_argument("--ood-args", default="",
                   help="extra options for ood_cifar10.py, e.g. \"--mcd-max-train 2000\"")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--commit", default=None,
                   help="the commit the tree was copied from (recorded when git is unavailable)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (stages, budgets, batch sizes, expected epochs); no work")
    p.add_argument("--render", metavar="JSON", default=None,
                   help="only (re)write the markdown summary of a results JSON")
    p.add_argument("--stop-after", choices=MAIN_STAGES, default=None,
                   help="exit right after this stage, as a run cut off there would (tests)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.batch_size is not None and args.batch_size < 2:
        p.error(f"--batch-size must be >= 2, got {args.batch_size}")
    for name in ("contrastive_share", "supervised_share"):
        v = getattr(args, name)
        if v is not None and not 0 <= v < 1:
            p.error(f"--{name.replace('_', '-')} must be in [0, 1), got {v}")
    if args.budget_minutes is not None and not args.budget_minutes > 0:
        p.error(f"--budget-minutes must be > 0, got {args.budget_minutes}")
    return args


def _gpu_visible() -> bool:
    """Whether an NVIDIA GPU is visible, without importing torch (for --dry-run's auto)."""
    return Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia").exists()


def make_config(args: argparse.Namespace) -> RunConfig:
    base = TINY if args.tiny else FULL
    pick = {k: (getattr(args, k) if getattr(args, k, None) is not None else v)
            for k, v in base.items() if k in ("budget_minutes", "contrastive_share",
                                               "supervised_share", "batch_size", "encoder")}
    if pick["contrastive_share"] <= 0:
        raise SystemExit("--contrastive-share must be > 0")
    if pick["contrastive_share"] + pick["supervised_share"] >= 1:
        raise SystemExit("--contrastive-share + --supervised-share must leave part of the budget "
                         f"for evaluation, got {pick['contrastive_share']} + "
                         f"{pick['supervised_share']}")
    encoder = pick["encoder"]
    widths = tuple(args.widths) if args.widths else (base["widths"] if encoder == "small_cnn"
                                                     and args.encoder is None else None)
    if widths is not None and encoder != "small_cnn":
        raise SystemExit("--widths applies to --encoder small_cnn only")
    device, assumed = args.device, False
    if device == "auto":
        device, assumed = ("cuda" if _gpu_visible() and not args.tiny else "cpu"), True
    batch = int(pick["batch_size"])
    scale = batch / 256
    lr = args.base_lr * (math.sqrt(scale) if args.lr_rule == "sqrt" else scale)
    workers = args.eval_workers
    if workers is None:
        workers = 3 if device == "cuda" else 0
    out = str(Path(args.out))
    return RunConfig(
        budget_s=60.0 * pick["budget_minutes"], contrastive_share=pick["contrastive_share"],
        supervised_share=pick["supervised_share"], batch_size=batch, base_lr=args.base_lr,
        lr_rule=args.lr_rule, lr=lr, weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs, temperature=args.temperature, augment=args.augment,
        crop_size=args.crop_size, encoder=encoder, widths=widths, precision=args.precision,
        compile=args.compile, device=device, device_assumed=assumed, tiny=args.tiny,
        n_train=base["n_train"], n_test=base["n_test"], n_ood=base["n_ood"], data=str(args.data),
        out=out, work=str(Path(args.work) if args.work else Path(out) / "work"),
        eval_workers=max(0, int(workers)), table1_preset=base["table1_preset"],
        ood_args=base["ood_args"] + tuple(args.ood_args.split()), seed=args.seed, commit=args.commit,
        progress=show_progress(args.no_progress), stop_after=args.stop_after,
    )


def compile_decision(cfg: RunConfig, budget_s: float) -> tuple[bool, str]:
    """Whether to torch.compile a training stage of ``budget_s`` seconds, and why."""
    if cfg.compile != "auto":
        return cfg.compile == "on", f"--compile {cfg.compile}"
    if cfg.device != "cuda":
        return False, "auto: not on CUDA"
    est = cfg.estimates
    if budget_s < COMPILE_AUTO_MIN_S:
        gain = (1 - est.compile_s / budget_s) * est.compile_speedup - 1
        return False, (f"auto: a {budget_s:.0f} s stage would gain {100 * gain:+.0f}% "
                       f"(~{est.compile_s:.0f} s compile, ~{est.compile_speedup:.1f}x after)")
    return True, f"auto: stage of {budget_s:.0f} s >= {COMPILE_AUTO_MIN_S:.0f} s"


def _n(cfg: RunConfig, full: int, key: str) -> int:
    v = getattr(cfg, key)
    return full if v is None else min(full, v)


def make_plan(cfg: RunConfig) -> dict:
    """Stages with planned start times and durations, the evaluation jobs' schedule on the
    workers, the expected epochs and the estimated end (seconds from the start)."""
    est = cfg.estimates
    n_train = _n(cfg, 50_000, "n_train")
    rows: list[dict] = []
    t = 0.0

    def add(stage: str, seconds: float, **extra) -> None:
        nonlocal t
        rows.append({"stage": stage, "start_s": round(t, 1), "seconds": round(seconds, 1), **extra})
        t += seconds

    def training(share: float, speed: float) -> dict:
        budget = share * cfg.budget_s
        on, why = compile_decision(cfg, budget)
        compute = max(0.0, budget - (est.compile_s if on else 0.0))
        rate = speed * (est.compile_speedup if on else 1.0)
        return {"budget_s": budget, "compile": on, "compile_reason": why,
                "img_per_s": rate, "expected_epochs": round(compute * rate / n_train, 1),
                "batch_size": cfg.batch_size, "lr": cfg.lr}

    cost = {"table1_contrastive": 1.5 * est.table1_row_s, "table1_supervised": est.table1_row_s,
            "ood_contrastive": est.ood_s, "ood_supervised": est.ood_s,
            "ood_contrastive_head": 0.9 * est.ood_s}
    jobs: list[dict] = []
    free = [0.0] * cfg.eval_workers

    def submit(batch) -> None:
        """Workers: FIFO on the first free one. Inline: the job runs now, delaying the rest."""
        nonlocal t
        for stage, _, _ in batch:
            if free:
                w = min(range(len(free)), key=free.__getitem__)
                start = max(t, free[w])
                free[w] = start + cost[stage]
            else:
                w, start = None, t
                t += cost[stage]
            jobs.append({"stage": stage, "start_s": round(start, 1),
                         "seconds": round(cost[stage], 1), "worker": w})

    add("environment", est.setup_s)
    add("data", est.data_s)
    tc = training(cfg.contrastive_share, est.img_per_s_contrastive)
    add("train_contrastive", tc["budget_s"], **tc)
    add("embed_contrastive", est.embed_s)
    submit(EVAL_JOBS["contrastive"])
    if cfg.supervised_share > 0:
        ts = training(cfg.supervised_share, est.img_per_s_supervised)
        add("train_supervised", ts["budget_s"], **ts)
        add("embed_supervised", 0.5 * est.embed_s)
        submit(EVAL_JOBS["supervised"])
    submit(EVAL_JOBS["late"])
    end = max([t, *free])
    return {"budget_s": cfg.budget_s, "stages": rows, "jobs": jobs, "end_s": round(end, 1),
            "slack_s": round(cfg.budget_s - end, 1), "estimates": dataclasses.asdict(est),
            "n_train": n_train}


def format_plan(cfg: RunConfig, plan: dict) -> str:
    data = Path(cfg.data)
    have = {z: (data / z).is_file() for z in (CIFAR_ZIP, TIN_ZIP)}
    enc = cfg.encoder + (f" widths {cfg.widths}" if cfg.widths else "")
    lines = [
        f"gpu_paper_run plan{' (--tiny)' if cfg.tiny else ''}: budget {cfg.budget_s:.0f} s, "
        f"device {cfg.device}{' (auto, assumed without torch)' if cfg.device_assumed else ''}",
        f"  encoder {enc}{' (CIFAR stem: 3x3 conv, no max-pool)' if cfg.encoder == 'resnet18' else ''}"
        f", projection head 512-512-128, {cfg.precision}, "
        f"channels_last, augment {cfg.augment}, crop {cfg.crop_size or 32}, "
        f"temperature {cfg.temperature}",
        f"  optimiser adam, lr = {cfg.base_lr:g} x {'sqrt' if cfg.lr_rule == 'sqrt' else ''}"
        f"({cfg.batch_size}/256) = {cfg.lr:.3g} at batch {cfg.batch_size}, warm-up "
        f"{cfg.warmup_epochs:g} epoch, cosine over each stage's wall-clock budget",
        "  data " + ", ".join(f"{z} {'found' if ok else 'MISSING'}" for z, ok in have.items())
        + f" in {data}" + ("" if all(have.values()) or not cfg.tiny
                           else " -> --tiny uses random images"),
        f"  sizes: train {plan['n_train']}, test {_n(cfg, 10_000, 'n_test')}, TIN resize/crop "
        f"{_n(cfg, 10_000, 'n_ood')} each; Table 1 preset {cfg.table1_preset!r}; evaluation "
        f"workers {cfg.eval_workers or 'none (inline)'}",
        "",
        f"  {'stage':<22}{'start s':>8}{'seconds':>9}  notes",
    ]
    for r in plan["stages"]:
        note = ""
        if "expected_epochs" in r:
            note = (f"batch {r['batch_size']}, ~{r['expected_epochs']:g} epochs at "
                    f"{r['img_per_s']:,.0f} img/s; compile {'on' if r['compile'] else 'off'} "
                    f"({r['compile_reason']})")
        lines.append(f"  {r['stage']:<22}{r['start_s']:>8.0f}{r['seconds']:>9.0f}  {note}")
    for j in plan["jobs"]:
        where = "inline" if j["worker"] is None else f"worker {j['worker']}"
        lines.append(f"  {j['stage']:<22}{j['start_s']:>8.0f}{j['seconds']:>9.0f}  {where}")
    lines += ["", f"  estimated end {plan['end_s']:.0f} s of {cfg.budget_s:.0f} s "
                  f"(slack {plan['slack_s']:+.0f} s); jobs unfinished at the budget are cut",
              f"  estimates: {plan['estimates']['basis']}"]
    if plan["slack_s"] < 0:
        lines.append("  WARNING: the estimates exceed the budget: lower the shares or raise "
                     "--budget-minutes")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Results file
# --------------------------------------------------------------------------------------
class Results:
    """The results JSON, rewritten atomically (with its markdown) after every change."""

    def __init__(self, out: Path, payload: dict, t0: float) -> None:
        self.path = out / RESULTS_NAME
        self.payload = payload
        self.t0 = t0
        self.payload.setdefault("stages", {})

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def save(self) -> None:
        self.payload["summary"] = summarize(self.payload)
        write_json(self.path, self.payload)
        self.path.with_name(MD_NAME).write_text(render_markdown(self.payload), encoding="utf-8")

    def set(self, stage: str, **fields) -> dict:
        rec = self.payload["stages"].setdefault(stage, {})
        rec.update(fields)
        self.save()
        return rec

    @contextlib.contextmanager
    def stage(self, name: str, *, critical: bool = False, **planned):
        """Record a main stage: running -> done | failed | interrupted, with its wall time.

        A failure of a non-critical stage is recorded and the run goes on; signals
        (KeyboardInterrupt, SystemExit: the trainer re-raises SIGTERM as SystemExit) and
        failures of critical stages propagate after being recorded.
        """
        start = self.now()
        rec = self.set(name, status="running", started_s=round(start, 2), **planned)
        log.info("stage %s: started at %.1f s", name, start)
        try:
            yield rec
        except (KeyboardInterrupt, SystemExit) as exc:
            self.set(name, status="interrupted", error=repr(exc), seconds=self.now() - start)
            raise
        except Exception as exc:  # noqa: BLE001 - recorded; the run goes on without this stage
            log.exception("stage %s failed", name)
            self.set(name, status="failed", error=repr(exc), seconds=self.now() - start)
            if critical:
                raise
        else:
            self.set(name, status=rec.pop("status_done", "done"), seconds=self.now() - start)
            log.info("stage %s: %s in %.1f s", name, rec["status"], rec["seconds"])


def _ok(payload: dict, stage: str) -> dict | None:
    rec = payload.get("stages", {}).get(stage)
    return rec if rec and rec.get("status") in ("done", "recovered") else None


def summarize(payload: dict) -> dict:
    """What issue 22 asks for, read off the stage records (one place)."""
    st = payload.get("stages", {})
    env = (st.get("environment") or {}).get("result", {})
    out: dict[str, Any] = {
        "gpu": env.get("gpu"), "device": env.get("device"), "torch": env.get("torch"),
        "cuda": env.get("cuda"), "commit": env.get("commit"),
    }
    for kind in ("contrastive", "supervised"):
        tr, em = _ok(payload, f"train_{kind}"), _ok(payload, f"embed_{kind}")
        d: dict[str, Any] = {}
        if tr:
            r = tr["result"]
            d.update({k: r.get(k) for k in ("epochs_completed", "epochs_reached", "img_per_s",
                                            "train_seconds", "compile", "recovered_from_checkpoint")})
        if em:
            d.update(em["result"].get("metrics", {}))
        out["infonce" if kind == "contrastive" else "cross_entropy"] = d
    table = []
    for stage in ("table1_contrastive", "table1_supervised"):
        rec = _ok(payload, stage)
        for r in (rec["result"]["rows"] if rec else []):
            by_n = r.get("ad_pass_by_n") or {}
            table.append({
                "row": r["key"], "label": r["label"], "n": r.get("n"),
                "paper": {k: (r["paper"] or {}).get(k) for k in ("cv", "ad_pass")},
                "ours": {"cv": r["ours"]["cv"], "ad_pass": r["ours"]["ad_pass"],
                         "ad_pass_n100": by_n.get("100"), "ad_pass_n500": by_n.get("500")},
            })
    out["table1"] = table
    ood, notes = {}, {}
    for stage in ("ood_contrastive", "ood_supervised", "ood_contrastive_head"):
        rec = _ok(payload, stage)
        if rec:
            r = rec["result"]
            ood[stage[len("ood_"):]] = {
                s: {det: m["auroc"] for det, m in table_.items()} for s, table_ in r["metrics"].items()}
            failed = {d: v["error"] for d, v in r["detectors"].items() if "error" in v}
            if failed or r.get("pyod_unavailable"):
                notes[stage[len("ood_"):]] = {"failed": failed, "pyod_unavailable": r.get("pyod_unavailable")}
    out["ood_auroc"] = ood
    out["ood_missing_detectors"] = notes
    out["wall_seconds"] = {name: round(rec["seconds"], 1) for name, rec in st.items()
                           if isinstance(rec.get("seconds"), (int, float))}
    out["status"] = {name: rec.get("status") for name, rec in st.items()}
    return out


# --------------------------------------------------------------------------------------
# Work in other processes (CPU only: data decoding, Table 1 rows, OOD suites)
# --------------------------------------------------------------------------------------
_WORKER_STATE: dict = {}


def _worker_init(threads: int, log_path: str) -> None:
    from threadpoolctl import threadpool_limits

    _WORKER_STATE["limits"] = threadpool_limits(threads)  # BLAS threads of this worker
    setup_logging("gpu_paper_run")
    handler = logging.FileHandler(log_path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [worker]: "
                                           "%(message)s"))
    logging.getLogger().addHandler(handler)


def _timed(fn, *args) -> dict:
    t = time.perf_counter()
    value = fn(*args)
    return {"value": value, "seconds": time.perf_counter() - t, "pid": os.getpid()}


def job_load(kind: str, path: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode one image set exactly as embed_cifar10.py does (cached by the loaders)."""
    if kind == "cifar10":
        d = load_cifar10_zip(path, split)
        return d.images, d.labels
    d = load_tinyimagenet_zip(path, mode=split, seed=CROP_SEED)
    return d.images, d.labels


def job_table1(directory: str, which: str, preset: str, seed: int) -> dict:
    """paper_table1's CIFAR rows (backbone, and head when ``<directory>_head`` exists)."""
    ns = argparse.Namespace(cifar_contrastive=None, cifar_supervised=None, cifar_epoch0=None)
    setattr(ns, f"cifar_{which}", directory)
    p = paper_table1.PRESETS[preset]
    rows = paper_table1.cifar_rows(ns, p, seed)
    for r in rows:
        r["sentence"] = paper_table1.sentence(r, None)
        r["n"] = r["report"]["n_used"]  # rows of the coordinate tests (the "full n")
    return {"rows": rows, "preset": preset, "preset_values": dataclasses.asdict(p),
            "pattern": paper_table1.pattern_summary(rows)}


def job_ood(directory: str, seed: int, extra: tuple) -> dict:
    """ood_cifar10's benchmark (every detector) on one embeddings directory, scores dropped.

    ood_cifar10 skips the PyOD baselines when ``import pyod`` fails, but a PyOD that imports
    and then fails on its models (e.g. a numba that does not fit the numpy of the machine)
    would fail the whole suite: then PyOD is hidden from this process and the failure recorded.
    """
    pyod_error = None
    try:
        import pyod  # noqa: F401
    except ImportError as exc:
        pyod_error = repr(exc)  # ood_cifar10 skips the PyOD baselines itself
    else:
        try:
            for model in ("ecod", "iforest", "knn", "lof"):  # the baselines ood_cifar10 runs
                importlib.import_module(f"pyod.models.{model}")
        except Exception as exc:  # noqa: BLE001 - installed but broken
            pyod_error = repr(exc)
            for name in [m for m in sys.modules if m == "pyod" or m.startswith("pyod.")]:
                del sys.modules[name]
            sys.modules["pyod"] = None  # `import pyod` now raises ImportError
    parser = ood_cifar10.configure(argparse.ArgumentParser())
    args = parser.parse_args(["--embeddings", directory, "--seed", str(seed), "--no-plots",
                              *extra])
    results, _ = ood_cifar10.benchmark(args)
    results["pyod_unavailable"] = pyod_error
    return results


class _Inline:
    def __init__(self, fn, args) -> None:
        try:
            self._value, self._error = _timed(fn, *args), None
        except Exception as exc:  # noqa: BLE001 - re-raised by get(), as a pool would
            self._value, self._error = None, exc

    def ready(self) -> bool:
        return True

    def get(self, timeout=None):
        if self._error is not None:
            raise self._error
        return self._value


class Jobs:
    """Named jobs in ``workers`` spawned processes, or run inline when ``workers`` is 0."""

    def __init__(self, workers: int, log_path: Path) -> None:
        self.pool = None
        self.handles: dict[str, Any] = {}
        if workers > 0:
            threads = max(1, ((os.cpu_count() or 2) - 2) // workers)
            ctx = multiprocessing.get_context("spawn")  # never fork a process that holds CUDA
            self.pool = ctx.Pool(workers, initializer=_worker_init,
                                 initargs=(threads, str(log_path)))

    def submit(self, name: str, fn, *args) -> None:
        self.handles[name] = (_Inline(fn, args) if self.pool is None
                              else self.pool.apply_async(_timed, (fn, *args)))

    def get(self, name: str, timeout: float | None = None):
        return self.handles.pop(name).get(timeout)

    def ready(self) -> list[str]:
        return [k for k, h in self.handles.items() if h.ready()]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None


def collect(res: Results, jobs: Jobs, names, deadline: float | None) -> None:
    """Record finished evaluation jobs among ``names``; with a deadline, wait for the rest
    until then and mark what is left as cut."""
    pending = [n for n in names if n in jobs.handles]
    while pending:
        for name in [n for n in pending if n in jobs.ready()]:
            pending.remove(name)
            try:
                out = jobs.get(name)
            except Exception as exc:  # noqa: BLE001 - one evaluation failing is recorded
                log.error("%s failed: %r", name, exc)
                res.set(name, status="failed", error=repr(exc), finished_s=round(res.now(), 2))
                continue
            res.set(name, status="done", seconds=out["seconds"], finished_s=round(res.now(), 2),
                    result=out["value"])
            log.info("stage %s: done in %.1f s (worker %s)", name, out["seconds"], out["pid"])
        if deadline is None or not pending:
            return
        if res.now() >= deadline:
            for name in pending:
                res.set(name, status="cut", error="not finished within the budget",
                        finished_s=round(res.now(), 2))
                log.warning("stage %s: cut (not finished within the budget)", name)
            return
        time.sleep(0.2)


# --------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------
def source_digest(root: Path = ROOT) -> str:
    """SHA-256 over the library and benchmark sources (path and bytes, sorted): identifies
    the tree a run came from when the copy that ran it had no git metadata."""
    h = hashlib.sha256()
    files = sorted([*root.glob("src/infogauss/**/*.py"), *root.glob("benchmarks/*.py")])
    for p in files:
        h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stage_environment(cfg: RunConfig) -> tuple[dict, dict, Any]:
    import torch

    device = cfg.device
    if device == "cuda" and not torch.cuda.is_available():
        if not cfg.device_assumed:
            raise SystemExit("--device cuda, but torch sees no CUDA device")
        device = "cpu"
    dev = torch.device(device)
    info: dict[str, Any] = {"device": device, "torch": torch.__version__,
                            "cuda": torch.version.cuda, "gpu": None}
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        info.update(gpu=torch.cuda.get_device_name(dev), gpu_count=torch.cuda.device_count(),
                    gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    gpu_capability=list(torch.cuda.get_device_capability(dev)),
                    gpu_multiprocessors=props.multi_processor_count,
                    cudnn=torch.backends.cudnn.version())
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest convolutions
        torch.set_float32_matmul_precision("high")
    env = environment()
    info["commit"] = env["git"]["sha"] or cfg.commit
    info["commit_source"] = "git" if env["git"]["sha"] else ("--commit" if cfg.commit else None)
    info["dirty"] = env["git"]["dirty"]
    info["source_digest"] = source_digest()
    info["torch_threads"] = torch.get_num_threads()
    return info, env, dev


def stage_data(cfg: RunConfig, jobs: Jobs, rec: dict) -> dict:
    """CIFAR-10 train/test now; the TIN sets are left loading for the embedding stage."""
    data = Path(cfg.data)
    have = (data / CIFAR_ZIP).is_file() and (data / TIN_ZIP).is_file()
    if not have and not cfg.tiny:
        raise SystemExit(f"{data}: needs {CIFAR_ZIP} and {TIN_ZIP} (see "
                         "/work/shared/data/README.md); --tiny runs on random images instead")
    sets: dict[str, Any] = {}
    if have:
        specs = {"train": ("cifar10", str(data / CIFAR_ZIP), "train"),
                 "test": ("cifar10", str(data / CIFAR_ZIP), "test"),
                 "tin_resize": ("tin", str(data / TIN_ZIP), "resize"),
                 "tin_crop": ("tin", str(data / TIN_ZIP), "crop")}
        for name, spec in specs.items():
            jobs.submit(f"load_{name}", job_load, *spec)
        for name in ("train", "test"):  # a worker that died would otherwise hang the run
            out = jobs.get(f"load_{name}", timeout=max(1.0, cfg.budget_s - rec["started_s"]))
            sets[name] = out["value"]
            rec.setdefault("load_seconds", {})[name] = round(out["seconds"], 2)
        source = {"kind": "shared JPEG zips", "cifar10": str(data / CIFAR_ZIP),
                  "tinyimagenet": str(data / TIN_ZIP)}
    else:
        log.warning("no %s / %s in %s: --tiny trains and evaluates on RANDOM images",
                    CIFAR_ZIP, TIN_ZIP, data)
        rng = np.random.default_rng([cfg.seed, 22])

        def rand(n, labelled=True):
            x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
            y = (np.arange(n) % 10 if labelled else np.full(n, -1)).astype(np.int64)
            return x, y

        sets = {"train": rand(cfg.n_train), "test": rand(cfg.n_test),
                "tin_resize": rand(cfg.n_ood, False), "tin_crop": rand(cfg.n_ood, False)}
        source = {"kind": "random uint8 images (no data found)", "path": str(data)}
    for name in ("train", "test"):
        x, y = sets[name]
        n = cfg.n_train if name == "train" else cfg.n_test
        sets[name] = (x[:n], y[:n]) if n else (x, y)
    rec["result"] = {"source": source,
                     **{name: list(sets[name][0].shape) for name in ("train", "test")}}
    return sets


def tin_sets(cfg: RunConfig, jobs: Jobs, sets: dict) -> tuple[dict, dict]:
    """The two Tiny ImageNet OOD sets and their provenance, as embed_cifar10.py records it."""
    data = Path(cfg.data)
    images, meta = {}, {}
    for mode in ("resize", "crop"):
        name = f"tin_{mode}"
        if name not in sets:
            sets[name] = jobs.get(f"load_{name}")["value"]
        x = sets[name][0]
        images[name] = x[:cfg.n_ood] if cfg.n_ood else x
        meta[name] = {"path": str(data / TIN_ZIP),
                      "rule": "64->32 Pillow BOX" if mode == "resize"
                      else f"random 32x32 crop, seed {CROP_SEED}",
                      "jpeg_reencoded_quality": None}
    return images, meta


def _compile_in_place(torch, cfg: RunConfig, module, x_shape: tuple, dev) -> dict:
    """``module.compile()`` in place (state_dict keys unchanged), then one forward/backward
    at the training shape to pay the compilation before the timed stage starts. Parameters
    are untouched (no optimiser step); BatchNorm statistics are reset to their initial state
    and gradients dropped afterwards."""
    t = time.perf_counter()
    module.compile()
    x = torch.rand(x_shape, device=dev).contiguous(memory_format=torch.channels_last)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
        out = module(x)
    out.float().square().mean().backward()
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
    module.zero_grad(set_to_none=True)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return {"compile": True, "compile_seconds": time.perf_counter() - t}


def stage_train(kind: str, cfg: RunConfig, dev, x_dev, y: np.ndarray | None, budget_s: float,
                rec: dict) -> tuple[Any, Any]:
    """Train one encoder (InfoNCE or its cross-entropy twin) for ``budget_s`` seconds of wall
    time (compilation included); returns (encoder, classifier or None)."""
    import torch

    import infogauss.contrastive as ic
    from infogauss.contrastive.train import CHECKPOINT_NAME

    kw = {"widths": cfg.widths} if cfg.widths else {}
    encoder = ic.build_encoder(cfg.encoder, seed=cfg.seed, **kw)
    encoder.to(dev).to(memory_format=torch.channels_last)  # as the trainer will (compile sees it)
    side = cfg.crop_size or int(x_dev.shape[-1])
    on, why = compile_decision(cfg, budget_s)
    info: dict[str, Any] = {"compile": False, "compile_reason": why}
    t_stage = time.perf_counter()
    if on:
        target = encoder if kind == "contrastive" else encoder.backbone
        views = 2 * cfg.batch_size if kind == "contrastive" else cfg.batch_size
        try:
            info.update(_compile_in_place(torch, cfg, target, (views, 3, side, side), dev))
        except Exception as exc:  # noqa: BLE001 - train uncompiled rather than not at all
            log.warning("torch.compile failed (%r): training without it", exc)
            info.update(compile=False, compile_error=repr(exc))
            encoder = ic.build_encoder(cfg.encoder, seed=cfg.seed, **kw).to(dev)
            encoder.to(memory_format=torch.channels_last)
    remaining = max(1.0, budget_s - (time.perf_counter() - t_stage))
    ckpt_dir = Path(cfg.work) / "checkpoints" / kind
    (ckpt_dir / CHECKPOINT_NAME).unlink(missing_ok=True)  # never recover an earlier run's
    tc = ic.TrainConfig(
        epochs=100_000, batch_size=cfg.batch_size, optimizer="adam", lr=cfg.lr,
        weight_decay=cfg.weight_decay, warmup_epochs=cfg.warmup_epochs,
        temperature=cfg.temperature, augment=cfg.augment, crop_size=cfg.crop_size,
        precision=cfg.precision, channels_last=True, seed=cfg.seed, device=str(dev),
        checkpoint_dir=str(ckpt_dir), progress=cfg.progress, schedule="time",
        time_budget_s=remaining,
    )
    rec["train_config"] = tc.to_dict()
    log.info("%s: %s for %.0f s, batch %d, lr %.3g on %s", kind, cfg.encoder, remaining,
             cfg.batch_size, cfg.lr, dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t = time.perf_counter()
    classifier = None
    try:
        if kind == "contrastive":
            result = ic.train_contrastive(encoder, x_dev, tc)
        else:
            result = ic.train_supervised(encoder, x_dev, y, tc)
        encoder, classifier, history = result.model, result.classifier, result.history
        info["recovered_from_checkpoint"] = False
    except Exception as exc:  # noqa: BLE001 - the last epoch's checkpoint still gives results
        if not (ckpt_dir / CHECKPOINT_NAME).is_file():
            raise
        log.exception("%s training failed; evaluating its last checkpoint", kind)
        encoder, classifier, history = _from_checkpoint(ic, torch, ckpt_dir, kind)
        encoder.to(dev)
        classifier = classifier.to(dev) if classifier is not None else None
        info.update(recovered_from_checkpoint=True, error=repr(exc))
        rec["status_done"] = "recovered"
    train_s = time.perf_counter() - t
    full = [h for h in history if "partial_epoch" not in h]
    partial = sum(h.get("partial_epoch", 0.0) for h in history if "partial_epoch" in h)
    steady = [h["img_per_s"] for h in full[1:]] or [h["img_per_s"] for h in history]
    info.update(
        epochs_completed=len(full), epochs_reached=round(len(full) + partial, 3),
        train_seconds=train_s, time_budget_s=remaining,
        img_per_s=float(np.mean(steady)) if steady else None,
        final_loss=history[-1]["loss"] if history else None,
        # where a step's time went (host-side clocks: CUDA work shows where it synchronises)
        time_split={k: round(sum(h.get(k, 0.0) for h in history), 2)
                    for k in ("data_s", "aug_s", "compute_s", "seconds")},
        peak_gpu_memory_gib=(round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
                             if dev.type == "cuda" else None),
        history=history,
    )
    info["checkpoint"] = save_encoder(torch, cfg, kind, encoder, classifier, tc)
    rec["result"] = info
    return encoder, classifier


def _from_checkpoint(ic, torch, ckpt_dir: Path, kind: str):
    from infogauss.contrastive.train import CHECKPOINT_NAME

    ckpt = ic.load_checkpoint(ckpt_dir / CHECKPOINT_NAME)
    encoder = ic.load_encoder(ckpt_dir)
    classifier = None
    if kind == "supervised":
        state = {k[len("classifier."):]: v for k, v in ckpt["model"].items()
                 if k.startswith("classifier.")}
        classifier = torch.nn.Linear(encoder.backbone_dim, int(ckpt["n_classes"]))
        classifier.load_state_dict(state)
    return encoder, classifier, json.loads(ckpt["history"])


def save_encoder(torch, cfg: RunConfig, kind: str, encoder, classifier, tc) -> dict:
    """``<work>/<kind>.pt`` (state_dict) + ``.config.json``, the layout train_cifar10.py
    writes and ``load_encoder`` reads."""
    work = Path(cfg.work)
    work.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    if classifier is not None:
        state.update({f"classifier.{k}": v.detach().cpu()
                      for k, v in classifier.state_dict().items()})
    path = work / f"{kind}.pt"
    torch.save(state, path)
    write_json(work / f"{kind}.config.json", {
        "encoder": encoder.spec, "train_config": tc.to_dict(), "mode": kind,
        "n_classes": classifier.out_features if classifier is not None else None,
        "load": "build_encoder(**encoder).load_state_dict(state) (drop 'classifier.*' keys first)"})
    return {"path": str(path), "sha256": _sha256(path), "bytes": path.stat().st_size}


def stage_embed(kind: str, cfg: RunConfig, dev, sets: dict, ood: dict, ood_meta: dict,
                env: dict, classifier, rec: dict) -> list[str]:
    """Embed with the saved encoder (reloaded: an uncompiled copy), write the embedding
    directories as embed_cifar10.py does, and measure kNN (and the twin's test accuracy)."""
    import torch

    import infogauss.contrastive as ic

    path = Path(cfg.work) / f"{kind}.pt"
    enc = ic.load_encoder(path).to(dev)
    layers = ["backbone", "head"] if kind == "contrastive" else ["backbone"]
    (x_tr, y_tr), (x_te, y_te) = sets["train"], sets["test"]
    named = [("cifar10 train", x_tr), ("cifar10 test", x_te), *((f"ood {k}", v) for k, v in ood.items())]
    batch = 2048 if dev.type == "cuda" else 256
    metrics: dict[str, float] = {}
    dirs = []
    for layer in layers:
        t = time.perf_counter()
        emb = [ic.embed(enc, x, layer=layer, batch_size=batch, precision=cfg.precision,
                        progress=cfg.progress) for _, x in named]
        embed_s = time.perf_counter() - t
        out = Path(cfg.work) / "emb" / (kind if layer == "backbone" else f"{kind}_{layer}")
        write_embeddings(out, train=emb[0], train_labels=y_tr, test=emb[1], test_labels=y_te,
                         ood=dict(zip(ood, emb[2:])),
                         meta={"checkpoint": str(path), "layer": layer, "precision": cfg.precision,
                               "cifar10": str(Path(cfg.data) / CIFAR_ZIP), "ood": ood_meta,
                               "environment": env})
        t = time.perf_counter()
        metrics[f"knn_acc_k{KNN_K}_{layer}"] = ic.knn_accuracy(emb[0], y_tr, emb[1], y_te,
                                                               k=KNN_K, temperature=KNN_T)
        rec.setdefault("seconds_by_layer", {})[layer] = {"embed": embed_s,
                                                         "knn": time.perf_counter() - t}
        dirs.append(str(out))
        if layer == "backbone" and classifier is not None:
            with torch.inference_mode():
                w = classifier.weight
                logits = classifier(torch.from_numpy(emb[1]).to(device=w.device, dtype=w.dtype))
            metrics["test_accuracy"] = float((logits.argmax(1).cpu().numpy() == y_te).mean())
        log.info("%s %s: %s", kind, layer, {k: round(v, 4) for k, v in metrics.items()})
    rec["result"] = {"metrics": metrics, "directories": dirs,
                     "knn": {"k": KNN_K, "metric": "cosine", "weighting": f"exp(sim/{KNN_T})",
                             "train": f"{len(y_tr)} train", "test": f"{len(y_te)} test"},
                     "n": {name: int(x.shape[0]) for name, x in named}}
    return dirs


def submit_eval(cfg: RunConfig, jobs: Jobs, res: Results, which: str) -> list[str]:
    """Queue the evaluation jobs of ``EVAL_JOBS[which]`` (inline: run them now)."""
    names = []
    for stage, emb, kind in EVAL_JOBS[which]:
        directory = str(Path(cfg.work) / "emb" / emb)
        if not Path(directory).is_dir():
            res.set(stage, status="skipped", error=f"no embeddings at {directory}")
            continue
        if jobs.pool is None and res.now() >= cfg.budget_s:  # inline work past the budget
            res.set(stage, status="cut", error="the budget was spent before it could start")
            continue
        res.set(stage, status="queued" if jobs.pool is not None else "running",
                submitted_s=round(res.now(), 2), embeddings=directory)
        if kind == "table1":
            jobs.submit(stage, job_table1, directory, emb, cfg.table1_preset, cfg.seed)
        else:
            jobs.submit(stage, job_ood, directory, cfg.seed, cfg.ood_args)
        names.append(stage)
    collect(res, jobs, names, None)
    return names


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------
class _StopAfter(SystemExit):
    """--stop-after: leave as a run cut off right after that stage would (no final write)."""


def run(cfg: RunConfig) -> int:
    t0 = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    plan = make_plan(cfg)
    handler = logging.FileHandler(out / LOG_NAME, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    res = Results(out, {"benchmark": "gpu_paper_run", "issue": 22, "status": "running",
                        "config": cfg.to_dict(), "plan": plan, "paper": paper_table1.PAPER,
                        "stages": {}}, t0)
    res.save()
    log.info("plan:\n%s", format_plan(cfg, plan))
    planned = {r["stage"]: r for r in plan["stages"]}

    def stop(stage: str) -> None:
        if cfg.stop_after == stage:
            log.warning("--stop-after %s: exiting as a run cut off here would", stage)
            raise _StopAfter(3)

    def budget(stage: str) -> float:
        """The planned budget, less the time this stage starts late; InfoNCE training also
        gets the time the stages before it saved (the twin's savings go to the evaluation)."""
        p = planned[stage]
        late = res.now() - p["start_s"]
        if stage != "train_contrastive":
            late = max(0.0, late)
        return max(0.25 * p["seconds"], p["seconds"] - late)

    jobs = None
    old_term = (signal.signal(signal.SIGTERM, _on_sigterm)
                if threading.current_thread() is threading.main_thread() else None)
    try:
        with res.stage("environment", critical=True) as rec:
            rec["result"], env, dev = stage_environment(cfg)
        stop("environment")
        jobs = Jobs(cfg.eval_workers, out / LOG_NAME)
        with res.stage("data", critical=True) as rec:
            sets = stage_data(cfg, jobs, rec)
            import torch

            x_dev = torch.from_numpy(np.ascontiguousarray(sets["train"][0])).to(dev)
            rec["result"]["train_on"] = str(x_dev.device)
        stop("data")
        eval_names: list[str] = []
        encoders = {}
        for kind in ("contrastive", "supervised"):
            share = cfg.contrastive_share if kind == "contrastive" else cfg.supervised_share
            if share <= 0:
                for s in (f"train_{kind}", f"embed_{kind}"):
                    res.set(s, status="skipped", error="share 0")
                continue
            b = budget(f"train_{kind}")
            with res.stage(f"train_{kind}", planned_seconds=b) as rec:
                encoders[kind] = stage_train(kind, cfg, dev, x_dev, sets["train"][1], b, rec)
            collect(res, jobs, eval_names, None)
            stop(f"train_{kind}")
            if kind not in encoders:
                res.set(f"embed_{kind}", status="skipped", error="training failed")
                continue
            with res.stage(f"embed_{kind}") as rec:
                ood, ood_meta = tin_sets(cfg, jobs, sets)
                stage_embed(kind, cfg, dev, sets, ood, ood_meta, env, encoders[kind][1], rec)
            stop(f"embed_{kind}")
            if _ok(res.payload, f"embed_{kind}"):
                eval_names += submit_eval(cfg, jobs, res, kind)
        if _ok(res.payload, "embed_contrastive"):
            eval_names += submit_eval(cfg, jobs, res, "late")
        collect(res, jobs, eval_names, deadline=cfg.budget_s)
        statuses = [r.get("status") for r in res.payload["stages"].values()]
        res.payload["status"] = ("complete" if all(s in ("done",) for s in statuses)
                                 else "partial")
        res.payload["wall_seconds"] = res.now()
        res.save()
        log.info("done in %.0f s (%s); wrote %s, %s and %s", res.now(), res.payload["status"],
                 res.path, out / MD_NAME, out / LOG_NAME)
        print(json.dumps(_brief(res.payload["summary"]), indent=1))
        return 0
    except _StopAfter:
        raise  # as if killed: nothing more is written
    except BaseException as exc:  # a signal or a critical failure: say so in the file
        res.payload["status"] = ("interrupted" if isinstance(exc, (KeyboardInterrupt, SystemExit))
                                 else "failed")
        res.payload["error"] = repr(exc)
        res.payload["wall_seconds"] = res.now()
        res.save()
        raise
    finally:
        if jobs is not None:
            jobs.close()
        logging.getLogger().removeHandler(handler)
        handler.close()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def _on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the stage records (the trainer has its own)


def _brief(summary: dict) -> dict:
    """The few numbers printed at the end (the JSON and markdown hold the rest)."""
    return {k: summary.get(k) for k in ("gpu", "infonce", "cross_entropy")} | {
        "table1": [(r["label"], r["ours"]["cv"], r["ours"]["ad_pass"]) for r in summary["table1"]],
        "status": summary["status"], "wall_seconds": summary["wall_seconds"]}


# --------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------
def _f(v, fmt=".3f") -> str:
    return "–" if v is None else format(v, fmt)


def _p(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def render_markdown(payload: dict) -> str:
    """The summary of a results payload as markdown (regenerable with --render)."""
    s = payload.get("summary") or summarize(payload)
    cfg = payload.get("config", {})
    lines = [f"# Issue 22: ResNet-18 InfoNCE vs cross-entropy on CIFAR-10 "
             f"({'tiny, ' if cfg.get('tiny') else ''}status {payload.get('status')})", "",
             f"GPU {s.get('gpu') or 'none'} ({s.get('device')}), torch {s.get('torch')}, "
             f"CUDA {s.get('cuda')}, commit `{(s.get('commit') or 'unknown')[:12]}`; budget "
             f"{cfg.get('budget_s', 0):.0f} s, batch {cfg.get('batch_size')}, lr {cfg.get('lr')}.",
             ""]
    ie, ce = s.get("infonce") or {}, s.get("cross_entropy") or {}
    lines += ["| encoder | epochs reached | img/s | kNN k=200 backbone | kNN head | test acc |",
              "|---|---:|---:|---:|---:|---:|",
              f"| InfoNCE | {_f(ie.get('epochs_reached'), '.2f')} | {_f(ie.get('img_per_s'), ',.0f')} "
              f"| {_p(ie.get('knn_acc_k200_backbone'))} | {_p(ie.get('knn_acc_k200_head'))} | – |",
              f"| cross-entropy | {_f(ce.get('epochs_reached'), '.2f')} | "
              f"{_f(ce.get('img_per_s'), ',.0f')} | {_p(ce.get('knn_acc_k200_backbone'))} | – | "
              f"{_p(ce.get('test_accuracy'))} |", ""]
    lines += ["## Table 1, CIFAR-10 rows", "",
              "| row | n | paper CV | ours CV | paper AD pass | ours AD pass | AD n=100 | AD n=500 |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in s.get("table1", []):
        lines.append(f"| {r['label']} | {r.get('n') or '–'} | {_f(r['paper']['cv'], '.2f')} | "
                     f"{_f(r['ours']['cv'])} | {_p(r['paper']['ad_pass'])} | "
                     f"{_p(r['ours']['ad_pass'])} | {_p(r['ours']['ad_pass_n100'])} | "
                     f"{_p(r['ours']['ad_pass_n500'])} |")
    for emb, sets in (s.get("ood_auroc") or {}).items():
        names = list(sets)
        lines += ["", f"## OOD AUROC, {emb} embeddings (CIFAR-10 test vs each set)", "",
                  "| detector | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        dets = list(next(iter(sets.values()), {}))
        for d in dets:
            lines.append(f"| {d} | " + " | ".join(_p(sets[n].get(d)) for n in names) + " |")
    lines += ["", "## Stages", "", "| stage | status | seconds |", "|---|---|---:|"]
    for name, status in (s.get("status") or {}).items():
        lines.append(f"| {name} | {status} | {_f((s.get('wall_seconds') or {}).get(name), '.1f')} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.render:
        payload = json.loads(Path(args.render).read_text())
        md = Path(args.render).with_name(MD_NAME)
        md.write_text(render_markdown(payload), encoding="utf-8")
        print(f"wrote {md}")
        return 0
    cfg = make_config(args)
    if args.dry_run:
        print(format_plan(cfg, make_plan(cfg)))
        print("\n(dry run: nothing trained or written)")
        return 0
    missing = [z for z in (CIFAR_ZIP, TIN_ZIP) if not (Path(cfg.data) / z).is_file()]
    if missing and not cfg.tiny:
        print(f"error: --data {cfg.data} lacks {', '.join(missing)} (see "
              "/work/shared/data/README.md); --tiny runs on random images instead", file=sys.stderr)
        return 2
    setup_logging("gpu_paper_run")
    return run(cfg)


if __name__ == "__main__":
    sys.exit(main())
