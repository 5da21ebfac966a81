r"""Calibrated retrieval on CIFAR-10 embeddings: raw cosine vs whitened cosine vs calibrated outputs.

Database = CIFAR-10 train embeddings, queries = CIFAR-10 test embeddings (relevant = same class)
plus out-of-distribution queries (Tiny ImageNet, ``ood_<name>.npy``), which should be rejected.

Reads an embedding-set directory (the layout of :mod:`infogauss.datasets.embeddings`, which
``infogauss embed --set DIR`` writes; OOD sets optional, ``meta.json`` copied into the
results)::

    infogauss bench retrieval --embeddings DIR [--out retrieval_cifar10.json] [--seed 0]

Writes the results JSON (``--out``; by default ``retrieval_cifar10.json`` in the results
directory, see :mod:`infogauss.bench`) and a markdown table next to it (same name, ``.md``).
Progress goes to stderr: one line per stage, the files written and a summary.

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
import logging
import time
from pathlib import Path

import numpy as np

from infogauss import _io, metrics
from infogauss.bench import _render, output_path, write_outputs
from infogauss.bench._env import setup_logging
from infogauss.datasets import read_embedding_set

__all__ = ["main", "load_embeddings", "best_nonmatch", "numpy_topk", "evaluate_space",
           "throughput"]

ALPHAS = (1e-2, 1e-3)
OOD_ALPHA = 1e-2
K_SEARCH = 100
K_CAL = 10
OUT_NAME = "retrieval_cifar10.json"
log = logging.getLogger("benchmarks.retrieval_cifar10")


# --------------------------------------------------------------------------------------
# I/O and provenance
# --------------------------------------------------------------------------------------
def load_embeddings(directory: Path) -> dict:
    """The embedding set as the dict the measurements read (OOD sets optional)."""
    emb = read_embedding_set(directory, require_ood=False)
    return {"cifar10_train": emb.train, "cifar10_train_labels": emb.train_labels,
            "cifar10_test": emb.test, "cifar10_test_labels": emb.test_labels,
            "ood": emb.ood, "meta": emb.meta}


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
    from infogauss.retrieval import AnalyticCosineNull, CalibratedRetriever

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


def throughput(data, whitened, args) -> dict:
    from infogauss.retrieval import CalibratedRetriever

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
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embeddings", required=True, type=Path,
                        help="embedding-set directory (infogauss.datasets.read_embedding_set)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"JSON output path [{OUT_NAME} in the results directory]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-null-queries", type=int, default=2000)
    parser.add_argument("--timing-queries", type=int, default=2000)
    parser.add_argument("--skip-ann", action="store_true", help="skip the IVF and HNSW timings")
    args = parser.parse_args(argv)
    setup_logging("retrieval_cifar10")
    out = output_path(args.out, OUT_NAME)

    t0 = time.perf_counter()
    env = _io.environment()  # at the start: the commit and the load before the run
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
    _, md = write_outputs(out, result, _render.retrieval)
    log.info("wrote %s and %s", out, md)
    r = result_metrics["whitened"]["retrieval"]
    log.info("done in %.0f s: whitened recall@1 %.3f; false-match rate within 1.5x of alpha=%g "
             "for: %s", result["elapsed_seconds"], r["recall_at_1"], ALPHAS[0],
             result_metrics["summary_within_1_5"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
