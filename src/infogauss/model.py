"""``GaussianModel``: a scikit-learn estimator over the functional core in :mod:`infogauss.gaussian`."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from . import gaussian as core
from . import persistence
from ._validation import (
    PrecisionWarning,
    atomic_fit,
    check_matrix_like,
    check_positive_int,
    is_plain_float_matrix,
    too_few_rows,
)

__all__ = ["GaussianModel", "MODEL_FORMAT_VERSION"]

MODEL_FORMAT_VERSION = persistence.FORMAT_VERSION  # the format family's version
_ARRAY_KEYS = (
    "location_", "covariance_", "cholesky_", "whitening_",
    "stats_n", "stats_mean", "stats_scatter", "stats_third", "stats_fourth",
)  # fmt: skip


def _package_version() -> str:
    from ._version import __version__

    return __version__


class GaussianModel(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Multivariate Gaussian with shrinkage covariance, streaming fits and BLAS-speed scoring.

    Parameters
    ----------
    shrinkage : {"ledoit_wolf", "oas", "empirical", "diagonal"} or float in [0, 1], default="ledoit_wolf"
        Covariance estimator (see :func:`infogauss.gaussian.covariance_from_stats`).
    whiten : {"zca", "pca", "cholesky"}, default="zca"
        Whitening used by :meth:`transform`.
    n_components : int, optional
        Rank of the whitening in :meth:`transform`: keep this many principal components
        (``whiten="pca"`` returns that many columns, ``"zca"`` rotates them back to the
        input axes; not for ``"cholesky"``). Default: full rank.
    dtype : {None, "float32", "float64"}, default=None
        Compute precision for scoring and transforms. None follows the input: float32 input
        is scored in float32 (within 1e-4 relative of float64, tested), anything else in
        float64. Statistics are always accumulated in float64.
    chunk_size : int, optional
        Rows per block when fitting and scoring; bounds extra memory to a few blocks.
        Default: blocks of about 32 MiB.

    Attributes
    ----------
    location_ : ndarray of shape (n_features,)
        Mean.
    covariance_ : ndarray of shape (n_features, n_features)
        Covariance estimate (float64).
    shrinkage_ : float or None
        Shrinkage intensity used (None for ``"diagonal"``).
    cholesky_ : ndarray of shape (n_features, n_features)
        Lower Cholesky factor of ``covariance_``; the only factorisation, done at fit time.
    whitening_ : ndarray of shape (n_features, n_components)
        Whitening matrix: ``transform(X) == (X - location_) @ whitening_``.
    n_samples_seen_ : int
        Samples the statistics are built from.
    n_features_in_ : int
        Number of features.

    Examples
    --------
    >>> import numpy as np
    >>> from infogauss import GaussianModel
    >>> X = np.random.default_rng(0).normal(size=(500, 3))
    >>> model = GaussianModel().fit(X)
    >>> model.mahalanobis(X[:2]).shape
    (2,)
    >>> bool(model.score_samples([[0.0, 0.0, 0.0]])[0] > model.score_samples([[5.0, 5.0, 5.0]])[0])
    True
    """

    def __init__(
        self,
        *,
        shrinkage: str | float = "ledoit_wolf",
        whiten: str = "zca",
        n_components: int | None = None,
        dtype: Any = None,
        chunk_size: int | None = None,
    ) -> None:
        self.shrinkage = shrinkage
        self.whiten = whiten
        self.n_components = n_components
        self.dtype = dtype
        self.chunk_size = chunk_size

    # ------------------------------------------------------------------ fitting
    def _validate_params_(self) -> None:
        core._check_shrinkage(self.shrinkage)
        if self.whiten not in core.WHITENING_METHODS:
            raise ValueError(
                f"`whiten` must be one of {core.WHITENING_METHODS}, got {self.whiten!r}"
            )
        check_positive_int(self.n_components, "n_components", allow_none=True)
        check_positive_int(self.chunk_size, "chunk_size", allow_none=True)
        if self.dtype is not None:
            core._compute_dtype(np.empty(0), self.dtype)

    def _validate_X(self, X: Any, *, reset: bool, min_samples: int) -> np.ndarray:
        """Shape/dtype checks; finiteness is checked block by block by the core."""
        if not reset and is_plain_float_matrix(X, self):
            # the common scoring case (a C- or F-ordered float ndarray of the right width,
            # no feature names to check): validate_data would only confirm it (small-batch
            # latency); finiteness is checked on the output blocks by the core
            if X.shape[0] < min_samples:
                raise too_few_rows("X", X.shape[0], min_samples)
            return X
        check_matrix_like(X, "X", min_samples=min_samples)
        if isinstance(X, np.memmap) and X.ndim == 2 and X.dtype in (np.float32, np.float64):
            # never read a memory-mapped file whole: the core streams it in blocks
            if not reset and X.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                    f"{self.n_features_in_} features as input"
                )
            if reset:
                self.n_features_in_ = X.shape[1]
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            return X
        return validate_data(
            self,
            X,
            reset=reset,
            dtype=[np.float64, np.float32],
            ensure_min_samples=min_samples,
            ensure_all_finite=False,
        )

    @atomic_fit
    def fit(self, X: Any, y: Any = None) -> GaussianModel:
        """Fit the Gaussian to ``X`` (``y`` is ignored).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            At least 2 finite samples.
        y : ignored

        Returns
        -------
        self

        Notes
        -----
        A ``dask.array`` is refused with a TypeError: fit it with
        :func:`infogauss.distributed.fit_dask` (an exact tree reduction of per-block
        statistics, equal to the in-memory fit), the one dask entry point.
        """
        self._validate_params_()
        X = self._validate_X(X, reset=True, min_samples=2)
        stats = core.stats_from_array(X, chunk_size=self.chunk_size)
        self._set_from_stats(stats)
        self._warn_precision(X.dtype)
        return self

    def _warn_precision(self, data_dtype: Any = None) -> None:
        """A PrecisionWarning when scores cannot keep their documented digits (see
        :func:`infogauss.gaussian.scoring_precision`), naming the remedy."""
        if not hasattr(self, "cholesky_"):
            return
        p = core.scoring_precision(self.location_, self.covariance_, self.cholesky_)
        dt = self.dtype if self.dtype is not None else data_dtype
        float32 = dt is not None and np.dtype(dt) == np.float32
        if float32 and not p["float32_ok"]:
            warnings.warn(
                f"the covariance is ill-conditioned (condition number of its Cholesky factor "
                f"about {p['factor_condition']:.2g}): float32 scores may differ from float64 ones "
                "by more than the documented 1e-4 relative. Score in float64 "
                "(GaussianModel(dtype='float64')) or use more shrinkage",
                PrecisionWarning,
                stacklevel=3,
            )
        if not float32 and not p["float64_ok"]:
            warnings.warn(
                f"the data's mean is {p['offset_ratio']:.2g} times its spread: float64 scores of "
                f"points near the mean keep only about {16 - np.log10(p['offset_ratio']):.0f} "
                "digits. Subtract a rough centre (e.g. X - X[0]) in higher precision before "
                "fitting and scoring",
                PrecisionWarning,
                stacklevel=3,
            )

    @atomic_fit
    def fit_stats(self, stats: core.GaussianStats) -> GaussianModel:
        """Fit from precomputed :class:`~infogauss.gaussian.GaussianStats` (e.g. merged from
        partitions, files or Dask blocks)."""
        self._validate_params_()
        if not isinstance(stats, core.GaussianStats):
            raise TypeError(f"`stats` must be a GaussianStats, got {type(stats).__name__}")
        self.n_features_in_ = stats.n_features
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self._set_from_stats(stats)

    @atomic_fit
    def partial_fit(self, X: Any, y: Any = None) -> GaussianModel:
        """Add a batch of samples to the statistics and refit (exactly equal to one-shot ``fit``
        on all data seen so far, up to float64 rounding).

        Batches of any size, a single row included, are accepted; until the statistics can
        define a Gaussian (2 samples, more samples than features for
        ``shrinkage="empirical"``, and a covariance with a Cholesky factor — e.g. a few rows
        with Ledoit–Wolf shrinkage may still span too few directions) the model keeps the
        rows but stays unfitted, and scoring raises ``NotFittedError``.

        Returns
        -------
        self
        """
        first = not hasattr(self, "_stats")
        if first:
            self._validate_params_()
        X = self._validate_X(X, reset=first, min_samples=1)
        stats = core.stats_from_array(X, chunk_size=self.chunk_size)
        if not first:
            stats = core.merge_stats(self._stats, stats)
        self._set_from_stats(stats, strict=False)
        self._warn_precision(X.dtype)
        return self

    def _set_from_stats(self, stats: core.GaussianStats, *, strict: bool = True) -> GaussianModel:
        n, d = stats.n, stats.n_features
        if not strict and (n < 2 or (self.shrinkage == "empirical" and n <= d)):
            # partial_fit: keep the statistics; the model exists once there is enough data
            self._stats = stats
            self.n_samples_seen_ = n
            return self
        if n < 2:
            raise ValueError(
                f"a Gaussian needs at least 2 samples, got n_samples = {n}; "
                "with partial_fit, send more data before scoring"
            )
        if self.shrinkage == "empirical" and n <= d:
            raise ValueError(
                f"shrinkage='empirical' needs more samples than features (n_samples={n}, "
                f"n_features={d}): the covariance would be singular. Use shrinkage='ledoit_wolf' "
                "(the default) or 'oas', or gather more samples"
            )
        if self.n_components is not None and self.n_components > d:
            raise ValueError(f"`n_components` must be <= n_features ({d}), got {self.n_components}")
        cov, s = core.covariance_from_stats(stats, self.shrinkage)
        if not strict:
            # partial_fit: until the statistics define a Gaussian (a covariance with spread and
            # a Cholesky factor), keep them and stay unfitted, as for too few rows
            try:
                if not np.any(np.diag(cov) > 0):
                    raise ValueError("constant")
                core.cholesky_factor(cov)
            except ValueError:
                self._stats = stats
                self.n_samples_seen_ = n
                return self
        if not np.any(np.diag(cov) > 0):
            raise ValueError(
                "every feature of X is constant (zero variance), so no Gaussian can be fitted to `X`: "
                "pass data that vary (float32 cannot hold a variation below about 1e-7 of the "
                "values' magnitude: subtract a rough centre in float64 first)"
            )
        chol = core.cholesky_factor(cov)
        self._stats = stats
        self.location_ = stats.mean.copy()
        self.covariance_ = cov
        self.shrinkage_ = s
        self.cholesky_ = chol
        self.whitening_ = core.whitening_matrix(
            cov, chol, method=self.whiten, n_components=self.n_components
        )
        self.n_samples_seen_ = n
        self._n_features_out = self.whitening_.shape[1]
        self._prepare_scoring()
        return self

    # ------------------------------------------------------------------ scoring
    def _check_X_predict(self, X: Any) -> np.ndarray:
        if "cholesky_" not in self.__dict__:  # cheap test first: scoring small batches
            check_is_fitted(self, "cholesky_")
        return self._validate_X(X, reset=False, min_samples=1)

    def mahalanobis(self, X: Any) -> np.ndarray:
        """**Squared** Mahalanobis distances to ``location_`` under ``covariance_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,), float64
            Squared distances; larger = farther from the mean (less typical).
        """
        return self._mahalanobis(self._check_X_predict(X))

    # Validated-array kernels: the public methods validate once and call these; estimators
    # built on a GaussianModel (MahalanobisOOD, the PyOD detector) call them after their own
    # validation instead of the public methods, so input is never validated twice.
    def _mahalanobis(self, X: np.ndarray) -> np.ndarray:
        return core.mahalanobis_sq(
            X, self.location_, self.cholesky_, dtype=self.dtype, chunk_size=self.chunk_size,
            factor=self._factor,
        )  # fmt: skip

    def _log_density(self, X: np.ndarray) -> np.ndarray:
        return core.log_density(
            X, self.location_, self.cholesky_, dtype=self.dtype, chunk_size=self.chunk_size,
            factor=self._factor,
        )  # fmt: skip

    def _prepare_scoring(self) -> None:
        """Build what each scoring call needs once (the factor in each compute dtype)."""
        self._factor = core.ScoringFactor(self.cholesky_, self.location_[None, :], self.location_)

    def _fit_array(self, X: np.ndarray) -> GaussianModel:
        """Fit to an already validated 2-D float array."""
        self._validate_params_()
        self._set_from_stats(core.stats_from_array(X, chunk_size=self.chunk_size))
        self.n_features_in_ = int(X.shape[1])
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        """Gaussian log-density of each sample (nats; higher = more normal).

        Returns
        -------
        ndarray of shape (n_samples,), float64
        """
        return self._log_density(self._check_X_predict(X))

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-density of ``X`` (higher = better fit)."""
        return float(np.mean(self.score_samples(X)))

    def transform(self, X: Any) -> np.ndarray:
        """Whitened samples ``(X - location_) @ whitening_``.

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            float32 for float32 input (unless ``dtype`` says otherwise), else float64;
            identity covariance under the model.
        """
        X = self._check_X_predict(X)
        return core.whiten(
            X, self.location_, self.whitening_, dtype=self.dtype, chunk_size=self.chunk_size
        )

    def pvalues(self, X: Any, method: str = "f") -> np.ndarray:
        """Upper-tail p-values of the squared Mahalanobis distances.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        method : {"f", "beta", "chi2"}, default="f"
            ``"f"`` for points not used in the fit (Hotelling's T², exact for an empirical
            fit of Gaussian data), ``"beta"`` for the fitted points themselves, ``"chi2"`` for
            the large-``n`` limit. See :func:`infogauss.gaussian.mahalanobis_pvalues`; with
            shrinkage none is exact — calibrate on held-out data for guaranteed rates.

        Returns
        -------
        ndarray of shape (n_samples,)
            p-values in [0, 1]; small = atypically far from the mean.
        """
        if method not in core.PVALUE_METHODS:
            raise ValueError(f"`method` must be one of {core.PVALUE_METHODS}, got {method!r}")
        m2 = self.mahalanobis(X)
        return core.mahalanobis_pvalues(m2, self.n_samples_seen_, self.n_features_in_, method)

    def entropy(self) -> float:
        """Differential entropy of the fitted Gaussian, in nats."""
        check_is_fitted(self, "cholesky_")
        return core.gaussian_entropy(self.cholesky_)

    def sample(self, n_samples: int = 1, random_state: Any = None) -> np.ndarray:
        """Draw ``n_samples`` points from the fitted Gaussian (float64)."""
        check_is_fitted(self, "cholesky_")
        n = check_positive_int(n_samples, "n_samples")
        rng = check_random_state(random_state)
        z = rng.standard_normal((n, self.n_features_in_))
        return self.location_ + z @ self.cholesky_.T

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = (
            ["float64", "float32"] if self.dtype is None else [str(np.dtype(self.dtype))]
        )
        return tags

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model to ``path`` (an ``.npz`` model file; no pickle).

        See :mod:`infogauss.persistence`: float64 arrays and JSON metadata (format version,
        package version, parameters, counts), one SHA-256 over both; written atomically.
        Read it back with :meth:`load` or :func:`infogauss.load`. Returns the path written.
        """
        check_is_fitted(self, "cholesky_")
        params, attrs, arrays = self._state()
        return persistence.save_state(path, "GaussianModel", params, attrs, arrays)

    def _state(self) -> tuple[dict, dict, dict]:
        arrays = {
            "location_": self.location_,
            "covariance_": self.covariance_,
            "cholesky_": self.cholesky_,
            "whitening_": self.whitening_,
            **{f"stats_{k}": v for k, v in self._stats.to_arrays().items()},
        }
        params = {
            k: (str(np.dtype(v)) if k == "dtype" and v is not None else v)
            for k, v in self.get_params().items()
        }
        attrs = {
            "n_features_in_": int(self.n_features_in_),
            "n_samples_seen_": int(self.n_samples_seen_),
            "shrinkage_": self.shrinkage_,
            "feature_names_in_": [str(f) for f in getattr(self, "feature_names_in_", [])] or None,
        }
        return params, attrs, arrays

    @classmethod
    def load(cls, path: str | os.PathLike) -> GaussianModel:
        """Read a model written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        infogauss.persistence.ModelFileError
            (a ValueError) If the file is not an infogauss GaussianModel file, is truncated
            or corrupted, was modified (checksum), fails an invariant (shapes, the factor of
            the covariance, counts), or comes from a newer format.
        """
        meta, arrays = persistence.read_state(path, "GaussianModel")
        return cls._from_state(path, meta, arrays)

    @classmethod
    def _from_state(cls, path: Any, meta: dict, arrays: dict) -> GaussianModel:
        err = persistence.ModelFileError
        params = persistence.check_params(path, cls, dict(meta["params"]))
        attrs = meta["attrs"]
        missing = [k for k in _ARRAY_KEYS if k not in arrays]
        if missing:
            raise err(path, f"is missing arrays {missing}")
        d = attrs.get("n_features_in_")
        if not isinstance(d, int) or isinstance(d, bool) or d < 1:
            raise err(path, f"has an invalid n_features_in_ {d!r}")
        expect = {
            "location_": (d,), "covariance_": (d, d), "cholesky_": (d, d),
            "stats_mean": (d,), "stats_scatter": (d, d), "stats_third": (d,),
        }  # fmt: skip
        for key, shape in expect.items():
            if arrays[key].shape != shape or arrays[key].dtype != np.float64:
                raise err(
                    path, f"array {key} has shape {arrays[key].shape} and dtype "
                    f"{arrays[key].dtype}, expected {shape} float64"
                )
        if arrays["whitening_"].ndim != 2 or arrays["whitening_"].shape[0] != d:
            raise err(path, "array whitening_ has the wrong shape")
        try:
            model = cls(**params)
            model._validate_params_()
        except (TypeError, ValueError) as exc:
            raise err(path, f"has invalid parameters: {exc}") from exc
        stats = core.GaussianStats.from_arrays(
            {k[len("stats_") :]: v for k, v in arrays.items() if k.startswith("stats_")}
        )
        _check_invariants(path, model, stats, arrays, attrs)
        model._stats = stats
        for key in ("location_", "covariance_", "cholesky_", "whitening_"):
            setattr(model, key, arrays[key])
        model.shrinkage_ = attrs.get("shrinkage_")
        model.n_features_in_ = d
        model.n_samples_seen_ = int(attrs["n_samples_seen_"])
        model._n_features_out = model.whitening_.shape[1]
        model._prepare_scoring()
        if attrs.get("feature_names_in_"):
            model.feature_names_in_ = np.asarray(attrs["feature_names_in_"], dtype=object)
        return model


