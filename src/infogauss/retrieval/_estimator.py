r"""``CalibratedRetriever``: validate once, hold state, delegate to the laws and the index."""

from __future__ import annotations

import numbers
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import calibration, persistence
from .. import gaussian as core
from .._validation import check_matrix_like, check_positive_int, check_probability
from ..metrics import brier_score, expected_calibration_error
from ..model import GaussianModel
from . import _index, _persist
from ._input import (
    check_float32_range,
    check_k,
    check_labels,
    gather_dot,
    refuse_ambiguous,
    unit32,
)
from ._result import CALIBRATION_METHODS, CALIBRATORS, RetrievalResult
from .duplicates import DUPLICATE_TOL, duplicate_groups, find_duplicates, merge_groups
from .neighbour import distinct_candidates, fit_neighbour_null, held_out_cosines, reference_size
from .nulls import (
    EVT_NEEDS_DATA,
    NULL_METHODS,
    AnalyticCosineNull,
    check_correction,
    empirical_cosine_null,
    sidak_correction,
)

__all__ = ["CalibratedRetriever"]

WHITEN_METHODS = ("zca", "pca", None)
_KIND = "CalibratedRetriever"
_FIT_ATTRS = ("n_features_in_", "feature_names_in_")
_ADD_NEIGHBOURS = 16  # database neighbours of an added row checked for duplicates


