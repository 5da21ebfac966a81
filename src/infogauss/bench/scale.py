"""Scale-out benchmark: out-of-core fit/score of a large .npy, Dask LocalCluster vs one process,
and a projection to 10⁹ × 512 on N workers.

    infogauss bench scale                            # full: 2e7 x 128 float32 (~10 GB on disk)
    infogauss bench scale --rows 2e5 --out /tmp/s.json   # smoke test (seconds)

(a) Generates ``--rows`` × ``--dim`` float32 embeddings block by block into
    ``--workdir/embeddings.npy`` (deleted at the end unless ``--keep``), then fits
    (``infogauss.streaming.fit_npy``) and scores (``score_npy`` → ``scores.npy``) it, reporting
    throughput and the process's peak resident memory per phase (``VmHWM``, reset between
    phases through ``/proc/self/clear_refs``) and overall (``ru_maxrss``). The page cache of the
    file is dropped before each pass (``posix_fadvise DONTNEED``) so reads are cold unless
    ``--warm``.
(b) On the first ``--dask-rows`` rows (default: min(rows, 4e6), i.e. a smaller sample than (a)),
    fits once in this process and once on a ``dask.distributed.LocalCluster`` with 2 worker
    processes on 127.0.0.1 (``infogauss.distributed.from_npy`` + ``fit_dask``), reporting the max
    abs difference of the two models, both throughputs and per-partition task costs (Dask's task
    stream).
(c) Projects time and memory of fitting and scoring 10⁹ × 512 on N workers from those
    measured costs plus single-threaded per-partition costs measured here at d = 512; every
    assumption is written into the JSON.

Writes ``scale.json`` in the results directory (``--out``; see :mod:`infogauss.bench`).
Progress goes to stderr: one line per phase, the file written and a summary.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from infogauss import GaussianModel, _io
from infogauss.bench import output_path
from infogauss.bench._env import setup_logging
from infogauss.gaussian import default_chunk_size, merge_stats, stats_from_array
from infogauss.streaming import (
    fit_chunks,
    fit_npy,
    iter_npy_chunks,
    read_npy_header,
    score_npy,
)

__all__ = ["part_a", "part_b", "measure_d512", "project", "main", "run"]

GiB = 1 << 30
log = logging.getLogger("benchmarks.scale")
MODEL_ATTRS = ("location_", "covariance_", "cholesky_", "whitening_")


# ------------------------------------------------------------------------------ memory
def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int | None:
    """Peak RSS since the last reset (VmHWM), else the lifetime peak (ru_maxrss)."""
    hwm = _status_kib("VmHWM")
    if hwm is not None:
        return hwm * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def drop_cache(path: Path) -> None:
    if not hasattr(os, "posix_fadvise"):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


class Phase:
    """Times a phase and records its peak RSS."""

    def __init__(self, name: str, results: dict) -> None:
        self.name, self.results = name, results

    def __enter__(self) -> Phase:
        self.reset = reset_peak_rss()
        self.t = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        seconds = time.perf_counter() - self.t
        peak = peak_rss_bytes()
        self.results[self.name] = {
            "seconds": seconds,
            "peak_rss_bytes": peak,
            "peak_rss_scope": "phase (VmHWM reset)" if self.reset else "process lifetime",
        }
        log.info("  %s: %.2f s, peak RSS %.0f MiB", self.name, seconds, peak / 2**20)


# ------------------------------------------------------------------------------ data
def mixing_matrix(dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((dim, dim)) / np.sqrt(dim) + np.eye(dim)).astype(np.float32)


def generate(path: Path, rows: int, dim: int, seed: int, chunk: int) -> None:
    """Correlated Gaussian float32 rows (x = z Aᵀ + 3), written block by block."""
    A_T = mixing_matrix(dim, seed).T.copy()
    rng = np.random.default_rng([seed, 1])
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")),
              "fortran_order": False, "shape": (rows, dim)}  # fmt: skip
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        for start in range(0, rows, chunk):
            z = rng.standard_normal((min(chunk, rows - start), dim), dtype=np.float32)
            x = z @ A_T
            x += 3.0
            fh.write(x.tobytes())
        fh.flush()
        os.fsync(fh.fileno())


def max_abs_diff(a: GaussianModel, b: GaussianModel) -> float:
    return max(float(np.max(np.abs(getattr(a, k) - getattr(b, k)))) for k in MODEL_ATTRS)


# ------------------------------------------------------------------------------ (a)
def part_a(path: Path, out: Path, rows: int, dim: int, chunk: int, warm: bool, seed: int) -> dict:
    res: dict = {}
    nbytes = path.stat().st_size
    if not warm:
        drop_cache(path)
    with Phase("fit", res):
        model = fit_npy(GaussianModel(), path, chunk_size=chunk)
    if not warm:
        drop_cache(path)
    with Phase("score", res):
        score_npy(model, path, out, kind="logpdf", chunk_size=chunk)
    for name in ("fit", "score"):
        s = res[name]["seconds"]
        res[name]["rows_per_s"] = rows / s
        res[name]["MB_per_s"] = nbytes / s / 1e6
    scores = np.load(out, mmap_mode="r")
    res["scores_finite"] = bool(np.isfinite(scores[: min(rows, 100_000)]).all())
    del scores
    truth = mixing_matrix(dim, seed).astype(np.float64)
    cov_true = truth @ truth.T
    res["covariance_max_abs_error_vs_truth"] = float(np.max(np.abs(model.covariance_ - cov_true)))
    res["shrinkage"] = model.shrinkage_
    peak = max(res["fit"]["peak_rss_bytes"], res["score"]["peak_rss_bytes"])
    res["peak_rss_bytes_fit_score"] = peak
    res["peak_rss_under_2GiB"] = bool(res["peak_rss_bytes_fit_score"] < 2 * GiB)
    return res


# ------------------------------------------------------------------------------ (b)
def part_b(path: Path, rows_b: int, chunk: int, warm: bool) -> dict:
    import distributed

    from infogauss.distributed import fit_dask, from_npy

    res: dict = {"rows": rows_b, "chunk_rows": chunk}
    res["dim"] = read_npy_header(path).n_features
    header = read_npy_header(path)
    if not warm:
        drop_cache(path)
    t = time.perf_counter()
    single = fit_chunks(None, iter_npy_chunks(header, chunk, stop=rows_b))
    t_single = time.perf_counter() - t

    t = time.perf_counter()
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
        dashboard_address=None,
    )  # fmt: skip
    client = distributed.Client(cluster)
    res["cluster_start_seconds"] = time.perf_counter() - t
    try:
        client.run(reset_peak_rss)
        dX = from_npy(path, chunk_size=chunk)[:rows_b]
        if not warm:
            drop_cache(path)
        with distributed.get_task_stream(client) as ts:
            t = time.perf_counter()
            clustered = fit_dask(GaussianModel(), dX)
            t_dask = time.perf_counter() - t
        res["worker_peak_rss_bytes"] = list(client.run(peak_rss_bytes).values())
        res["worker_blas_threads_env"] = list(
            client.run(lambda: os.environ.get("OPENBLAS_NUM_THREADS")).values()
        )
        tasks = ts.data
    finally:
        client.close()
        cluster.close()

    res["single_process"] = {"seconds": t_single, "rows_per_s": rows_b / t_single}
    res["dask_2_workers"] = {"seconds": t_dask, "rows_per_s": rows_b / t_dask,
                             "n_partitions": int(dX.numblocks[0])}  # fmt: skip
    res["model_max_abs_diff"] = max_abs_diff(single, clustered)
    res["models_identical_1e-10"] = bool(res["model_max_abs_diff"] <= 1e-10)

    from dask.utils import key_split

    per_prefix: dict[str, list[float]] = {}
    busy = 0.0
    for task in tasks:
        compute = [s for s in task.get("startstops", ()) if s.get("action") == "compute"]
        dur = sum(s["stop"] - s["start"] for s in compute)
        busy += dur
        per_prefix.setdefault(key_split(task["key"]), []).append(dur)
    res["task_costs_seconds"] = {
        k: {"count": len(v), "median": float(np.median(v)), "mean": float(np.mean(v)),
            "total": float(np.sum(v))}
        for k, v in per_prefix.items()
    }  # fmt: skip
    n_tasks = max(len(tasks), 1)
    res["per_task_overhead_seconds"] = max(0.0, (t_dask - busy / 2) / n_tasks)
    leaf = [v for k, v in per_prefix.items() if "merge" not in k and "final" not in k]
    res["per_partition_seconds_d128"] = float(sum(np.mean(v) for v in leaf)) if leaf else None
    return res


# ------------------------------------------------------------------------------ (c)
def measure_d512(partition_rows: int, seed: int) -> dict:
    """Single-threaded costs of one 1e9x512 partition, measured here (fit stats, merge, score,
    final factorisation), and the partition's traced peak memory."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng([seed, 2])
    d = 512
    X = rng.standard_normal((partition_rows, d), dtype=np.float32)
    with threadpool_limits(1):
        tracemalloc.start()
        t = time.perf_counter()
        s = stats_from_array(X, chunk_size=partition_rows)
        t_stats = time.perf_counter() - t
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        t = time.perf_counter()
        for _ in range(5):
            merge_stats(s, s)
        t_merge = (time.perf_counter() - t) / 5
        t = time.perf_counter()
        model = GaussianModel().fit_stats(s)
        t_final = time.perf_counter() - t
        t = time.perf_counter()
        model.score_samples(X)
        t_score = time.perf_counter() - t
    return {
        "partition_rows": partition_rows,
        "partition_bytes_float32": X.nbytes,
        "stats_seconds": t_stats,
        "stats_traced_peak_bytes": peak,
        "merge_seconds": t_merge,
        "stats_bytes": int(s.scatter.nbytes + s.mean.nbytes + s.third.nbytes + 16),
        "final_fit_seconds": t_final,
        "score_seconds_float32": t_score,
    }


