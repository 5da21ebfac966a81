"""Fit and scoring throughput of GaussianModel against scikit-learn and a pytorch-ood-style
torch implementation, with the machine's GEMM rate measured in the same run.

Roofline for scoring: 2·n·d² flops (one dense n×d by d×d product) at the measured GEMM rate.
Our scoring does a triangular solve (n·d² flops), so it can exceed 1.0 of that roofline.

    infogauss bench speed [--quick] [--out scoring_speed.json]

Every timing is the best of ``--repeats`` runs, the competitors interleaved round by round
so that machine noise hits all of them alike. Writes ``scoring_speed.json`` in the results
directory (see :mod:`infogauss.bench`); ``--quick`` (a smoke test) writes to
``runs/benchmarks/scoring_speed_quick.json`` by default, never over the committed results.
Progress goes to stderr: one line per case, the file written and a summary.
"""

from __future__ import annotations

import argparse
import gc
import logging
import time

import numpy as np

from infogauss import GaussianModel, _io
from infogauss.bench import output_path
from infogauss.bench._env import setup_logging

__all__ = ["best_time", "make_data", "gemm_rate", "torch_pinv_scores", "run_case",
           "memory_case", "main"]

log = logging.getLogger("benchmarks.scoring_speed")


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def make_data(n: int, d: int, dtype, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    A = (rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)).astype(dtype)
    X = np.empty((n, d), dtype=dtype)
    step = 65536
    for i in range(0, n, step):
        z = rng.standard_normal((min(step, n - i), d)).astype(dtype)
        np.matmul(z, A, out=X[i : i + step])
    X += dtype(3.0)
    return X


def gemm_rate(d: int, dtype, rows: int = 65536, repeats: int = 3) -> float:
    rng = np.random.default_rng(0)
    A = rng.standard_normal((rows, d)).astype(dtype)
    B = rng.standard_normal((d, d)).astype(dtype)
    out = np.empty((rows, d), dtype=dtype)
    t = best_time(lambda: np.matmul(A, B, out=out), repeats)
    return 2.0 * rows * d * d / t


def torch_pinv_scores(X, mean, cov):
    """pytorch-ood style: precision by pinv, then (x-μ) P (x-μ)ᵀ row-wise (the O(N²)
    ``diag(A @ B @ A.T)`` variant of pytorch-ood #146 would not fit in memory here)."""
    import torch

    prec = torch.linalg.pinv(torch.from_numpy(cov))
    mu = torch.from_numpy(mean)
    out = []
    for i in range(0, X.shape[0], 65536):
        z = torch.from_numpy(X[i : i + 65536]).to(prec.dtype) - mu
        out.append(((z @ prec) * z).sum(1))
    return torch.cat(out).numpy()


def run_case(n: int, d: int, dtype, repeats: int, sk_rows: int, seed: int) -> dict:
    from sklearn.covariance import EmpiricalCovariance, LedoitWolf

    X = make_data(n, d, dtype, seed)
    sub = X[:sk_rows]
    res: dict = {"n": n, "d": d, "dtype": np.dtype(dtype).name, "sklearn_rows": int(sub.shape[0])}

    model = GaussianModel().fit(X)
    emp = EmpiricalCovariance().fit(sub)
    lw_time = ours_fit = float("inf")
    ours_score = sk_score = torch_score = float("inf")
    rate = 0.0
    for _ in range(repeats):  # interleaved rounds
        ours_fit = min(ours_fit, best_time(lambda: GaussianModel().fit(X), 1))
        lw_time = min(lw_time, best_time(lambda: LedoitWolf().fit(X), 1))
        ours_score = min(ours_score, best_time(lambda: model.mahalanobis(X), 1))
        sk_score = min(sk_score, best_time(lambda: emp.mahalanobis(sub), 1))
        try:
            torch_score = min(
                torch_score,
                best_time(lambda: torch_pinv_scores(X, model.location_, model.covariance_), 1),
            )
        except ImportError:
            torch_score = float("nan")
        rate = max(rate, gemm_rate(d, dtype, repeats=1))
    flops = 2.0 * n * d * d
    # accuracy check against sklearn on the subsample (same covariance: empirical)
    m_emp = GaussianModel(shrinkage="empirical").fit(sub)
    rel = float(
        np.max(np.abs(m_emp.mahalanobis(sub) - emp.mahalanobis(sub)) / emp.mahalanobis(sub))
    )
    res.update(
        gemm_gflops=rate / 1e9,
        fit_seconds=ours_fit,
        fit_rows_per_s=n / ours_fit,
        sklearn_ledoitwolf_fit_seconds=lw_time,
        fit_speedup_vs_sklearn_ledoitwolf=lw_time / ours_fit,
        score_seconds=ours_score,
        score_rows_per_s=n / ours_score,
        score_gflops_equiv=flops / ours_score / 1e9,
        score_fraction_of_gemm=(flops / ours_score) / rate,
        sklearn_mahalanobis_rows_per_s=sub.shape[0] / sk_score,
        score_speedup_vs_sklearn=(n / ours_score) / (sub.shape[0] / sk_score),
        torch_pinv_rows_per_s=n / torch_score if np.isfinite(torch_score) else None,
        score_speedup_vs_torch_pinv=(torch_score / ours_score)
        if np.isfinite(torch_score)
        else None,
        max_rel_diff_vs_sklearn=rel,
    )
    return res