class CalibratedRetriever(BaseEstimator):
    r"""Nearest-neighbour search over whitened embeddings with match p-values and abstention.

    Parameters
    ----------
    whiten : {"zca", "pca", None}, default="zca"
        Whitening of the database Gaussian before L2 normalisation. ZCA and full-rank PCA give
        the same cosines; ``"pca"`` with ``n_components`` keeps the leading components. None
        searches the raw (L2-normalised) embeddings — the analytic null then assumes an
        isotropy that raw embeddings rarely have.
    n_components : int, optional
        Rank of the whitening (see :class:`~infogauss.GaussianModel`). Default: full rank.
    shrinkage : str or float, default="ledoit_wolf"
        Covariance shrinkage (see :class:`~infogauss.GaussianModel`).
    index : {"flat", "ivf", "hnsw"}, str or faiss.Index, default="flat"
        faiss index over the unit whitened vectors, inner-product metric. ``"flat"``: exact
        (``IndexFlatIP``). ``"ivf"``: ``IndexIVFFlat``, approximate. ``"hnsw"``:
        ``IndexHNSWFlat``, approximate. Any other string is a :func:`faiss.index_factory`
        description (e.g. ``"IVF256,PQ16"``, ``"PCA64,HNSW32"``), built with the inner-product
        metric. A :class:`faiss.Index` must be empty and use ``faiss.METRIC_INNER_PRODUCT``;
        it is cloned (never modified), trained on the database if it is not trained yet, and
        must have ``d = dim_``. Indexes that compress the vectors (PQ, SQ, pre-transforms)
        return approximate inner products: the retriever then keeps a float32 copy of the unit
        whitened database and rescores the ``k`` candidates exactly, so similarities and
        p-values are always those of the stored vectors.
    index_params : dict, optional
        ``"ivf"``: ``nlist`` (cells, default ``min(4 sqrt(n), n // 39)``), ``nprobe`` (cells
        visited per query, default ``min(nlist, 32)``; ``nprobe = nlist`` is exact).
        ``"hnsw"``: ``M`` (graph degree, default 32), ``efConstruction`` (default 40),
        ``efSearch`` (search beam, default 64, raised to ``k`` when smaller). Factory strings
        and user-built indexes: ``nprobe`` (IVF structures; default ``min(nlist, 32)``, or the
        user index's own), ``efSearch`` (HNSW; default 64, or the user index's own).
        :meth:`search` overrides both per call. Whitening spreads the data over all
        dimensions, which makes approximate search harder than on raw embeddings: check the
        recall against ``"flat"`` (the benchmark reports it). p-values are computed from the
        similarities found, so a missed best neighbour makes them conservative.
    null : {"neighbour", "empirical", "analytic"}, default="neighbour"
        What a match means. ``"neighbour"`` — **the same item**: a candidate is a match when
        it is closer to the query, relative to the query's next-best items, than the best
        item of a *new* item from the database's distribution ever is
        (:mod:`infogauss.retrieval.neighbour`: leave-one-out neighbour statistics of
        ``n_null_queries`` database items, on whitened and raw cosines). This is the null for
        near-duplicate search and the one whose false-match rate holds on real embeddings,
        where same-class items are far closer than random pairs. ``labels`` do not enter it
        (other items of a class are not the same item).
        The pair nulls answer "more similar than a random pair" — a test of independence, not
        identity: ``"analytic"``: :class:`AnalyticCosineNull` in the whitened dimension
        (exact for whitened Gaussian embeddings), and the query OOD p-value from Hotelling's
        law; ``"empirical"``: estimated from database pairs (:func:`empirical_cosine_null`;
        pairs of different labels when ``labels`` are given). Both OOD p-values other than
        Hotelling's are the rank of the query's Mahalanobis distance among the database's.
    correction : {"auto", "sidak", "evt", None}, default="auto"
        Top-1 correction of the pair nulls for searching ``n`` distinct items (the
        ``"neighbour"`` null is already a law of the best item and takes only ``"auto"``).
        ``"auto"``: ``"sidak"`` for the pair nulls. ``"sidak"``: :math:`1-(1-p)^n`,
        exact for independent pairs. ``"evt"`` (``null="empirical"`` only): a generalised
        extreme-value law fitted to :math:`-\log(1-m)` of the best similarity :math:`m` of
        each pseudo-query, moved to ``n`` by max-stability; it models the best-of-``n`` law
        directly, including the dependence of pairs through the query, and extrapolates below
        ``1 / n_pairs``. None: per-pair p-values (the false-match rate is then not controlled).
    alpha : float in (0, 1), default=0.01
        False-match level: ``match = corrected_pvalues <= alpha``.
    ood_alpha : float in (0, 1), default=0.01
        Abstention level: ``abstain = ood_pvalues <= ood_alpha``.
    n_null_queries : int, default=2000
        Held-out items of the neighbour null, pseudo-queries of the empirical null (capped at
        the number of distinct items); cost: that many searches at fit. The neighbour null's
        rank p-values resolve ``1 / (n_null_queries + 1)``; below that they follow a fitted
        exponential tail.
    duplicate_tol : float in [0, 1), default=1e-5
        Database rows whose whitened cosine distance ``1 - cos`` is at most this are copies of
        one item (:func:`~infogauss.retrieval.duplicates.find_duplicates`; 0: identical rows
        only). Copies are reported (``duplicate_groups_`` and a warning) and count once in
        the empirical null and in ``n``. Independent whitened vectors fall this close with
        probability below 1e-16 in 8 or more dimensions; in fewer, lower it.
    seed : int or None, default=0
        Seeds the empirical null's pseudo-queries and IVF's k-means.

    Attributes
    ----------
    model_ : GaussianModel
        Gaussian fitted to the database (raw space).
    index_ : faiss.Index
        The index over unit whitened database vectors (row ``i`` has id ``i``).
    index_params_ : dict
        Index parameters used (for IVF/HNSW structures: the default ``nprobe``/``efSearch``).
    null_ : AnalyticCosineNull or EmpiricalCosineNull
    dim_ : int
        Dimension of the whitened space (the rank of the whitening).
    n_database_ : int
        Rows in the database (after :meth:`add`).
    n_distinct_ : int
        Distinct items: rows less duplicates; the ``n`` of the top-1 correction.
    duplicate_groups_ : list of ndarray
        Rows of each group of (near-)identical rows, for groups of two or more.
    n_duplicates_ : int
        ``n_database_ - n_distinct_``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    labels_ : ndarray of shape (n_database,) or None
    relevance_method_, relevance_ece_, relevance_brier_
        Set by :meth:`calibrate_relevance` (ECE and Brier score are in-sample).

    Notes
    -----
    Whitening makes the non-match similarity law query-independent for Gaussian embeddings:
    for whitened isotropic vectors the cosine :math:`c` of independent vectors satisfies
    :math:`(1+c)/2\sim\mathrm{Beta}((d-1)/2,(d-1)/2)`, whatever the query. A declared match
    (``corrected_pvalues <= alpha``) controls the probability that a query's best non-match
    is called a match at ``alpha``; queries whose true matches are in the database make the
    correction conservative (``n`` counts them as non-matches). Every null law is bounded at
    cosine 1 (:mod:`infogauss.retrieval.nulls`): a database item identical to the query gets
    a corrected p-value that vanishes with ``1 - c``.

    Memory: the index holds the unit whitened vectors and the retriever a unit copy of the raw
    ones (for raw cosines), ``2 · n · d`` float32 values; compressed indexes add an exact copy.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> db = rng.normal(size=(500, 8)).astype("float32")
    >>> r = CalibratedRetriever(null="analytic", correction="sidak").fit(db)
    >>> res = r.search(db[:3] + 0.01, k=2)
    >>> res.indices[:, 0].tolist(), res.match[:, 0].tolist()
    ([0, 1, 2], [True, True, True])
    """

    def __init__(
        self,
        *,
        whiten: str | None = "zca",
        n_components: int | None = None,
        shrinkage: str | float = "ledoit_wolf",
        index: Any = "flat",
        index_params: dict | None = None,
        null: str = "neighbour",
        correction: str | None = "auto",
        alpha: float = 0.01,
        ood_alpha: float = 0.01,
        n_null_queries: int = 2000,
        duplicate_tol: float = DUPLICATE_TOL,
        seed: int | None = 0,
    ) -> None:
        self.whiten = whiten
        self.n_components = n_components
        self.shrinkage = shrinkage
        self.index = index
        self.index_params = index_params
        self.null = null
        self.correction = correction
        self.alpha = alpha
        self.ood_alpha = ood_alpha
        self.n_null_queries = n_null_queries
        self.duplicate_tol = duplicate_tol
        self.seed = seed

    # ------------------------------------------------------------------ validation
    def _validate_params_(self) -> None:
        if self.whiten not in WHITEN_METHODS:
            raise ValueError(f"`whiten` must be one of {WHITEN_METHODS}, got {self.whiten!r}")
        check_positive_int(self.n_components, "n_components", allow_none=True)
        if self.whiten is None and self.n_components is not None:
            raise ValueError(
                f"`n_components` needs whitening; got n_components={self.n_components} with "
                "whiten=None (use whiten='pca')"
            )
        _index.check_index_param(self.index, self.index_params)
        if self.null not in NULL_METHODS:  # before the correction check, which depends on it
            raise ValueError(f"`null` must be one of {NULL_METHODS}, got {self.null!r}")
        if self.null == "neighbour":
            if self.correction != "auto":
                raise ValueError(
                    f"`correction` must be 'auto' with null='neighbour' (its law is already that "
                    f"of the best database item), got {self.correction!r}; the corrections "
                    "'sidak' and 'evt' belong to the pair nulls 'empirical' and 'analytic'"
                )
        elif self.correction != "auto":
            check_correction(self.correction)
        if self.correction == "evt" and self.null == "analytic":
            raise ValueError(EVT_NEEDS_DATA)
        check_probability(self.alpha, "alpha")
        check_probability(self.ood_alpha, "ood_alpha")
        check_positive_int(self.n_null_queries, "n_null_queries")
        if self.duplicate_tol != 0:
            check_probability(self.duplicate_tol, "duplicate_tol", open_left=False)
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral)
        ):
            raise TypeError(f"`seed` must be an integer or None, got {self.seed!r}")

    def _validate(self, X: Any, name: str, *, reset: bool, min_rows: int = 1) -> np.ndarray:
        """The one conversion: refuse ambiguous input, ``validate_data``, finite and in float32's
        range. float64 input stays float64 until it is centred and whitened (an offset far
        larger than the spread would leave nothing in float32); what faiss stores is float32."""
        arr = refuse_ambiguous(X, name)
        check_matrix_like(arr, name, min_samples=min_rows)  # row and column counts, named
        arr = validate_data(
            self,
            X if hasattr(X, "columns") else arr,  # a DataFrame keeps its column names
            reset=reset,
            dtype=[np.float64, np.float32],  # ints, bools, float16: float64, like sklearn
            ensure_all_finite=False,
            ensure_min_samples=min_rows,
        )
        check_float32_range(arr, name)
        return np.ascontiguousarray(arr)

    def _check_queries(self, X: Any, name: str) -> np.ndarray:
        check_is_fitted(self, "index_")
        return self._validate(X, name, reset=False)

    # ------------------------------------------------------------------ fitting
    def fit(self, database_embeddings: Any, labels: Any = None) -> CalibratedRetriever:
        """Fit the Gaussian, whiten and normalise the database, build the index and the null.

        A failed fit leaves the estimator as it was.

        Parameters
        ----------
        database_embeddings : array-like of shape (n_database, n_features)
            At least 2 finite rows.
        labels : array-like of shape (n_database,), optional
            Class labels: the empirical null then uses pairs of different labels only, search
            results carry neighbour labels, and :meth:`calibrate_relevance` becomes available.

        Returns
        -------
        self

        Warns
        -----
        RuntimeWarning
            When the database holds duplicate rows (see ``duplicate_groups_``).
        """
        self._validate_params_()
        before = {k: self.__dict__[k] for k in _FIT_ATTRS if k in self.__dict__}
        try:
            X = self._validate(database_embeddings, "database_embeddings", reset=True, min_rows=2)
            state = self._fit_arrays(X, check_labels(labels, X.shape[0], "labels"))
        except BaseException:
            for k in _FIT_ATTRS:
                self.__dict__.pop(k, None)
            self.__dict__.update(before)
            raise
        for attr in ("relevance_method_", "relevance_ece_", "relevance_brier_"):
            self.__dict__.pop(attr, None)
        self.__dict__.update(state)
        self._set_groups(state["_groups"])
        if self.n_duplicates_:
            self._warn_duplicates(self.n_duplicates_, "the database holds")
        return self

    def _fit_arrays(self, X: np.ndarray, labels: np.ndarray | None) -> dict[str, Any]:
        """Everything ``fit`` computes, as a dict of attributes (nothing set on self)."""
        n, d = X.shape
        model = GaussianModel(
            shrinkage=self.shrinkage, whiten=self.whiten or "zca", n_components=self.n_components
        )._fit_array(X)
        model._warn_precision(X.dtype)  # the Gaussian's own warning, before faiss's float32
        dim = d if self.whiten is None else int(self.n_components or model.whitening_.shape[1])
        if dim < 2:
            raise ValueError(
                f"retrieval needs at least 2 whitened dimensions, got {dim} (n_features = {d}"
                f"{'' if self.n_components is None else f', n_components = {self.n_components}'}"
                "): in one dimension every cosine is +1 or -1 and carries no information"
            )
        Z, norms = self._unit_embed(X, "database_embeddings", model, norms=True)
        groups = find_duplicates(Z, tol=self.duplicate_tol)
        raw_unit = unit32(X.copy(), "database_embeddings")
        index, params, exact = _index.build_index(self.index, self.index_params, Z, self.seed)
        exact_copy = None if exact else Z
        if self.null == "analytic":
            null = AnalyticCosineNull(dim)
        elif self.null == "empirical":
            null = empirical_cosine_null(
                Z, labels, groups=groups, n_queries=self.n_null_queries, random_state=self.seed
            )
        else:
            null = self._neighbour_null(Z, raw_unit, groups, index, params, exact_copy, norms,
                                        float(model.shrinkage_ or 0.0))  # fmt: skip
        if self.null == "analytic" and n <= d:
            warnings.warn(
                f"the database has n={n} <= d={d} rows: query OOD p-values use the empirical "
                "rank of Mahalanobis distances instead of Hotelling's law",
                RuntimeWarning,
                stacklevel=3,
            )
        return {
            "model_": model,
            "dim_": dim,
            "null_": null,
            "index_": index,
            "index_params_": params,
            "n_database_": n,
            "labels_": labels,
            "_groups": groups,
            "_ood_law": "f" if (self.null == "analytic" and n > d) else "empirical",
            "_database_m2": np.sort(model._mahalanobis(X)),
            "_database_unit": raw_unit,
            "_exact_copy": exact_copy,
            "_n_fit": n,
            "_relevance": None,
        }

    def _neighbour_null(
        self, Z: np.ndarray, raw_unit: np.ndarray, groups: np.ndarray, index: Any,
        params: dict, exact_copy: np.ndarray | None, norms: np.ndarray | None, shrinkage: float,
    ) -> Any:  # fmt: skip
        """Leave-one-out neighbour statistics of ``n_null_queries`` distinct items."""
        reps = np.flatnonzero(groups == np.arange(groups.shape[0]))
        if reps.size < 3:
            raise ValueError(
                f"null='neighbour' needs at least 3 distinct database items, got {reps.size} "
                "(duplicates count once); use more data or null='analytic'"
            )
        n_ref, n_cand = reference_size(reps.size)
        rng = np.random.default_rng(self.seed)
        rows = np.sort(rng.choice(reps, size=min(self.n_null_queries, reps.size), replace=False))
        width = _candidate_width(groups, n_cand + 1, Z.shape[0])
        wsim, idx = _search_exact(index, exact_copy, params, Z[rows], width, None, None)
        ids, pos, _ = distinct_candidates(idx, groups, n_cand, exclude=groups[rows])
        ws = _take(wsim, pos)
        if norms is not None:  # score the held-out items as the whitening had not seen them
            ws = held_out_cosines(ws, norms[rows], np.where(ids >= 0, norms[np.maximum(ids, 0)],
                                  np.nan), Z.shape[0], shrinkage)  # fmt: skip
        rs = None if self.whiten is None else gather_dot(raw_unit[rows], raw_unit, ids)
        return fit_neighbour_null(ws, rs, n_ref)

    def _neighbour_pvalues(
        self, Qu: np.ndarray, wsim: np.ndarray, idx: np.ndarray
    ) -> np.ndarray:
        """p-values of every searched column under the neighbour null (copies share theirs)."""
        null = self.null_
        ids, pos, col_rank = distinct_candidates(idx, self._groups, null.n_candidates)
        rs = None if null.raw is None else gather_dot(Qu, self._database_unit, ids)
        p = null.pvalues(_take(wsim, pos), rs)
        return np.where(col_rank >= 0, np.take_along_axis(p, np.maximum(col_rank, 0), axis=1),
                        1.0)  # fmt: skip

    def _set_groups(self, groups: np.ndarray) -> None:
        self._groups = groups
        self.n_distinct_ = int(np.count_nonzero(groups == np.arange(groups.shape[0])))
        self.n_duplicates_ = int(groups.shape[0] - self.n_distinct_)
        self.duplicate_groups_ = duplicate_groups(groups)

    def _warn_duplicates(self, count: int, what: str) -> None:
        warnings.warn(
            f"{what} {count} duplicate row(s) (identical, or within whitened cosine distance "
            f"duplicate_tol={self.duplicate_tol} of another row); {len(self.duplicate_groups_)} "
            f"group(s) in all. Each group counts once in the null and in the top-1 correction "
            f"(n = {self.n_distinct_} distinct items), and a query that matches one copy "
            "matches them all: see `duplicate_groups_`, and deduplicate the database to search "
            "distinct items",
            RuntimeWarning,
            stacklevel=3,
        )

    # ------------------------------------------------------------------ pure helpers
    def _unit_embed(
        self, X: np.ndarray, name: str, model: GaussianModel | None = None, *, norms: bool = False
    ) -> Any:
        """Unit whitened rows (float32); with ``norms=True`` also ``|z|`` before the unit
        normalisation (float64; None without whitening), from the same whitening pass."""
        model = self.model_ if model is None else model
        if self.whiten is None:
            U = unit32(X.copy(), name)
            return (U, None) if norms else U
        Z = core.whiten(X, model.location_, model.whitening_, dtype=model.dtype,
                        chunk_size=model.chunk_size)  # fmt: skip
        z_norms = np.sqrt(np.einsum("ij,ij->i", Z, Z, dtype=np.float64)) if norms else None
        U = unit32(np.array(Z, copy=Z is X), name)  # normalised in the compute dtype
        return (U, z_norms) if norms else U

    def embed(self, X: Any) -> np.ndarray:
        """Unit-norm whitened rows, as stored in the index (float32, C-contiguous).

        Inner products of these vectors are the whitened cosine similarities.

        Returns
        -------
        ndarray of shape (n_samples, ``dim_``), float32
        """
        return self._unit_embed(self._check_queries(X, "X"), "X")

    def similarity_pvalues(
        self, whitened_similarities: Any, *, n_searched: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-pair and top-1 corrected p-values of whitened similarities.

        Parameters
        ----------
        whitened_similarities : array-like
            Whitened cosine similarities (any shape).
        n_searched : int, optional
            ``n`` of the top-1 correction (default: the number of distinct database items,
            ``n_distinct_``). Pass the number of non-matching items when the similarity is the
            best over a known subset.

        Returns
        -------
        pvalues, corrected_pvalues : ndarrays of the input's shape, float64
            Small = more similar than non-matches are.
        """
        check_is_fitted(self, "index_")
        if self.null == "neighbour":
            raise ValueError(
                "similarity_pvalues scores single similarities under a pair null; null='neighbour' "
                "scores a query's whole candidate list: use search(), or a retriever with "
                "null='empirical' or 'analytic'"
            )
        n = self.n_distinct_ if n_searched is None else check_positive_int(n_searched, "n_searched")
        return self._pvalues(np.asarray(whitened_similarities, dtype=np.float64), n)

    def _pvalues(self, s: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        p = self.null_.sf(s)
        if self.correction in ("sidak", "auto"):  # reuse p (the null's top1_sf would compute it again)
            return p, sidak_correction(p, n)
        return p, (p.copy() if self.correction is None else self.null_.top1_sf(s, n, "evt"))

    def ood_pvalues(self, X: Any) -> np.ndarray:
        """Query-level p-values under the database's Gaussian (small = out of distribution).

        Hotelling's law of the squared Mahalanobis distance (``null="analytic"`` and
        ``n_database > n_features``) or its rank among the database's own distances
        (:func:`infogauss.calibration.rank_pvalues`; ``null="empirical"``; slightly small for
        fresh points, as database distances are in-sample).

        Returns
        -------
        ndarray of shape (n_samples,), float64
        """
        return self._ood_pvalues(self._check_queries(X, "X"))

    def _ood_pvalues(self, Q: np.ndarray) -> np.ndarray:
        m2 = self.model_._mahalanobis(Q)
        if self._ood_law == "f":
            model = self.model_
            return core.mahalanobis_pvalues(m2, model.n_samples_seen_, model.n_features_in_, "f")
        # a query that is a database row ties with its own distance, and rounding differs by
        # a few ulps between a batch and one row (BATCH_RTOL): ties within that tolerance
        # count against the query, so the rank (a step function) is the same either way
        tol = core.BATCH_RTOL["float32" if m2.dtype == np.float32 else "float64"]
        m2 = m2.astype(np.float64)
        return calibration.rank_pvalues(self._database_m2, m2 - tol * np.maximum(1.0, np.abs(m2)))

    # ------------------------------------------------------------------ search
    def search(
        self, queries: Any, k: int = 10, *, nprobe: int | None = None, ef_search: int | None = None
    ) -> RetrievalResult:
        """Top-``k`` neighbours of each query with calibrated quantities.

        Parameters
        ----------
        queries : array-like of shape (n_queries, n_features)
        k : int, default=10
            In ``[1, n_database_]``.
        nprobe : int, optional
            IVF structures only: cells visited for this call (default ``index_params_``).
        ef_search : int, optional
            HNSW structures only: search beam for this call (at least ``k`` is used).

        Returns
        -------
        RetrievalResult
            Scoring is per query: a batch gives the same rows as one query at a time.
        """
        Q = self._check_queries(queries, "queries")
        return self._search(Q, check_k(k, self.n_database_), nprobe, ef_search)

    def _index_search(
        self, Zq: np.ndarray, k: int, nprobe: Any, ef_search: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        return _search_exact(self.index_, self._exact_copy, self.index_params_, Zq, k, nprobe,
                             ef_search)  # fmt: skip

    def _search(
        self, Q: np.ndarray, k: int, nprobe: Any = None, ef_search: Any = None
    ) -> RetrievalResult:
        Zq = self._unit_embed(Q, "queries")
        Qu = unit32(Q.copy(), "queries")
        neighbour = self.null == "neighbour"
        width = k
        if neighbour:
            width = max(k, _candidate_width(self._groups, self.null_.n_candidates,
                                            self.n_database_))  # fmt: skip
        wsim, idx = self._index_search(Zq, width, nprobe, ef_search)
        if neighbour:
            p = self._neighbour_pvalues(Qu, wsim, idx)[:, :k]
            wsim, idx = wsim[:, :k], idx[:, :k]
        missing = idx < 0
        filled = np.where(missing, -1.0, wsim).astype(np.float64)
        if neighbour:
            pc = p.copy()
        else:
            p, pc = self._pvalues(filled, self.n_distinct_)
        p[missing] = 1.0
        pc[missing] = 1.0
        ood_p = self._ood_pvalues(Q)
        relevance = None
        if self._relevance is not None:
            relevance = self._relevance(filled)
            relevance[missing] = np.nan
        labels = None if self.labels_ is None else self.labels_[np.maximum(idx, 0)]
        return RetrievalResult(
            indices=idx,
            similarities=gather_dot(Qu, self._database_unit, idx),
            whitened_similarities=wsim,
            pvalues=p,
            corrected_pvalues=pc,
            match=pc <= self.alpha,
            ood_pvalues=ood_p,
            abstain=ood_p <= self.ood_alpha,
            relevance=relevance,
            labels=labels,
            alpha=float(self.alpha),
            ood_alpha=float(self.ood_alpha),
            n_searched=int(self.n_distinct_),
        )

    # ------------------------------------------------------------------ growing the database
    def add(self, X: Any, labels: Any = None) -> CalibratedRetriever:
        """Append rows to the database (ids ``n_database_, n_database_ + 1, ...``).

        The Gaussian (whitening, OOD law) and the null stay as fitted; the top-1 correction
        uses the new number of distinct items. Added rows are checked for duplicates among
        themselves (completely) and against the database (their 16 nearest neighbours).

        **When to refit.** The fitted estimates describe the rows given to :meth:`fit`; they
        stay valid for added rows drawn from the same law. ``add`` warns, and :meth:`fit` on
        the whole database should follow, when (a) the database has more than doubled since
        the fit, or (b) the added rows are unlike the fitted ones: the share of them that
        would be abstained on (OOD p-value ``<= ood_alpha``) is, at 99% confidence, more than
        twice ``ood_alpha``. A failed ``add`` leaves the retriever as it was.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
        labels : array-like of shape (n_rows,), optional
            Required when the retriever was fitted with labels, refused otherwise.

        Returns
        -------
        self
        """
        check_is_fitted(self, "index_")
        Xn = self._validate(X, "X", reset=False)
        m, n = Xn.shape[0], self.n_database_
        new_labels = check_labels(labels, m, "labels")
        if (self.labels_ is None) != (new_labels is None):
            raise ValueError(
                "`labels` must be given for the added rows: the retriever was fitted with labels"
                if new_labels is None
                else "`labels` must be None: the retriever was fitted without labels (refit with "
                "labels to use them)"
            )
        all_labels = None if new_labels is None else np.concatenate([self.labels_, new_labels])
        Z = self._unit_embed(Xn, "X")
        within = find_duplicates(Z, tol=self.duplicate_tol)
        k = min(n, _ADD_NEIGHBOURS)
        sims, ids = self._index_search(Z, k, None, None)
        close = (ids >= 0) & (1.0 - np.nan_to_num(sims, nan=-1.0) <= self.duplicate_tol)
        rows = np.nonzero(close)[0]
        groups = merge_groups(
            np.concatenate([self._groups, within + n]), np.r_[rows + n], ids[close]
        )
        m2 = self.model_._mahalanobis(Xn)
        ood = self._ood_pvalues(Xn)
        _index.add(self.index_, Z)  # the only step that changes self before it can fail
        self._database_m2 = np.sort(np.concatenate([self._database_m2, m2]))
        self._database_unit = np.vstack([self._database_unit, unit32(Xn.copy(), "X")])
        if self._exact_copy is not None:
            self._exact_copy = np.vstack([self._exact_copy, Z])
        self.labels_ = all_labels
        self.n_database_ = n + m
        dup_before = self.n_duplicates_
        self._set_groups(groups)
        if self.n_duplicates_ > dup_before:
            self._warn_duplicates(self.n_duplicates_ - dup_before, "the added rows bring")
        self._warn_if_stale(ood)
        return self

    def _warn_if_stale(self, ood_p: np.ndarray) -> None:
        reasons = []
        if self.n_database_ > 2 * self._n_fit:
            reasons.append(
                f"the database has grown from {self._n_fit} rows at fit to {self.n_database_}"
            )
        n_abstain = int(np.count_nonzero(ood_p <= self.ood_alpha))
        low, _ = calibration.binomial_interval(n_abstain, ood_p.shape[0], level=0.99)
        if low > 2 * self.ood_alpha:
            reasons.append(
                f"{n_abstain} of the {ood_p.shape[0]} added rows are out of distribution "
                f"(OOD p-value <= ood_alpha={self.ood_alpha}), more than twice the expected rate"
            )
        if reasons:
            warnings.warn(
                "the fitted whitening and null may no longer describe the database: "
                + "; ".join(reasons)
                + ". Call fit() on the whole database to re-estimate them",
                RuntimeWarning,
                stacklevel=3,
            )

    # ------------------------------------------------------------------ calibration
    def calibrate_relevance(
        self, queries: Any, query_labels: Any, *, k: int = 10, method: str = "isotonic"
    ) -> CalibratedRetriever:
        """Learn P(relevant | whitened similarity) from labelled query–neighbour pairs.

        Each query's top-``k`` neighbours give ``k`` pairs; a pair is relevant when the
        neighbour's database label equals the query's label. Later :meth:`search` calls fill
        ``RetrievalResult.relevance``.

        Parameters
        ----------
        queries : array-like of shape (n_queries, n_features)
            Held-out labelled queries (not database rows).
        query_labels : array-like of shape (n_queries,)
        k : int, default=10
        method : {"isotonic", "platt"}, default="isotonic"
            Isotonic regression (monotone, non-parametric) or Platt scaling (logistic).

        Returns
        -------
        self
            With ``relevance_method_`` and the in-sample ``relevance_ece_`` and
            ``relevance_brier_`` (use held-out queries and :mod:`infogauss.metrics` for an
            honest estimate).
        """
        check_is_fitted(self, "index_")
        if method not in CALIBRATION_METHODS:
            raise ValueError(f"`method` must be one of {CALIBRATION_METHODS}, got {method!r}")
        if self.labels_ is None:
            raise ValueError("calibrate_relevance needs database labels: pass `labels` to fit()")
        Q = self._check_queries(queries, "queries")
        ql = check_labels(query_labels, Q.shape[0], "query_labels")
        k = check_k(k, self.n_database_)
        Zq = self._unit_embed(Q, "queries")
        wsim, idx = self._index_search(Zq, k, None, None)
        valid = idx >= 0
        relevant = (self.labels_[np.maximum(idx, 0)] == ql[:, None])[valid]
        scores = wsim[valid].astype(np.float64)
        if relevant.all() or not relevant.any():
            raise ValueError(
                "calibration pairs must include both relevant and irrelevant neighbours, got "
                f"{'only relevant' if relevant.all() else 'no relevant'} ones; use more queries "
                "or a larger `k`"
            )
        calibrator = CALIBRATORS[method].fit(scores, relevant)
        probs = calibrator(scores)
        self._relevance = calibrator
        self.relevance_method_ = method
        self.relevance_ece_ = expected_calibration_error(relevant, probs)
        self.relevance_brier_ = brier_score(relevant, probs)
        return self

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted retriever to ``path`` (an ``.npz`` model file; no pickle).

        See :mod:`infogauss.persistence`: the Gaussian's arrays, the database copies, the null,
        the duplicate groups, the relevance calibrator and the faiss index
        (``faiss.serialize_index`` bytes as a uint8 array), with JSON metadata and one SHA-256
        over both; written atomically. :meth:`load` gives back a retriever whose searches are
        identical (indices, similarities and p-values). Returns the path written.
        """
        check_is_fitted(self, "index_")
        params, attrs, arrays = self._state()
        return persistence.save_state(path, _KIND, params, attrs, arrays)

    def _state(self) -> tuple[dict, dict, dict]:
        return _persist.state(self)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CalibratedRetriever:
        """Read a retriever written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        infogauss.persistence.ModelFileError
            (a ValueError, ``corrupt or incompatible model file: <path>: <what>``) If the file
            is truncated, was modified (checksum), holds another estimator, fails an invariant
            (shapes, the index's size and metric), or comes from a newer format.
        """
        meta, arrays = persistence.read_state(path, _KIND)
        return cls._from_state(path, meta, arrays)

    @classmethod
    def _from_state(cls, path: Any, meta: dict, arrays: dict) -> CalibratedRetriever:
        return _persist.from_state(cls, path, meta, arrays)


