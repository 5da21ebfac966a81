"""The whole pipeline on data that ships with the install, in a couple of minutes on 2 cores.

``python -m infogauss.demo [--out demo_output] [--epochs 60] [--seed 0]`` (``make demo``):

1. **Paper's synthetic check** — 1024-d Laplace inputs, a linear encoder to 256-d trained
   with InfoNCE (τ = 0.1, the paper's views): how Gaussian are the embeddings before and after?
2. **Digits** (scikit-learn's 8×8 handwritten digits): classes 0–5 are in-distribution, 6–9
   are out-of-distribution. An MLP encoder is trained with InfoNCE on the in-distribution
   training split only, then

   * **diagnose** the test embeddings (against the untrained encoder as negative control);
   * **fit** a Ledoit–Wolf Gaussian (:class:`~infogauss.GaussianModel`);
   * **detect OOD** with :class:`~infogauss.MahalanobisOOD` (global and class-conditional),
     calibrated by split conformal p-values on a held-out in-distribution split;
   * **retrieve** neighbours with :class:`~infogauss.CalibratedRetriever`: match p-values,
     calibrated relevance probabilities and abstention on OOD queries.

Prints a short report and writes ``report.json``, ``report.md`` and plots to ``--out``.
Needs the ``train`` extra (torch) and, for the retrieval and plots, ``faiss`` and ``plot``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


class _Steps:
    """One line per step on stderr as it starts and ends, so a user sees what is running."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total, self.k, self.enabled = total, 0, enabled
        self.t0 = self.t = time.perf_counter()

    def start(self, what: str) -> None:
        self.k += 1
        self.t = time.perf_counter()
        if self.enabled:
            print(f"[{self.k}/{self.total}] {what} ...", file=sys.stderr, flush=True)

    def done(self, result: str = "") -> None:
        if self.enabled:
            dt = time.perf_counter() - self.t
            tail = f": {result}" if result else ""
            print(f"      done in {dt:.1f}s{tail}", file=sys.stderr, flush=True)


_STEPS = _Steps(0, enabled=False)  # replaced by main()
_BARS = False  # progress bars for the training loops (main(): stderr is a TTY, no --no-progress)


def _split_digits(seed: int) -> dict[str, Any]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    rng = np.random.default_rng(seed)
    inside = np.flatnonzero(y <= 5)
    rng.shuffle(inside)
    n = inside.size
    tr, cal, te = np.split(inside, [int(0.6 * n), int(0.8 * n)])
    ood = np.flatnonzero(y > 5)
    return {
        "X": X, "y": y, "train": tr, "calib": cal, "test": te, "ood": ood,
        "in_classes": list(range(6)), "ood_classes": list(range(6, 10)),
    }  # fmt: skip


def _synthetic_part(seed: int, epochs: int, quick: bool) -> dict[str, Any]:
    import infogauss.contrastive as ic
    from infogauss import diagnose
    from infogauss.datasets.synthetic import make_laplace

    n = 1024 if quick else 2048
    _STEPS.start(f"synthetic: InfoNCE on {n} Laplace inputs (1024-d -> 256-d), {epochs} epochs")
    X = make_laplace(2 * n, 1024, seed=seed).astype(np.float32)
    train, test = X[:n], X[n:]
    enc = ic.build_encoder("linear", in_features=1024, out_dim=256, head=False, seed=seed)
    before = ic.embed(enc, test)
    cfg = ic.TrainConfig(
        epochs=epochs, batch_size=256, lr=1e-3, temperature=0.1, augment="synthetic",
        precision="fp32", warmup_epochs=0, seed=seed, progress=_BARS,
    )  # fmt: skip
    t = time.perf_counter()
    res = ic.train_contrastive(enc, train, cfg)
    seconds = time.perf_counter() - t
    _STEPS.done(f"final loss {res.history[-1]['loss']:.3f}")
    after = ic.embed(res.model, test)
    kw = {"seed": seed, "n_null_simulations": 200, "n_joint_simulations": 199}
    _STEPS.start("synthetic: diagnose the embeddings before and after training")
    rep_before, rep_after = diagnose(before, **kw), diagnose(after, **kw)
    _STEPS.done(f"verdict before: {rep_before.verdict}; after: {rep_after.verdict}")
    return {
        "config": {"n_train": n, "d_in": 1024, "d_out": 256, "epochs": epochs, "tau": 0.1},
        "train_seconds": seconds,
        "final_loss": res.history[-1]["loss"],
        "before": _diag_summary(rep_before),
        "after": _diag_summary(rep_after),
    }


