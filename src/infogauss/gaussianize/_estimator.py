"""``Gaussianizer``: the scikit-learn transformer over :mod:`._power` and :mod:`._quantile`."""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    OneToOneFeatureMixin,
    TransformerMixin,
)
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import persistence
from .._validation import all_finite, atomic_fit, check_matrix_like, check_positive_int
from ..gaussian import default_chunk_size, iter_chunks
from . import _persist
from . import _power as pw
from . import _quantile as qt

__all__ = ["Gaussianizer", "METHODS"]

METHODS = ("auto", "yeo-johnson", "box-cox", "power", "quantile", "rbig")
POWER_METHODS = ("auto", "yeo-johnson", "box-cox", "power")
_FITTED = ("transforms_", "dead_features_", "lambdas_", "prescale_", "zero_values_",
           "quantiles_", "tails_", "rotations_", "n_quantile_samples_", "mean_", "scale_")  # fmt: skip
_NUMERIC_EPS = 64 * np.finfo(np.float64).eps  # a column constant up to float64 rounding


class Gaussianizer(TransformerMixin, BaseEstimator):
    r"""Make features (near-)Gaussian before a Gaussian model: power, quantile or RBIG maps.

    Parameters
    ----------
    method : {"auto", "yeo-johnson", "box-cox", "power", "quantile", "rbig"}, default="auto"
        * ``"auto"``: per column, λ by maximum likelihood: Box–Cox on non-negative columns
          (exact zeros, e.g. post-ReLU inactive units, treated as left-censored values of a
          latent Gaussian, and sent to its mean below the censoring point; λ ≥ 0.01 so a zero
          stays finite, also when it first appears at transform time) and Yeo–Johnson on
          ``x / std(x)`` (scale-free) on signed columns.
        * ``"yeo-johnson"``: Yeo–Johnson on every column, λ by maximum likelihood (the fit of
          ``sklearn.preprocessing.PowerTransformer``).
        * ``"box-cox"``: Box–Cox on non-negative data, λ by maximum likelihood (zeros
          left-censored, as in ``"auto"``; on strictly positive columns this is
          ``PowerTransformer(method="box-cox")``). Negative values are refused.
        * ``"power"``: the fixed power ``sign(x)·|x|^power`` (``power=0.5``: the square root of
          post-ReLU features); nothing is fitted but the standardisation.
        * ``"quantile"``: each column's empirical CDF, then the normal quantile function, with
          linear Gaussian tails beyond the fitted range (see Notes).
        * ``"rbig"``: ``n_iterations`` rounds of quantile Gaussianization and a rotation, which
          also Gaussianizes joint structure; the output columns are rotated coordinates.
    power : float > 0, default=0.5
        Exponent of ``method="power"``.
    n_quantiles : int >= 2, default=1000
        Quantiles per column for ``"quantile"`` and each ``"rbig"`` round (at most the number of
        samples fitted on).
    n_iterations : int >= 1, default=5
        Rounds of ``"rbig"``.
    rotation : {"pca", "random"}, default="pca"
        Rotation of each ``"rbig"`` round: principal axes of the current sample or Haar-random.
    standardize : bool, default=True
        Finish with a per-column affine map to mean 0, variance 1 on the data fitted on.
    dead_tol : float in [0, 1), default=1e-6
        A column whose standard deviation is at most ``dead_tol`` times the largest column's
        standard deviation (or that is constant up to float64 rounding) is *dead*: it passes
        through unchanged and is flagged in ``dead_features_``.
    subsample : int >= 2 or None, default=10_000
        Fit λ, quantiles and rotations on at most this many rows drawn without replacement
        (``None``: all rows); also the reservoir size of :meth:`partial_fit`.
    random_state : int, RandomState instance or None, default=None
        Seeds the subsample, the reservoir and the random rotations.

    Attributes
    ----------
    transforms_ : ndarray of str, shape (n_features,)
        Per column: ``"identity"`` (dead), ``"yeo-johnson"``, ``"box-cox"``, ``"power"``,
        ``"quantile"`` or ``"rbig"``.
    dead_features_ : ndarray of bool, shape (n_features,)
        Columns passed through unchanged.
    lambdas_ : ndarray of shape (n_features,)
        Power-type methods: the exponent of each column (NaN for dead columns).
    prescale_ : ndarray of shape (n_features,)
        Power-type methods: ``x`` is divided by it before the transform (the column's
        standard deviation for ``"auto"``'s Yeo–Johnson columns, else 1).
    zero_values_ : ndarray of shape (n_features,)
        Power-type methods: where a Box–Cox column sends an exact zero (before the
        standardisation): the fitted latent Gaussian's mean below the censoring point
        ``−1/λ``; NaN for other columns and where λ <= 0 (zero outside the domain).
    quantiles_ : ndarray of shape (n_rounds, ``n_quantiles_``, n_live)
        Quantile methods: the fitted quantiles of the live columns, per round (1 for
        ``"quantile"``).
    tails_ : ndarray of shape (n_rounds, 2, n_live)
        Quantile methods: slopes dx/dz of the lower and upper linear tails.
    rotations_ : ndarray of shape (n_iterations, n_live, n_live)
        ``"rbig"``: the orthogonal rotation of each round.
    n_quantile_samples_ : int
        Quantile methods: rows the quantiles were computed from.
    mean_, scale_ : ndarray of shape (n_features,)
        The final standardisation (0 and 1 when ``standardize=False`` and for dead columns).
    n_samples_seen_ : int
        Rows seen by ``fit`` / ``partial_fit``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.

    Notes
    -----
    The per-column formulas and the fits of λ are in :mod:`infogauss.gaussianize._power`
    (Yeo–Johnson and Box–Cox profile likelihoods; the censored Box–Cox likelihood for columns
    with exact zeros) and :mod:`infogauss.gaussianize._quantile` (the quantile map, its tails,
    RBIG). Every map acts on each row alone (batch == row by row) and is strictly increasing
    per column (``"rbig"``: a composition of such maps and rotations), so
    :meth:`inverse_transform` recovers every input up to rounding. On values that
    :meth:`transform` cannot produce: the quantile tails are linear, so ``"quantile"`` and
    ``"rbig"`` invert every real value; Box–Cox and Yeo–Johnson with some λ have a bounded
    image, and a value beyond it raises ValueError; on a Box–Cox column every value at or below
    the censoring point (where only a zero's stand-in lies) inverts to 0.

    A monotone map of one column cannot split an atom: a post-ReLU column with 50% exact zeros
    keeps an atom of 50% at one value whatever the method. ``"rbig"`` mixes columns, which
    can.

    Examples
    --------
    >>> import numpy as np
    >>> from infogauss import Gaussianizer
    >>> X = np.maximum(0.0, np.random.default_rng(0).normal(size=(500, 3))) ** 2
    >>> g = Gaussianizer().fit(X)
    >>> [str(t) for t in g.transforms_]
    ['box-cox', 'box-cox', 'box-cox']
    >>> bool(np.all(np.abs(g.lambdas_ - 0.5) < 0.1))    # the square root, found from the data
    True
    >>> bool(np.allclose(g.inverse_transform(g.transform(X)), X))
    True
    """

    def __init__(
        self,
        *,
        method: str = "auto",
        power: float = 0.5,
        n_quantiles: int = 1000,
        n_iterations: int = 5,
        rotation: str = "pca",
        standardize: bool = True,
        dead_tol: float = 1e-6,
        subsample: int | None = 10_000,
        random_state: Any = None,
    ) -> None:
        self.method = method
        self.power = power
        self.n_quantiles = n_quantiles
        self.n_iterations = n_iterations
        self.rotation = rotation
        self.standardize = standardize
        self.dead_tol = dead_tol
        self.subsample = subsample
        self.random_state = random_state

    # ------------------------------------------------------------------ parameters
    def _validate_params_(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"`method` must be one of {METHODS}, got {self.method!r}")
        if self.rotation not in qt.ROTATIONS:
            raise ValueError(f"`rotation` must be one of {qt.ROTATIONS}, got {self.rotation!r}")
        for name in ("power", "dead_tol"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"`{name}` must be a real number, got {value!r}")
        if not (np.isfinite(self.power) and self.power > 0):
            raise ValueError(f"`power` must be a finite number > 0, got {self.power!r}")
        if not 0 <= self.dead_tol < 1:
            raise ValueError(f"`dead_tol` must lie in [0, 1), got {self.dead_tol!r}")
        check_positive_int(self.n_quantiles, "n_quantiles", minimum=2)
        check_positive_int(self.n_iterations, "n_iterations")
        check_positive_int(self.subsample, "subsample", minimum=2, allow_none=True)
        if not isinstance(self.standardize, (bool, np.bool_)):
            raise TypeError(f"`standardize` must be True or False, got {self.standardize!r}")

    def _validate_X(self, X: Any, *, reset: bool, min_samples: int = 1) -> np.ndarray:
        check_matrix_like(X, "X", min_samples=min_samples)
        X = validate_data(
            self,
            X,
            reset=reset,
            dtype=[np.float64, np.float32],
            ensure_min_samples=min_samples,
            ensure_all_finite=False,
        )
        if not all_finite(X):
            raise ValueError("`X` contains NaN or infinity; remove or impute them first")
        return X

    # ------------------------------------------------------------------ fitting
    @atomic_fit
    def fit(self, X: Any, y: Any = None) -> Gaussianizer:
        """Fit the per-column maps (and the RBIG rotations) to ``X``; ``y`` is ignored.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            At least 2 finite rows. ``method="box-cox"``: no negative value.
        y : ignored

        Returns
        -------
        self

        Notes
        -----
        λ, quantiles and rotations come from at most ``subsample`` rows drawn without
        replacement; so does the standardisation, except for ``method="power"``, whose
        standardisation uses every row (exactly what :meth:`partial_fit` streams). That sample
        (float64, at most ``subsample × n_features``) is kept so that :meth:`partial_fit` can
        continue from it; model files do not hold it.
        """
        self._validate_params_()
        X = self._validate_X(X, reset=True, min_samples=2)
        self._clear_fitted()
        rng = check_random_state(self.random_state)
        n, cap = X.shape[0], self.subsample
        sample = X if cap is None or n <= cap else X[np.sort(rng.choice(n, cap, replace=False))]
        if self.method == "power":
            self._stream = _moments_of(X, self.power)
            self._fit_power_from_stream()
        else:  # a uniform `cap`-subset of n rows: the state algorithm R would be in
            self._reservoir = np.array(sample, dtype=np.float64)
            self._rng = rng
            self._fit_sample(self._reservoir, rng)
        self.n_samples_seen_ = int(n)
        return self

    @atomic_fit
    def partial_fit(self, X: Any, y: Any = None) -> Gaussianizer:
        """Update the fit with a batch of rows (any size; the model exists from 2 rows on).

        What is streamed:

        * ``method="power"``: exact. Running per-column moments of ``x`` and of
          ``sign(x)|x|^power`` over every row (Chan's merge), so the dead columns and the
          standardisation equal a one-shot :meth:`fit` on all rows up to rounding; this also
          continues after :meth:`fit` and after :meth:`load`.
        * every other method: a uniform reservoir sample (Vitter's algorithm R, seeded by
          ``random_state``) of at most ``subsample`` rows of everything seen; each call refits
          λ, quantiles, rotations, dead columns and standardisation on the reservoir. While
          fewer than ``subsample`` rows have been seen this is exactly :meth:`fit` on all of
          them; after that, a fit on a uniform subsample of them. Each call costs a fit on the
          reservoir, so send large batches. It continues after :meth:`fit` (whose sample is
          such a reservoir) but not after :meth:`load` (model files do not hold the sample).

        Returns
        -------
        self
        """
        first = not hasattr(self, "n_features_in_")
        if first:
            self._validate_params_()
            self._clear_fitted()
        elif self.method != "power" and not hasattr(self, "_reservoir"):
            raise ValueError(
                f"partial_fit cannot continue a Gaussianizer(method={self.method!r}) loaded "
                "from a file: model files do not hold the sample its maps were fitted on. "
                "Fit a new one with fit() or partial_fit() on the data"
            )
        X = self._validate_X(X, reset=first)
        if self.method == "power":
            batch = _moments_of(X, self.power)
            self._stream = batch if first else _merge_moments(self._stream, batch)
            self.n_samples_seen_ = self._stream["n"]
            if self._stream["n"] >= 2:
                self._fit_power_from_stream()
            return self
        if first:
            self._rng = check_random_state(self.random_state)
            self._reservoir = np.empty((0, X.shape[1]))
            self.n_samples_seen_ = 0
        cap = self.subsample if self.subsample is not None else np.inf
        self._reservoir = _reservoir_update(
            self._reservoir, self.n_samples_seen_, np.asarray(X, dtype=np.float64), cap, self._rng
        )
        self.n_samples_seen_ += int(X.shape[0])
        if self._reservoir.shape[0] >= 2:
            self._fit_sample(self._reservoir, check_random_state(self.random_state))
        return self

    def _clear_fitted(self) -> None:
        for key in ("_reservoir", "_stream", "_rng", *_FITTED):
            self.__dict__.pop(key, None)

    def _dead_columns(self, std: np.ndarray, max_abs: np.ndarray) -> np.ndarray:
        top = float(std.max()) if std.size else 0.0
        return (std <= self.dead_tol * top) | (std <= _NUMERIC_EPS * max_abs)

    def _set_common(self, dead: np.ndarray, labels: np.ndarray) -> None:
        self.dead_features_ = dead
        self.transforms_ = np.where(dead, "identity", labels).astype("<U11")
        self._n_features_out = dead.size

    def _fit_power_from_stream(self) -> None:
        s = self._stream
        dead = self._dead_columns(np.sqrt(s["raw_m2"] / s["n"]), s["max_abs"])
        self._set_common(dead, np.array("power"))
        self.lambdas_ = np.where(dead, np.nan, float(self.power))
        self.prescale_, self.zero_values_ = np.ones(dead.size), np.full(dead.size, np.nan)
        self._set_standardization(s["mean"], np.sqrt(s["m2"] / s["n"]))

    def _set_standardization(self, mean: np.ndarray, std: np.ndarray) -> None:
        live = ~self.dead_features_
        if self.standardize:
            self.mean_ = np.where(live, mean, 0.0)
            self.scale_ = np.where(live & (std > np.finfo(np.float64).tiny), std, 1.0)
        else:
            self.mean_, self.scale_ = np.zeros(live.size), np.ones(live.size)

    def _fit_sample(self, S: np.ndarray, rng: Any) -> None:
        """Fit every map on the float64 sample ``S`` (the estimator's only fitting kernel)."""
        for key in _FITTED:
            self.__dict__.pop(key, None)
        d, m = S.shape[1], S.shape[0]
        _check_scale(S)
        dead = self._dead_columns(S.std(axis=0), np.abs(S).max(axis=0))
        live = ~dead
        if self.method in POWER_METHODS:
            self._fit_power_type(S, dead)
        else:
            self._set_common(dead, np.array(self.method))
            rbig = self.method == "rbig"
            rounds, n_live = (self.n_iterations if rbig else 1), int(live.sum())
            k = max(2, min(int(self.n_quantiles), m))
            self.quantiles_ = np.zeros((rounds, k, n_live))
            self.tails_ = np.ones((rounds, 2, n_live))
            rotations = np.tile(np.eye(n_live), (rounds, 1, 1))
            Z = S[:, live]
            for t in range(rounds if n_live else 0):
                maps = qt.fit_quantile_maps(Z, self.n_quantiles)
                self.quantiles_[t], self.tails_[t] = maps.quantiles, maps.tails
                Z = qt.quantile_forward(Z, maps)
                if rbig:
                    seed = rng.randint(np.iinfo(np.int32).max) if self.rotation == "random" else 0
                    rotations[t] = qt.fit_rotation(Z, self.rotation, seed)
                    Z = Z @ rotations[t]
            if rbig:
                self.rotations_ = rotations
            self.n_quantile_samples_ = int(m)
            self.mean_, self.scale_ = np.zeros(d), np.ones(d)
            mean, std = np.zeros(d), np.ones(d)
            mean[live], std[live] = Z.mean(axis=0), Z.std(axis=0)  # Z = the sample's output
            self._set_standardization(mean, std)
            return
        self.mean_, self.scale_ = np.zeros(d), np.ones(d)
        T = self._forward(S)
        self._set_standardization(T.mean(axis=0), T.std(axis=0))

    def _fit_power_type(self, S: np.ndarray, dead: np.ndarray) -> None:
        d = S.shape[1]
        nonneg = S.min(axis=0) >= 0
        if self.method == "box-cox" and not nonneg.all():
            j = int(np.flatnonzero(~nonneg)[0])
            raise ValueError(
                f"Negative values in data passed to Gaussianizer(method='box-cox'): column {j} "
                f"has minimum {float(S[:, j].min())!r}; Box–Cox is defined for x >= 0. Use "
                "method='yeo-johnson' (signed data) or method='auto'"
            )
        if self.method == "power":
            labels = np.full(d, "power")
        elif self.method == "auto":
            labels = np.where(nonneg, "box-cox", "yeo-johnson")
        else:
            labels = np.full(d, self.method)
        self._set_common(dead, labels)
        prescale = np.ones(d)
        if self.method == "auto":
            yj = self.transforms_ == "yeo-johnson"
            prescale[yj] = S[:, yj].std(axis=0)
        lambdas, zeros = np.full(d, np.nan), np.full(d, np.nan)
        fittable = pw.has_three_values(S)
        lam_min = pw.LAMBDA_MIN_ZERO if self.method == "auto" else -pw.LAMBDA_MAX
        for j in np.flatnonzero(~dead):
            kind = self.transforms_[j]
            if kind == "power":
                lambdas[j] = float(self.power)
            elif not fittable[j]:
                lambdas[j] = 1.0  # two values: no shape to fit (a zero stays at b(0) = -1)
                zeros[j] = -1.0 if kind == "box-cox" else np.nan
            elif kind == "box-cox":
                lambdas[j], zeros[j] = pw.fit_box_cox(S[:, j], lambda_min=lam_min)
            else:
                lambdas[j] = pw.fit_yeo_johnson(S[:, j] / prescale[j])
        self.lambdas_, self.prescale_, self.zero_values_ = lambdas, prescale, zeros

    # ------------------------------------------------------------------ transforms
    def _forward(self, X: np.ndarray) -> np.ndarray:
        """The fitted map on a validated float64 block (pure; raises outside the domain)."""
        out = np.array(X, dtype=np.float64, copy=True)
        live = ~self.dead_features_
        if hasattr(self, "quantiles_"):
            Z = out[:, live]
            for t in range(self.quantiles_.shape[0]):
                Z = qt.quantile_forward(Z, self._maps(t))
                if hasattr(self, "rotations_"):
                    Z = Z @ self.rotations_[t]
            out[:, live] = Z
        else:
            for kind in ("yeo-johnson", "box-cox", "power"):
                cols = self.transforms_ == kind
                if cols.any():
                    out[:, cols] = self._power_forward(kind, out[:, cols], cols)
        out[:, live] = (out[:, live] - self.mean_[live]) / self.scale_[live]
        return out

    def _power_forward(self, kind: str, X: np.ndarray, cols: np.ndarray) -> np.ndarray:
        lam = self.lambdas_[cols]
        if kind == "power":
            return pw.signed_power(X, float(self.power))
        if kind == "yeo-johnson":
            return pw.yeo_johnson(X / self.prescale_[cols], lam)
        return pw.box_cox(X, lam, self.zero_values_[cols])

    def _check_domain(self, X: np.ndarray) -> None:
        """Refuse values outside a Box–Cox column's domain (x >= 0; x > 0 where λ <= 0)."""
        cols = np.flatnonzero(self.transforms_ == "box-cox")
        if not cols.size:
            return
        lam = self.lambdas_[cols]
        for sl in iter_chunks(X.shape[0], default_chunk_size(cols.size)):
            block = X[sl][:, cols]
            bad = (block < 0) | ((block == 0) & (lam <= 0))
            if bad.any():
                i, k = (int(v[0]) for v in np.nonzero(bad))
                raise ValueError(
                    f"`X` has {float(block[i, k])!r} at row {sl.start + i}, column {cols[k]}, outside "
                    f"the domain of that column's Box–Cox transform (λ = {lam[k]:.4g}: defined "
                    f"for x {'>= 0' if lam[k] > 0 else '> 0'}); refit on data like this, or use "
                    "method='yeo-johnson'"
                )

    def _inverse(self, Y: np.ndarray) -> np.ndarray:
        out = np.array(Y, dtype=np.float64, copy=True)
        live = ~self.dead_features_
        out[:, live] = out[:, live] * self.scale_[live] + self.mean_[live]
        if hasattr(self, "quantiles_"):
            Z = out[:, live]
            for t in reversed(range(self.quantiles_.shape[0])):
                if hasattr(self, "rotations_"):
                    Z = Z @ self.rotations_[t].T
                Z = qt.quantile_inverse(Z, self._maps(t))
            out[:, live] = Z
            return out
        for kind in ("yeo-johnson", "box-cox", "power"):
            cols = self.transforms_ == kind
            if not cols.any():
                continue
            lam = self.lambdas_[cols]
            if kind == "power":
                out[:, cols] = pw.signed_power_inverse(out[:, cols], float(self.power))
            elif kind == "box-cox":
                out[:, cols] = pw.box_cox_inverse(out[:, cols], lam)
            else:
                out[:, cols] = pw.yeo_johnson_inverse(out[:, cols], lam) * self.prescale_[cols]
        return out

    def _maps(self, t: int) -> qt.QuantileMaps:
        return qt.QuantileMaps(self.quantiles_[t], self.tails_[t], self.n_quantile_samples_)

    def _apply(self, X: np.ndarray, kernel: Any, what: str) -> np.ndarray:
        out = np.empty(X.shape, dtype=X.dtype)
        for sl in iter_chunks(X.shape[0], default_chunk_size(X.shape[1])):
            block = kernel(np.asarray(X[sl], dtype=np.float64))
            with np.errstate(over="ignore"):
                out[sl] = block
            if not np.all(np.isfinite(out[sl])):
                i, j = (int(v[0]) for v in np.nonzero(~np.isfinite(out[sl])))
                raise ValueError(
                    f"{what} of row {sl.start + i}, column {j} is not finite in {X.dtype}: "
                    + (
                        "the value lies outside the image of the fitted map (it cannot come "
                        "from transform)" if what == "inverse_transform" else
                        "the value is too far outside the fitted range for this transform"
                    )
                )  # fmt: skip
        return out

    def transform(self, X: Any) -> np.ndarray:
        """Gaussianize ``X`` row by row (the state is not changed).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Finite values; Box–Cox columns need ``x >= 0`` (``x > 0`` where λ <= 0).

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            float32 for float32 input, else float64; near N(0, 1) per column on data like
            the training data (``standardize=True``).
        """
        check_is_fitted(self, "transforms_")
        return self._transform_array(self._validate_X(X, reset=False))

    def _transform_array(self, X: np.ndarray) -> np.ndarray:
        """:meth:`transform` of an already validated 2-D float array (for nesting estimators)."""
        self._check_domain(X)
        return self._apply(X, self._forward, "transform")

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Map Gaussianized values back to the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            float32 for float32 input, else float64.

        Raises
        ------
        ValueError
            A value outside the image of a bounded power transform (it cannot come from
            :meth:`transform`).
        """
        check_is_fitted(self, "transforms_")
        check_matrix_like(X, "X")
        X = check_array(X, dtype=[np.float64, np.float32])
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but Gaussianizer is expecting "
                f"{self.n_features_in_} features as input"
            )
        return self._apply(X, self._inverse, "inverse_transform")

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output names: the input names, or ``gaussianizer0, ...`` for ``"rbig"`` (rotated)."""
        check_is_fitted(self, "transforms_")
        if hasattr(self, "rotations_"):
            return ClassNamePrefixFeaturesOutMixin.get_feature_names_out(self, input_features)
        return OneToOneFeatureMixin.get_feature_names_out(self, input_features)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "transforms_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.positive_only = self.method == "box-cox"
        return tags

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted transformer to ``path`` (an ``.npz`` model file; no pickle).

        Read it back with :meth:`load` or :func:`infogauss.load`; the loaded transformer
        gives bit-identical outputs. Returns the path written.
        """
        check_is_fitted(self, "transforms_")
        params, attrs, arrays = self._state()
        return persistence.save_state(path, "Gaussianizer", params, attrs, arrays)

    def _state(self) -> tuple[dict, dict, dict]:
        """``(params, attrs, arrays)`` for :func:`infogauss.persistence.save_state` (nestable)."""
        return _persist.state(self)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Gaussianizer:
        """Read a transformer written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        infogauss.persistence.ModelFileError
            (a ValueError) If the file is not a Gaussianizer file, is corrupted or modified,
            or fails an invariant (shapes, parameters, monotone quantiles, orthogonal
            rotations).
        """
        meta, arrays = persistence.read_state(path, "Gaussianizer")
        return cls._from_state(path, meta, arrays)

    @classmethod
    def _from_state(cls, path: Any, meta: dict, arrays: dict) -> Gaussianizer:
        return _persist.from_state(cls, path, meta, arrays)


# ---------------------------------------------------------------------- streaming helpers
def _check_scale(X: np.ndarray) -> None:
    """Refuse columns whose spread cannot be squared in float64 (their standard deviation,
    and every fitted map and standardisation built on it, would be inf or 0): the wording of
    :func:`infogauss.gaussian.stats_from_array`."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        dev = X - X.mean(axis=0)
        sq = np.einsum("ij,ij->j", dev, dev)
    if not np.isfinite(sq).all():
        j = int(np.flatnonzero(~np.isfinite(sq))[0])
        raise ValueError(
            f"`X` has values too large to square in float64 (column {j}: largest |x| "
            f"{float(np.max(np.abs(X[:, j]))):.3g}); rescale X first, e.g. X / X.std()"
        )
    underflow = (sq == 0) & np.any(dev != 0, axis=0)
    if underflow.any():
        j = int(np.flatnonzero(underflow)[0])
        raise ValueError(
            f"`X` varies on a scale too small to square in float64 (column {j}: largest "
            f"deviation {float(np.max(np.abs(dev[:, j]))):.3g}, whose square underflows to 0); "
            "rescale X first, e.g. X / X.std()"
        )


