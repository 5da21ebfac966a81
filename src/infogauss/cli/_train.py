"""``infogauss train`` and ``infogauss embed`` (torch: the ``train`` extra).

Flags or a TOML file (``--config run.toml``; keys are the flag names with ``_`` or ``-``, an
explicit flag wins). Inputs are checked before torch is imported, so bad input is exit 2 even
without it.

``train --out RUN_DIR`` writes ``last.pt`` (resumable checkpoint), ``encoder.pt`` (the
encoder's state_dict), ``config.json`` and ``log.json`` and, with ``--embed``, the embedding
set ``embeddings.npy`` + ``embeddings.labels.npy`` of the training data.

``embed --checkpoint RUN --data D --out Z.npy`` writes the embeddings ``Z.npy`` (float32,
(n, d)) + ``Z.labels.npy`` (int64, (n,), -1 for unlabelled data). ``--output`` is a deprecated
alias of ``--out`` (also as a TOML key). ``embed ... --set DIR --part train|test|ood:NAME``
writes them instead as one part of the embedding-set directory DIR
(:mod:`infogauss.datasets.embeddings`: ``<prefix>_train.npy`` + ``_train_labels.npy``, ...,
``ood_<name>.npy``, ``meta.json``), what the benchmarks read; ``--part`` defaults to the
``--split`` read (``train`` or ``test``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from ..datasets.read import DATASET_FORMATS
from ._common import check_out, emit

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
    "batch_size": 512, "out": "embeddings.npy", "precision": "fp32", "device": None,
    "no_progress": False, "set": None, "part": None, "prefix": None,
}
_DEPRECATED_KEYS = {"embed": {"output": "out"}, "train": {}}
_FORMATS = list(DATASET_FORMATS)


def labels_path(embeddings: str | Path) -> Path:
    """The labels file of an embedding set: ``Z.npy`` -> ``Z.labels.npy``."""
    p = Path(embeddings)
    return p.with_name((p.stem if p.suffix == ".npy" else p.name) + ".labels.npy")


def _warn_deprecated(command: str, old: str, new: str) -> None:
    # argparse's own wording for deprecated options (Python 3.13), one line on stderr
    sys.stderr.write(f"infogauss {command}: warning: `{old}` is deprecated; use `{new}`\n")


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
        try:
            d = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"`--config` {path!r} is not valid TOML: {exc}") from None
    return {k.replace("-", "_"): v for k, v in d.items()}


def _merge(args: argparse.Namespace, defaults: dict) -> dict:
    """defaults < TOML < explicit flags; unknown TOML keys are refused."""
    command = args._command
    toml = _load_toml(args.config) if getattr(args, "config", None) else {}
    for old, new in _DEPRECATED_KEYS[command].items():
        if old in toml:
            _warn_deprecated(command, f"{old} (--config key)", new)
            if new in toml:
                raise ValueError(f"`--config` has both `{old}` and `{new}`; keep `{new}`")
            toml[new] = toml.pop(old)
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
    _add(parser, "format", choices=_FORMATS)
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
    _add(parser, "out", metavar="RUN_DIR",
         help="run directory: last.pt, encoder.pt, config.json, log.json (and, with --embed, "
              "embeddings.npy + embeddings.labels.npy) [runs/train]")
    _add(parser, "resume", action="store_const", const=True)
    _add(parser, "embed", action="store_const", const=True,
         help="also write the embedding set of the training data into --out")
    _add(parser, "projection_dim", type=int)
    _add(parser, "hidden_dim", type=int)
    _add(parser, "out_dim", type=int)
    _add(parser, "reg_beta", type=float)
    _add(parser, "reg_lambda", type=float)
    _add(parser, "device")


class _DeprecatedOut(argparse.Action):
    """``--output`` of ``embed``: stores into ``out`` and warns."""

    def __call__(self, parser, namespace, values, option_string=None):
        _warn_deprecated("embed", option_string, "--out")
        namespace.output = values


def configure_embed(parser: argparse.ArgumentParser) -> None:
    """Flags of ``infogauss embed``."""
    parser.add_argument("--config", default=None, help="TOML file with any of these options")
    _add(parser, "checkpoint", help="run directory of `infogauss train`, its last.pt, or a "
                                    "state_dict .pt next to <name>.config.json")
    _add(parser, "data")
    _add(parser, "format", choices=_FORMATS)
    _add(parser, "split")
    _add(parser, "layer", choices=["backbone", "head"])
    _add(parser, "batch_size", type=int)
    _add(parser, "out", metavar="Z.npy",
         help="embeddings to write; the labels go to Z.labels.npy [embeddings.npy]")
    parser.add_argument("--output", action=_DeprecatedOut, default=None,
                        help="deprecated alias of --out")
    _add(parser, "set", metavar="DIR",
         help="write into this embedding-set directory (the benchmarks' layout) instead of --out")
    _add(parser, "part", metavar="PART",
         help="with --set: train | test | ood:NAME [the --split read, train or test]")
    _add(parser, "prefix",
         help="with --set: the in-distribution file prefix [the set's, else cifar10]")
    _add(parser, "precision", choices=["bf16", "fp32"])
    _add(parser, "device")


def run_train(args: argparse.Namespace) -> int:
    """Run ``infogauss train``; returns the exit status."""
    from .. import _io
    from ..datasets import read_dataset

    o = _merge(args, _TRAIN_DEFAULTS)
    out = Path(o["out"])
    inputs = [o["data"], getattr(args, "config", None)]
    names = {"checkpoint": "last.pt", "encoder": "encoder.pt", "config": "config.json",
             "log": "log.json"}  # fmt: skip
    if o["embed"]:
        names.update(embeddings="embeddings.npy", labels=labels_path("embeddings.npy").name)
    if out.exists() and not out.is_dir():
        raise ValueError(f"`--out` must be a directory, got the file {str(out)!r}")
    if o["data"] is not None and Path(o["data"]).is_dir() and out.exists():
        if _io.same_file(out, o["data"]):
            raise ValueError("`--out` must not be the `--data` directory; choose another `--out`")
    if out.is_dir():  # a directory yet to be made holds no input
        for name in names.values():
            _io.check_output(out / name, name="--out", inputs=inputs)
    x, y = read_dataset(o["data"], o["format"], o["split"], name="--data")
    if o["supervised"] and (y.size == 0 or y.min() < 0):
        raise ValueError("`--supervised` needs labelled data, got unlabelled `--data`")

    from ..contrastive import build_encoder, embed, train_contrastive, train_supervised
    from ..contrastive._torch import torch
    from ..contrastive.train import TrainConfig

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
        res = train_supervised(encoder, x, y, cfg)
    else:
        res = train_contrastive(encoder, x, cfg)
    state = {k: v.detach().cpu() for k, v in res.model.state_dict().items()}
    _io.atomic_write(out / names["encoder"], lambda fh: torch.save(state, fh), name="--out",
                     inputs=inputs)
    _write_json(out / names["config"], {"encoder": encoder.spec, "train_config": cfg.to_dict(),
                                        "mode": "supervised" if o["supervised"] else "contrastive",
                                        "options": o}, inputs)
    _write_json(out / names["log"], {"history": res.history}, inputs)
    if o["embed"]:
        z = embed(res.model, x, layer="backbone", precision=o["precision"])
        _io.save_npy(out / names["embeddings"], z, name="--out", inputs=inputs)
        _io.save_npy(out / names["labels"], y, name="--out", inputs=inputs)
    final = res.history[-1]["loss"] if res.history else None
    loss = "n/a" if final is None else f"{final:.4g}"
    emit(
        args,
        {"out": str(out), "outputs": {k: str(out / v) for k, v in names.items()},
         "epochs": res.epochs_completed, "final_loss": final,
         "mode": "supervised" if o["supervised"] else "contrastive", "encoder": o["encoder"]},
        f"trained {o['encoder']} ({'supervised' if o['supervised'] else 'contrastive'}) for "
        f"{res.epochs_completed} epochs, final loss {loss}; wrote {out}/: "
        + ", ".join(names.values()),
    )
    return 0


def _json_default(o):
    from .. import _io

    try:
        return _io.json_default(o)
    except TypeError:
        return str(o)


def _write_json(path: Path, obj, inputs) -> None:
    from .. import _io

    _io.write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n", name="--out",
                   inputs=inputs)


def run_embed(args: argparse.Namespace) -> int:
    """Run ``infogauss embed``; returns the exit status."""
    from .. import _io
    from ..datasets import read_dataset

    if getattr(args, "output", None) is not None:
        if args.out is not None and args.out != args.output:
            raise ValueError(f"`--out` and its deprecated alias `--output` disagree: "
                             f"{args.out!r} vs {args.output!r}; give `--out` only")
        args.out = args.output
    o = _merge(args, _EMBED_DEFAULTS)
    if o["checkpoint"] is None:
        raise ValueError("`--checkpoint` must be given, got None")
    ckpt = Path(o["checkpoint"])
    if not ckpt.exists():
        raise ValueError(f"`--checkpoint` must be a run directory or a .pt file, got {str(ckpt)!r}")
    inputs = [o["data"], getattr(args, "config", None)]
    inputs += [ckpt, *(ckpt.glob("*") if ckpt.is_dir() else [])]
    inputs += [ckpt.with_name(ckpt.stem + ".config.json"), ckpt.parent / "config.json"]
    if o["set"] is not None:
        return _embed_into_set(args, o, ckpt, inputs)
    for flag in ("part", "prefix"):
        if o[flag] is not None:
            raise ValueError(f"`--{flag}` must come with `--set DIR`, got --{flag} "
                             f"{o[flag]!r} without it")
    out = Path(o["out"])
    labels_out = labels_path(out)
    for path in (out, labels_out):
        check_out(path, inputs)
    x, y = read_dataset(o["data"], o["format"], o["split"], name="--data")
    z = _embed(o, ckpt, x)
    _io.save_npy(out, z, name="--out", inputs=inputs)
    _io.save_npy(labels_out, y, name="--out", inputs=inputs)
    emit(
        args,
        {"out": str(out), "outputs": {"embeddings": str(out), "labels": str(labels_out)},
         "shape": list(z.shape), "layer": o["layer"]},
        f"embedded {z.shape[0]} inputs to {z.shape[1]}-d ({o['layer']}); wrote {out} and "
        f"{labels_out}",
    )
    return 0


def _embed(o: dict, ckpt: Path, x: np.ndarray) -> np.ndarray:
    from ..contrastive import embed, load_encoder

    enc = load_encoder(ckpt, name="--checkpoint")
    return embed(enc, x, layer=o["layer"], batch_size=int(o["batch_size"]), device=o["device"],
                 precision=o["precision"], progress=not o["no_progress"])


def _embed_into_set(args: argparse.Namespace, o: dict, ckpt: Path, inputs: list) -> int:
    """``embed --set DIR --part PART``: one part of an embedding-set directory."""
    from ..datasets import read_dataset
    from ..datasets.embeddings import part_files, set_prefix, write_embedding_part

    if getattr(args, "out", None) is not None:
        raise ValueError("`--out` and `--set` both given: an embedding set is written into "
                         "`--set DIR`; give one of them")
    directory = Path(o["set"])
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"`--set` must be a directory, got the file {str(directory)!r}")
    part = o["part"] or o["split"]
    try:
        prefix = set_prefix(directory, o["prefix"])
        files = part_files(part, prefix)
    except ValueError as exc:
        raise ValueError(f"`--part`/`--prefix`: {exc}") from None
    for name in (*files.values(), "meta.json"):
        check_out(directory / name, inputs, name="--set")
    x, y = read_dataset(o["data"], o["format"], o["split"], name="--data")
    z = _embed(o, ckpt, x)
    meta = {"checkpoint": str(ckpt), "data": str(o["data"]), "split": o["split"],
            "layer": o["layer"], "precision": o["precision"]}
    written = write_embedding_part(directory, part, z, y if "labels" in files else None,
                                   prefix=prefix, meta=meta)
    outputs = {k: str(v) for k, v in written.items()}
    emit(
        args,
        {"out": str(directory), "outputs": outputs, "shape": list(z.shape), "layer": o["layer"],
         "part": part, "prefix": prefix},
        f"embedded {z.shape[0]} inputs to {z.shape[1]}-d ({o['layer']}) as the {part!r} part of "
        f"{directory}; wrote " + ", ".join(outputs.values()),
    )
    return 0