def _diag_summary(rep) -> dict[str, Any]:
    d = rep.to_dict()
    coords = d.get("coordinates") or {}
    ad = coords.get("ad") or {}
    dp = coords.get("dp") or {}
    norms = d.get("norms") or {}
    return {
        "verdict": d.get("verdict"),
        "norm_cv": norms.get("cv"),
        "ad_pass": ad.get("pass_fraction"),
        "dp_pass": dp.get("pass_fraction"),
        "ad_null_pass": ad.get("null_pass_fraction"),
    }


def digits_embeddings(
    seed: int = 0, epochs: int = 60, *, layer: str = "backbone", progress: bool = False
) -> dict[str, Any]:
    """The digits recipe of the demo: an MLP trained with InfoNCE on classes 0-5, embedded.

    scikit-learn's 8×8 digits (pixels / 16), classes 0–5 split 60/20/20 into train /
    calibration / test (seeded), classes 6–9 out-of-distribution; an MLP 64→256→256→64 with a
    projection head, InfoNCE (τ = 0.2, Adam 2e-3, batch 128, 2 warm-up epochs) with synthetic
    views. Needs the ``train`` extra (torch).

    Returns
    -------
    dict
        ``Z``: ``{"train", "calib", "test", "ood"}`` float32 embeddings of ``layer``;
        ``y``: their labels; ``untrained_test``: the test split through the untrained encoder;
        ``split``: the index arrays; ``history``, ``train_seconds``, ``config``.
    """
    import infogauss.contrastive as ic

    D = _split_digits(seed)
    X, y = D["X"], D["y"]
    enc = ic.build_encoder("mlp", in_features=64, out_dim=64, hidden_dim=256, seed=seed)
    untrained = ic.embed(enc, X[D["test"]], layer=layer)
    cfg = ic.TrainConfig(
        epochs=epochs, batch_size=128, lr=2e-3, temperature=0.2, augment="synthetic",
        precision="fp32", warmup_epochs=2, seed=seed, progress=progress,
    )  # fmt: skip
    aug = ic.SyntheticViews(a=0.8, noise=0.1, dropout=0.2, log_scale_std=0.1)
    t = time.perf_counter()
    res = ic.train_contrastive(enc, X[D["train"]], cfg, augment=aug)
    seconds = time.perf_counter() - t
    parts = ("train", "calib", "test", "ood")
    return {
        "Z": {k: ic.embed(res.model, X[D[k]], layer=layer) for k in parts},
        "y": {k: y[D[k]] for k in parts},
        "untrained_test": untrained,
        "split": D,
        "history": res.history,
        "train_seconds": seconds,
        "config": {"epochs": epochs, "tau": 0.2, "seed": seed, "layer": layer,
                   "encoder": "mlp 64->256->256->64 (+ projection head)"},  # fmt: skip
    }


def _digits_part(seed: int, epochs: int, out: Path, plots: bool) -> dict[str, Any]:
    from infogauss import GaussianModel, MahalanobisOOD, diagnose, metrics

    D = _split_digits(seed)
    y = D["y"]
    _STEPS.start(f"digits: InfoNCE on classes 0-5 ({D['train'].size} images), {epochs} epochs")
    ytr = y[D["train"]]
    emb = digits_embeddings(seed, epochs, progress=_BARS)
    Z, untrained, train_seconds = emb["Z"], emb["untrained_test"], emb["train_seconds"]

    # kNN accuracy of the embeddings (is the encoder any good?)
    acc = _knn_accuracy(Z["train"], ytr, Z["test"], y[D["test"]])
    _STEPS.done(f"kNN accuracy {acc:.3f}")

    # diagnose, against the untrained encoder as negative control
    _STEPS.start("digits: diagnose the embeddings (untrained encoder as negative control)")
    rep = diagnose(
        Z["test"], baseline=untrained, seed=seed, n_null_simulations=200, n_joint_simulations=199
    )
    _STEPS.done(f"verdict: {rep.verdict}")
    _STEPS.start("digits: fit a Gaussian, calibrate OOD detectors, score digits 6-9")

    # fit + OOD detection
    model = GaussianModel().fit(Z["train"])
    detectors = {
        "global": MahalanobisOOD(method="global", calibration=None).fit(Z["train"]),
        "class": MahalanobisOOD(method="class", calibration=None).fit(Z["train"], ytr),
    }
    ood: dict[str, Any] = {}
    curves = {}
    for name, det in detectors.items():
        det.calibrate(Z["calib"])
        s_in, s_out = det.score_samples(Z["test"]), det.score_samples(Z["ood"])
        curves[name] = (s_in, s_out)
        flagged_in = det.predict(Z["test"], alpha=0.05) == -1
        flagged_out = det.predict(Z["ood"], alpha=0.05) == -1
        ood[name] = {
            "auroc": metrics.auroc(s_in, s_out),
            "fpr95": metrics.fpr_at_tpr(s_in, s_out, 0.95),
            "conformal_fpr_at_0.05": float(flagged_in.mean()),
            "ood_flagged_at_0.05": float(flagged_out.mean()),
        }
    # feature-norm baseline: larger norm = more in-distribution
    curves["feature norm"] = (np.linalg.norm(Z["test"], axis=1), np.linalg.norm(Z["ood"], axis=1))
    ood["feature norm (baseline)"] = {
        "auroc": metrics.auroc(*curves["feature norm"]),
        "fpr95": metrics.fpr_at_tpr(*curves["feature norm"], 0.95),
    }

    _STEPS.done(", ".join(f"AUROC {k} {v['auroc']:.3f}" for k, v in ood.items()))

    # calibrated retrieval
    _STEPS.start("digits: calibrated retrieval")
    retrieval = _retrieval_part(Z, D, y, seed)
    _STEPS.done(retrieval if isinstance(retrieval, str)
                else f"recall@1 {retrieval['recall@1']:.3f}")

    files = []
    if plots:
        _STEPS.start("plots")
        files = _plots(rep, curves, out)
        _STEPS.done(f"{len(files)} files")
    return {
        "config": {
            "in_classes": D["in_classes"],
            "ood_classes": D["ood_classes"],
            "n_train": int(D["train"].size),
            "n_calib": int(D["calib"].size),
            "n_test": int(D["test"].size),
            "n_ood": int(D["ood"].size),
            "encoder": "mlp 64->256->256->64 (+ projection head)",
            "epochs": epochs,
            "tau": 0.2,
        },  # fmt: skip
        "train_seconds": train_seconds,
        "final_loss": emb["history"][-1]["loss"],
        "knn_accuracy": acc,
        "diagnostics": _diag_summary(rep),
        "diagnostics_untrained": _diag_summary(rep.baseline) if rep.baseline is not None else None,
        "diagnostics_markdown": rep.to_markdown(),
        "gaussian": {
            "shrinkage": model.shrinkage_,
            "entropy_nats": model.entropy(),
            "mean_test_loglik": model.score(Z["test"]),
            "mean_ood_loglik": model.score(Z["ood"]),
        },
        "ood": ood,
        "retrieval": retrieval,
        "plots": [str(p) for p in files],
    }


