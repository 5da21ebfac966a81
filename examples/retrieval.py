"""Calibrated retrieval: match p-values, declared matches at a false-match level, abstention.

:class:`infogauss.CalibratedRetriever` fits a Gaussian to the database embeddings, searches
(faiss) over whitened unit vectors, and turns each neighbour into a p-value of "the same
item" (the default ``null="neighbour"``: compared with database items held out one at a
time, so the best of the whole database is accounted for): ``match = corrected_pvalues <=
alpha`` declares a match for at most about ``alpha`` of the queries that have none. Queries
unlike the database (small Gaussian p-value) are abstained on. ``calibrate_relevance``
learns P(relevant | similarity) from labelled queries.

The data: a database of 2,000 correlated Gaussian embeddings (32-d), each its own item;
queries are noisy views of database items (``a * x + sqrt(1 - a^2) * noise``, the paper's
views, which keep the distribution), fresh embeddings with no match in the database, and a
shifted (out-of-distribution) batch.

Run::

    python examples/retrieval.py

Needs the ``faiss`` extra (``pip install 'infogauss[faiss]'``). Writes no files.
"""

from __future__ import annotations

import numpy as np

from infogauss.metrics import brier_score, expected_calibration_error, false_match_rate

try:  # the faiss extra
    from infogauss import CalibratedRetriever
except ImportError as exc:  # the message names the extra to install
    raise SystemExit(str(exc)) from None

SEED = 0
D, N_DATABASE = 32, 2000
ALPHA, OOD_ALPHA = 0.05, 0.01
NO_MATCH = -1  # label of queries whose item is not in the database


def main() -> int:
    rng = np.random.default_rng(SEED)
    mixing = rng.standard_normal((D, D)) / np.sqrt(D) + np.eye(D)

    def draw(n: int) -> np.ndarray:
        return rng.standard_normal((n, D)) @ mixing.T

    database = draw(N_DATABASE).astype(np.float32)
    item_ids = np.arange(N_DATABASE)

    strengths = np.repeat([0.9, 0.8, 0.7], 200)  # a: correlation of a view with its item
    source = rng.choice(N_DATABASE, size=strengths.size, replace=False)
    noise = np.sqrt(1.0 - strengths**2)[:, None] * draw(strengths.size)
    views = (strengths[:, None] * database[source] + noise).astype(np.float32)
    fresh = draw(1000).astype(np.float32)  # no match in the database
    shifted = (draw(200) + 3.0).astype(np.float32)

    retriever = CalibratedRetriever(alpha=ALPHA, ood_alpha=OOD_ALPHA, seed=SEED)
    retriever.fit(database, item_ids)
    print(
        f"database: {N_DATABASE} x {D} embeddings; false-match level alpha={ALPHA}, "
        f"abstention level ood_alpha={OOD_ALPHA} (null={retriever.null!r}, "
        f"correction={retriever.correction!r})"
    )

    # learn P(relevant | similarity) on half the queries, evaluate on the other half
    cal_v, cal_f = rng.random(views.shape[0]) < 0.5, rng.random(fresh.shape[0]) < 0.5
    retriever.calibrate_relevance(
        np.vstack([views[cal_v], fresh[cal_f]]),
        np.r_[source[cal_v], np.full(cal_f.sum(), NO_MATCH)],
        k=5,
    )
    res_v = retriever.search(views[~cal_v], k=5)
    res_f = retriever.search(fresh[~cal_f], k=5)
    res_o = retriever.search(shifted, k=5)

    a_eval, src_eval = strengths[~cal_v], source[~cal_v]
    correct = res_v.indices[:, 0] == src_eval
    print("queries that are views of a database item (a = correlation with it):")
    print("    a   queries  top-1 is the item  top-1 declared a match  mean P(relevant) at top-1")
    for a in np.unique(a_eval)[::-1]:
        sel = a_eval == a
        print(
            f"  {a:.1f}  {sel.sum():8d}  {correct[sel].mean():17.3f}  {res_v.match[sel, 0].mean():22.3f}"
            f"  {res_v.relevance[sel, 0].mean():25.3f}"
        )
    wrong = res_v.match[:, 0] & ~correct
    print(f"  declared matches that are the wrong item: {wrong.sum()} of {res_v.match[:, 0].sum()}")

    fmr = false_match_rate(res_f.match, alpha=ALPHA)
    print(
        f"queries with no match in the database: {fmr.rate:.3f} declared a match "
        f"(95% CI [{fmr.ci_low:.3f}, {fmr.ci_high:.3f}], {fmr.n_queries} queries) vs alpha={ALPHA}"
    )

    relevant = np.vstack([res_v.labels == src_eval[:, None], np.zeros_like(res_f.match)]).ravel()
    prob = np.vstack([res_v.relevance, res_f.relevance]).ravel()
    print(
        f"P(relevant | similarity) on held-out queries: ECE "
        f"{expected_calibration_error(relevant, prob):.4f}, Brier {brier_score(relevant, prob):.4f}"
    )
    in_dist = np.r_[res_v.abstain, res_f.abstain]
    print(
        f"abstained (query OOD p-value <= {OOD_ALPHA}): {in_dist.mean():.1%} of in-distribution "
        f"queries, {res_o.abstain.mean():.1%} of the shifted batch; "
        f"accepted matches in the shifted batch: {res_o.accept[:, 0].sum()}"
    )
    i = int(np.argmin(a_eval))  # one of the hardest views
    print(
        f"one query (a={a_eval[i]:.1f}): neighbour {res_v.indices[i, 0]} (item {src_eval[i]}), raw cosine "
        f"{res_v.similarities[i, 0]:.3f}, whitened {res_v.whitened_similarities[i, 0]:.3f}, "
        f"p-value {res_v.pvalues[i, 0]:.2e}, corrected {res_v.corrected_pvalues[i, 0]:.2e}, "
        f"match {bool(res_v.match[i, 0])}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
