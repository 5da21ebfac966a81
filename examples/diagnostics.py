"""How Gaussian are these embeddings? ``diagnose`` with a negative-control baseline.

:func:`infogauss.diagnose` runs the paper's checks (norm concentration, per-coordinate
Anderson-Darling and D'Agostino-Pearson pass rates) next to what exact Gaussians give at the
same ``n``, the same tests on random projections and whitened coordinates, held-out
Mahalanobis distances against their exact F law and Mardia's tests, and compares everything
with a baseline.

The data need no encoder: 256 i.i.d. Laplace features (heavy-tailed, far from Gaussian) are
mixed by a random linear map to 32 dimensions, as a linear layer does; by the central limit
theorem the mixtures are close to Gaussian, but not exactly. The baseline (negative control)
is 32 of the raw Laplace features, same ``n`` and ``d``. With a trained encoder, the usual
baseline is the untrained encoder's embeddings of the same inputs
(see ``examples/train_and_embed.py``).

Run::

    python examples/diagnostics.py [--out DIR]

Prints the verdict and the markdown summary; with ``--out``, also writes ``report.json``
and ``report.md`` there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from infogauss import diagnose
from infogauss.datasets import make_laplace

SEED = 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="also write report.json and report.md here")
    args = ap.parse_args(argv)

    X = make_laplace(2000, 256, seed=SEED)  # raw, non-Gaussian features
    W = np.random.default_rng(SEED).standard_normal((256, 32)) / np.sqrt(256)
    embeddings = X @ W
    baseline = X[:, :32]

    # fewer null simulations than the defaults keep this to about a second
    report = diagnose(
        embeddings, baseline=baseline, seed=SEED, n_null_simulations=500, n_joint_simulations=199
    )
    print(f"verdict (embeddings): {report.verdict}")
    print(f"verdict (baseline):   {report.baseline.verdict}")
    paper, paper_base = report.paper_numbers(), report.baseline.paper_numbers()
    print(
        f"paper's numbers: norm CV {paper['cv']:.3f} (baseline {paper_base['cv']:.3f}), "
        f"AD pass {paper['ad_pass']:.1%} (baseline {paper_base['ad_pass']:.1%}), "
        f"DP pass {paper['dp_pass']:.1%} (baseline {paper_base['dp_pass']:.1%})"
    )
    markdown = report.to_markdown()
    print()
    print(markdown)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.json").write_text(report.to_json() + "\n")
        (args.out / "report.md").write_text(markdown)
        print(f"wrote {args.out / 'report.json'} and {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
