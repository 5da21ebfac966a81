r"""Small-batch scoring latency, as a scoring service sees it, against a numpy floor.

For batches of 1, 16, 256 and 4096 rows at d ∈ {128, 512}, float32 and float64, the median
wall time of one call of

* ``GaussianModel.mahalanobis`` and ``GaussianModel.score_samples``,
* ``MahalanobisOOD.predict`` (the default, calibrated detector),
* the PyOD detector's ``decision_function`` (when pyod is installed),
* scikit-learn's ``EmpiricalCovariance.mahalanobis`` (same covariance),
* the **floor**: a plain numpy whitening ``z = (x - mu) @ W; (z * z).sum(1)`` with ``W``
  precomputed (what any implementation must at least do),

measured in the same process, the candidates interleaved call by call so that machine noise
hits all of them alike (``--calls`` calls each; medians). Also: 8 threads scoring the same
fitted model at once give results equal to serial scoring, and the throughput of 2 threads
against 1 on large batches.

    infogauss bench latency [--quick] [--out latency.json]

Writes ``latency.json`` in the results directory (see :mod:`infogauss.bench`); ``--quick`` (a
smoke test) writes to ``runs/benchmarks/latency_quick.json`` by default.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading
import time

import numpy as np
from threadpoolctl import threadpool_limits

from infogauss import GaussianModel, MahalanobisOOD, _io
from infogauss.bench import output_path
from infogauss.bench._env import setup_logging

__all__ = ["time_batch", "thread_check", "thread_throughput", "main"]

log = logging.getLogger("benchmarks.latency")


def _data(n: int, d: int, dtype, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
    return (rng.standard_normal((n, d)) @ A.T + 3.0).astype(dtype)


def _candidates(X: np.ndarray, dtype) -> dict:
    from sklearn.covariance import EmpiricalCovariance

    model = GaussianModel().fit(X)
    det = MahalanobisOOD(random_state=0).fit(X)
    mu = model.location_.astype(dtype)
    W = np.ascontiguousarray(np.linalg.inv(model.cholesky_).T, dtype=dtype)

    def floor(x):
        z = (x - mu) @ W
        return np.einsum("ij,ij->i", z, z)

    sk = EmpiricalCovariance(assume_centered=False).fit(X.astype(np.float64))
    sk.covariance_ = model.covariance_  # same covariance, scikit-learn's scoring path
    sk.precision_ = np.linalg.inv(model.covariance_)
    out = {
        "floor": floor,
        "mahalanobis": model.mahalanobis,
        "score_samples": model.score_samples,
        "ood_predict": det.predict,
        "sklearn_mahalanobis": sk.mahalanobis,
    }
    try:
        from infogauss.anomaly import GaussianLikelihoodDetector
    except ImportError:
        log.info("pyod not installed: no PyOD detector row")
    else:
        out["pyod_decision_function"] = GaussianLikelihoodDetector(random_state=0).fit(
            X
        ).decision_function
    return out, model


def time_batch(fns: dict, x: np.ndarray, calls: int) -> dict[str, float]:
    """Median seconds per call of each function, interleaved call by call."""
    for f in fns.values():  # warm up (first-use caches, page faults)
        f(x)
    times = {k: [] for k in fns}
    for _ in range(calls):
        for k, f in fns.items():
            t = time.perf_counter()
            f(x)
            times[k].append(time.perf_counter() - t)
    return {k: float(np.median(v)) for k, v in times.items()}


def thread_check(model: GaussianModel, X: np.ndarray, n_threads: int = 8) -> dict:
    """n_threads score disjoint and overlapping slices at once; all equal to serial."""
    serial = model.mahalanobis(X)
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = model.mahalanobis(X)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    equal = all(np.array_equal(results[i], serial) for i in range(n_threads))
    return {"threads": n_threads, "rows": int(X.shape[0]), "equal_to_serial": bool(equal)}


def thread_throughput(model: GaussianModel, X: np.ndarray, repeats: int = 3) -> dict:
    """Rows/s of 1 thread scoring X twice vs 2 threads scoring X once each, at once."""
    def one():
        model.mahalanobis(X)

    best1 = best2 = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        one()
        one()
        best1 = min(best1, time.perf_counter() - t)
        ths = [threading.Thread(target=one) for _ in range(2)]
        t = time.perf_counter()
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        best2 = min(best2, time.perf_counter() - t)
    rows = 2 * X.shape[0]
    return {"rows": rows, "one_thread_rows_per_s": rows / best1,
            "two_threads_rows_per_s": rows / best2, "speedup": best1 / best2}  # fmt: skip


def large_batch(model: GaussianModel, X: np.ndarray, d: int, repeats: int = 3) -> dict:
    """Large-batch scoring against the GEMM roofline (2·n·d² flops at the GEMM rate measured in
    the same process, as ``scoring_speed`` defines it): small-batch work must not cost this."""
    from .scoring_speed import best_time, gemm_rate

    rate = gemm_rate(d, np.float32)
    seconds = best_time(lambda: model.mahalanobis(X), repeats)
    return {"rows": int(X.shape[0]), "seconds": seconds, "gemm_gflops": rate / 1e9,
            "fraction_of_gemm": (2.0 * X.shape[0] * d * d / seconds) / rate}  # fmt: skip


def _time_batches(fns: dict, Q: np.ndarray, batches: list, args, d: int, dtype, i: int,
                  n_cases: int) -> list[dict]:
    """One case per batch size: the median time of every candidate and its ratio to the floor."""
    cases = []
    for b in batches:
        calls = args.calls or (20 if args.quick else (400 if b <= 16 else 100 if b <= 256
                                                      else 20))  # fmt: skip
        t = time_batch(fns, Q[:b], calls)
        case = {"d": d, "dtype": np.dtype(dtype).name, "batch": b, "calls": calls,
                "median_seconds": t,
                "ratio_to_floor": {k: v / t["floor"] for k, v in t.items()}}  # fmt: skip
        cases.append(case)
        log.info("[%d/%d] d=%d %s batch %d: floor %.1f us, mahalanobis %.2fx, "
                 "score_samples %.2fx, ood_predict %.2fx, sklearn %.2fx", i, n_cases, d,
                 np.dtype(dtype).name, b, 1e6 * t["floor"],
                 case["ratio_to_floor"]["mahalanobis"],
                 case["ratio_to_floor"]["score_samples"],
                 case["ratio_to_floor"]["ood_predict"],
                 case["ratio_to_floor"]["sklearn_mahalanobis"])  # fmt: skip
    return cases


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", default=None,
                    help="default latency.json in the results directory "
                         "(runs/benchmarks/latency_quick.json with --quick)")
    ap.add_argument("--quick", action="store_true", help="few calls, small sizes (smoke test)")
    ap.add_argument("--calls", type=int, default=None, help="calls per candidate and case")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="BLAS threads for the small-batch cases (a scoring service usually "
                         "pins one; 0 = leave as is) [1]; the large-batch and thread cases "
                         "use the default")
    args = ap.parse_args(argv)
    setup_logging("latency")
    t_start = time.perf_counter()
    env = _io.environment()
    args.out = output_path(args.out, "latency_quick.json" if args.quick else "latency.json",
                           scratch=args.quick)
    ds = [32] if args.quick else [128, 512]
    batches = [1, 16, 256] if args.quick else [1, 16, 256, 4096]
    cases = []
    grid = [(d, dt) for d in ds for dt in (np.float32, np.float64)]
    for i, (d, dtype) in enumerate(grid, 1):
        X = _data(max(4 * d, 5000), d, dtype, args.seed)
        fns, model = _candidates(X, dtype)
        Q = _data(max(batches), d, dtype, args.seed + 1)
        limit = (threadpool_limits(limits=args.blas_threads, user_api="blas")
                 if args.blas_threads else contextlib.nullcontext())
        with limit:
            rows = _time_batches(fns, Q, batches, args, d, dtype, i, len(grid))
        cases.extend(rows)
    d_big = ds[-1]
    X = _data(max(4 * d_big, 5000), d_big, np.float32, args.seed)
    model = GaussianModel().fit(X)
    big = _data(20_000 if args.quick else 200_000, d_big, np.float32, args.seed + 2)
    threads = {"check": thread_check(model, big[:4096]), "throughput": thread_throughput(model, big)}
    log.info("threads: 8 threads equal to serial: %s; 2 threads %.2fx the rows/s of 1",
             threads["check"]["equal_to_serial"], threads["throughput"]["speedup"])
    large = large_batch(model, big, d_big)
    log.info("large batch: %d x %d float32 scored at %.2f of the GEMM rate (%.0f GFLOP/s)",
             large["rows"], d_big, large["fraction_of_gemm"], large["gemm_gflops"])
    payload = {"benchmark": "latency",
               "config": {"ds": ds, "batches": batches, "seed": args.seed, "quick": args.quick,
                          "blas_threads_small_batches": args.blas_threads or "default"},
               "environment": env, "cases": cases, "threads": threads,
               "large_batch": large}  # fmt: skip
    _io.write_results(args.out, payload)
    log.info("wrote %s", args.out)
    one = [c for c in cases if c["batch"] == 1 and c["d"] == d_big and c["dtype"] == "float32"]
    log.info("done in %.0f s: %d cases; d=%d float32, 1 row: mahalanobis %.2fx the floor",
             time.perf_counter() - t_start, len(cases), d_big,
             one[0]["ratio_to_floor"]["mahalanobis"] if one else float("nan"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
