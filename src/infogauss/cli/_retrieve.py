"""``infogauss retrieve fit`` and ``infogauss retrieve search``: calibrated retrieval (faiss).

::

    infogauss retrieve fit DATABASE.npy --out retriever.npz [--labels LABELS.npy]
                      [--whiten zca|pca|none] [--n-components K] [--shrinkage ledoit_wolf]
                      [--index flat|ivf|hnsw] [--null neighbour|empirical|analytic]
                      [--correction auto|sidak|evt|none] [--alpha 0.01] [--ood-alpha 0.01]
                      [--n-null-queries 2000] [--seed 0]
    infogauss retrieve search RETRIEVER.npz QUERIES.npy --out results.npz [--k 10]
                      [--chunk-size ROWS]

``fit`` builds :class:`~infogauss.CalibratedRetriever` over the database embeddings and writes
it (:meth:`CalibratedRetriever.save`). ``search`` writes an ``.npz`` with the fields of
:class:`~infogauss.RetrievalResult`, one row per query: ``indices`` (int64, -1 = no
neighbour), ``similarities``, ``whitened_similarities`` (float32), ``pvalues``,
``corrected_pvalues`` (float64), ``match`` (bool), ``ood_pvalues`` (float64, per query),
``abstain`` (bool, per query), ``labels`` (when the database has labels), ``relevance`` (when
calibrated), and the scalars ``alpha``, ``ood_alpha``, ``n_searched``. Needs faiss
(``pip install 'infogauss[faiss]'``); the choices below are listed here so that ``--help``
works without it.
"""

from __future__ import annotations

import argparse

import numpy as np

from ._common import (
    add_common_flags,
    as_arguments,
    check_out,
    embeddings_header,
    emit,
    estimator_file,
    fraction,
    load_estimator,
    positive_int,
    progress_on,
    read_embeddings,
    read_labels,
)
from ._gaussian import add_chunk_size, add_shrinkage

_RESULT_FIELDS = ("indices", "similarities", "whitened_similarities", "pvalues",
                  "corrected_pvalues", "match", "ood_pvalues", "abstain", "relevance", "labels")


def _none(value: str) -> str | None:
    return None if value == "none" else value


def configure_retrieve(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="retrieve_command", metavar="ACTION", required=True)
    fit = sub.add_parser("fit", help="build a calibrated retriever over database embeddings",
                         description="Build a calibrated retriever over database embeddings "
                         "and write it (.npz model file).")
    add_common_flags(fit)
    fit.set_defaults(_command="retrieve fit", _run=run_retrieve_fit)
    fit.add_argument("database", metavar="DATABASE", help="database embeddings, 2-D float .npy")
    fit.add_argument("--out", required=True, help="retriever file to write (.npz)")
    fit.add_argument("--labels", metavar="LABELS.npy",
                     help="one label per database row (1-D .npy): the empirical null uses pairs "
                     "of different labels, results carry neighbour labels")
    fit.add_argument("--whiten", choices=("zca", "pca", "none"), default="zca",
                     help="whitening before the cosine (default zca; none: raw embeddings)")
    fit.add_argument("--n-components", type=positive_int, default=None,
                     help="rank of the whitening (with --whiten pca) [full]")
    add_shrinkage(fit)
    fit.add_argument("--index", choices=("flat", "ivf", "hnsw"), default="flat",
                     help="faiss index: flat (exact, default), ivf or hnsw (approximate)")
    fit.add_argument("--null", choices=("neighbour", "empirical", "analytic"),
                     default="neighbour",
                     help="what a match means: neighbour = the same item (near-duplicate search, "
                     "the default); empirical / analytic = more similar than a random pair")
    fit.add_argument("--correction", choices=("auto", "sidak", "evt", "none"), default="auto",
                     help="top-1 correction of the pair nulls for searching n items [auto: sidak; "
                     "the neighbour null takes only auto]")
    fit.add_argument("--alpha", type=fraction(0.0, 1.0), default=0.01,
                     help="false-match level of `match` [0.01]")
    fit.add_argument("--ood-alpha", type=fraction(0.0, 1.0), default=0.01,
                     help="abstention level on out-of-distribution queries [0.01]")
    fit.add_argument("--n-null-queries", type=positive_int, default=2000,
                     help="held-out items of the neighbour null, pseudo-queries of the empirical "
                     "null [2000]")
    fit.add_argument("--seed", type=int, default=0, help="seed [0]")

    search = sub.add_parser("search", help="search a fitted retriever",
                            description="Top-k neighbours of each query with match p-values "
                            "and abstention, from a retriever written by `infogauss retrieve fit`.")
    add_common_flags(search)
    search.set_defaults(_command="retrieve search", _run=run_retrieve_search)
    search.add_argument("retriever", metavar="RETRIEVER",
                        help="file written by `infogauss retrieve fit`")
    search.add_argument("queries", metavar="QUERIES", help="query embeddings, 2-D float .npy")
    search.add_argument("--out", required=True, help="results to write (.npz)")
    search.add_argument("--k", type=positive_int, default=10, help="neighbours per query [10]")
    add_chunk_size(search)


