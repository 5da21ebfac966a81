"""Markdown renderers of benchmark results: each takes a results payload (the schema of
:func:`infogauss._io.write_results`) and returns markdown; nothing is computed here that is not
in the payload, so a table can always be regenerated from its JSON file.

One function per benchmark (``ood``, ``retrieval``, ``table1``, ``calibration``,
``scoring_speed``, ``train_throughput``, ``train_cifar10``, ``scale``), the sentences of Table 1
(``table1_sentence``, ``table1_pattern``) and the provenance line every table carries
(:func:`describe_commit`, :func:`source_line`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infogauss._io import upgrade_results
from infogauss.calibration import binomial_band

__all__ = [
    "describe_commit", "source_line", "ood", "retrieval", "table1", "table1_sentence",
    "table1_pattern", "calibration", "scoring_speed", "train_throughput", "train_cifar10",
    "scale", "headline", "arch", "crops", "SMALL_NS",
]

#: Subsample sizes of Table 1's "AD at n=100 / 500" column.
SMALL_NS = (100, 500)


# ----------------------------------------------------------------------------- provenance
def _environment(payload: dict) -> dict:
    return upgrade_results(payload)["environment"]


def describe_commit(payload: dict, width: int = 12) -> str:
    """``abc123def456``, with a visible mark when the results came from a dirty tree."""
    git = _environment(payload)["git"]
    sha = "unknown commit" if not git.get("sha") else str(git["sha"])[:width]
    if git.get("dirty"):
        n = len(git.get("modified") or [])
        sha += " ⚠ DIRTY TREE" + (f" ({n} modified file{'s' if n != 1 else ''})" if n else "")
    return sha


def _cores(payload: dict) -> Any:
    return _environment(payload)["machine"].get("cores") or ""


def source_line(payload: dict) -> str:
    """``_Source: `<file>` — git <commit>, <time> <cpu> (<cores> cores)._``"""
    env = _environment(payload)
    m = env["machine"]
    return (f"_Source: `{payload.get('_file', '')}` — git {describe_commit(payload)}, "
            f"{env.get('timestamp_utc', '')} {m.get('cpu') or ''} ({m.get('cores') or ''} "
            "cores)._")


def _fmt(v: Any, fmt: str = ".3g") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (int, float)):
        return format(v, fmt)
    return str(v)


# ----------------------------------------------------------------------------- ood_cifar10
def ood(results: dict[str, Any]) -> str:
    """The tables of an ``ood_cifar10`` results file."""
    alphas = results["calibration_setup"]["alphas"]
    lines = ["# CIFAR-10 OOD benchmark", ""]
    d = results["data"]
    cpus = _cores(results)
    sha = describe_commit(results, width=10)
    lines += [
        f"Embeddings: `{d.get('directory')}` (dim {d['dim']}; train {d['n_train_used']} of "
        f"{d['n_train']}; test {d['n_test']}). Seed {results['seed']}, git `{sha}`, "
        f"{cpus} CPUs, {results['runtime_seconds']:.0f} s.",
        "",
        "Scores: higher = more in-distribution. FPR95 = fraction of OOD accepted at the "
        "threshold keeping 95% of CIFAR-10 test. Best value per column in bold.",
        "",
    ]
    for k, table in results["metrics"].items():
        lines += [f"## CIFAR-10 vs {k}", "",
                  "| method | AUROC | FPR95 | AUPR-In | AUPR-Out | det. error |",
                  "|---|---:|---:|---:|---:|---:|"]
        cols = [("auroc", max), ("fpr_at_tpr", min), ("aupr_in", max), ("aupr_out", max),
                ("detection_error", min)]
        best = {c: f([r[c] for r in table.values()]) for c, f in cols}
        for name, r in table.items():
            cells = []
            for c, _ in cols:
                v = f"{100 * r[c]:.2f}"
                cells.append(f"**{v}**" if r[c] == best[c] else v)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    cs = results["calibration_setup"]
    oods = list(results["metrics"])
    lines += [
        "## Calibrated decisions (split conformal)", "",
        f"Calibrate on {cs['n_calibration']} CIFAR-10 test points, evaluate on the other "
        f"{cs['n_evaluation']}; FPR = fraction of in-distribution flagged (mean ± sd over "
        f"{cs['splits']} random cuts; [binomial 95% interval of the FPR at exactly α for the "
        "first cut]); then the fraction of each OOD set flagged (first cut).", "",
        "| method | α | FPR (mean ± sd) | first cut [interval] | "
        + " | ".join(f"flagged {k}" for k in oods) + " |",
        "|---|---:|---:|---:|" + "---:|" * len(oods),
    ]
    for name, per in results["calibration"].items():
        for a, r in per.items():
            f = r["first_split"]
            lines.append(
                f"| {name} | {a} | {100 * r['fpr_mean']:.2f} ± {100 * r['fpr_sd']:.2f} | "
                f"{100 * f['fpr']:.2f} [{100 * f['interval_low']:.2f}, "
                f"{100 * f['interval_high']:.2f}] | "
                + " | ".join(f"{100 * f['ood_flagged'][k]:.1f}" for k in oods) + " |"
            )
    lines += ["", "## Analytic p-values on CIFAR-10 test (FPR at α; nominal = α)", "",
              "| method | law | " + " | ".join(f"α={a}" for a in alphas) + " |",
              "|---|---|" + "---:|" * len(alphas)]
    for name, laws in results["analytic_pvalues"].items():
        for law, r in laws.items():
            if "error" in r:
                lines.append(f"| {name} | {law} | " + " | ".join("n/a" for _ in alphas) + " |")
            else:
                lines.append(f"| {name} | {law} | "
                             + " | ".join(f"{100 * r[str(a)]:.2f}" for a in alphas) + " |")
    lines += ["", "## Detectors", ""]
    for name, det in results["detectors"].items():
        info = {k: v for k, v in det.items() if k not in ("params",)}
        lines.append(f"- `{name}`: " + ", ".join(
            f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items()))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- retrieval_cifar10
def _g(x, digits=4):
    return "—" if x is None else f"{x:.{digits}g}"


def retrieval(result: dict) -> str:
    """The tables of a ``retrieval_cifar10`` results file."""
    m = result["metrics"]
    cfg = result["config"]
    ood_alpha = cfg["ood_alpha"]
    lines = [
        "# Calibrated retrieval on CIFAR-10 embeddings",
        "",
        f"Generated by `infogauss bench retrieval` from `{cfg['embeddings']}` "
        f"(database {cfg['n_database']} x {cfg['dim']}, {cfg['n_queries']} test queries, "
        f"OOD sets {cfg['ood_sizes']}), seed {result['seed']}, git {describe_commit(result)}.",
        "",
        "## Retrieval quality",
        "",
        "| space | recall@1 | recall@10 | mAP@100 | mAP@100 (TREC, /min(k,R)) |",
        "|---|---|---|---|---|",
    ]
    for space in ("raw", "whitened"):
        rr = m[space]["retrieval"]
        maps = [v for key, v in rr.items() if key.startswith("map_")]
        lines.append(
            f"| {space} cosine | {_g(rr['recall_at_1'])} | {_g(rr['recall_at_10'])} | "
            f"{_g(maps[0])} | {_g(maps[1])} |"
        )
    lines += [
        "",
        "## False-match rate (null test: best other-class neighbour declared a match)",
        "",
        "| space | null / correction | alpha | FMR [95% CI] | FMR/alpha | within 1.5x | "
        "operational FMR | OOD match rate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for space in ("raw", "whitened"):
        for label, entry in m[space]["false_match"].items():
            for a, e in entry.items():
                nt = e["null_test"]
                oods = ", ".join(f"{o}: {_g(v, 3)}" for o, v in e["ood_match_rate"].items())
                lines.append(
                    f"| {space} | {label} | {a} | {_g(nt['rate'], 3)} "
                    f"[{_g(nt['ci95'][0], 3)}, {_g(nt['ci95'][1], 3)}] | "
                    f"{_g(nt['ratio_to_nominal'], 3)} | "
                    f"{'yes' if nt['within_factor_1_5'] else 'no'}"
                    f" | {_g(e['operational']['rate'], 3)} | {oods or '—'} |"
                )
    lines += ["", f"Within a factor 1.5 of nominal at alpha = 0.01: {m['summary_within_1_5']}", ""]
    lines += [
        "## Match-probability calibration",
        "",
        "Top-10 pairs; calibrated on half of the test queries, evaluated on the other half.",
        "",
        "| space | method | ECE | Brier |",
        "|---|---|---|---|",
    ]
    for space in ("raw", "whitened"):
        for method, e in m[space]["calibration"].items():
            lines.append(f"| {space} | {method} | {_g(e['ece'], 3)} | {_g(e['brier'], 3)} |")
    lines += [
        "",
        f"## Abstention rate (query OOD p-value <= {ood_alpha})",
        "",
        "| query set | empirical (rank) | analytic (Hotelling F) |",
        "|---|---|---|",
    ]
    for qset, e in m["whitened"]["abstention"].items():
        lines.append(f"| {qset} | {_g(e.get('empirical'), 3)} | {_g(e.get('analytic'), 3)} |")
    t = m["throughput"]
    lines += [
        "",
        f"## Throughput (queries/s, {t['n_queries']} queries, k = {t['k']}, same run)",
        "",
        "| method | queries/s | notes |",
        "|---|---|---|",
        f"| numpy matmul + argpartition (raw) | {_g(t['numpy_matmul_argpartition_raw'], 4)} "
        "| baseline |",
        f"| faiss IndexFlatIP (whitened, index only) | "
        f"{_g(t['faiss_flat_whitened_index_only'], 4)} | |",
        f"| CalibratedRetriever.search, flat | {_g(t['calibrated_search_flat'], 4)} | "
        "whitening, p-values, OOD p-value, raw cosines |",
    ]
    for kind in ("ivf", "hnsw"):
        if f"calibrated_search_{kind}" in t:
            rk = next(v for key, v in t.items() if key.startswith(f"{kind}_recall_at"))
            lines.append(
                f"| CalibratedRetriever.search, {kind} | {_g(t[f'calibrated_search_{kind}'], 4)} | "
                f"recall@{t['k']} vs exact {_g(rk, 3)}, "
                f"build {_g(t[f'{kind}_build_seconds'], 3)} s, "
                f"{t[f'{kind}_params']} |"
            )
    wall = _g(result["elapsed_seconds"], 3)
    cpus = _cores(result)
    lines += ["", f"Total wall time: {wall} s on {cpus} CPUs.", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- paper_table1
def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _num(v, fmt=".3f") -> str:
    return "–" if v is None else format(v, fmt)


def table1_sentence(row: dict, epoch0: dict | None) -> str:
    """One row's agreement with the paper and the Gaussian null, generated from its numbers."""
    o, n, p = row["ours"], row["null"], row["paper"]
    parts = []
    if p is not None:
        d_ad = o["ad_pass"] - p["ad_pass"]
        d_dp = o["dp_pass"] - p["dp_pass"]
        d_cv = o["cv"] - p["cv"]
        off = [name for name, gap, tol in (("AD", d_ad, 0.10), ("DP", d_dp, 0.10),
                                           ("CV", d_cv, max(0.03, 0.3 * p["cv"])))
               if abs(gap) > tol]
        verdict = ("Agrees with the paper" if not off else
                   f"Disagrees with the paper on {', '.join(off)}")
        parts.append(
            f"{verdict} (tolerance ±10 pt on pass rates, ±max(0.03, 30%) on CV): AD pass "
            f"{_pct(o['ad_pass'])} vs {_pct(p['ad_pass'])} ({100 * d_ad:+.1f} pt), DP "
            f"{_pct(o['dp_pass'])} vs {_pct(p['dp_pass'])} ({100 * d_dp:+.1f} pt), CV "
            f"{o['cv']:.3f} vs {p['cv']:.2f}.")
    lo, hi = n["ad_band"]
    where = "inside" if lo <= o["ad_pass"] <= hi else ("below" if o["ad_pass"] < lo else "above")
    parts.append(f"Against exact Gaussians of the same size (AD pass {_pct(n['ad_pass'])}, "
                 f"99% band {_pct(lo)}–{_pct(hi)}) ours is {where} the band; "
                 f"{row['checks_passed']}/{row['checks_run']} checks pass.")
    if p is not None and p["ad_pass"] >= 0.999:
        parts.append("The paper's 100% exceeds what exact Gaussians give (~95%).")
    if epoch0 is not None and row is not epoch0:
        d = row["ours"]["ad_pass"] - epoch0["ours"]["ad_pass"]
        parts.append(f"Training moved AD pass from {_pct(epoch0['ours']['ad_pass'])} at epoch 0 "
                     f"by {100 * d:+.1f} pt (checks {epoch0['checks_passed']} -> "
                     f"{row['checks_passed']}).")
    return " ".join(parts)


