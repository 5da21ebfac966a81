r"""Table 1 of the paper, reproduced side by side with infogauss's null-aware diagnostics.

Rows
----
* **synthetic** (trained here): 1024-d inputs -> linear encoder -> 256-d, InfoNCE (tau = 0.1),
  Adam lr 1e-3 (constant), reported at epochs 0 (untrained), 50 and 100:
  Laplace inputs with the paper's views (a = 0.6 plus jitter), a 25-component GMM with
  same-component positives, sparse binary inputs with 0.1% bit-flip views at densities
  0.1%, 0.5% and 2% ones (the paper does not give its density).
* **cifar** (precomputed): embeddings of the CIFAR-10 test set from a contrastive and a
  supervised (cross-entropy) checkpoint, backbone and (when present) head outputs:
  ``--cifar-contrastive DIR --cifar-supervised DIR``, each holding ``cifar10_test.npy`` and
  optionally ``cifar10_test_head.npy``; ``--cifar-epoch0 DIR`` adds the untrained encoder.
  They come from ``infogauss bench train`` + ``infogauss bench embed_cifar10`` (the preset
  names the encoder: small CNN for ``cpu``, ResNet-18 for 100 epochs for ``gpu``).

Presets
-------
* ``smoke``: tiny (64-d inputs, 16-d outputs, epochs 0/1/2, a few hundred samples): seconds.
* ``cpu``: the paper's dimensions (1024 -> 256) with 4,096 training samples, batch 256
  (16 steps per epoch), 5,000 evaluation samples, epochs 0/50/100 on 5 datasets (Laplace,
  GMM, 3 densities) = 500 epochs, then 15 diagnostics at n = 5,000, d = 256 (the run's
  timings are in its results file). Use ``--datasets`` to run part of the rows, e.g. when
  the machine is shared.
* ``gpu``: 50,000 training samples, batch 512, on CUDA.

Outputs ``paper_table1_<preset>.json`` in the results directory (see :mod:`infogauss.bench`;
every row with its full report) and the markdown table next to it; the ``smoke`` preset
writes under ``runs/benchmarks/`` instead (untracked). Each row's sentence on
agreement/disagreement is generated from the numbers. Progress goes to stderr: a line per
dataset trained and per row diagnosed (a training bar on a terminal, unless
``--no-progress``), the files written and a summary.

    infogauss bench table1 --preset cpu --rows synthetic
    infogauss bench table1 --preset cpu --rows cifar \
        --cifar-contrastive emb/contrastive --cifar-supervised emb/supervised
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from infogauss import _io
from infogauss.bench import output_path
from infogauss.bench._env import setup_logging, show_progress
from infogauss.bench._render import SMALL_NS
from infogauss.bench._render import table1 as markdown
from infogauss.bench._render import table1_pattern as pattern_summary
from infogauss.bench._render import table1_sentence as sentence
from infogauss.diagnostics import GaussianityReport, diagnose

__all__ = ["PAPER", "PRESETS", "Preset", "SMALL_NS", "train_and_embed", "ad_pass_by_n",
           "synthetic_rows", "cifar_rows", "sentence", "pattern_summary", "markdown",
           "parse_args", "main"]

log = logging.getLogger("benchmarks.paper_table1")

# The paper's Table 1: (CV of norms, AD pass fraction, DP pass fraction).
PAPER = {
    "laplace": {100: (0.08, 1.00, 1.00)},
    "gmm": {100: (0.08, 1.00, 1.00)},
    "binary": {0: (0.36, 0.30, 0.15), 50: (0.12, 0.93, 0.89), 100: (0.09, 0.97, 0.98)},
    "cifar_supervised": {"final": (0.50, 0.062, 0.039)},
    "cifar_contrastive": {"final": (0.09, 0.961, 0.945)},
}


@dataclass(frozen=True)
class Preset:
    in_features: int
    out_dim: int
    n_train: int
    n_eval: int
    batch_size: int
    epochs: tuple[int, ...]
    densities: tuple[float, ...]
    gmm_components: int
    device: str
    max_samples: int
    n_null_simulations: int
    n_joint_simulations: int
    cifar_encoder: str


PRESETS = {
    "smoke": Preset(64, 16, 256, 200, 64, (0, 1, 2), (0.05,), 5, "cpu", 200, 200, 199, "small_cnn"),
    "cpu": Preset(1024, 256, 4096, 5000, 256, (0, 50, 100), (0.001, 0.005, 0.02), 25, "cpu",
                  5000, 2000, 199, "small_cnn"),
    "gpu": Preset(1024, 256, 50000, 10000, 512, (0, 50, 100), (0.001, 0.005, 0.02), 25, "cuda",
                  10000, 2000, 200, "resnet18 (100 epochs)"),
}


# --------------------------------------------------------------------------------------
# The only code that touches the training stack (infogauss.contrastive / datasets).
# --------------------------------------------------------------------------------------
def train_and_embed(dataset: str, preset: Preset, seed: int, density: float | None = None,
                    threads: int | None = None,
                    progress: bool = False) -> tuple[dict[int, np.ndarray], dict]:
    """Train the linear encoder on one synthetic dataset; embeddings of held-out samples at
    each epoch of ``preset.epochs`` (0 = untrained) and the training log.

    ``dataset`` is ``laplace`` | ``gmm`` | ``binary``. Training and evaluation samples come
    from one draw of the generator (so a GMM's components are shared) and are split.
    """
    import torch

    import infogauss.contrastive as ic
    from infogauss.datasets import make_gmm, make_laplace, make_sparse_binary

    if threads:
        torch.set_num_threads(threads)
    n = preset.n_train + preset.n_eval
    d_in = preset.in_features
    if dataset == "laplace":
        x = make_laplace(n, d_in, seed=seed)
        data, augment = x[: preset.n_train], "synthetic"
    elif dataset == "gmm":
        x, comp = make_gmm(n, d_in, n_components=preset.gmm_components, seed=seed)
        xt = x[: preset.n_train]
        g = torch.Generator().manual_seed(seed)
        pos = ic.same_component_positives(comp[: preset.n_train], generator=g).numpy()
        data, augment = (xt, np.ascontiguousarray(xt[pos])), "none"
    elif dataset == "binary":
        x = make_sparse_binary(n, d_in, density=density, seed=seed)
        data, augment = x[: preset.n_train], "bitflip"
    else:
        raise ValueError(f"unknown dataset {dataset!r}")
    x_eval = np.ascontiguousarray(x[preset.n_train:])
    encoder = ic.build_encoder("linear", in_features=d_in, out_dim=preset.out_dim, head=False,
                               seed=seed)
    last = max(preset.epochs)
    out = {}
    history: list = []
    with tempfile.TemporaryDirectory(prefix="paper_table1_") as ckpt:
        for epoch in sorted(preset.epochs):
            if epoch > 0:
                config = ic.TrainConfig(
                    epochs=last, stop_after_epochs=epoch, batch_size=preset.batch_size,
                    optimizer="adam", lr=1e-3, weight_decay=0.0, warmup_epochs=0.0,
                    min_lr_ratio=1.0,  # constant learning rate, as the paper states
                    temperature=0.1, augment=augment, precision="fp32", seed=seed,
                    device=preset.device, checkpoint_dir=ckpt, resume=True, progress=progress,
                )
                result = ic.train_contrastive(encoder, data, config)
                encoder = result.model
                history = result.history
            out[epoch] = ic.embed(encoder, x_eval, layer="backbone", device=preset.device)
    final_loss = history[-1]["loss"] if history else None
    return out, {"final_loss": final_loss, "epochs_run": len(history)}


# --------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------
def _diagnose(X: np.ndarray, preset: Preset, seed: int) -> GaussianityReport:
    return diagnose(X, max_samples=preset.max_samples, seed=seed,
                    n_null_simulations=preset.n_null_simulations,
                    n_joint_simulations=preset.n_joint_simulations)


def ad_pass_by_n(Z: np.ndarray, seed: int, ns: tuple[int, ...] = SMALL_NS) -> dict[str, float]:
    """Per-coordinate AD pass fraction on random subsamples of n rows: the paper does not give
    its n, and the test's power (so the pass rate of any non-Gaussian set) grows with n."""
    from infogauss.diagnostics import anderson_critical_value, anderson_darling_normal

    rng = np.random.default_rng(seed)
    out = {}
    for n in ns:
        if n > Z.shape[0]:
            continue
        sub = Z[rng.choice(Z.shape[0], n, replace=False)]
        keep = sub.std(axis=0) > 0
        A = anderson_darling_normal(sub[:, keep])
        out[str(n)] = float(np.mean(A < anderson_critical_value(n)))
    return out


def _row(key: str, label: str, epoch, report: GaussianityReport, paper: tuple | None,
         extra: dict | None = None) -> dict:
    p = report.paper_numbers()
    status = {c["name"]: c["status"] for c in report.checks}
    c, pr, w = report.coordinates, report.projections, report.whitened
    return {
        "key": key,
        "label": label,
        "epoch": epoch,
        "paper": None if paper is None else dict(zip(("cv", "ad_pass", "dp_pass"), paper)),
        "ours": {"cv": p["cv"], "ad_pass": p["ad_pass"], "dp_pass": p["dp_pass"],
                 "ad_mean": p["ad_mean"], "dp_mean": p["dp_mean"]},
        "null": {"ad_pass": c["ad"]["null_pass_fraction"], "ad_band": c["ad"]["null_band"],
                 "dp_pass": c["dp"]["null_pass_fraction"], "dp_band": c["dp"]["null_band"],
                 "cv_floor": report.norms["cv_isotropic_floor"],
                 "cv_implied": report.norms["cv_implied"]},
        "projections": {"ad_pass": pr["ad"]["pass_fraction"], "dp_pass": pr["dp"]["pass_fraction"]},
        "whitened": None if w is None else {"ad_pass": w["ad"]["pass_fraction"],
                                            "dp_pass": w["dp"]["pass_fraction"]},
        "joint": None if report.joint is None else {
            "ks_f": report.joint["f"]["ks"], "ks_f_pvalue": report.joint["f"]["ks_pvalue"],
            "ks_chi2": report.joint["chi2"]["ks"]},
        "mardia_kurt_z": None if report.mardia is None else report.mardia["kurt_z"],
        "checks_passed": sum(s == "pass" for s in status.values()),
        "checks_run": sum(s in ("pass", "fail") for s in status.values()),
        "verdict": report.verdict,
        "report": report.to_dict(),
        **(extra or {}),
    }


def synthetic_rows(preset: Preset, seed: int, threads: int | None,
                   datasets: tuple[str, ...] = ("laplace", "gmm", "binary"),
                   progress: bool = False) -> list[dict]:
    unknown = set(datasets) - {"laplace", "gmm", "binary"}
    if unknown:
        raise SystemExit(f"--datasets: unknown {sorted(unknown)}; choose from laplace, gmm, binary")
    rows = []
    jobs = [("laplace", None), ("gmm", None)] + [("binary", dens) for dens in preset.densities]
    jobs = [j for j in jobs if j[0] in datasets]
    for i, (dataset, density) in enumerate(jobs, 1):
        label = dataset if density is None else f"binary {100 * density:g}%"
        log.info("[%d/%d] %s: training %d epochs (%d samples, %d -> %d)", i, len(jobs), label,
                 max(preset.epochs), preset.n_train, preset.in_features, preset.out_dim)
        t0 = time.perf_counter()
        embs, info = train_and_embed(dataset, preset, seed, density, threads, progress)
        t_train = time.perf_counter() - t0
        log.info("[%d/%d] %s: trained in %.0f s; diagnosing epochs %s", i, len(jobs), label,
                 t_train, ", ".join(map(str, sorted(embs))))
        key = dataset if density is None else f"binary_{density:g}"
        for epoch, Z in sorted(embs.items()):
            t1 = time.perf_counter()
            rep = _diagnose(Z, preset, seed)
            # the paper's epochs 0/50/100 (the smoke preset's 0/1/2 stand in for them)
            paper_epoch = dict(zip(sorted(preset.epochs), (0, 50, 100)))[epoch]
            paper = PAPER[dataset].get(paper_epoch)
            rows.append(_row(key, label, epoch, rep, paper, {
                "ad_pass_by_n": ad_pass_by_n(Z, seed),
                "train_seconds": t_train, "diagnose_seconds": time.perf_counter() - t1,
                "final_loss": info["final_loss"] if epoch == max(preset.epochs) else None}))
            log.info("%s epoch %s: %s", label, epoch, rep.verdict)
    return rows


def _load_npy(path: Path) -> np.ndarray | None:
    return np.load(path, allow_pickle=False) if path.exists() else None


def cifar_rows(args: argparse.Namespace, preset: Preset, seed: int) -> list[dict]:
    sources = [("cifar_contrastive", "CIFAR-10 contrastive", args.cifar_contrastive),
               ("cifar_supervised", "CIFAR-10 supervised", args.cifar_supervised),
               ("cifar_epoch0", "CIFAR-10 untrained", args.cifar_epoch0)]
    if not any(s[2] for s in sources):
        raise SystemExit("--rows cifar needs --cifar-contrastive and/or --cifar-supervised DIR "
                         "(each with cifar10_test.npy; see the module docstring)")
    rows = []
    for key, label, directory in sources:
        if not directory:
            continue
        for layer, fname in (("backbone", "cifar10_test.npy"), ("head", "cifar10_test_head.npy")):
            Z = _load_npy(Path(directory) / fname)
            if Z is None and layer == "head":  # embed_cifar10.py --layer both writes DIR_head/
                fname = str(Path(f"{directory}_head") / "cifar10_test.npy")
                Z = _load_npy(Path(fname))
            if Z is None:
                if layer == "backbone":
                    raise SystemExit(f"{directory}: no {fname}")
                continue
            t1 = time.perf_counter()
            log.info("%s (%s): diagnosing %s", label, layer, fname)
            rep = _diagnose(Z, preset, seed)
            log.info("%s (%s): %s", label, layer, rep.verdict)
            paper = PAPER.get(key, {}).get("final")
            epoch = 0 if key == "cifar_epoch0" else "final"
            extra = {"diagnose_seconds": time.perf_counter() - t1, "ad_pass_by_n": ad_pass_by_n(Z, seed),
                     "source": str(Path(directory) / fname)}  # an absolute fname wins
            rows.append(_row(f"{key}_{layer}", f"{label} ({layer})", epoch, rep, paper, extra))
    return rows


# --------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    p.add_argument("--rows", choices=["synthetic", "cifar", "all"], default="synthetic")
    p.add_argument("--cifar-contrastive", metavar="DIR")
    p.add_argument("--cifar-supervised", metavar="DIR")
    p.add_argument("--cifar-epoch0", metavar="DIR", help="embeddings of the untrained encoder")
    p.add_argument("--datasets", default="laplace,gmm,binary",
                   help="synthetic datasets to run, comma-separated [laplace,gmm,binary]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads [2]")
    p.add_argument("--out", metavar="JSON",
                   help="default paper_table1_<preset>.json in the results directory "
                        "(runs/benchmarks/paper_table1_smoke.json for --preset smoke)")
    p.add_argument("--no-progress", action="store_true",
                   help="no training bars (none either when stderr is not a terminal)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    # the trainer's one line per epoch (500 in the cpu preset) stays off: one line per row
    setup_logging("paper_table1", library=False)
    preset = PRESETS[args.preset]
    t0 = time.perf_counter()
    env = _io.environment()  # at the start: the commit and the load before the run
    rows: list[dict] = []
    if args.rows in ("synthetic", "all"):
        rows += synthetic_rows(preset, args.seed, args.threads,
                               tuple(x.strip() for x in args.datasets.split(",") if x.strip()),
                               progress=show_progress(args.no_progress))
    if args.rows in ("cifar", "all") and (args.rows == "cifar" or args.cifar_contrastive
                                          or args.cifar_supervised or args.cifar_epoch0):
        rows += cifar_rows(args, preset, args.seed)
    for r in rows:
        e0 = next((q for q in rows if q["key"] == r["key"] and q["epoch"] == 0), None)
        if e0 is None and r["key"].startswith("cifar_") and not r["key"].startswith("cifar_epoch0"):
            layer = r["key"].rsplit("_", 1)[1]
            e0 = next((q for q in rows if q["key"] == f"cifar_epoch0_{layer}"), None)
        r["sentence"] = sentence(r, e0)
    meta = {"preset": args.preset, "seed": args.seed, "rows": args.rows}
    out = output_path(args.out, f"paper_table1_{args.preset}.json",
                      scratch=args.preset == "smoke")
    payload = {
        "benchmark": "paper_table1",
        "config": {**meta, "preset_values": asdict(preset), "threads": args.threads,
                   "cifar": {"contrastive": args.cifar_contrastive,
                             "supervised": args.cifar_supervised, "epoch0": args.cifar_epoch0}},
        "seed": args.seed,
        "environment": env,
        "paper": {k: {str(e): v for e, v in d.items()} for k, d in PAPER.items()},
        "pattern": pattern_summary(rows),
        "rows": rows,
        "seconds": time.perf_counter() - t0,
    }
    _io.write_results(out, payload)
    log.info("wrote %s", out)
    md = markdown(rows, meta)
    _io.write_text(out.with_suffix(".md"), md)
    log.info("wrote %s", out.with_suffix(".md"))
    print(md)
    log.info("done in %.0f s: %d rows (preset %s); checks passed per row: %s", payload["seconds"],
             len(rows), args.preset,
             ", ".join(f"{r['label']}@{r['epoch']} {r['checks_passed']}/{r['checks_run']}"
                       for r in rows) or "none")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
