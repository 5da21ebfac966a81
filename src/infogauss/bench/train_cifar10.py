r"""The real run: train an encoder on CIFAR-10 (shared JPEG zip) with InfoNCE — or its
cross-entropy twin with ``--supervised`` — for a wall-clock budget or a number of epochs, then
report kNN accuracy (k=200, cosine, similarity-weighted, train -> test) on backbone embeddings.

Writes ``train_cifar10_<name>.json`` in the results directory and, under
``benchmarks/checkpoints/``, the encoder's ``state_dict`` (``<name>.pt``: not in git, its SHA-256
is in the results file, ``checkpoint_sha256``), its config (``<name>.config.json``) and the
training log (``<name>.log.json``). The resumable training checkpoint (with optimizer state)
lives in ``runs/train_cifar10/<name>/``. Outside a source checkout (see :mod:`infogauss.bench`)
all of these go under ``./runs/benchmarks/`` (checkpoints in its ``checkpoints/``) and
``./runs/train_cifar10/``. Progress goes to stderr (a bar on a terminal, unless
``--no-progress``; one log line per epoch), with the path of every file written.

    infogauss bench train --minutes 55                                   # small_cnn_simclr
    infogauss bench train --minutes 60 --widths 48 96 192 --crop-size 24 \
        --name small_cnn_w48_simclr                                      # the reference run
    infogauss bench train --supervised --minutes 12 --widths 48 96 192 \
        --crop-size 24 --name small_cnn_w48_supervised                   # its cross-entropy twin

    infogauss bench train --minutes 60 --widths 48 96 192 --crop-size 16 20 24 \
        --name small_cnn_w48_prog_simclr                                 # progressive resizing
    infogauss bench train --minutes 60 --widths 48 96 192 --crop-size 16 16 20 24 \
        --knn-every 10 --name small_cnn_w48_prog4_simclr                 # best backbone kNN here
    infogauss bench train --supervised --minutes 12 --widths 48 96 192 \
        --crop-size 16 16 20 24 --name small_cnn_w48_prog4_supervised    # its cross-entropy twin

Add ``--resume`` to the same command to continue a killed run from ``runs/train_cifar10/<name>/``.

``--crop-size 24`` trains on 24 px random-resized crops (about 1.7x the images per second of
32 px) and evaluates on the full 32 px images; ``--crop-size 16 20 24`` trains on 16, then 20,
then 24 px crops, a third of the time budget each (progressive resizing: 66 epochs in 60 minutes
instead of 40 in the committed runs); see ``TrainConfig.crop_size``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from infogauss import _io
from infogauss.bench import checkout_root, results_dir, shared_data_dir
from infogauss.bench._env import setup_logging, show_progress
from infogauss.datasets import load_cifar10_zip

__all__ = ["parse_args", "main"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None,
                   help="CIFAR-10 JPEG zip [../shared/data/cifar10_jpeg.zip next to the checkout]")
    p.add_argument("--encoder", default="small_cnn",
                   help="an encoder of infogauss.contrastive.build_encoder [small_cnn]")
    p.add_argument("--widths", type=int, nargs=3, default=None, help="small_cnn stage widths")
    p.add_argument("--supervised", action="store_true", help="train the cross-entropy twin")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock budget of the training")
    p.add_argument("--epochs", type=int, default=None, help="fixed epochs (instead of --minutes)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-5)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--temperature", type=float, default=0.2)
    p.add_argument("--augment", default="simclr", choices=["simclr", "paper"])
    p.add_argument("--crop-size", type=int, nargs="+", default=None,
                   help="side of the training crops (default 32; smaller crops train faster, FixRes); "
                        "several sides: progressive resizing, an equal part of the schedule each")
    p.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--knn-every", type=int, default=5, help="kNN monitor every N epochs (subset)")
    p.add_argument("--name", default=None, help="checkpoint name (default from encoder/mode)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--train-subset", type=int, default=None, help="use the first N train images (smoke runs)")
    p.add_argument("--reg-beta", type=float, default=0.0,
                   help="route-2 regulariser strength beta (TrainConfig.reg_beta; 0 = off)")
    p.add_argument("--reg-lambda", type=float, default=1.0,
                   help="route-2 regulariser second-moment weight (TrainConfig.reg_lambda)")
    p.add_argument("--classes", type=int, nargs="+", default=None, metavar="C",
                   help="train (and evaluate kNN) on these CIFAR-10 classes only, e.g. 0 1 2 3 4 5 "
                   "for the leave-classes-out OOD set (the others are then near-OOD)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (none either when stderr is not a terminal)")
    return p.parse_args(argv)


def _sha256(path: Path) -> str:
    """SHA-256 of a file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main(argv=None) -> int:
    args = parse_args(argv)
    log = setup_logging("train_cifar10")
    import infogauss.contrastive as ic

    if args.encoder not in ic.ENCODERS:
        raise SystemExit(f"--encoder must be one of {list(ic.ENCODERS)}, got {args.encoder!r}")
    if args.data is None:
        args.data = str(shared_data_dir() / "cifar10_jpeg.zip")
    root = checkout_root()
    base = root if root is not None else Path.cwd()  # runs/ lives here
    ck = base / "benchmarks" / "checkpoints" if root is not None else results_dir() / "checkpoints"
    t0 = time.time()
    env = _io.environment()  # at the start: git state and the load average before training
    bar = show_progress(args.no_progress)
    log.info("loading CIFAR-10 from %s", args.data)
    tr = load_cifar10_zip(args.data, "train")
    te = load_cifar10_zip(args.data, "test")
    x_tr, y_tr = tr.images, tr.labels
    x_te, y_te = te.images, te.labels
    if args.classes:
        bad = sorted(set(args.classes) - set(range(10)))
        if bad:
            raise SystemExit(f"--classes must be CIFAR-10 classes 0-9, got {bad}")
        keep_tr, keep_te = np.isin(y_tr, args.classes), np.isin(y_te, args.classes)
        x_tr, y_tr, x_te, y_te = x_tr[keep_tr], y_tr[keep_tr], x_te[keep_te], y_te[keep_te]
    if args.train_subset:
        x_tr, y_tr = x_tr[:args.train_subset], y_tr[:args.train_subset]
    log.info("data: train %s test %s (%.1fs)", x_tr.shape, x_te.shape, time.time() - t0)

    mode = "supervised" if args.supervised else "simclr"
    name = args.name or f"{args.encoder}_{mode}"
    run_dir = base / "runs" / "train_cifar10" / name
    cfg = ic.TrainConfig(
        epochs=args.epochs or 1, batch_size=args.batch_size, optimizer=args.optimizer,
        lr=args.lr, weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
        temperature=args.temperature, augment=args.augment,
        crop_size=(args.crop_size[0] if args.crop_size and len(args.crop_size) == 1 else args.crop_size),
        precision=args.precision, reg_beta=args.reg_beta, reg_lambda=args.reg_lambda,
        seed=args.seed, checkpoint_dir=str(run_dir), resume=args.resume,
        progress=bar, knn_every=args.knn_every,
    )
    if args.epochs is None:
        if args.minutes is None:
            raise SystemExit("give --minutes or --epochs")
        # cosine over the wall-clock budget: the learning rate reaches zero when the time is
        # up however fast this (shared) machine runs; epochs is only an upper bound
        cfg.schedule = "time"
        cfg.time_budget_s = 60.0 * args.minutes
        cfg.epochs = 1000
    # kNN monitor on a fixed subset (fast); the final number uses all of train and test
    knn_sub = (x_tr[:10000], y_tr[:10000], x_te[:2000], y_te[:2000])
    encoder = ic.build_encoder(args.encoder, seed=args.seed,
                               **({"widths": tuple(args.widths)} if args.widths else {}))
    t_train = time.time()
    log.info("training %s (%s, %s) for %s", name, args.encoder, mode,
             f"{args.epochs} epochs" if args.epochs else f"{args.minutes:g} minutes")
    if args.supervised:
        res = ic.train_supervised(encoder, x_tr, y_tr, cfg, knn_data=knn_sub)
    else:
        res = ic.train_contrastive(encoder, x_tr, cfg, knn_data=knn_sub)
    train_s = time.time() - t_train
    enc = res.model
    log.info("trained %d epochs in %.0f s; kNN evaluation on all train -> all test images",
             res.epochs_completed, train_s)
    t_eval = time.time()
    kw = {"batch_size": 1024, "precision": args.precision, "progress": bar}
    z_tr = ic.embed(enc, x_tr, layer="backbone", **kw)
    z_te = ic.embed(enc, x_te, layer="backbone", **kw)
    knn = ic.knn_accuracy(z_tr, y_tr, z_te, y_te, k=200, temperature=0.1)
    metrics = {"knn_acc_backbone": knn}
    if enc.head is not None and not args.supervised:
        h_tr = ic.embed(enc, x_tr, layer="head", **kw)
        h_te = ic.embed(enc, x_te, layer="head", **kw)
        metrics["knn_acc_head"] = ic.knn_accuracy(h_tr, y_tr, h_te, y_te, k=200, temperature=0.1)
    if args.supervised:
        import torch

        with torch.inference_mode():
            logits = res.classifier(torch.from_numpy(z_te))
        metrics["test_accuracy"] = float((logits.argmax(1).numpy() == y_te).mean())
    eval_s = time.time() - t_eval
    log.info("kNN accuracy (k=200, cosine, backbone): %.4f", knn)

    import torch

    ck.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in enc.state_dict().items()}
    if args.supervised:
        state.update({f"classifier.{k}": v.detach().cpu() for k, v in res.classifier.state_dict().items()})
    _io.atomic_write(ck / f"{name}.pt", lambda fh: torch.save(state, fh))
    written = [ck / f"{name}.pt"]
    written.append(_io.write_json(ck / f"{name}.config.json", {
        "encoder": enc.spec, "train_config": cfg.to_dict(), "mode": mode,
        "n_classes": 10 if args.supervised else None,
        "load": "build_encoder(**encoder).load_state_dict(state) (drop 'classifier.*' keys first)"}))
    written.append(_io.write_json(ck / f"{name}.log.json", {"history": res.history}))
    result = {
        "benchmark": "train_cifar10", "name": name, "mode": mode, "encoder": args.encoder,
        "encoder_spec": enc.spec,
        "n_params_backbone": sum(p.numel() for p in enc.backbone.parameters()),
        "n_params_total": sum(p.numel() for p in enc.parameters()),
        "data": str(Path(args.data).name), "n_train": int(len(x_tr)), "n_test": int(len(x_te)),
        "classes": args.classes,
        "config": cfg.to_dict(), "seed": args.seed, "budget_minutes": args.minutes,
        "mean_img_per_s": sum(h["img_per_s"] for h in res.history) / max(1, len(res.history)),
        "epochs_completed": res.epochs_completed, "stopped_early": res.stopped_early,
        "train_seconds": train_s, "eval_seconds": eval_s, "metrics": metrics,
        # train_seconds is this process's share; a resumed run continues the checkpoint's clock
        "resumed_after_epoch": res.resumed_after_epoch,
        "knn": {"k": 200, "metric": "cosine", "weighting": "exp(sim/0.1)", "layer": "backbone",
                "train": "all train", "test": "all test"},
        "history": res.history, "checkpoint": str((ck / f"{name}.pt").relative_to(base)),
        "checkpoint_sha256": _sha256(ck / f"{name}.pt"),
        "environment": env, "load_avg_at_end": list(os.getloadavg()),
    }
    out = _io.write_results(results_dir() / f"train_cifar10_{name}.json", result)
    for path in (*written, out):
        log.info("wrote %s", path)
    log.info("done in %.0f s: %s, %d epochs, %s", time.time() - t0, name, res.epochs_completed,
             ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    print(json.dumps({"metrics": metrics, "epochs": res.epochs_completed, "out": str(out)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