def table1_pattern(rows: list[dict]) -> list[str]:
    """The paper's qualitative claims, checked on our numbers (one sentence each)."""
    out = []
    bins: dict[str, dict] = {}
    for r in rows:
        if r["key"].startswith("binary"):
            bins.setdefault(r["label"], {})[r["epoch"]] = r
    for label, by_epoch in bins.items():
        e0, elast = by_epoch.get(0), by_epoch.get(max(by_epoch))
        if e0 is None or elast is None or elast is e0:
            continue
        ok0 = e0["ours"]["ad_pass"] < e0["null"]["ad_band"][0]
        okl = elast["ours"]["ad_pass"] >= elast["null"]["ad_band"][0]
        out.append(
            f"{label}: epoch 0 {'is' if ok0 else 'is not'} non-Gaussian (AD pass "
            f"{_pct(e0['ours']['ad_pass'])}), epoch {elast['epoch']} {'is' if okl else 'is not'} "
            f"within the Gaussian band (AD pass {_pct(elast['ours']['ad_pass'])}): the paper's "
            f"pattern {'holds' if ok0 and okl else 'does not hold'} here.")
    for layer in ("backbone", "head"):
        c = next((r for r in rows if r["key"] == f"cifar_contrastive_{layer}"), None)
        s = next((r for r in rows if r["key"] == f"cifar_supervised_{layer}"), None)
        if c and s:
            more = c["ours"]["ad_pass"] > s["ours"]["ad_pass"] + 0.1
            out.append(
                f"CIFAR-10 {layer}: contrastive AD pass {_pct(c['ours']['ad_pass'])} vs supervised "
                f"{_pct(s['ours']['ad_pass'])} — contrastive is "
                f"{'markedly more' if more else 'not markedly more'} Gaussian (checks "
                f"{c['checks_passed']}/{c['checks_run']} vs "
                f"{s['checks_passed']}/{s['checks_run']}).")
    by_key = {r["key"]: r for r in rows}
    small = {k: (by_key[k].get("ad_pass_by_n") or {}).get("100") for k in by_key
             if k.startswith("cifar_")}
    if small:
        out.append("CIFAR-10 at n=100 (the paper's protocol on small samples): AD pass "
                   + ", ".join(f"{by_key[k]['label']} {_pct(v)}" for k, v in small.items()) + ".")
    return out


