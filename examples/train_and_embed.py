"""Train a tiny encoder with InfoNCE, embed with ``embed()``, fit a GaussianModel on the embeddings.

On scikit-learn's handwritten digits (8x8 images as 64 features in [0, 1]):

1. ``build_encoder("mlp", ...)``: a small MLP backbone with a projection head;
2. ``train_contrastive`` for a few epochs with the paper's vector views
   (``SyntheticViews``: ``x' = s * m * (a x + sqrt(1 - a^2) eps + sigma xi)``), progress bar off;
3. ``embed()``: float32, C-contiguous CPU arrays of the backbone (or head) outputs;
4. ``GaussianModel().fit`` on the training embeddings, scoring held-out embeddings.

A few epochs on 1,200 images are enough to see the API, not to train a good encoder; the
demo (``python -m infogauss.demo``) and ``infogauss bench train`` train for longer.

Run::

    python examples/train_and_embed.py [--out DIR] [--epochs N]

Needs the ``train`` extra (torch). With ``--out``, the training checkpoint and
``model.npz`` are written there; otherwise nothing is written.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from infogauss import GaussianModel

try:  # the train extra (torch)
    from infogauss.contrastive import (
        SyntheticViews,
        TrainConfig,
        build_encoder,
        embed,
        knn_accuracy,
        train_contrastive,
    )
except ImportError as exc:  # the message names the extra to install
    raise SystemExit(str(exc)) from None

SEED = 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="write the checkpoint and model.npz here")
    ap.add_argument("--epochs", type=int, default=5)
    args = ap.parse_args(argv)

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    order = np.random.default_rng(SEED).permutation(len(y))
    train, test = order[:1200], order[1200:]

    encoder = build_encoder("mlp", in_features=64, out_dim=32, hidden_dim=128, projection_dim=32, seed=SEED)
    config = TrainConfig(
        epochs=args.epochs, batch_size=128, lr=2e-3, temperature=0.2, warmup_epochs=1,
        precision="fp32", seed=SEED, progress=False,
        checkpoint_dir=None if args.out is None else str(args.out / "checkpoint"),
    )  # fmt: skip
    views = SyntheticViews(a=0.8, noise=0.1, dropout=0.2, log_scale_std=0.1)
    start = time.perf_counter()
    result = train_contrastive(encoder, X[train], config, augment=views)
    seconds = time.perf_counter() - start
    losses = [h["loss"] for h in result.history]
    print(
        f"trained {result.epochs_completed} epochs on {train.size} digits in {seconds:.1f}s; "
        f"InfoNCE loss {losses[0]:.3f} -> {losses[-1]:.3f}"
    )

    Z_train = embed(result.model, X[train])  # layer="backbone" (the default)
    Z_test = embed(result.model, X[test])
    Z_head = embed(result.model, X[test], layer="head")
    print(
        f"embed(): backbone {Z_test.shape} {Z_test.dtype}, C-contiguous "
        f"{Z_test.flags['C_CONTIGUOUS']}; head {Z_head.shape}"
    )
    acc = knn_accuracy(Z_train, y[train], Z_test, y[test], k=20)
    print(f"kNN accuracy (k=20) of the backbone embeddings on {test.size} held-out digits: {acc:.3f}")

    model = GaussianModel().fit(Z_train)
    p = model.pvalues(Z_test, method="f")  # Hotelling's law for new points
    print(
        f"GaussianModel on {Z_train.shape[0]} x {Z_train.shape[1]} embeddings: Ledoit-Wolf "
        f"shrinkage {model.shrinkage_:.4f}, mean log-density train {model.score(Z_train):.2f}, "
        f"held-out {model.score(Z_test):.2f}; held-out F p-values <= 0.05: {np.mean(p <= 0.05):.1%}"
    )
    if args.out is not None:
        path = model.save(args.out / "model.npz")
        print(f"wrote {result.checkpoint} and {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
