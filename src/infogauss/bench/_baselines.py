"""Baseline OOD detectors the benchmarks compare infogauss with, in one registry.

:func:`baselines` returns, for each baseline, a ``fit()`` that trains it on the in-distribution
training embeddings and returns ``(score, notes)``: ``score(X)`` gives one float64 per row,
**higher = more in-distribution** (PyOD's outlier scores are negated), and ``notes`` adds
facts known only after fitting. Registered, in order:

* ``deep_knn`` (Sun et al., 2022): cosine similarity to the k-th nearest training embedding
  after L2 normalisation; exact search with faiss ``IndexFlatIP``, or a blocked numpy matmul +
  partition when faiss is missing (the same exact search, slower);
* ``pyod_ecod``, ``pyod_iforest``, ``pyod_knn`` (k=5, largest), ``pyod_lof`` (k=20), fitted
  on a random subsample of ``baseline_max_train`` rows (they are O(n²) or batch-dependent);
  ECOD is scored in batches of ``ecod_batch`` rows because PyOD's ECOD ranks each batch
  together with the training data (pyod #401). Skipped, with a warning, without PyOD;
* ``elliptic_envelope_mcd``: scikit-learn's ``EllipticEnvelope`` (minimum covariance
  determinant) on the top ``mcd_dims`` principal components of a ``mcd_max_train``
  subsample (MCD needs far more points than dimensions per subset);
* ``feature_norm``: the L2 norm (higher norm = more in-distribution, as CSI observed for
  contrastive features).

faiss, pyod and scikit-learn's estimators are imported when a baseline is built or fitted.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["Scorer", "baselines", "l2_normalize", "subsample", "knn_scorer"]

log = logging.getLogger("benchmarks.baselines")

#: ``score(X) -> ndarray of shape (n,)``, higher = more in-distribution.
Scorer = Callable[[np.ndarray], np.ndarray]
Fit = Callable[[], tuple[Scorer, dict[str, Any]]]


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32; an all-zero row stays zero)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def subsample(n: int, m: int | None, seed: int, salt: int) -> np.ndarray:
    """Sorted indices of ``m`` of ``n`` rows drawn without replacement (all when ``m >= n``).

    ``salt`` separates the draws of one seed (training subsample, baselines, MCD).
    """
    if m is None or m >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, salt]).choice(n, size=m, replace=False))


def knn_scorer(train: np.ndarray, k: int) -> tuple[Scorer, dict[str, Any]]:
    """Deep kNN: the cosine similarity of each row to its k-th nearest training row (exact)."""
    base = l2_normalize(train)
    k = min(k, base.shape[0])
    try:  # through the package's one faiss module (the dependency fence)
        from ..retrieval._index import faiss
    except ImportError:
        faiss = None
    if faiss is not None:
        index = faiss.IndexFlatIP(base.shape[1])
        index.add(np.ascontiguousarray(base))

        def score(X):
            sims, _ = index.search(np.ascontiguousarray(l2_normalize(X)), k)
            return sims[:, k - 1].astype(np.float64)

        return score, {"backend": "faiss.IndexFlatIP (exact)", "k": k}

    def score_np(X):
        q = l2_normalize(X)
        out = np.empty(q.shape[0])
        for s in range(0, q.shape[0], 2048):
            sims = q[s:s + 2048] @ base.T
            out[s:s + 2048] = np.partition(sims, -k, axis=1)[:, -k]
        return out

    return score_np, {"backend": "numpy matmul + partition (exact; faiss not installed)", "k": k}


def baselines(
    train: np.ndarray,
    *,
    seed: int = 0,
    k: int = 50,
    baseline_max_train: int | None = 10_000,
    mcd_max_train: int | None = 5_000,
    mcd_dims: int = 64,
    ecod_batch: int = 1_000,
) -> dict[str, tuple[Fit, dict[str, Any]]]:
    """The baseline registry (see the module docstring): name -> (fit, notes).

    Parameters
    ----------
    train : ndarray of shape (n, d)
        In-distribution training embeddings.
    seed : int
        Seeds the subsamples, IForest and the MCD/PCA fits.
    k : int
        Deep kNN's neighbour rank.
    baseline_max_train, mcd_max_train : int or None
        Training rows for the PyOD baselines and for MCD (None: all).
    mcd_dims : int
        Principal components kept for MCD (at most d and n/10).
    ecod_batch : int
        Rows per ECOD scoring call.

    Returns
    -------
    dict
        ``name -> (fit, notes)``; ``fit()`` returns ``(score, extra_notes)``.
    """
    n = train.shape[0]
    sub = subsample(n, baseline_max_train, seed, 1)
    msub = subsample(n, mcd_max_train, seed, 2)
    out: dict[str, tuple[Fit, dict[str, Any]]] = {}
    out["deep_knn"] = (lambda: knn_scorer(train, k), {"n_train": n, "k": k})
    try:
        import pyod  # noqa: F401
    except ImportError:
        log.warning("pyod not installed: skipping ECOD, IForest, KNN, LOF")
    else:
        from pyod.models.ecod import ECOD
        from pyod.models.iforest import IForest
        from pyod.models.knn import KNN
        from pyod.models.lof import LOF

        def pyod_fit(make, batch=None):
            def fit():
                det = make().fit(np.asarray(train[sub], dtype=np.float64))

                def score(X):
                    X = np.asarray(X, dtype=np.float64)
                    if batch is None:
                        return -det.decision_function(X)
                    return -np.concatenate([det.decision_function(X[s:s + batch])
                                            for s in range(0, X.shape[0], batch)])
                return score, {}
            return fit

        note = {"n_train": int(sub.shape[0]), "subsampled": bool(sub.shape[0] < n)}
        out["pyod_ecod"] = (pyod_fit(ECOD, batch=ecod_batch),
                            {**note, "score_batch": ecod_batch,
                             "note": "PyOD ECOD scores depend on the scored batch (pyod #401)"})
        out["pyod_iforest"] = (pyod_fit(lambda: IForest(n_estimators=100, random_state=seed)),
                               {**note, "n_estimators": 100})

        def knn():
            with warnings.catch_warnings():  # PyOD warns on any algorithm but "auto"
                warnings.simplefilter("ignore", FutureWarning)
                return KNN(n_neighbors=5, method="largest", algorithm="brute")

        out["pyod_knn"] = (pyod_fit(knn), {**note, "k": 5, "algorithm": "brute"})
        out["pyod_lof"] = (pyod_fit(lambda: LOF(n_neighbors=20, algorithm="brute")),
                           {**note, "n_neighbors": 20})

    def mcd_fit():
        from sklearn.covariance import EllipticEnvelope
        from sklearn.decomposition import PCA

        Xs = np.asarray(train[msub], dtype=np.float64)
        dims = min(mcd_dims, Xs.shape[1], max(Xs.shape[0] // 10, 1))
        pca = PCA(n_components=dims, random_state=seed).fit(Xs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = EllipticEnvelope(random_state=seed).fit(pca.transform(Xs))
        return (lambda X: env.score_samples(pca.transform(np.asarray(X, dtype=np.float64))),
                {"pca_dims": int(dims)})

    out["elliptic_envelope_mcd"] = (mcd_fit, {"n_train": int(msub.shape[0]),
                                              "subsampled": bool(msub.shape[0] < n),
                                              "pca_dims_max": mcd_dims})
    out["feature_norm"] = (lambda: (lambda X: np.linalg.norm(np.asarray(X, np.float64), axis=1),
                                    {}), {"note": "higher norm = more in-distribution"})
    return out
