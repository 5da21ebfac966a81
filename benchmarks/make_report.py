"""Generate BENCHMARKS.md (and the results block of README.md) from benchmarks/results/*.json.

Nothing here is typed by hand: every number comes from a results file that a benchmark
script wrote. A missing results file is reported as "not run". It only reads results files
(and the checkpoint configs older train results point to); it writes BENCHMARKS.md and the
block between ``<!-- results:start -->`` and ``<!-- results:end -->`` of README.md, each only
when its text changes. Every source line names the commit a result came from; results from a
dirty tree (tracked files modified, see ``_env.py``) carry a visible "⚠ DIRTY TREE" mark.

    python benchmarks/make_report.py            # regenerate
    python benchmarks/make_report.py --check    # exit 1 if either file is out of date
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))
from _env import describe_commit, provenance  # noqa: E402


def _load(name: str) -> dict | None:
    """``results/<name>.json``; a glob pattern gathers its files as ``{"runs": [...]}``."""
    files = sorted(RESULTS.glob(f"{name}.json"))
    if not files:
        return None
    payloads = []
    for f in files:
        p = json.loads(f.read_text())
        p["_file"] = f"benchmarks/results/{f.name}"
        payloads.append(p)
    return {"runs": payloads} if "*" in name else payloads[0]


def _prov(payload: dict) -> str:
    p = provenance(payload)
    return (f"_Source: `{payload.get('_file', '')}` — git {describe_commit(payload)}, "
            f"{p['timestamp_utc']} {p['cpu']} ({p['cores']} cores)._")


def _f(v: Any, fmt: str = ".3g") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, (int, float)):
        return format(v, fmt)
    return str(v)


# ----------------------------------------------------------------------------- sections
def scoring_speed(p: dict) -> str:
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
            f"{c['score_speedup_vs_sklearn']:.0f} | {_f(c.get('score_speedup_vs_torch_pinv'), '.1f')} | "
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


def _arch(r: dict) -> str:
    spec = r.get("encoder_spec")
    if spec is None and r.get("checkpoint"):  # older results: the spec is in the checkpoint's config
        cfg = ROOT / str(r["checkpoint"]).replace(".pt", ".config.json")
        spec = json.loads(cfg.read_text()).get("encoder") if cfg.exists() else None
    widths = (spec or {}).get("widths")
    if r.get("encoder") == "small_cnn":
        widths = widths or [32, 64, 128]  # build_encoder's default
        return f"small_cnn {'-'.join(str(w) for w in widths)}"
    return str(r.get("encoder"))


def _crops(cfg: dict) -> str:
    """Training crop side(s): ``24 px``, or ``16→20→24 px (progressive)`` for a list."""
    c = cfg.get("crop_size") or 32
    if isinstance(c, list):
        return "→".join(str(v) for v in c) + " px (progressive)" if len(c) > 1 else f"{c[0]} px"
    return f"{c} px"


def train_cifar10(p: dict) -> str:
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
            f"| `{name}` | {_arch(r)} | {params} | {r.get('mode')} | {_crops(cfg)} "
            f"| {_f(r.get('budget_minutes'))} min | {r.get('epochs_completed')} "
            f"| {_f(r.get('mean_img_per_s'), '.0f')} | {_f(m.get('knn_acc_backbone'), '.4f')} "
            f"| {_f(m.get('knn_acc_head'), '.4f')} | {_f(m.get('test_accuracy'), '.4f')} |"
        )
        load = r.get("load_avg_at_end")
        rates = sorted(h["img_per_s"] for h in r.get("history", []) if h.get("seconds", 0) > 10)
        spread = (f"; epochs ran at {rates[0]:.0f}–{rates[-1]:.0f} img/s (median "
                  f"{rates[len(rates) // 2]:.0f})" if rates else "")
        tau = f", temperature {cfg.get('temperature')}" if r.get("mode") == "simclr" else ""
        notes.append(
            f"- `{name}`: optimizer {cfg.get('optimizer')}, lr {cfg.get('lr')}, weight decay "
            f"{cfg.get('weight_decay')}, batch {cfg.get('batch_size')}{tau}, augmentation "
            f"{cfg.get('augment')}, precision "
            f"{cfg.get('precision')}, channels_last {cfg.get('channels_last')}, seed {r.get('seed')}"
            + spread + (f"; load average at the end {load[0]:.1f}" if load else "")
            + ("" if r.get("resumed_after_epoch") is None else
               f"; interrupted after epoch {r['resumed_after_epoch']} and resumed from its checkpoint "
               f"(the time budget continues the checkpoint's clock)")
            + f". {_prov(r)}"
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


def _module(name: str):
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - a script that fails to import is reported below
        return None


def ood(p: dict) -> str:
    return _module("ood_cifar10").render_markdown(p)


def retrieval(p: dict) -> str:
    return _module("retrieval_cifar10").markdown(p)


def table1(p: dict) -> str:
    cfg = p.get("config", {})
    meta = {k: cfg.get(k) for k in ("preset", "seed", "rows")}
    return _module("paper_table1").markdown(p["rows"], meta)


def scale(p: dict) -> str:
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


SECTIONS = [
    ("scoring_speed", "Gaussian core: fit and scoring speed", scoring_speed),
    ("train_throughput", "Training throughput (CPU)", train_throughput),
    ("train_cifar10_*", "Training on CIFAR-10 (CPU runs): InfoNCE and the cross-entropy twin",
     train_cifar10),
    ("paper_table1_cpu", "The paper's Table 1, side by side", table1),
    ("ood_cifar10", "OOD detection: CIFAR-10 vs Tiny ImageNet", ood),
    ("retrieval_cifar10", "Calibrated retrieval on CIFAR-10", retrieval),
    ("scale", "Scale: out of core and Dask", scale),
]


def build() -> tuple[str, str]:
    parts = [
        "# Benchmarks",
        "",
        "Generated by `python benchmarks/make_report.py` from `benchmarks/results/*.json`; "
        "do not edit by hand. Timings come from a shared 2-core machine and swing by up to 2× "
        "from minute to minute: compare ratios measured in the same run. Each source line names "
        "the commit its results came from; \"⚠ DIRTY TREE\" marks results produced with tracked "
        "files modified (uncommitted code: the commit alone does not reproduce them).",
    ]
    headline = []
    for name, title, fn in SECTIONS:
        p = _load(name)
        parts += ["", f"## {title}", ""]
        if p is None:
            parts.append(f"Not run yet (`benchmarks/results/{name}.json` is absent).")
            continue
        try:
            parts.append(fn(p))
        except Exception as exc:  # noqa: BLE001 - show what could not be rendered
            parts.append(f"Could not render {name}.json: {type(exc).__name__}: {exc}")
        if "runs" not in p:  # a multi-run section gives one source line per run itself
            parts += ["", _prov(p)]
        headline.append((name, title, p))
    return "\n".join(parts) + "\n", _headline(headline)


def _headline(items) -> str:
    out = []
    for name, _, p in items:
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
                out.append(
                    f"- InfoNCE on CIFAR-10, 2 CPU cores, {_f(r.get('budget_minutes'))} min: kNN accuracy "
                    f"(k=200) {_f(m.get('knn_acc_backbone'), '.3f')} on the backbone, "
                    f"{_f(m.get('knn_acc_head'), '.3f')} on the projection head, after "
                    f"{r.get('epochs_completed')} epochs ({_arch(r)}, {_crops(cfg)} crops, "
                    f"seed {r.get('seed')})."
                )
    out.append("- Full tables: [BENCHMARKS.md](BENCHMARKS.md).")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 if BENCHMARKS.md or README.md is out of date")
    args = ap.parse_args(argv)
    text, headline = build()
    readme = ROOT / "README.md"
    body = readme.read_text()
    new = re.sub(
        r"(<!-- results:start -->\n).*?(\n<!-- results:end -->)",
        lambda m: m.group(1) + headline + m.group(2),
        body,
        flags=re.S,
    )
    bench = ROOT / "BENCHMARKS.md"
    stale = [p for p, t in ((bench, text), (readme, new))
             if not p.exists() or p.read_text() != t]
    if args.check:
        for p in stale:
            print(f"{p.relative_to(ROOT)} is out of date: run python benchmarks/make_report.py",
                  file=sys.stderr)
        return 1 if stale else 0
    for p, t in ((bench, text), (readme, new)):
        if p in stale:
            p.write_text(t)
            print(f"wrote {p}", file=sys.stderr)
        else:
            print(f"{p} is up to date", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