def _check_invariants(path: Any, model: GaussianModel, stats: Any, arrays: dict, attrs: dict) -> None:
    """A loaded model must be one that fit could have produced from its own statistics."""
    err = persistence.ModelFileError
    n = attrs.get("n_samples_seen_")
    if not isinstance(n, int) or n != stats.n:
        raise err(path, f"n_samples_seen_ ({n!r}) does not match its statistics (n = {stats.n})")
    if not np.array_equal(arrays["location_"], stats.mean):
        raise err(path, "location_ is not the mean of its statistics")
    L, cov = arrays["cholesky_"], arrays["covariance_"]
    if not (np.all(np.isfinite(L)) and np.all(np.isfinite(cov))):
        raise err(path, "holds non-finite covariance or factor values")
    if np.any(np.triu(L, 1)) or not np.all(np.diag(L) > 0):
        raise err(path, "cholesky_ is not a lower-triangular factor with a positive diagonal")
    if not core.is_cholesky_factor(L, cov):
        raise err(path, "cholesky_ is not the Cholesky factor of covariance_")
    scale = max(float(np.max(np.abs(cov))), np.finfo(float).tiny)
    try:
        expected, s = core.covariance_from_stats(stats, model.shrinkage)
    except ValueError as exc:
        raise err(path, f"its statistics do not define a covariance: {exc}") from exc
    if np.max(np.abs(expected - cov)) > 1e-10 * scale:
        raise err(path, "covariance_ does not follow from its statistics and shrinkage")
    if (s is None) != (attrs.get("shrinkage_") is None) or (
        s is not None and not np.isclose(s, attrs["shrinkage_"], rtol=1e-10, atol=0)
    ):
        raise err(path, f"shrinkage_ {attrs.get('shrinkage_')!r} does not follow from its statistics")