def project(m512: dict, a: dict, b: dict, workers: list[int], n: float, d: int,
            split_every: int, net_Bps: float) -> dict:  # fmt: skip
    P = m512["partition_rows"]
    n_part = math.ceil(n / P)
    part_bytes = P * d * 4
    read_task = (b or {}).get("task_costs_seconds", {}).get("infogauss-npy")
    if read_task:  # measured per-partition read cost of a Dask worker in (b)
        read_Bps = b["chunk_rows"] * b["dim"] * 4 / read_task["median"]
        read_source = "the median read task of a Dask worker in (b)"
    else:  # upper bound on the read time: the whole single-process fit pass of (a)
        read_Bps = a["fit"]["MB_per_s"] * 1e6
        read_source = "the single-process fit pass of (a) (read + compute: pessimistic)"
    t_read = part_bytes / read_Bps
    overhead = b["per_task_overhead_seconds"] if b else 1e-3
    levels = max(1, math.ceil(math.log(n_part) / math.log(split_every)))
    n_merge = sum(math.ceil(n_part / split_every**k) for k in range(1, levels + 1))
    base_worker = max(b["worker_peak_rss_bytes"]) if b else 300 * 2**20
    rows = []
    for N in workers:
        waves = math.ceil(n_part / N)
        fit_s = (waves * (t_read + m512["stats_seconds"] + overhead)
                 + n_merge / N * (split_every * m512["merge_seconds"] + overhead)
                 + n_part * m512["stats_bytes"] / (N * net_Bps)
                 + m512["final_fit_seconds"])  # fmt: skip
        score_s = waves * (t_read + m512["score_seconds_float32"] + overhead)
        rows.append({
            "workers": N,
            "fit_hours": fit_s / 3600,
            "score_hours": score_s / 3600,
            "worker_memory_bytes": int(base_worker + part_bytes + m512["stats_traced_peak_bytes"]
                                       + (split_every + 1) * m512["stats_bytes"]),
            "client_memory_bytes": int(2 * m512["stats_bytes"] + 3 * d * d * 8),
        })  # fmt: skip
    return {
        "n_rows": n,
        "n_features": d,
        "data_bytes_float32": n * d * 4,
        "partition_rows": P,
        "n_partitions": n_part,
        "merge_tree_levels": levels,
        "n_merge_tasks": n_merge,
        "per_partition_read_seconds": t_read,
        "measured_d512": m512,
        "rows": rows,
        "assumptions": [
            "threads_per_worker=1 and one BLAS thread per worker (Dask's nanny default), so "
            "per-partition costs are the single-threaded costs measured here at d=512 on "
            f"{P} x 512 float32 partitions",
            f"each worker reads its partitions at {read_Bps / 1e6:.0f} MB/s, the cold read rate "
            f"of {read_source}, and storage scales linearly with workers (no shared-storage "
            "bottleneck); reading and computing a partition do not overlap",
            f"per-task scheduler overhead {overhead * 1e3:.2f} ms, measured in (b) as "
            "(wall - busy/2) / tasks (includes graph submission and start-up latency, so it "
            "overstates the overhead when (b) has few partitions)"
            if b else "per-task overhead assumed 1 ms",
            f"each partition's statistics ({m512['stats_bytes'] / 2**20:.1f} MiB at d=512) cross "
            f"the network once at {net_Bps / 1e9:.1f} GB/s per worker (assumed); merge tree "
            f"fan-in {split_every}",
            "partitions are evenly spread (waves = ceil(partitions / workers)); no stragglers, "
            "no worker failures (a lost worker adds the recomputation of its partitions)",
            "worker memory = peak worker RSS measured in (b) (interpreter, libraries and its "
            "d=128 partitions: conservative) + one float32 partition + the "
            "traced peak of its statistics (float64 copy and centred copy) + the statistics of "
            "one merge task's inputs; the client holds only the final statistics and factors",
            "scoring writes float64 scores (8 bytes/row) alongside; its write cost is ignored",
        ],
    }