def run_retrieve(args: argparse.Namespace) -> int:
    return args._run(args)


def run_retrieve_fit(args: argparse.Namespace) -> int:
    out = check_out(args.out, [args.database, args.labels])
    X = read_embeddings(args.database, "DATABASE")
    y = None
    if args.labels is not None:
        y = read_labels(args.labels, "--labels", X.shape[0], "DATABASE")
    from ..retrieval import CalibratedRetriever  # faiss: after the inputs are checked

    if not hasattr(CalibratedRetriever, "save"):
        raise RuntimeError("CalibratedRetriever.save is not available in this infogauss version")
    r = CalibratedRetriever(
        whiten=_none(args.whiten), n_components=args.n_components, shrinkage=args.shrinkage,
        index=args.index, null=args.null, correction=_none(args.correction), alpha=args.alpha,
        ood_alpha=args.ood_alpha, n_null_queries=args.n_null_queries, seed=args.seed,
    )  # fmt: skip
    with as_arguments(database_embeddings="DATABASE", labels="--labels"):
        r.fit(np.asarray(X), y)
    path = r.save(out) or out
    emit(
        args,
        {"outputs": {"retriever": str(path)}, "n_database": int(r.n_database_),
         "n_features": int(r.n_features_in_), "dim": int(r.dim_), "whiten": args.whiten,
         "index": args.index, "null": args.null, "correction": args.correction,
         "alpha": args.alpha, "ood_alpha": args.ood_alpha, "labels": y is not None},
        f"built a calibrated retriever over {X.shape[0]} x {X.shape[1]} embeddings "
        f"(whiten {args.whiten}, {args.index} index, {args.null} null); wrote {path}",
    )
    return 0


def run_retrieve_search(args: argparse.Namespace) -> int:
    from .. import _io
    from .._progress import progress
    from ..streaming import iter_npy_chunks

    inputs = [args.retriever, args.queries]
    out = check_out(args.out, inputs)
    estimator_file(args.retriever, "RETRIEVER")  # the arguments in order
    header = embeddings_header(args.queries, "QUERIES")
    from ..retrieval import CalibratedRetriever  # faiss: after the inputs are checked

    r = load_estimator(CalibratedRetriever, args.retriever, "RETRIEVER")
    if header.n_features != r.n_features_in_:
        raise ValueError(
            f"`QUERIES` has {header.n_features} features, but the retriever in "
            f"{str(args.retriever)!r} is expecting {r.n_features_in_}"
        )
    if args.k > r.n_database_:
        raise ValueError(f"`--k` must be at most the database size ({r.n_database_}), got {args.k}")
    parts: dict[str, list] = {f: [] for f in _RESULT_FIELDS}
    res = None
    with progress(total=header.n_rows, enabled=progress_on(args), desc="searching",
                  unit="queries") as bar:  # fmt: skip
        for block in iter_npy_chunks(header, args.chunk_size):
            with as_arguments(queries="QUERIES"):
                res = r.search(block, k=args.k)
            for f in _RESULT_FIELDS:
                value = getattr(res, f)
                if value is not None:
                    parts[f].append(value)
            bar.update(block.shape[0])
    arrays = {f: np.concatenate(v) for f, v in parts.items() if v}
    arrays.update(alpha=np.float64(res.alpha), ood_alpha=np.float64(res.ood_alpha),
                  n_searched=np.int64(res.n_searched))
    path = _io.atomic_write(out, lambda fh: np.savez(fh, **arrays), name="--out", inputs=inputs)
    n = int(arrays["indices"].shape[0])
    top1 = int(arrays["match"][:, 0].sum())
    abstained = int(arrays["abstain"].sum())
    emit(
        args,
        {"outputs": {"results": str(path)}, "n_queries": n, "k": args.k,
         "n_searched": int(res.n_searched), "top1_matches": top1, "abstained": abstained,
         "alpha": res.alpha, "ood_alpha": res.ood_alpha, "arrays": sorted(arrays)},
        f"searched {n} queries against {res.n_searched} items (k={args.k}): {top1} with a "
        f"declared top-1 match (alpha {res.alpha:g}), {abstained} abstained as "
        f"out-of-distribution (ood_alpha {res.ood_alpha:g}); wrote {path}",
    )
    return 0
