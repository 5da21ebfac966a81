#!/usr/bin/env python
r"""Calibrated retrieval on CIFAR-10 embeddings: raw cosine vs whitened cosine vs calibrated outputs.

Database = CIFAR-10 train embeddings, queries = CIFAR-10 test embeddings (relevant = same class)
plus out-of-distribution queries (Tiny ImageNet, ``ood_<name>.npy``), which should be rejected.

Reads a directory of precomputed embeddings::

    DIR/cifar10_train.npy         float32 (N, D)
    DIR/cifar10_train_labels.npy  int64 (N,)
    DIR/cifar10_test.npy          float32 (M, D)
    DIR/cifar10_test_labels.npy   int64 (M,)
    DIR/ood_<name>.npy            float32 (M_name, D), e.g. ood_tin_resize.npy, ood_tin_crop.npy
    DIR/meta.json                 free-form description (copied into the results)

Usage::

    python benchmarks/retrieval_cifar10.py --embeddings DIR \
        [--out benchmarks/results/retrieval_cifar10.json] [--seed 0]

Writes the JSON (config, seed, metrics and the run's ``environment``: versions, git commit and
dirty flag, machine) and a markdown table next to it (same name, ``.md``). Progress goes to
stderr: one line per stage, the files written and a summary.

Definitions
-----------
* **False match (null test)** — the quantity the top-1 correction controls: for each
  in-distribution query, the best similarity among the database items of *other* classes
  (``n0`` of them) is tested as the best of ``n0`` non-matches; declaring it a match is a false
  match. Its rate should be <= alpha, and close to alpha if the null law is right. This is the
  number compared with the nominal level (factor 1.5).
* **False match (operational)** — the top-1 neighbour of the full search is declared a match
  (best of ``n`` = database size) and has another class. Bounded by the null-test rate.
* **OOD match rate** — Tiny ImageNet queries whose top-1 is declared a match (all false up to the
  few classes the datasets share).
* **ECE of match probabilities** — P(relevant | score) is calibrated (isotonic, Platt) on the
  top-10 pairs of one random half of the test queries and evaluated on the other half; the
  naive baseline reads the ranking cosine (raw or whitened) clipped to [0, 1] as a probability.
* **Abstention** — ``ood_pvalue <= 0.01`` with the Hotelling F law ("analytic") or the rank
  among the database's Mahalanobis distances ("empirical").
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _env import _default as _json_default  # noqa: E402
from _env import describe_commit, environment, provenance, setup_logging  # noqa: E402

from infogauss import metrics  # noqa: E402
from infogauss.retrieval import AnalyticCosineNull, CalibratedRetriever  # noqa: E402

ALPHAS = (1e-2, 1e-3)
OOD_ALPHA = 1e-2
K_SEARCH = 100
K_CAL = 10
REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("benchmarks.retrieval_cifar10")


# --------------------------------------------------------------------------------------
# I/O and provenance
# --------------------------------------------------------------------------------------
def load_embeddings(directory: Path) -> dict:
    d = Path(directory)
    if not d.is_dir():
        raise SystemExit(f"--embeddings {str(d)!r} is not a directory")
    data = {}
    for key in ("cifar10_train", "cifar10_train_labels", "cifar10_test", "cifar10_test_labels"):
        path = d / f"{key}.npy"
        if not path.exists():
            raise SystemExit(f"missing {path}")
        data[key] = np.load(path)
    data["ood"] = {p.stem[len("ood_"):]: np.load(p) for p in sorted(d.glob("ood_*.npy"))}
    meta = d / "meta.json"
    data["meta"] = json.loads(meta.read_text()) if meta.exists() else {}
    return data


# --------------------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------------------
def best_nonmatch(zq: np.ndarray, zdb: np.ndarray, q_labels, db_labels, block: int = 512):
    """Best similarity of each query among database items of another class, and how many."""
    best = np.empty(zq.shape[0], dtype=np.float64)
    for s in range(0, zq.shape[0], block):
        S = zq[s : s + block] @ zdb.T
        S[q_labels[s : s + block, None] == db_labels[None, :]] = -np.inf
        best[s : s + block] = S.max(axis=1)
    classes, counts = np.unique(db_labels, return_counts=True)
    same = counts[np.searchsorted(classes, q_labels)]
    same[~np.isin(q_labels, classes)] = 0
    return best, db_labels.shape[0] - same


def numpy_topk(q_unit: np.ndarray, db_unit: np.ndarray, k: int, block: int = 1024):
    """The baseline: blocked matmul + argpartition + sort of the top k."""
    out_i = np.empty((q_unit.shape[0], k), dtype=np.int64)
    out_s = np.empty((q_unit.shape[0], k), dtype=np.float32)
    for s in range(0, q_unit.shape[0], block):
        S = q_unit[s : s + block] @ db_unit.T
        part = np.argpartition(S, -k, axis=1)[:, -k:]
        vals = np.take_along_axis(S, part, axis=1)
        order = np.argsort(-vals, axis=1)
        out_i[s : s + block] = np.take_along_axis(part, order, axis=1)
        out_s[s : s + block] = np.take_along_axis(vals, order, axis=1)
    return out_s, out_i


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)


def _fmr(false, alpha):
    r = metrics.false_match_rate(false, alpha=alpha)
    return {
        "rate": r.rate, "n_false": r.n_false, "n_queries": r.n_queries,
        "ci95": [r.ci_low, r.ci_high], "ratio_to_nominal": r.ratio,
        "within_factor_1_5": bool(alpha / 1.5 <= r.rate <= 1.5 * alpha),
    }  # fmt: skip


def _timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def evaluate_space(name, whiten, data, args, halves) -> dict:
    train, ytr = data["cifar10_train"], data["cifar10_train_labels"]
    test, yte = data["cifar10_test"], data["cifar10_test_labels"]
    out: dict = {}
    r, fit_s = _timed(
        CalibratedRetriever(
            whiten=whiten, null="empirical", correction="sidak", alpha=ALPHAS[0],
            ood_alpha=OOD_ALPHA, n_null_queries=args.n_null_queries, seed=args.seed,
        ).fit,
        train, ytr,
    )  # fmt: skip
    out["fit_seconds"] = fit_s
    out["dim"] = r.dim_
    nulls = {
        "analytic/sidak": (AnalyticCosineNull(r.dim_), "sidak"),
        "empirical/sidak": (r.null_, "sidak"),
        "empirical/evt": (r.null_, "evt"),
    }
    out["empirical_null"] = {
        "n_pairs": r.null_.n_pairs, "n_pseudo_queries": int(r.null_.maxima.size),
        "gev_shape": r.null_.gev_shape, "gev_loc": r.null_.gev_loc, "gev_scale": r.null_.gev_scale,
    }  # fmt: skip
    k = min(K_SEARCH, train.shape[0])
    res, search_s = _timed(r.search, test, k)
    out["search_seconds"] = search_s
    rel = res.labels == yte[:, None]
    classes, counts = np.unique(ytr, return_counts=True)
    pos = np.clip(np.searchsorted(classes, yte), 0, classes.size - 1)
    n_rel = np.where(classes[pos] == yte, counts[pos], 0)
    out["retrieval"] = {
        "recall_at_1": metrics.recall_at_k(rel, 1),
        "recall_at_10": metrics.recall_at_k(rel, min(10, k)),
        f"map_at_{k}": metrics.map_at_k(rel, k),
        f"map_at_{k}_trec": metrics.map_at_k(rel, k, n_relevant=n_rel),
    }

    # false-match rates under each null
    zq, zdb = r.embed(test), r.embed(train)
    s0, n0 = best_nonmatch(zq, zdb, yte, ytr)
    del zdb
    top1 = res.whitened_similarities[:, 0].astype(np.float64)
    top1_wrong = ~rel[:, 0]
    ood_top1 = {}
    for ood_name, q in data["ood"].items():
        ood_top1[ood_name] = r.search(q, 1)
    fmr = {}
    for label, (null, corr) in nulls.items():
        p_null = np.empty_like(s0)
        for n_items in np.unique(n0):
            sel = n0 == n_items
            p_null[sel] = null.top1_sf(s0[sel], int(n_items), corr)
        p_top1 = null.top1_sf(top1, r.n_database_, corr)
        entry = {}
        for a in ALPHAS:
            entry[str(a)] = {
                "null_test": _fmr(p_null <= a, a),
                "operational": _fmr((p_top1 <= a) & top1_wrong, a),
                "declared_match_rate_in_distribution": float(np.mean(p_top1 <= a)),
                "ood_match_rate": {
                    o: float(np.mean(null.top1_sf(
                        rr.whitened_similarities[:, 0].astype(np.float64), r.n_database_, corr
                    ) <= a))
                    for o, rr in ood_top1.items()
                },
            }  # fmt: skip
        fmr[label] = entry
    out["false_match"] = fmr

    # P(relevant | score): calibrate on half A, evaluate on half B (top-10 pairs)
    cal_idx, eval_idx = halves
    k_cal = min(K_CAL, k)
    rel_eval = rel[eval_idx, :k_cal].ravel()
    # naive baseline: the ranking cosine (raw, or whitened in the whitened space) clipped to [0, 1]
    naive = np.clip(res.whitened_similarities[eval_idx, :k_cal].ravel().astype(np.float64), 0, 1)
    cal = {
        "naive_cosine": {
            "ece": metrics.expected_calibration_error(rel_eval, naive),
            "brier": metrics.brier_score(rel_eval, naive),
        }
    }
    for method in ("isotonic", "platt"):
        r.calibrate_relevance(test[cal_idx], yte[cal_idx], k=k_cal, method=method)
        ev = r.search(test[eval_idx], k_cal)
        prob = ev.relevance.ravel()
        y = (ev.labels == yte[eval_idx, None]).ravel()
        cal[method] = {
            "ece": metrics.expected_calibration_error(y, prob),
            "brier": metrics.brier_score(y, prob),
            "ece_in_sample": r.relevance_ece_,
        }
    out["calibration"] = cal

    # abstention
    law_f = r.model_.pvalues(test, method="f") if train.shape[0] > train.shape[1] else None
    abst = {"in_distribution": {"empirical": float(np.mean(res.ood_pvalues <= OOD_ALPHA))}}
    if law_f is not None:
        abst["in_distribution"]["analytic"] = float(np.mean(law_f <= OOD_ALPHA))
    for o, rr in ood_top1.items():
        abst[o] = {"empirical": float(np.mean(rr.abstain))}
        if law_f is not None:
            q = data["ood"][o]
            abst[o]["analytic"] = float(np.mean(r.model_.pvalues(q, method="f") <= OOD_ALPHA))
    out["abstention"] = abst
    out["_retriever"] = r
    return out


def throughput(data, whitened: CalibratedRetriever, args) -> dict:
    train = data["cifar10_train"]
    q = data["cifar10_test"][: args.timing_queries]
    k = min(10, train.shape[0])
    n = q.shape[0]
    out = {"n_queries": n, "k": k}
    db_unit = _unit(train)
    q_unit = _unit(q)
    numpy_topk(q_unit[:8], db_unit, k)  # warm-up
    _, t = _timed(numpy_topk, q_unit, db_unit, k)
    out["numpy_matmul_argpartition_raw"] = n / t
    zq = whitened.embed(q)
    (_, exact_i), t = _timed(whitened.index_.search, zq, k)
    out["faiss_flat_whitened_index_only"] = n / t
    _, t = _timed(whitened.search, q, k)
    out["calibrated_search_flat"] = n / t
    if not args.skip_ann:
        for kind in ("ivf", "hnsw"):
            ann, build = _timed(
                CalibratedRetriever(index=kind, null="analytic", seed=args.seed).fit, train
            )
            res, t = _timed(ann.search, q, k)
            overlap = np.mean([
                len(np.intersect1d(a, b)) / k for a, b in zip(res.indices, exact_i)
            ])  # fmt: skip
            out[f"calibrated_search_{kind}"] = n / t
            out[f"{kind}_build_seconds"] = build
            out[f"{kind}_recall_at_{k}_vs_exact"] = float(overlap)
            out[f"{kind}_params"] = ann.index_params_
    return out


# --------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------
def _f(x, digits=4):
    return "—" if x is None else f"{x:.{digits}g}"


def markdown(result: dict) -> str:
    m = result["metrics"]
    cfg = result["config"]
    lines = [
        "# Calibrated retrieval on CIFAR-10 embeddings",
        "",
        f"Generated by `benchmarks/retrieval_cifar10.py` from `{cfg['embeddings']}` "
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
            f"| {space} cosine | {_f(rr['recall_at_1'])} | {_f(rr['recall_at_10'])} | "
            f"{_f(maps[0])} | {_f(maps[1])} |"
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
                ood = ", ".join(f"{o}: {_f(v, 3)}" for o, v in e["ood_match_rate"].items())
                lines.append(
                    f"| {space} | {label} | {a} | {_f(nt['rate'], 3)} "
                    f"[{_f(nt['ci95'][0], 3)}, {_f(nt['ci95'][1], 3)}] | "
                    f"{_f(nt['ratio_to_nominal'], 3)} | "
                    f"{'yes' if nt['within_factor_1_5'] else 'no'}"
                    f" | {_f(e['operational']['rate'], 3)} | {ood or '—'} |"
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
            lines.append(f"| {space} | {method} | {_f(e['ece'], 3)} | {_f(e['brier'], 3)} |")
    lines += [
        "",
        f"## Abstention rate (query OOD p-value <= {OOD_ALPHA})",
        "",
        "| query set | empirical (rank) | analytic (Hotelling F) |",
        "|---|---|---|",
    ]
    for qset, e in m["whitened"]["abstention"].items():
        lines.append(f"| {qset} | {_f(e.get('empirical'), 3)} | {_f(e.get('analytic'), 3)} |")
    t = m["throughput"]
    lines += [
        "",
        f"## Throughput (queries/s, {t['n_queries']} queries, k = {t['k']}, same run)",
        "",
        "| method | queries/s | notes |",
        "|---|---|---|",
        f"| numpy matmul + argpartition (raw) | {_f(t['numpy_matmul_argpartition_raw'], 4)} "
        "| baseline |",
        f"| faiss IndexFlatIP (whitened, index only) | "
        f"{_f(t['faiss_flat_whitened_index_only'], 4)} | |",
        f"| CalibratedRetriever.search, flat | {_f(t['calibrated_search_flat'], 4)} | "
        "whitening, p-values, OOD p-value, raw cosines |",
    ]
    for kind in ("ivf", "hnsw"):
        if f"calibrated_search_{kind}" in t:
            rk = next(v for key, v in t.items() if key.startswith(f"{kind}_recall_at"))
            lines.append(
                f"| CalibratedRetriever.search, {kind} | {_f(t[f'calibrated_search_{kind}'], 4)} | "
                f"recall@{t['k']} vs exact {_f(rk, 3)}, "
                f"build {_f(t[f'{kind}_build_seconds'], 3)} s, "
                f"{t[f'{kind}_params']} |"
            )
    wall = _f(result["elapsed_seconds"], 3)
    cpus = provenance(result)["cores"]
    lines += ["", f"Total wall time: {wall} s on {cpus} CPUs.", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embeddings", required=True, type=Path, help="embeddings directory")
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "retrieval_cifar10.json"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-null-queries", type=int, default=2000)
    parser.add_argument("--timing-queries", type=int, default=2000)
    parser.add_argument("--skip-ann", action="store_true", help="skip the IVF and HNSW timings")
    args = parser.parse_args(argv)
    setup_logging("retrieval_cifar10")

    t0 = time.perf_counter()
    env = environment()  # at the start: the commit and the load before the run
    log.info("loading embeddings from %s", args.embeddings)
    data = load_embeddings(args.embeddings)
    test = data["cifar10_test"]
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(test.shape[0])
    halves = (np.sort(perm[: test.shape[0] // 2]), np.sort(perm[test.shape[0] // 2 :]))

    result_metrics: dict = {}
    for space, whiten in (("raw", None), ("whitened", "zca")):
        log.info("%s space: search, false-match nulls, calibration, abstention", space)
        ts = time.perf_counter()
        result_metrics[space] = evaluate_space(space, whiten, data, args, halves)
        log.info("%s space done in %.1fs", space, time.perf_counter() - ts)
    whitened = result_metrics["whitened"].pop("_retriever")
    result_metrics["raw"].pop("_retriever")
    log.info("throughput (%d queries%s)", args.timing_queries,
             "" if args.skip_ann else "; flat, IVF and HNSW indexes")
    result_metrics["throughput"] = throughput(data, whitened, args)
    ok = [
        f"{space} {label}"
        for space in ("raw", "whitened")
        for label, e in result_metrics[space]["false_match"].items()
        if e[str(ALPHAS[0])]["null_test"]["within_factor_1_5"]
    ]
    result_metrics["summary_within_1_5"] = ", ".join(ok) if ok else "none"

    result = {
        "benchmark": "retrieval_cifar10",
        "config": {
            "embeddings": str(args.embeddings),
            "meta": data["meta"],
            "n_database": int(data["cifar10_train"].shape[0]),
            "dim": int(data["cifar10_train"].shape[1]),
            "n_queries": int(test.shape[0]),
            "ood_sizes": {k: int(v.shape[0]) for k, v in data["ood"].items()},
            "alphas": list(ALPHAS),
            "ood_alpha": OOD_ALPHA,
            "k_search": K_SEARCH,
            "k_calibration": K_CAL,
            "n_null_queries": args.n_null_queries,
            "timing_queries": args.timing_queries,
            "skip_ann": args.skip_ann,
        },
        "seed": args.seed,
        "environment": env,
        "metrics": result_metrics,
        "elapsed_seconds": time.perf_counter() - t0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=_json_default))
    log.info("wrote %s", args.out)
    args.out.with_suffix(".md").write_text(markdown(result))
    log.info("wrote %s", args.out.with_suffix(".md"))
    r = result_metrics["whitened"]["retrieval"]
    log.info("done in %.0f s: whitened recall@1 %.3f; false-match rate within 1.5x of alpha=%g "
             "for: %s", result["elapsed_seconds"], r["recall_at_1"], ALPHAS[0],
             result_metrics["summary_within_1_5"])
    return result


if __name__ == "__main__":
    main()