# ------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=float, default=2e7)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk-size", type=int, default=None, help="rows per block")
    p.add_argument("--dask-rows", type=float, default=4e6, help="rows for (b) (capped at --rows)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/infogauss_scale"))
    p.add_argument("--keep", action="store_true", help="keep the generated files")
    p.add_argument("--warm", action="store_true", help="do not drop the page cache between passes")
    p.add_argument("--skip-dask", action="store_true")
    p.add_argument("--project-workers", default="1,2,8,32,128")
    p.add_argument("--project-partition-rows", type=int, default=65536)
    p.add_argument("--network-GBps", type=float, default=1.0)
    p.add_argument("--blas-threads", type=int, default=None,
                   help="limit this process's BLAS threads (default: the library's default; "
                   "set 1 on a machine shared with other jobs, where spinning BLAS threads "
                   "thrash). Dask workers always use 1")  # fmt: skip
    p.add_argument("--out", type=Path, default=None,
                   help="JSON output path [scale.json in the results directory]")
    args = p.parse_args(argv)
    setup_logging("scale")
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(args.blas_threads):
            return run(args)
    return run(args)


def run(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    git = _io.git_state()  # at the start (the rest of the environment is collected last)
    _io.warn_if_dirty(git, log)
    out = output_path(args.out, "scale.json")
    rows, dim = int(args.rows), args.dim
    rows_b = min(rows, int(args.dask_rows))
    chunk = args.chunk_size or default_chunk_size(dim)
    args.workdir.mkdir(parents=True, exist_ok=True)
    data, scores = args.workdir / "embeddings.npy", args.workdir / "scores.npy"
    free = os.statvfs(args.workdir)
    need = rows * dim * 4 + rows * 8 + (1 << 20)
    if free.f_bavail * free.f_frsize < need * 1.1:
        sys.exit(f"not enough disk in {args.workdir}: need {need / GiB:.1f} GiB")

    result: dict = {
        "benchmark": "scale",
        "config": {"rows": rows, "dim": dim, "dtype": "float32", "chunk_rows": chunk,
                   "dask_rows": rows_b, "workdir": str(args.workdir), "cold_reads": not args.warm,
                   "seed": args.seed, "shrinkage": "ledoit_wolf",
                   "blas_threads": args.blas_threads},  # fmt: skip
        "load_avg_at_start": os.getloadavg(),
    }
    try:
        log.info("(a) %d x %d float32 -> %s (%.2f GB)", rows, dim, data, rows * dim * 4 / 1e9)
        gen: dict = {}
        with Phase("generate", gen):
            generate(data, rows, dim, args.seed, chunk)
        gen["generate"]["MB_per_s"] = data.stat().st_size / gen["generate"]["seconds"] / 1e6
        a = part_a(data, scores, rows, dim, chunk, args.warm, args.seed)
        a["generate"] = gen["generate"]
        a["file_bytes"] = data.stat().st_size
        result["a_out_of_core"] = a
        log.info("  fit %.3g rows/s, score %.3g rows/s, peak RSS %.0f MiB",
                 a["fit"]["rows_per_s"], a["score"]["rows_per_s"],
                 a["peak_rss_bytes_fit_score"] / 2**20)
        b = None
        if not args.skip_dask:
            log.info("(b) LocalCluster(2 processes) vs one process on %d rows", rows_b)
            b = part_b(data, rows_b, chunk, args.warm)
            result["b_dask_vs_single"] = b
            log.info("  single %.3g rows/s, dask %.3g rows/s, max abs diff %.2e",
                     b["single_process"]["rows_per_s"], b["dask_2_workers"]["rows_per_s"],
                     b["model_max_abs_diff"])
    finally:
        if not args.keep:
            for f in (data, scores):
                if f.exists():
                    f.unlink()
            try:
                args.workdir.rmdir()  # only if empty (never removes others' files)
            except OSError:
                pass
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["process_peak_rss_bytes_a_b"] = usage.ru_maxrss * 1024
    log.info("(c) projection to 1e9 x 512")
    m512 = measure_d512(args.project_partition_rows, args.seed)
    workers = [int(w) for w in args.project_workers.split(",")]
    result["c_projection"] = project(m512, result["a_out_of_core"], b, workers, 1e9, 512, 16,
                                     args.network_GBps * 1e9)  # fmt: skip
    for r in result["c_projection"]["rows"]:
        log.info("  N=%4d: fit %.2f h, score %.2f h, %.2f GiB/worker", r["workers"],
                 r["fit_hours"], r["score_hours"], r["worker_memory_bytes"] / GiB)
    result["process_peak_rss_bytes_with_c"] = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    result["load_avg_at_end"] = os.getloadavg()
    # collected last, so that what it imports (threadpoolctl) stays out of the RSS measured
    # above; the git state was taken at the start
    result["environment"] = _io.environment(git)
    try:
        import distributed

        result["environment"]["versions"]["distributed"] = distributed.__version__
    except ImportError:
        pass
    path = _io.write_results(out, result)
    log.info("wrote %s", path)
    a = result["a_out_of_core"]
    ratio = ("" if b is None else "; dask / single process "
             f"{b['dask_2_workers']['rows_per_s'] / b['single_process']['rows_per_s']:.2f}")
    log.info("done in %.0f s: out of core %d x %d: fit %.3g rows/s, score %.3g rows/s%s",
             time.perf_counter() - t_start, rows, dim, a["fit"]["rows_per_s"],
             a["score"]["rows_per_s"], ratio)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