def table1(rows: list[dict], meta: dict) -> str:
    """Table 1 (paper vs ours vs the null) of ``paper_table1`` rows; ``meta``: preset, seed."""
    lines = [
        f"# Table 1 — paper vs infogauss (preset `{meta['preset']}`, seed {meta['seed']})",
        "",
        "Paper = its reported CV / AD pass / DP pass. Ours = the same protocol on our run. "
        "Null = what exact Gaussians of the same n give (AD; 99% binomial band). Proj/White = AD "
        "pass on random orthonormal projections / whitened held-out coordinates. KS F = held-out "
        "squared Mahalanobis vs the exact F law (Monte Carlo p). Mardia z = kurtosis. "
        "AD at n=100 / 500 = the paper's AD protocol on random subsamples of that many rows (the "
        "paper does not state its n; the test's power grows with n).",
        "",
        "| row | epoch | paper CV / AD / DP | ours CV / AD / DP | AD at n=100 / 500 | null AD (band) "
        "| proj AD | white AD | KS F (p) | Mardia z | checks |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p, o, n = r["paper"], r["ours"], r["null"]
        paper = "–" if p is None else f"{p['cv']:.2f} / {_pct(p['ad_pass'])} / {_pct(p['dp_pass'])}"
        white = None if r["whitened"] is None else r["whitened"]["ad_pass"]
        ks = "–" if r["joint"] is None else (f"{r['joint']['ks_f']:.3f} "
                                             f"({r['joint']['ks_f_pvalue']:.2g})")
        small = r.get("ad_pass_by_n") or {}
        small = " / ".join(_pct(small.get(str(k))) for k in SMALL_NS)
        lines.append(
            f"| {r['label']} | {r['epoch']} | {paper} | {o['cv']:.3f} / {_pct(o['ad_pass'])} / "
            f"{_pct(o['dp_pass'])} | {small} | {_pct(n['ad_pass'])} ({_pct(n['ad_band'][0])}–"
            f"{_pct(n['ad_band'][1])}) | {_pct(r['projections']['ad_pass'])} | {_pct(white)} | "
            f"{ks} | {_num(r['mardia_kurt_z'], '.1f')} | {r['checks_passed']}/{r['checks_run']} |")
    lines += ["", "## Row by row", ""]
    lines += [f"- **{r['label']}, epoch {r['epoch']}.** {r['sentence']}" for r in rows]
    summary = table1_pattern(rows)
    if summary:
        lines += ["", "## The paper's pattern", ""] + [f"- {s}" for s in summary]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- calibration
def calibration(payload: dict) -> str:
    """Nominal vs observed false-alarm rates of a ``calibration`` results file."""
    alphas = payload["config"]["alphas"]
    lines = [
        "# Calibration: nominal vs observed false-alarm rate",
        "",
        f"{payload['config']['cuts']} random cuts of each test set into calibration / evaluation "
        "halves, each fitting on a random 90% of train; mean ± sd of the evaluation half flagged; "
        "✓ = mean inside the central 99% binomial range of α for one evaluation half (✗ outside). "
        "`+g` = after `Gaussianizer()`.",
        "",
        "| set | method | α = 0.01 | α = 0.05 | α = 0.1 |",
        "|---|---|---|---|---|",
    ]
    for name, res in payload["sets"].items():
        for m, row in res["methods"].items():
            cells = [f"{100 * row[a]['mean']:.2f} ± {100 * row[a]['sd']:.2f}% "
                     f"{'✓' if row[a]['inside'] else '✗'}" for a in map(str, alphas)]  # fmt: skip
            lines.append(f"| {name} | {m} | " + " | ".join(cells) + " |")
    mom = [(n, k, v) for n, r in payload["sets"].items()
           for k, v in r.get("distance_moments", {}).items()]  # fmt: skip
    if mom:
        lines += ["", "Held-out squared Mahalanobis distances against the F law the analytic "
                  "p-values use (ratios of mean, variance and 95% quantile; 1 = the law holds):",
                  "", "| set | features | mean | variance | 95% quantile | whitened held-out "
                  "coordinates passing AD at 5% |", "|---|---|---|---|---|---|"]
        lines += [f"| {n} | {k} | {v['mean_ratio']:.2f} | {v['var_ratio']:.2f} | "
                  f"{v['q95_ratio']:.2f} | {_pct(v.get('whitened_ad_pass'))} |"
                  for n, k, v in mom]  # fmt: skip
    aur = [(n, k, v) for n, r in payload["sets"].items() for k, v in r["auroc"].items()]
    if aur:
        lines += ["", "| set | OOD set | AUROC of the default score |", "|---|---|---|"]
        lines += [f"| {n} | {k} | {100 * v:.2f} |" for n, k, v in aur]
    return "\n".join(lines) + "\n"


def near_duplicates(payload: dict) -> str:
    """False-match rate and recall of a ``near_duplicates`` results file."""
    alphas = [str(a) for a in payload["config"]["alphas"]]
    lines = [
        "# Near-duplicate search: false-match rate and recall",
        "",
        f"{payload['config']['cuts']} random cuts of each pool into a database half and a "
        "no-copy half (split again into calibration / evaluation); queries with a copy = "
        "transformed copies of database items. Cells: false-match rate on the evaluation "
        "half, pooled over cuts, with its 95% binomial interval [..] and the cut-level 95% "
        "interval (..) (the cuts share one pool: the binomial one is too narrow) / recall of "
        "copies (declared "
        "match = the original). `neighbour` = `CalibratedRetriever` as shipped (fitted on the "
        "database alone); `tuned_*` = a threshold set on the labelled calibration half; "
        "`cosine_same_rate` = the raw-cosine threshold with exactly `neighbour`'s false matches "
        "on each evaluation half (recall at the same realised rate).",
        "",
        "| set | method | " + " | ".join(f"α = {a}" for a in alphas) + " |",
        "|---|---|" + "---|" * len(alphas),
    ]
    for name, res in payload["sets"].items():
        for m, row in res["methods"].items():
            cells = []
            for a in alphas:
                r = row[a]
                lo, hi = r["interval95"]
                cut = r.get("interval95_cuts")
                cut_txt = "" if cut is None else f" ({100 * cut[0]:.2f}, {100 * cut[1]:.2f})"
                cells.append(f"{100 * r['false_match_rate']:.2f}% [{100 * lo:.2f}, {100 * hi:.2f}]"
                             f"{cut_txt} / {100 * r['recall']:.1f}%")  # fmt: skip
            lines.append(f"| {name} | {m} | " + " | ".join(cells) + " |")
    lines += ["", "Recall by transformation at α = 0.01:", "",
              "| set | transform | neighbour | tuned_cosine | tuned_whitened | cosine_same_rate |",
              "|---|---|---|---|---|---|"]
    for name, res in payload["sets"].items():
        m = res["methods"]
        for t in res["transforms"]:
            vals = [m[k]["0.01"]["recall_by_transform"][t] for k in
                    ("neighbour", "tuned_cosine", "tuned_whitened", "cosine_same_rate")]  # fmt: skip
            lines.append(f"| {name} | {t} | " + " | ".join(f"{100 * v:.1f}%" for v in vals) + " |")
    return "\n".join(lines) + "\n"


def ood_suite(payload: dict) -> str:
    """Best infogauss vs best baseline per set, and every detector's row, of ``ood_suite``."""
    lines = ["",
             "AUROC (%) of the best infogauss detector and the best baseline per OOD set (both "
             "chosen on the OOD set: oracles), and of the detector `select_detector` chose from "
             "the training embeddings alone.", "",
             "| set | OOD | best infogauss | best baseline | margin (pts) | fit + score s (infogauss / "
             "baseline) | selected (choice) |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    n_rows = n_close = n_ahead = n_level = 0

    def secs(res: dict, d: str) -> str:
        info = res["detectors"].get(d, {})
        if "fit_seconds" not in info:
            return "-"
        return f"{info['fit_seconds'] + info['score_seconds']:.1f}"

    for name, res in payload["sets"].items():
        choice = res["detectors"].get("selected", {}).get("choice", "-")
        for k, s in res["summary"].items():
            sel = s["selected_auroc"]
            n_rows += 1
            n_close += s["margin_points"] >= -0.5
            n_ahead += s["margin_points"] > 0.05
            n_level += abs(s["margin_points"]) <= 0.05
            lines.append(f"| {name} | {k} | {s['best_infogauss']} {100 * s['best_infogauss_auroc']:.2f} | "
                         f"{s['best_baseline']} {100 * s['best_baseline_auroc']:.2f} | "
                         f"{s['margin_points']:+.2f} | "
                         f"{secs(res, s['best_infogauss'])} / {secs(res, s['best_baseline'])} | "
                         f"{'-' if sel is None else f'{100 * sel:.2f}'} ({choice}) |")  # fmt: skip
    if n_rows:
        lines += ["", f"The best infogauss detector is within 0.5 points of the best baseline on "
                      f"{n_close} of {n_rows} OOD sets, ahead of it by more than 0.05 points on "
                      f"{n_ahead} and level with it (within ±0.05) on {n_level}."]  # fmt: skip
    runs: dict[str, list[str]] = {}
    for name, res in payload["sets"].items():
        git = ((res.get("run") or {}).get("environment") or payload.get("environment") or {}).get("git") or {}
        sha = (git.get("sha") or "unknown")[:7] + (" (dirty)" if git.get("dirty") else "")
        cfg = (res.get("run") or {}).get("config") or {}
        if cfg:  # a merge with another seed or split count is a different run too
            sha += f" (seed {cfg.get('seed', '?')}, {cfg.get('splits', '?')} splits)"
        runs.setdefault(sha, []).append(name)
    if len(runs) > 1:  # a --merge run: say which sets ran at which commit
        lines += ["", "Sets run at different commits (a `--merge` run redid some; a detector "
                      "added later has rows only where it ran): "
                  + "; ".join(f"{', '.join(v)} at {k}" for k, v in runs.items()) + "."]
    for name, res in payload["sets"].items():
        oods = list(res["metrics"])
        lines += ["", f"## {name} (n_train {res['n_train']:,}, d {res['dim']})", "",
                  "| detector | " + " | ".join(f"AUROC {k}" for k in oods)
                  + " | FPR95 " + oods[0] + " | conformal FPR α=0.05 (mean over splits; ✓ inside "
                  "[the 95% range of α for one evaluation half]) | fit s | score s | MiB |",
                  "|---|" + "---|" * (len(oods) + 5)]  # fmt: skip
        for d, info in res["detectors"].items():
            if "error" in info or d not in res["conformal"]:
                continue
            c = res["conformal"][d]["0.05"]
            if "band95_one_half" not in c:  # results written before the band was stored
                n_half = c["n_eval"] // max(1, payload.get("config", {}).get("splits", 1))
                c = {**c, "band95_one_half": list(binomial_band(0.05, n_half, level=0.95))}
            b_lo, b_hi = c["band95_one_half"]
            ok = "✓" if b_lo <= c["fpr"] <= b_hi else "✗"
            au = " | ".join(f"{100 * res['metrics'][k][d]['auroc']:.2f}" for k in oods)
            lines.append(f"| {d} | {au} | {100 * res['metrics'][oods[0]][d]['fpr_at_tpr']:.1f} | "
                         f"{100 * c['fpr']:.2f} {ok} [{100 * b_lo:.2f}, {100 * b_hi:.2f}] | "
                         f"{info['fit_seconds']:.1f} | "
                         f"{info['score_seconds']:.1f} | {info['model_bytes'] / 2**20:.1f} |")  # fmt: skip
    return "\n".join(lines) + "\n"



def route2(payload: dict) -> str:
    """The route-2 regulariser runs side by side (``route2`` results)."""
    lines = ["CIFAR-10 encoders with the same recipe and wall-clock budget, trained side by side "
             "(one thread each), at route-2 strengths β (0 = plain InfoNCE); test embeddings "
             "diagnosed, calibration benchmark with 5 cuts.", "",
             "| β | budget | epochs | kNN backbone / head | layer | verdict (checks rejected) | "
             "AD pass | norm CV | analytic F at 5% (after Gaussianizer) | default at 5% | "
             "AUROC tin_crop / tin_resize |", "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in payload["rows"]:
        for layer, v in r["layers"].items():
            au = v["auroc"]
            lines.append(
                f"| {r['reg_beta']:g} | {_fmt(r['budget_minutes'])} min | {r['epochs']} | "
                f"{_num(r['knn_backbone'])} / {_num(r['knn_head'])} | {layer} | "
                f"{'Gaussian' if v['gaussian'] else 'not Gaussian'} ({v['n_rejected']}/{v['n_checks']}) | "
                f"{_pct(v['ad_pass'])} | {_num(v['norm_cv'])} | {_pct(v['analytic_f_fpr_0.05'])} "
                f"({_pct(v['analytic_f_fpr_0.05_gaussianized'])}) | {_pct(v['default_fpr_0.05'])} | "
                f"{_num(100 * au.get('tin_crop', float('nan')), '.2f')} / "
                f"{_num(100 * au.get('tin_resize', float('nan')), '.2f')} |"
            )  # fmt: skip
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- report sections
def scoring_speed(p: dict) -> str:
    """Fit and scoring throughput of a ``scoring_speed`` results file."""
    rows = [
        "| n | d | dtype | fit s | × sklearn LedoitWolf | score rows/s | fraction of GEMM | GEMM GF/s "
        "| × sklearn mahalanobis | × torch pinv | max rel. diff vs sklearn |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in p["cases"]:
        rows.append(
            f"| {c['n']:,} | {c['d']} | {c['dtype']} | {c['fit_seconds']:.3f} | "
            f"{c['fit_speedup_vs_sklearn_ledoitwolf']:.1f} | {c['score_rows_per_s']:,.0f} | "
            f"{c['score_fraction_of_gemm']:.2f} | {c['gemm_gflops']:.0f} | "
            f"{c['score_speedup_vs_sklearn']:.0f} | {_fmt(c.get('score_speedup_vs_torch_pinv'), '.1f')} | "
            f"{c['max_rel_diff_vs_sklearn']:.1e} |"
        )
    m = p.get("memory")
    if m:
        rows += [
            "",
            f"Scoring {m['n']:,} × {m['d']} float32 rows ({m['input_bytes'] / 2**30:.2f} GiB of input) "
            f"took {m['peak_extra_gib']:.3f} GiB of extra memory (tracemalloc peak; the output alone is "
            f"{m['output_bytes'] / 2**20:.0f} MiB) at {m['score_rows_per_s']:,.0f} rows/s.",
        ]
    return "\n".join(rows)


def train_throughput(p: dict) -> str:
    """img/s per encoder and precision of a ``train_throughput`` results file."""
    rows = [
        "| encoder | params | precision | channels_last | img/s | augmentation share | data share |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in p["results"]:
        rows.append(
            f"| {r['encoder']} | {r['n_params'] / 1e6:.2f}M | {r['precision']} | {r['channels_last']} | "
            f"{r['img_per_s']:.0f} | {100 * r['aug_share']:.1f}% | {100 * r['data_share']:.2f}% |"
        )
    rows += ["", p.get("description", "")]
    return "\n".join(rows)


def arch(r: dict, root: Path | None = None) -> str:
    """``small_cnn 48-96-192`` (or the encoder's name) of a ``train_cifar10`` result.

    Older results name only the checkpoint; its ``.config.json`` under ``root`` holds the spec.
    """
    spec = r.get("encoder_spec")
    if spec is None and r.get("checkpoint") and root is not None:
        cfg = Path(root) / str(r["checkpoint"]).replace(".pt", ".config.json")
        spec = json.loads(cfg.read_text()).get("encoder") if cfg.exists() else None
    widths = (spec or {}).get("widths")
    if r.get("encoder") == "small_cnn":
        widths = widths or [32, 64, 128]  # build_encoder's default
        return f"small_cnn {'-'.join(str(w) for w in widths)}"
    return str(r.get("encoder"))


def crops(cfg: dict) -> str:
    """Training crop side(s): ``24 px``, or ``16→20→24 px (progressive)`` for a list."""
    c = cfg.get("crop_size") or 32
    if isinstance(c, list):
        return "→".join(str(v) for v in c) + " px (progressive)" if len(c) > 1 else f"{c[0]} px"
    return f"{c} px"


def train_cifar10(p: dict, root: Path | None = None) -> str:
    """The table of ``train_cifar10`` runs (``p = {"runs": [payload, ...]}``)."""
    lines = [
        "| run | encoder | params (backbone / total) | mode | train crops | budget | epochs | mean img/s "
        "| kNN acc. backbone | kNN acc. head | test acc. (classifier) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for r in p["runs"]:
        m, cfg = r.get("metrics", {}), r.get("config", {})
        params = f"{r.get('n_params_backbone', 0) / 1e6:.2f}M / {r.get('n_params_total', 0) / 1e6:.2f}M"
        name = r.get("name") or Path(r["_file"]).stem.removeprefix("train_cifar10_")
        lines.append(
            f"| `{name}` | {arch(r, root)} | {params} | {r.get('mode')} | {crops(cfg)} "
            f"| {_fmt(r.get('budget_minutes'))} min | {r.get('epochs_completed')} "
            f"| {_fmt(r.get('mean_img_per_s'), '.0f')} | {_fmt(m.get('knn_acc_backbone'), '.4f')} "
            f"| {_fmt(m.get('knn_acc_head'), '.4f')} | {_fmt(m.get('test_accuracy'), '.4f')} |"
        )
        load = r.get("load_avg_at_end")
        rates = sorted(h["img_per_s"] for h in r.get("history", []) if h.get("seconds", 0) > 10)
        spread = (f"; epochs ran at {rates[0]:.0f}–{rates[-1]:.0f} img/s (median "
                  f"{rates[len(rates) // 2]:.0f})" if rates else "")
        tau = f", temperature {cfg.get('temperature')}" if r.get("mode") == "simclr" else ""
        blas = r.get("environment", {}).get("machine", {}).get("blas") or [{}]
        n_thr = max((b.get("num_threads") or 0) for b in blas)
        spread += f"; {n_thr} thread(s)" if n_thr else ""
        notes.append(
            f"- `{name}`: optimizer {cfg.get('optimizer')}, lr {cfg.get('lr')}, weight decay "
            f"{cfg.get('weight_decay')}, batch {cfg.get('batch_size')}{tau}, augmentation "
            f"{cfg.get('augment')}, precision "
            f"{cfg.get('precision')}, channels_last {cfg.get('channels_last')}, seed {r.get('seed')}"
            + spread + (f"; load average at the end {load[0]:.1f}" if load else "")
            + ("" if r.get("resumed_after_epoch") is None else
               f"; interrupted after epoch {r['resumed_after_epoch']} and resumed from its checkpoint "
               f"(the time budget continues the checkpoint's clock)")
            + (f"; **route-2 regulariser β = {cfg.get('reg_beta'):g}, λ = {cfg.get('reg_lambda'):g}**"
               if (cfg.get("reg_beta") or 0) > 0 else "")
            + (f"; **trained and evaluated on classes {r['classes']} only** ({r.get('n_train')} "
               f"train, {r.get('n_test')} test images: the leave-classes-out encoder)"
               if r.get("classes") else "")
            + f". {source_line(r)}"
        )
    lines += [
        "",
        "kNN: k=200, cosine similarity, votes weighted by exp(sim/0.1), all 50,000 train -> all "
        "10,000 test images (32 px, whatever the training crop size). Mean img/s includes the "
        "kNN monitor and checkpoint writes; the first epoch includes warm-up.",
        "",
        *notes,
    ]
    return "\n".join(lines)


def scale(p: dict) -> str:
    """Out-of-core, Dask and projection tables of a ``scale`` results file."""
    a, b, c = p["a_out_of_core"], p["b_dask_vs_single"], p["c_projection"]
    cfg = p["config"]
    lines = [
        f"(a) out of core: {cfg['rows']:,.0f} × {cfg['dim']} {cfg['dtype']} "
        f"({a['file_bytes'] / 1e9:.1f} GB file), chunks of {cfg['chunk_rows']:,} rows",
        "",
        "| step | seconds | rows/s | peak RSS |",
        "|---|---|---|---|",
    ]
    for step in ("fit", "score"):
        s = a[step]
        lines.append(
            f"| {step} | {s.get('seconds', float('nan')):.1f} | {s.get('rows_per_s', float('nan')):,.0f} | "
            f"{(s.get('peak_rss_bytes') or a.get('peak_rss_bytes_fit_score') or 0) / 2**20:,.0f} MiB |"
        )
    lines += [
        "",
        f"Peak RSS under 2 GiB: {a.get('peak_rss_under_2GiB')}.",
        "",
        f"(b) Dask LocalCluster (2 worker processes, 127.0.0.1) vs one process on "
        f"{b['rows']:,} rows: single {b['single_process'].get('rows_per_s', float('nan')):,.0f} rows/s, "
        f"dask {b['dask_2_workers'].get('rows_per_s', float('nan')):,.0f} rows/s; max |Δ| between the "
        f"models {b['model_max_abs_diff']:.1e} (identical to 1e-10: {b['models_identical_1e-10']}).",
        "",
        f"(c) projection for {c['n_rows']:.0e} × {c['n_features']} on N workers:",
        "",
        "| workers | fit hours | score hours | memory per worker | client memory |",
        "|---|---|---|---|---|",
    ]
    for r in c.get("rows", []):
        lines.append(
            f"| {r['workers']} | {r['fit_hours']:.2f} | {r['score_hours']:.2f} | "
            f"{r['worker_memory_bytes'] / 2**30:.2f} GiB | {r['client_memory_bytes'] / 2**20:.0f} MiB |"
        )
    lines += ["", "Assumptions: " + "; ".join(str(x) for x in c.get("assumptions", []))]
    return "\n".join(lines)


def headline(items: list[tuple[str, Any]], root: Path | None = None) -> str:
    """README's results block: ``items`` are (section name, payload) of the report."""
    fmt = _fmt
    out = []
    for name, p in items:
        if name == "scoring_speed":
            big = [c for c in p["cases"] if c["d"] == 512 and c["dtype"] == "float32"]
            if big:
                c = max(big, key=lambda c: c["n"])
                out.append(
                    f"- Scoring n={c['n']:,}, d=512, float32: {c['score_rows_per_s']:,.0f} rows/s, "
                    f"{c['score_fraction_of_gemm']:.2f} of the GEMM rate measured in the same run, "
                    f"{c['score_speedup_vs_sklearn']:.0f}× scikit-learn's `mahalanobis`; fit "
                    f"{c['fit_speedup_vs_sklearn_ledoitwolf']:.1f}× faster than `LedoitWolf`."
                )
        elif name == "train_cifar10_*":
            for r in p["runs"]:
                if r.get("mode") != "simclr":
                    continue
                m, cfg = r.get("metrics", {}), r.get("config", {})
                if r.get("classes") or (cfg.get("reg_beta") or 0) > 0:
                    continue  # the leave-classes-out encoder and the route-2 runs: not headlines
                blas = (r.get("environment", {}).get("machine", {}).get("blas") or [{}])
                threads = max((b.get("num_threads") or 0) for b in blas) or None
                where = ("1 thread of a 2-core CPU" if threads == 1 else "2 CPU cores")
                out.append(
                    f"- InfoNCE on CIFAR-10, {where}, {fmt(r.get('budget_minutes'))} min: kNN "
                    f"accuracy (k=200) {fmt(m.get('knn_acc_backbone'), '.3f')} on the backbone, "
                    f"{fmt(m.get('knn_acc_head'), '.3f')} on the projection head, after "
                    f"{r.get('epochs_completed')} epochs ({arch(r, root)}, "
                    f"{crops(cfg)} crops, seed {r.get('seed')})."
                )
    out.append("- Full tables: [BENCHMARKS.md](BENCHMARKS.md).")
    return "\n".join(out)


def latency(p: dict) -> str:
    """Small-batch latency: median time per call, as a multiple of the numpy whitening floor."""
    cfg = p.get("config", {})
    cols = [("mahalanobis", "mahalanobis"), ("score_samples", "score_samples"),
            ("ood_predict", "MahalanobisOOD.predict"), ("pyod_decision_function", "PyOD detector"),
            ("sklearn_mahalanobis", "scikit-learn")]  # fmt: skip
    lines = [
        "Median time of one call as a multiple of the numpy floor `((x - mu) @ W)²` measured in "
        f"the same run, candidates interleaved call by call; small batches with "
        f"{cfg.get('blas_threads_small_batches', 'default')} BLAS thread(s).",
        "",
        "| d | dtype | batch | floor (µs) | " + " | ".join(c[1] for c in cols) + " |",
        "|---|---|---|---|" + "---|" * len(cols),
    ]
    for c in p.get("cases", []):
        r = c["ratio_to_floor"]
        cells = [f"{r[k]:.2f}×" if k in r else "n/a" for k, _ in cols]
        lines.append(f"| {c['d']} | {c['dtype']} | {c['batch']} | "
                     f"{1e6 * c['median_seconds']['floor']:.1f} | " + " | ".join(cells) + " |")
    th, big = p.get("threads", {}), p.get("large_batch")
    if th:
        lines += ["", f"Threads: {th['check']['threads']} threads scoring at once give results "
                  f"equal to serial: {th['check']['equal_to_serial']}; 2 threads give "
                  f"{th['throughput']['speedup']:.2f}× the rows/s of 1 on 2 cores."]
    if big:
        lines += ["", f"Large batch: {big['rows']:,} rows at d = {cfg.get('ds', ['?'])[-1]}, "
                  f"float32, scored at {big['fraction_of_gemm']:.2f} of the GEMM rate measured in "
                  f"the same run ({big['gemm_gflops']:.0f} GFLOP/s; the triangular solve does half "
                  "the flops of the GEMM roofline, so it can exceed 1)."]
    return "\n".join(lines)

