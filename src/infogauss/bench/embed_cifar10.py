r"""Embed CIFAR-10 and OOD image sets with a trained encoder, into the embedding-set layout
(:mod:`infogauss.datasets.embeddings`) that the ``ood``, ``retrieval`` and ``table1``
benchmarks read.

    infogauss bench embed_cifar10 --checkpoint benchmarks/checkpoints/small_cnn_simclr.pt \
        --out benchmarks/results/embeddings/simclr [--layer backbone|head|both] \
        [--ood svhn=/data/svhn/test_32x32.mat --ood textures=/data/dtd.zip --jpeg-quality 75]

(``infogauss embed --set DIR --part train|test|ood:NAME`` writes the same layout one part at
a time, from any dataset ``infogauss train`` reads.)

OOD sets built in: Tiny ImageNet ``tin_resize`` (64→32, 2×2 box average) and ``tin_crop``
(seeded random 32×32 crop) from ``../shared/data`` (``--data``). ``--ood NAME=PATH`` adds any set:

* ``*.mat``: SVHN's official ``<split>_32x32.mat`` (the primary CIFAR-10 OOD configuration in
  the literature: SVHN test);
* a directory or ``.zip`` in ImageFolder layout: decoded with Pillow, converted to RGB
  (greyscale repeats its channel) and resized to 32×32 with the BOX filter;
* ``*.npz`` / ``*.npy``: uint8 images (N, 3, 32, 32) (key ``images`` in an ``.npz``).

The CIFAR-10 copy in ``../shared/data`` is JPEG-compressed (quality ≈ 75). A lossless OOD set
(SVHN ``.mat``, PNG folders, arrays) is re-encoded as JPEG at ``--jpeg-quality`` (default 75;
0 disables) so that no detector can separate the sets by compression artefacts. JPEG sources
(the Tiny ImageNet zip) are left as they are. ``--layer both`` writes ``<out>`` (backbone) and
``<out>_head`` (projection head). ``meta.json`` in each records the run's provenance (commit,
dirty tree, versions, machine).

Progress goes to stderr: one line per set embedded, a bar per set on a terminal (unless
``--no-progress``), the files written and a summary.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from infogauss import _io
from infogauss.bench import shared_data_dir
from infogauss.bench._env import setup_logging, show_progress
from infogauss.datasets import (
    jpeg_roundtrip,
    load_arrays,
    load_cifar10_zip,
    load_image_folder,
    load_svhn,
    load_tinyimagenet_zip,
    write_embedding_set,
)

__all__ = ["load_ood", "main"]

log = logging.getLogger("benchmarks.embed_cifar10")


def load_ood(spec: str, jpeg_quality: int) -> tuple[str, np.ndarray, dict]:
    """``NAME=PATH`` -> (name, uint8 images (N, 3, 32, 32), provenance)."""
    if "=" not in spec:
        raise SystemExit(f"--ood must be NAME=PATH, got {spec!r}")
    name, path = spec.split("=", 1)
    p = Path(path)
    lossless = True
    if p.suffix == ".mat":
        split = p.name.split("_")[0]
        images = load_svhn(p.parent, split).images
        rule = f"SVHN {split} .mat"
    elif p.is_dir() or p.suffix == ".zip":
        images = load_image_folder(p, size=32).images
        rule = "ImageFolder -> RGB, BOX-resized to 32x32"
        lossless = not _all_jpeg(p)
    elif p.suffix in (".npz", ".npy"):
        images = load_arrays(p).images
        rule = "uint8 array"
    else:
        raise SystemExit(f"--ood {name}: cannot read {path!r} (.mat, ImageFolder dir/.zip, .npz, .npy)")
    if images.shape[1:] != (3, 32, 32):
        raise SystemExit(f"--ood {name}: images must be 3x32x32 after loading, got {images.shape[1:]}")
    reencoded = bool(lossless and jpeg_quality)
    if reencoded:
        images = jpeg_roundtrip(images, quality=jpeg_quality)
    return (
        name,
        images,
        {"path": str(p), "rule": rule, "jpeg_reencoded_quality": jpeg_quality if reencoded else None},
    )


def _all_jpeg(p: Path) -> bool:
    import zipfile

    names = (
        zipfile.ZipFile(p).namelist()
        if p.suffix == ".zip"
        else [str(q) for q in p.rglob("*") if q.is_file()]
    )
    exts = {Path(n).suffix.lower() for n in names if not n.endswith("/")}
    return bool(exts) and exts <= {".jpg", ".jpeg"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--checkpoint", help="encoder checkpoint (.pt state_dict with config, or run dir)")
    ap.add_argument("--untrained", metavar="ENCODER", help="embed with an untrained encoder instead")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--layer", default="backbone", choices=["backbone", "head", "both"])
    ap.add_argument("--data", default=None,
                    help="directory with the shared zips [../shared/data next to the checkout]")
    ap.add_argument("--ood", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--no-tinyimagenet", action="store_true")
    ap.add_argument("--in-classes", type=int, nargs="+", default=None, metavar="C",
                    help="leave-classes-out set: train/test keep these CIFAR-10 classes, and the "
                    "test images of the other classes become the OOD set cifar10_held_out")
    ap.add_argument("--jpeg-quality", type=int, default=75)
    ap.add_argument("--crop-seed", type=int, default=0)
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--seed", type=int, default=0, help="initialisation of --untrained")
    ap.add_argument("--widths", type=int, nargs=3, default=None,
                    help="stage widths of an --untrained small_cnn (default 32 64 128)")
    ap.add_argument("--no-progress", action="store_true",
                    help="no progress bars (none either when stderr is not a terminal)")
    args = ap.parse_args(argv)
    setup_logging("embed_cifar10")
    if not (args.checkpoint or args.untrained):
        raise SystemExit("give --checkpoint or --untrained")
    env = _io.environment()
    bar = show_progress(args.no_progress)

    import infogauss.contrastive as ic
    from infogauss.contrastive import load_encoder

    t0 = time.time()
    data = Path(args.data) if args.data else shared_data_dir()
    log.info("loading CIFAR-10 and the OOD image sets from %s", data)
    tr = load_cifar10_zip(data / "cifar10_jpeg.zip", "train")
    te = load_cifar10_zip(data / "cifar10_jpeg.zip", "test")
    ood_images: dict[str, np.ndarray] = {}
    ood_meta: dict[str, dict] = {}
    if args.in_classes:
        bad = sorted(set(args.in_classes) - set(range(10)))
        if bad:
            raise SystemExit(f"--in-classes must be CIFAR-10 classes 0-9, got {bad}")
        keep_tr, keep_te = np.isin(tr.labels, args.in_classes), np.isin(te.labels, args.in_classes)
        ood_images["cifar10_held_out"] = te.images[~keep_te]
        ood_meta["cifar10_held_out"] = {"rule": "CIFAR-10 test images of the classes not in "
                                        f"{sorted(args.in_classes)} (near-OOD)"}  # fmt: skip
        tr = SimpleNamespace(images=np.ascontiguousarray(tr.images[keep_tr]), labels=tr.labels[keep_tr])
        te = SimpleNamespace(images=np.ascontiguousarray(te.images[keep_te]), labels=te.labels[keep_te])
    if not args.no_tinyimagenet:
        for mode in ("resize", "crop"):
            ood_images[f"tin_{mode}"] = load_tinyimagenet_zip(
                data / "tinyimagenet_test_jpeg.zip", mode=mode, seed=args.crop_seed
            ).images
            ood_meta[f"tin_{mode}"] = {
                "path": str(data / "tinyimagenet_test_jpeg.zip"),
                "rule": "64->32 Pillow BOX"
                if mode == "resize"
                else f"random 32x32 crop, seed {args.crop_seed}",
                "jpeg_reencoded_quality": None,
            }
    for spec in args.ood:
        name, images, meta = load_ood(spec, args.jpeg_quality)
        ood_images[name], ood_meta[name] = images, meta
    log.info(
        "images loaded in %.1fs: %s", time.time() - t0, {k: v.shape[0] for k, v in ood_images.items()}
    )

    if args.checkpoint:
        enc = load_encoder(args.checkpoint)
        source = str(args.checkpoint)
    else:
        kw = {"widths": tuple(args.widths)} if args.widths else {}
        enc = ic.build_encoder(args.untrained, seed=args.seed, **kw)
        source = (f"untrained {args.untrained}"
                  + (f" widths {'-'.join(map(str, args.widths))}" if args.widths else "")
                  + f" (seed {args.seed})")
    layers = ["backbone", "head"] if args.layer == "both" else [args.layer]
    sets = [("cifar10 train", tr.images), ("cifar10 test", te.images),
            *((f"ood {k}", v) for k, v in ood_images.items())]
    written = []
    for layer in layers:
        t = time.time()
        kw = {"layer": layer, "batch_size": 512, "precision": args.precision, "progress": bar}
        emb = []
        for i, (label, images) in enumerate(sets, 1):
            ts = time.time()
            emb.append(ic.embed(enc, images, **kw))
            log.info("%s [%d/%d] %s: %d images -> %d-d in %.1fs", layer, i, len(sets), label,
                     images.shape[0], emb[-1].shape[1], time.time() - ts)
        out = Path(args.out) if layer == layers[0] else Path(f"{args.out}_{layer}")
        write_embedding_set(
            out, train=emb[0], train_labels=tr.labels, test=emb[1], test_labels=te.labels,
            ood=dict(zip(ood_images, emb[2:])),
            meta={"checkpoint": source, "layer": layer, "precision": args.precision,
                  "cifar10": str(data / "cifar10_jpeg.zip"), "ood": ood_meta,
                  "environment": env},
        )  # fmt: skip
        files = [f"cifar10_{k}.npy" for k in ("train", "train_labels", "test", "test_labels")]
        files += [f"ood_{k}.npy" for k in ood_images] + ["meta.json"]
        log.info("wrote %s/{%s}", out, ",".join(files))
        log.info("%s embeddings (%d-d) written to %s in %.1fs", layer, emb[0].shape[1], out,
                 time.time() - t)
        written.append(str(out))
    log.info("done in %.0f s: %s embedded %d train, %d test and %d OOD images (%s) into %s",
             time.time() - t0, source, tr.images.shape[0], te.images.shape[0],
             sum(v.shape[0] for v in ood_images.values()), ", ".join(ood_images) or "no OOD set",
             " and ".join(written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