def _knn_accuracy(Ztr, ytr, Zte, yte, k: int = 10) -> float:
    a = Ztr / np.linalg.norm(Ztr, axis=1, keepdims=True)
    b = Zte / np.linalg.norm(Zte, axis=1, keepdims=True)
    nn = np.argsort(-(b @ a.T), axis=1)[:, :k]
    votes = np.apply_along_axis(lambda r: np.bincount(r, minlength=10).argmax(), 1, ytr[nn])
    return float((votes == yte).mean())


def _retrieval_part(Z, D, y, seed) -> dict[str, Any] | str:
    try:
        from infogauss import CalibratedRetriever, metrics
    except ImportError as exc:  # faiss missing
        return f"skipped: {exc}"
    half = D["test"].size // 2
    q_cal, q_eval = Z["test"][:half], Z["test"][half:]
    y_cal, y_eval = y[D["test"]][:half], y[D["test"]][half:]
    r = CalibratedRetriever(alpha=0.01, seed=seed).fit(Z["train"], y[D["train"]])
    r.calibrate_relevance(q_cal, y_cal, k=5)
    res = r.search(q_eval, k=5)
    rel = res.labels == y_eval[:, None]
    res_ood = r.search(Z["ood"], k=5)
    top1_declared = res.match[:, 0]
    return {
        "recall@1": metrics.recall_at_k(rel, 1),
        "precision@1": float(rel[:, 0].mean()),
        "mAP@5": metrics.map_at_k(rel, 5),
        "declared_match_rate_top1": float(top1_declared.mean()),
        "wrong_class_among_declared_top1": float(
            (~rel[:, 0] & top1_declared).sum() / max(1, top1_declared.sum())
        ),
        "relevance_ece": metrics.expected_calibration_error(rel.ravel(), res.relevance.ravel()),
        "abstain_in_distribution": float(res.abstain.mean()),
        "abstain_ood": float(res_ood.abstain.mean()),
    }


def _plots(rep, curves, out: Path) -> list[Path]:
    try:
        from infogauss.plotting.diagnostics import plot_report
        from infogauss.plotting.ood import plot_ood_roc
    except ImportError:
        return []
    from infogauss.plotting._mpl import plt

    files = list(plot_report(rep, out, prefix="digits_"))
    ax = plot_ood_roc(curves, title="digits 0-5 (in) vs 6-9 (OOD)")
    path = out / "digits_ood_roc.png"
    ax.figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(ax.figure)
    files.append(path)
    return files


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "n/a"
    return f"{100 * v:.1f}%" if pct else f"{v:.3f}"