def _search_exact(
    index: Any, exact_copy: np.ndarray | None, params: dict, Zq: np.ndarray, k: int,
    nprobe: Any, ef_search: Any,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Search ``index``; a compressed index's candidates are rescored from the exact copy."""
    wsim, idx = _index.search(index, Zq, k, params, nprobe=nprobe, ef_search=ef_search)
    if exact_copy is not None:  # compressed index: rescore the candidates exactly
        wsim = gather_dot(Zq, exact_copy, idx)
        order = np.argsort(np.where(idx < 0, np.inf, -wsim), axis=1, kind="stable")
        wsim = np.take_along_axis(wsim, order, axis=1)
        idx = np.take_along_axis(idx, order, axis=1)
    wsim[idx < 0] = np.nan
    return wsim, idx


def _candidate_width(groups: np.ndarray, n_items: int, n_rows: int) -> int:
    """Search width that holds ``n_items`` distinct items whatever their copies: the sizes of
    the ``n_items`` largest duplicate groups, summed (at most ``n_rows``)."""
    sizes = np.bincount(groups, minlength=1)
    sizes = sizes[sizes > 0]
    top = np.sort(sizes)[::-1][:n_items]
    return int(min(n_rows, top.sum() + max(0, n_items - top.size)))


def _take(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``values[row, pos]`` as float64, NaN where ``pos < 0``."""
    out = np.take_along_axis(values, np.maximum(pos, 0), axis=1).astype(np.float64)
    out[pos < 0] = np.nan
    return out