def memory_case(n: int, d: int, seed: int) -> dict:
    """Extra memory (tracemalloc peak: numpy registers its buffers) while scoring n rows."""
    import tracemalloc

    X = make_data(n, d, np.float32, seed)
    model = GaussianModel().fit(X[:200_000])
    tracemalloc.start()
    t = time.perf_counter()
    m2 = model.mahalanobis(X)
    seconds = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out = {
        "n": n,
        "d": d,
        "dtype": "float32",
        "input_bytes": int(X.nbytes),
        "output_bytes": int(m2.nbytes),
        "peak_extra_bytes": int(peak),
        "peak_extra_gib": peak / 2**30,
        "score_seconds": seconds,
        "score_rows_per_s": n / seconds,
    }
    del X, m2
    gc.collect()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", default=None,
                    help="default scoring_speed.json in the results directory "
                         "(runs/benchmarks/scoring_speed_quick.json with --quick)")
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    setup_logging("scoring_speed")
    t_start = time.perf_counter()
    env = _io.environment()  # at the start: the commit and the load before the run
    args.out = output_path(args.out, "scoring_speed_quick.json" if args.quick
                           else "scoring_speed.json", scratch=args.quick)
    if args.quick:
        ns, ds, sk_rows = [20_000], [64], 5_000
    else:
        ns, ds, sk_rows = [100_000, 1_000_000], [128, 512], 100_000
    cases = []
    grid = [(n, d, dtype) for n in ns for d in ds for dtype in (np.float32, np.float64)]
    for i, (n, d, dtype) in enumerate(grid, 1):
        log.info("[%d/%d] n=%d d=%d %s: fit and score, %d repeats", i, len(grid) + 1, n, d,
                 np.dtype(dtype).name, args.repeats)
        t0 = time.perf_counter()
        case = run_case(n, d, dtype, args.repeats, sk_rows, args.seed)
        case["wall_seconds"] = time.perf_counter() - t0
        cases.append(case)
        log.info(
            "[%d/%d] fit %.3fs (x%.1f vs LW)  score %s rows/s = %.2f of GEMM (%.0f GF/s), "
            "x%.0f vs sklearn", i, len(grid) + 1, case["fit_seconds"],
            case["fit_speedup_vs_sklearn_ledoitwolf"], f"{case['score_rows_per_s']:,.0f}",
            case["score_fraction_of_gemm"], case["gemm_gflops"], case["score_speedup_vs_sklearn"],
        )
    mem_n = 50_000 if args.quick else 10_000_000
    log.info("[%d/%d] memory: scoring %s x 128 float32", len(grid) + 1, len(grid) + 1,
             f"{mem_n:,}")
    memory = memory_case(mem_n, 128, args.seed)
    log.info(
        "memory: scoring %s x 128 float32 (%.1f GiB) took %.3f GiB extra (output %.0f MiB)",
        f"{mem_n:,}", memory["input_bytes"] / 2**30, memory["peak_extra_gib"],
        memory["output_bytes"] / 2**20,
    )
    payload = {
        "benchmark": "scoring_speed",
        "config": {
            "ns": ns,
            "ds": ds,
            "sklearn_rows": sk_rows,
            "repeats": args.repeats,
            "seed": args.seed,
        },
        "environment": env,
        "cases": cases,
        "memory": memory,
    }
    _io.write_results(args.out, payload)
    log.info("wrote %s", args.out)
    best = max(cases, key=lambda c: (c["n"], c["d"], c["dtype"] == "float32"))
    log.info("done in %.0f s: %d cases; n=%d d=%d %s scores %s rows/s (%.2f of GEMM)",
             time.perf_counter() - t_start, len(cases), best["n"], best["d"], best["dtype"],
             f"{best['score_rows_per_s']:,.0f}", best["score_fraction_of_gemm"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
