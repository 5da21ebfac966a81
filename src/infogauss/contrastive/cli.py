"""``infogauss train`` and ``infogauss embed`` (imported lazily by :mod:`infogauss.cli`).

Flags or a TOML file (``--config run.toml``; keys are the flag names with ``_`` or ``-``, an
explicit flag wins). ``train`` writes into ``--out``: ``last.pt`` (resumable checkpoint),
``encoder.pt`` (the encoder's state_dict), ``config.json``, ``log.json`` and, with
``--embed``, ``embeddings.npy`` (+ ``labels.npy``). ``embed`` reads a run directory or a
checkpoint and writes ``embeddings.npy``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from .. import _io

log = logging.getLogger(__name__)

_TRAIN_DEFAULTS = {
    "data": None, "format": "auto", "split": "train", "encoder": "small_cnn",
    "supervised": False, "epochs": 10, "minutes": None, "batch_size": 256, "optimizer": "adam",
    "lr": 1e-3, "weight_decay": 1e-5, "warmup_epochs": 1.0, "temperature": 0.2,
    "augment": None, "precision": "bf16", "seed": 0, "out": "runs/train", "resume": False,
    "no_progress": False, "embed": False, "head": True, "projection_dim": 128,
    "hidden_dim": 512, "out_dim": None, "reg_beta": 0.0, "reg_lambda": 1.0, "device": None,
    "widths": None, "crop_size": None,
}
_EMBED_DEFAULTS = {
    "checkpoint": None, "data": None, "format": "auto", "split": "test", "layer": "backbone",
    "batch_size": 512, "output": "embeddings.npy", "precision": "fp32", "device": None,
    "no_progress": False,
}


def _load_toml(path: str) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError as exc:
            raise ImportError("reading a TOML config on Python 3.10 needs tomli: pip install tomli") from exc
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"`--config` must be an existing TOML file, got {path!r}")
    with open(p, "rb") as f:
        d = tomllib.load(f)
    return {k.replace("-", "_"): v for k, v in d.items()}


def _merge(args: argparse.Namespace, defaults: dict) -> dict:
    """defaults < TOML < explicit flags; unknown TOML keys are refused."""
    toml = _load_toml(args.config) if getattr(args, "config", None) else {}
    unknown = sorted(set(toml) - set(defaults))
    if unknown:
        raise ValueError(f"`--config` has unknown keys {unknown}; known: {sorted(defaults)}")
    out = dict(defaults)
    out.update(toml)
    for k in defaults:
        v = getattr(args, k, None)
        if v is not None:
            out[k] = v
    return out


def _add(parser, name: str, **kw) -> None:
    parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None, **kw)


def configure_train(parser: argparse.ArgumentParser) -> None:
    """Flags of ``infogauss train``."""
    parser.add_argument("--config", default=None, help="TOML file with any of these options")
    _add(parser, "data", help="dataset: CIFAR zip, image folder/zip, cifar-10-batches-py dir, "
                              "SVHN dir, .npz/.npy")
    _add(parser, "format", choices=["auto", "cifar10", "cifar10-zip", "svhn", "folder", "arrays"])
    _add(parser, "split", help="train|test (CIFAR/SVHN)")
    _add(parser, "encoder", choices=["linear", "mlp", "small_cnn", "resnet18"])
    _add(parser, "supervised", action="store_const", const=True,
         help="train the cross-entropy twin instead of InfoNCE")
    _add(parser, "epochs", type=int)
    _add(parser, "minutes", type=float, help="wall-clock budget (cosine over time)")
    _add(parser, "batch_size", type=int)
    _add(parser, "optimizer", choices=["adam", "sgd"])
    _add(parser, "lr", type=float)
    _add(parser, "weight_decay", type=float)
    _add(parser, "warmup_epochs", type=float)
    _add(parser, "temperature", type=float)
    _add(parser, "augment", choices=["simclr", "paper", "synthetic", "bitflip", "none"])
    _add(parser, "crop_size", type=int, nargs="+",
         help="side of the training crops (images; default the input's, e.g. 24 for 32 px data); "
              "several sides train on each for an equal part of the schedule (progressive "
              "resizing, e.g. 16 20 24)")
    _add(parser, "widths", type=int, nargs=3, help="small_cnn stage widths (default 32 64 128)")
    _add(parser, "precision", choices=["bf16", "fp32"])
    _add(parser, "seed", type=int)
    _add(parser, "out", help="output directory (checkpoint, config, log, embeddings)")
    _add(parser, "resume", action="store_const", const=True)
    _add(parser, "no_progress", action="store_const", const=True)
    _add(parser, "embed", action="store_const", const=True,
         help="also write embeddings.npy of the training data")
    _add(parser, "projection_dim", type=int)
    _add(parser, "hidden_dim", type=int)
    _add(parser, "out_dim", type=int)
    _add(parser, "reg_beta", type=float)
    _add(parser, "reg_lambda", type=float)
    _add(parser, "device")


def configure_embed(parser: argparse.ArgumentParser) -> None:
    """Flags of ``infogauss embed``."""
    parser.add_argument("--config", default=None, help="TOML file with any of these options")
    _add(parser, "checkpoint", help="run directory of `infogauss train`, its last.pt, or a "
                                    "state_dict .pt next to <name>.config.json")
    _add(parser, "data")
    _add(parser, "format", choices=["auto", "cifar10", "cifar10-zip", "svhn", "folder", "arrays"])
    _add(parser, "split")
    _add(parser, "layer", choices=["backbone", "head"])
    _add(parser, "batch_size", type=int)
    _add(parser, "output")
    _add(parser, "precision", choices=["bf16", "fp32"])
    _add(parser, "device")
    _add(parser, "no_progress", action="store_const", const=True)


def read_data(path, fmt: str = "auto", split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """(x, labels) from any supported dataset path; x is uint8 images or float vectors."""
    import zipfile

    from .. import datasets as ds

    if path is None:
        raise ValueError("`data` must be given (a dataset path), got None")
    p = Path(path)
    if not p.exists():
        raise ValueError(f"`data` must be an existing file or directory, got {str(p)!r}")
    if fmt == "auto":
        if p.suffix in (".npz", ".npy"):
            fmt = "arrays"
        elif p.is_dir() and ((p / "batches.meta").exists() or (p / "cifar-10-batches-py").exists()):
            fmt = "cifar10"
        elif p.is_dir() and any(p.glob("*_32x32.mat")):
            fmt = "svhn"
        elif p.is_file() and zipfile.is_zipfile(p) and any(
                n.startswith(f"{split}/airplane/") for n in zipfile.ZipFile(p).namelist()[:50000]):
            fmt = "cifar10-zip"
        else:
            fmt = "folder"
    if fmt == "arrays":
        if p.suffix == ".npy":
            x = np.load(p, allow_pickle=False)
            if x.dtype != np.uint8:
                return np.ascontiguousarray(x, dtype=np.float32), np.full(len(x), -1, np.int64)
        d = ds.load_arrays(p)
    elif fmt == "cifar10":
        d = ds.load_cifar10(p, split)
    elif fmt == "cifar10-zip":
        d = ds.load_cifar10_zip(p, split)
    elif fmt == "svhn":
        d = ds.load_svhn(p, split)
    elif fmt == "folder":
        d = ds.load_image_folder(p)
    else:
        raise ValueError(f"`format` must be auto|cifar10|cifar10-zip|svhn|folder|arrays, got {fmt!r}")
    return d.images, d.labels


def _json_default(o):
    try:
        return _io.json_default(o)
    except TypeError:
        return str(o)


def _write_json(path: Path, obj, inputs) -> None:
    _io.write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n", inputs=inputs)


def _refuse_overwriting_inputs(outputs, inputs, name: str) -> None:
    """Fail before any work when a file this command writes is one that it reads."""
    for out in outputs:
        for src in inputs:
            if src is not None and Path(src).exists() and _io.same_file(out, src):
                raise ValueError(
                    f"`{name}` must not hold the input files: {str(out)!r} would be "
                    f"overwritten, but it is read as {str(src)!r}; choose another `{name}`"
                )


def run_train(args: argparse.Namespace) -> int:
    """Run ``infogauss train``; returns the exit status."""
    from . import build_encoder, embed, train_contrastive, train_supervised
    from ._torch import torch
    from .train import CHECKPOINT_NAME, TrainConfig

    o = _merge(args, _TRAIN_DEFAULTS)
    out = Path(o["out"])
    inputs = [o["data"], getattr(args, "config", None)]
    names = [CHECKPOINT_NAME, "encoder.pt", "config.json", "log.json", "embeddings.npy",
             "labels.npy"]  # fmt: skip
    if out.exists() and not out.is_dir():
        raise ValueError(f"`--out` must be a directory, got the file {str(out)!r}")
    _refuse_overwriting_inputs([out / n for n in names], inputs, "--out")
    if o["data"] is not None and Path(o["data"]).is_dir() and out.exists():
        if _io.same_file(out, o["data"]):
            raise ValueError("`--out` must not be the `--data` directory; choose another `--out`")
    x, y = read_data(o["data"], o["format"], o["split"])
    image = x.ndim == 4
    augment = o["augment"] or ("simclr" if image else "synthetic")
    kw = {"head": bool(o["head"]), "projection_dim": int(o["projection_dim"]), "seed": int(o["seed"])}
    if o["encoder"] in ("linear", "mlp"):
        kw.update(in_features=int(np.prod(x.shape[1:])), out_dim=o["out_dim"])
        if o["encoder"] == "mlp":
            kw["hidden_dim"] = int(o["hidden_dim"])
    if o["widths"] is not None:
        kw["widths"] = tuple(o["widths"])
    encoder = build_encoder(o["encoder"], **kw)
    out.mkdir(parents=True, exist_ok=True)
    crop = o["crop_size"]
    if isinstance(crop, (list, tuple)) and len(crop) == 1:
        crop = crop[0]  # one side from the flag's list form
    cfg = TrainConfig(
        epochs=int(o["epochs"]), batch_size=int(o["batch_size"]), optimizer=o["optimizer"],
        lr=float(o["lr"]), weight_decay=float(o["weight_decay"]),
        warmup_epochs=float(o["warmup_epochs"]), temperature=float(o["temperature"]),
        augment=augment, crop_size=crop, precision=o["precision"], seed=int(o["seed"]),
        reg_beta=float(o["reg_beta"]), reg_lambda=float(o["reg_lambda"]),
        checkpoint_dir=str(out), resume=bool(o["resume"]), progress=not o["no_progress"],
        device=o["device"],
    )
    if o["minutes"]:
        cfg.schedule, cfg.time_budget_s = "time", 60.0 * float(o["minutes"])
        cfg.epochs = max(cfg.epochs, 1000)
    if o["supervised"]:
        if y.min() < 0:
            raise ValueError("`--supervised` needs labelled data, got unlabelled `data`")
        res = train_supervised(encoder, x, y, cfg)
    else:
        res = train_contrastive(encoder, x, cfg)
    state = {k: v.detach().cpu() for k, v in res.model.state_dict().items()}
    _io.atomic_write(out / "encoder.pt", lambda fh: torch.save(state, fh), inputs=inputs)
    _write_json(out / "config.json", {"encoder": encoder.spec, "train_config": cfg.to_dict(),
                                      "mode": "supervised" if o["supervised"] else "contrastive",
                                      "options": o}, inputs)
    _write_json(out / "log.json", {"history": res.history}, inputs)
    if o["embed"]:
        z = embed(res.model, x, layer="backbone", precision=o["precision"])
        _io.save_npy(out / "embeddings.npy", z, inputs=inputs)
        _io.save_npy(out / "labels.npy", y, inputs=inputs)
    print(json.dumps({"out": str(out), "epochs": res.epochs_completed,
                      "final_loss": res.history[-1]["loss"] if res.history else None}))
    return 0


def load_encoder(checkpoint):
    """Rebuild an :class:`Encoder` from a run directory, a training ``last.pt`` or a state_dict
    ``.pt`` with its ``config.json`` / ``<name>.config.json`` alongside."""
    from ._torch import torch
    from .encoders import build_encoder
    from .train import CHECKPOINT_NAME, load_checkpoint

    p = Path(checkpoint)
    if p.is_dir():
        p = p / CHECKPOINT_NAME if (p / CHECKPOINT_NAME).exists() else p / "encoder.pt"
    if not p.is_file():
        raise ValueError(f"`checkpoint` must be a run directory or a .pt file, got {str(checkpoint)!r}")
    try:
        ckpt = load_checkpoint(p)
        spec, state = json.loads(ckpt["encoder_spec"]), ckpt["model"]
        if ckpt.get("task") == "supervised":
            state = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    except ValueError:
        cfg_path = next((c for c in (p.with_name(p.stem + ".config.json"), p.parent / "config.json")
                         if c.is_file()), None)
        if cfg_path is None:
            raise ValueError(f"`checkpoint` {str(p)!r} is neither a training checkpoint nor a "
                             "state_dict with a config.json next to it") from None
        spec = json.loads(cfg_path.read_text())["encoder"]
        state = torch.load(p, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    if not spec:
        raise ValueError(f"`checkpoint` {str(p)!r} does not record how to build its encoder")
    spec = dict(spec)
    name = spec.pop("name")
    enc = build_encoder(name, **spec)
    try:
        enc.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"`checkpoint` {str(p)!r} does not match its encoder spec: {exc}") from exc
    return enc


def run_embed(args: argparse.Namespace) -> int:
    """Run ``infogauss embed``; returns the exit status."""
    from .embed import embed

    o = _merge(args, _EMBED_DEFAULTS)
    if o["checkpoint"] is None:
        raise ValueError("`--checkpoint` must be given, got None")
    out = Path(o["output"])
    labels_out = out.with_name(out.stem + ".labels.npy")
    inputs = [o["data"], getattr(args, "config", None)]
    ckpt = Path(o["checkpoint"])
    inputs += [ckpt, *(ckpt.glob("*") if ckpt.is_dir() else [])]
    inputs += [ckpt.with_name(ckpt.stem + ".config.json"), ckpt.parent / "config.json"]
    for path in (out, labels_out):
        _io.check_output(path, name="--output", inputs=inputs, make_parents=True)
    enc = load_encoder(o["checkpoint"])
    x, y = read_data(o["data"], o["format"], o["split"])
    z = embed(enc, x, layer=o["layer"], batch_size=int(o["batch_size"]), device=o["device"],
              precision=o["precision"], progress=not o["no_progress"])
    _io.save_npy(out, z, name="--output", inputs=inputs)
    _io.save_npy(labels_out, y, name="--output", inputs=inputs)
    print(json.dumps({"output": str(out), "shape": list(z.shape)}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    from infogauss.cli import main

    sys.exit(main(["train", *sys.argv[1:]]))