def _moments_of(X: np.ndarray, p: float) -> dict[str, Any]:
    """Per-column count, max |x|, mean and centred sum of squares of ``x`` and ``t(x)``."""
    X = np.asarray(X, dtype=np.float64)
    _check_scale(X)
    T = pw.signed_power(X, float(p))
    raw_mean, mean = X.mean(axis=0), T.mean(axis=0)
    return {
        "n": int(X.shape[0]),
        "max_abs": np.abs(X).max(axis=0),
        "raw_mean": raw_mean,
        "raw_m2": ((X - raw_mean) ** 2).sum(axis=0),
        "mean": mean,
        "m2": ((T - mean) ** 2).sum(axis=0),
    }


def _merge_moments(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Chan et al.'s pairwise merge of per-column means and centred sums of squares."""
    n = a["n"] + b["n"]
    out: dict[str, Any] = {"n": n, "max_abs": np.maximum(a["max_abs"], b["max_abs"])}
    for mean, m2 in (("raw_mean", "raw_m2"), ("mean", "m2")):
        delta = b[mean] - a[mean]
        out[mean] = a[mean] + delta * (b["n"] / n)
        out[m2] = a[m2] + b[m2] + delta * delta * (a["n"] * b["n"] / n)
    return out


def _reservoir_update(res: np.ndarray, n_seen: int, X: np.ndarray, cap: float, rng: Any) -> np.ndarray:
    """Algorithm R over a batch: row ``i`` (0-based, global) replaces slot ``j ~ U{0..i}`` when
    ``j < cap``; vectorised, the last row drawn for a slot wins, as in the sequential loop."""
    fill = int(max(0, min(cap - n_seen, X.shape[0])))
    if fill:
        res = np.vstack([res, X[:fill]])
    rest = X[fill:]
    if rest.shape[0]:
        index = n_seen + fill + np.arange(rest.shape[0])
        slot = rng.randint(0, index + 1)
        keep = np.flatnonzero(slot < cap)
        _, last = np.unique(slot[keep][::-1], return_index=True)
        chosen = keep[keep.size - 1 - last]
        res = res.copy()
        res[slot[chosen]] = rest[chosen]
    return res