def render(report: dict[str, Any]) -> str:
    s, dg = report["synthetic"], report["digits"]
    lines = [
        "# infogauss demo report",
        "",
        "## 1. Paper's synthetic setting (Laplace 1024-d -> linear 256-d, InfoNCE tau=0.1)",
        f"trained {s['config']['epochs']} epochs in {s['train_seconds']:.1f}s, "
        f"final loss {s['final_loss']:.3f}",
        "",
        "| encoder | norm CV | AD pass | DP pass | verdict |",
        "|---|---|---|---|---|",
    ]
    for k in ("before", "after"):
        r = s[k]
        lines.append(
            f"| {'untrained' if k == 'before' else 'trained'} | {_fmt(r['norm_cv'])} | "
            f"{_fmt(r['ad_pass'], True)} | {_fmt(r['dp_pass'], True)} | {r['verdict']} |"
        )
    c = dg["config"]
    lines += [
        "",
        f"## 2. Digits: classes {c['in_classes']} in, {c['ood_classes']} OOD",
        f"MLP trained {c['epochs']} epochs ({dg['train_seconds']:.1f}s), "
        f"kNN accuracy on test = {100 * dg['knn_accuracy']:.1f}%",
        "",
        "Gaussianity of the test embeddings (untrained encoder in brackets): "
        f"norm CV {_fmt(dg['diagnostics']['norm_cv'])} "
        f"[{_fmt((dg['diagnostics_untrained'] or {}).get('norm_cv'))}], "
        f"AD pass {_fmt(dg['diagnostics']['ad_pass'], True)} "
        f"[{_fmt((dg['diagnostics_untrained'] or {}).get('ad_pass'), True)}]; "
        f"verdict: {dg['diagnostics']['verdict']}",
        "",
        "| OOD detector | AUROC | FPR@95TPR | in-dist flagged at alpha=0.05 (conformal) | OOD flagged |",
        "|---|---|---|---|---|",
    ]
    for name, m in dg["ood"].items():
        lines.append(
            f"| {name} | {_fmt(m['auroc'])} | {_fmt(m['fpr95'], True)} | "
            f"{_fmt(m.get('conformal_fpr_at_0.05'), True)} | {_fmt(m.get('ood_flagged_at_0.05'), True)} |"
        )
    rt = dg["retrieval"]
    lines.append("")
    if isinstance(rt, dict):
        lines += [
            "Calibrated retrieval (database = train embeddings, alpha = 0.01): "
            f"recall@1 {_fmt(rt['recall@1'], True)}, mAP@5 {_fmt(rt['mAP@5'])}, "
            f"top-1 declared a match for {_fmt(rt['declared_match_rate_top1'], True)} of queries "
            f"(wrong class among those: {_fmt(rt['wrong_class_among_declared_top1'], True)}), "
            f"relevance ECE {_fmt(rt['relevance_ece'])}, abstained on "
            f"{_fmt(rt['abstain_in_distribution'], True)} of in-distribution vs "
            f"{_fmt(rt['abstain_ood'], True)} of OOD queries.",
        ]
    else:
        lines.append(f"Calibrated retrieval: {rt}")
    lines += [
        "",
        f"Total time {report['seconds']:.1f}s. "
        f"Plots: {', '.join(Path(p).name for p in dg['plots']) or 'none'}",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", default="demo_output", help="output directory")
    ap.add_argument("--epochs", type=int, default=60, help="InfoNCE epochs on digits")
    ap.add_argument("--synthetic-epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="tiny settings (tests)")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--no-progress", action="store_true",
                    help="print no step lines or progress bars (stderr)")
    args = ap.parse_args(argv)
    try:
        import infogauss.contrastive  # noqa: F401
    except ImportError as exc:
        print(f"infogauss demo: {exc}", file=sys.stderr)
        return 2
    from . import _io

    global _STEPS, _BARS
    _STEPS = _Steps(6 if args.no_plots else 7, enabled=not args.no_progress)
    _BARS = not args.no_progress and sys.stderr.isatty()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"infogauss demo: error: `--out` must be a directory, got the file {args.out!r}",
              file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    epochs = 3 if args.quick else args.epochs
    syn_epochs = 2 if args.quick else args.synthetic_epochs
    report = {
        "synthetic": _synthetic_part(args.seed, syn_epochs, args.quick),
        "digits": _digits_part(args.seed, epochs, out, not args.no_plots),
    }
    report["seconds"] = time.perf_counter() - t0
    text = render(report)
    md = _io.write_text(out / "report.md",
                        text + "\n" + report["digits"].pop("diagnostics_markdown"))
    js = _io.write_text(out / "report.json", json.dumps(report, indent=2, default=float) + "\n")
    print(text)
    written = [js, md, *report["digits"]["plots"]]
    print(f"wrote {len(written)} files in {out}/: " + ", ".join(Path(p).name for p in written))
    print(f"demo finished in {report['seconds']:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
