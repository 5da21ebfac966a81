"""Training throughput: img/s of an InfoNCE step per encoder, fp32 vs bf16 autocast, with and
without channels_last, at batch 256; and the share of the step spent in augmentation and in
data loading (indexing the uint8 array and moving the batch).

Runs the public training loop (``train_contrastive``) on random uint8 images for a few steps
per setting and reads its per-epoch timings (the second epoch, after warm-up).

    infogauss bench throughput                            # small_cnn and resnet18
    infogauss bench throughput --encoders small_cnn --steps 10

Writes ``train_throughput.json`` in the results directory (``--out``; see
:mod:`infogauss.bench`). Do not run it next to another
CPU-heavy job: the numbers would be meaningless. Progress goes to stderr: one line per
setting, the file written and a summary.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from infogauss import _io
from infogauss.bench import output_path
from infogauss.bench._env import setup_logging

__all__ = ["measure", "main"]

log = logging.getLogger("benchmarks.train_throughput")

# steps per measured epoch; resnet18 is ~20x slower per image on a CPU
_DEFAULT_STEPS = {"small_cnn": 8, "resnet18": 2, "mlp": 20, "linear": 20}


def measure(encoder: str, precision: str, channels_last: bool, batch: int, steps: int,
            seed: int) -> dict:
    import infogauss.contrastive as ic

    rng = np.random.default_rng(seed)
    n = batch * steps
    if encoder in ("small_cnn", "resnet18"):
        x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        enc = ic.build_encoder(encoder, seed=seed)
        augment = "simclr"
    else:
        x = rng.standard_normal((n, 1024)).astype(np.float32)
        enc = ic.build_encoder(encoder, in_features=1024, seed=seed)
        augment = "synthetic"
    cfg = ic.TrainConfig(epochs=2, batch_size=batch, precision=precision,
                         channels_last=channels_last, augment=augment, seed=seed, progress=False)
    t = time.perf_counter()
    res = ic.train_contrastive(enc, x, cfg)
    h = res.history[-1]  # second epoch: warm caches and oneDNN primitives
    return {
        "encoder": encoder, "precision": precision, "channels_last": channels_last,
        "batch_size": batch, "steps": steps, "img_per_s": h["img_per_s"],
        "step_ms": 1000 * h["seconds"] / steps,
        "aug_share": h["aug_s"] / h["seconds"], "data_share": h["data_s"] / h["seconds"],
        "compute_share": h["compute_s"] / h["seconds"], "wall_s": time.perf_counter() - t,
        "n_params": sum(p.numel() for p in enc.parameters()),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoders", nargs="+", default=["small_cnn", "resnet18"],
                   choices=list(_DEFAULT_STEPS), help="encoders to measure [small_cnn resnet18]")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=None, help="steps per measured epoch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None,
                   help="JSON output path [train_throughput.json in the results directory]")
    args = p.parse_args(argv)
    # the trainer's epoch lines would double this script's one line per setting
    setup_logging("train_throughput", library=False)
    t_start = time.perf_counter()
    out = output_path(args.out, "train_throughput.json")
    env = _io.environment()  # at the start: the commit and the load before the run
    jobs = []
    for enc in args.encoders:
        image = enc in ("small_cnn", "resnet18")
        settings = [("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True)] if image \
            else [("fp32", False), ("bf16", False)]
        jobs += [(enc, precision, cl) for precision, cl in settings]
    rows = []
    for i, (enc, precision, cl) in enumerate(jobs, 1):
        steps = args.steps or _DEFAULT_STEPS[enc]
        log.info("[%d/%d] %s %s channels_last=%s: 2 epochs of %d steps", i, len(jobs), enc,
                 precision, cl, steps)
        r = measure(enc, precision, cl, args.batch_size, steps, args.seed)
        rows.append(r)
        log.info("[%d/%d] %.0f img/s (augmentation %.1f%%, data %.2f%%) in %.0f s", i, len(jobs),
                 r["img_per_s"], 100 * r["aug_share"], 100 * r["data_share"], r["wall_s"])
    out = _io.write_results(out, {
        "benchmark": "train_throughput",
        "description": "InfoNCE training step (2 views, SimCLR augmentation for images), img/s = "
                       "source images per second; shares of the step in augmentation and data "
                       "loading; second of two epochs",
        "config": {**vars(args), "out": str(out)}, "seed": args.seed, "results": rows,
        "environment": env,
    })
    log.info("wrote %s", out)
    log.info("done in %.0f s: %s", time.perf_counter() - t_start,
             "; ".join(f"{r['encoder']} {r['precision']}{' CL' if r['channels_last'] else ''} "
                       f"{r['img_per_s']:.0f} img/s" for r in rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
