r"""Functional core of infogauss: multivariate Gaussians on arrays (numpy and scipy only).

Everything the estimators do with a Gaussian lives here once, as pure functions:

* :class:`GaussianStats` — count, mean and centred moments accumulated in float64 and
  merged exactly (Chan et al.'s pairwise update), so data may arrive in chunks, files or
  Dask partitions and still give the one-shot answer;
* :func:`covariance_from_stats` — empirical, Ledoit–Wolf, OAS, fixed-intensity and diagonal
  covariances from those statistics (the shrinkage intensities equal scikit-learn's);
* :func:`cholesky_factor` — the one factorisation done at fit time;
* :func:`mahalanobis_sq`, :func:`log_density`, :func:`whiten` — blocked BLAS scoring in
  float32 or float64 with bounded extra memory, by triangular solves (no inverse is formed);
* :func:`mahalanobis_pvalues` — upper-tail p-values of squared distances under their exact
  finite-sample laws (Hotelling's T² ⇒ F, and Beta for training points) or the χ² limit;
* :func:`gaussian_entropy`.

Reproducibility
---------------
A row's score depends mathematically on that row alone, and numerically on the other rows
only through rounding: BLAS kernels group the rows of one call differently with the number
of rows and with the CPU's kernel (``OPENBLAS_CORETYPE``, thread count), so the same row
scored alone, in a chunk, in a file streamed block by block or on another machine agrees to
:data:`BATCH_RTOL` of the compute dtype, not bit for bit. The same call on the same machine
with the same thread count repeats bit for bit.

Notes
-----
Covariances follow scikit-learn: the empirical covariance is the maximum-likelihood
estimate :math:`S/n` with :math:`S=\sum_i (x_i-\bar x)(x_i-\bar x)^\top`, and a shrunk
covariance is :math:`(1-s)\,S/n + s\,\mu I` with :math:`\mu=\operatorname{tr}(S/n)/d`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg, stats
from scipy.linalg import blas

from ._validation import check_float_array, check_positive_int, nonfinite_error

__all__ = [
    "GaussianStats",
    "SHRINKAGE_METHODS",
    "PVALUE_METHODS",
    "WHITENING_METHODS",
    "stats_from_array",
    "stats_from_chunks",
    "merge_stats",
    "covariance_from_stats",
    "ledoit_wolf_shrinkage_from_stats",
    "oas_shrinkage_from_stats",
    "cholesky_factor",
    "mahalanobis_sq",
    "mahalanobis_sq_to_means",
    "log_density",
    "whitening_matrix",
    "whiten",
    "mahalanobis_pvalues",
    "distance_law",
    "gaussian_entropy",
    "default_chunk_size",
    "iter_chunks",
    "BATCH_RTOL",
    "is_cholesky_factor",
    "ScoringFactor",
    "scoring_precision",
    "random_orthonormal",
]

SHRINKAGE_METHODS = ("empirical", "ledoit_wolf", "oas", "diagonal")
PVALUE_METHODS = ("f", "beta", "chi2")
WHITENING_METHODS = ("zca", "pca", "cholesky")
#: Agreement guaranteed between scores of the same rows computed in different batches (chunk
#: sizes, subsets of rows, streamed files) or with different BLAS kernels, by compute dtype:
#: ``|a - b| <= rtol * max(1, |b|)`` elementwise for squared distances, log-densities,
#: whitened coordinates and p-values. Rounding, not maths: see "Reproducibility" above.
BATCH_RTOL = {"float32": 1e-5, "float64": 1e-12}
_LOG_2PI = math.log(2.0 * math.pi)
# Bytes of working memory per scoring block (the block of centred rows); a chunk of rows is
# sized so that one block of float64 rows takes about this much.
_BLOCK_BYTES = 1 << 25


# --------------------------------------------------------------------------------------
# Sufficient statistics
# --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class GaussianStats:
    """Exactly mergeable statistics of a sample, in float64.

    Parameters
    ----------
    n : int
        Number of samples.
    mean : ndarray of shape (n_features,)
        Sample mean.
    scatter : ndarray of shape (n_features, n_features)
        Centred scatter :math:`S=\\sum_i (x_i-\\bar x)(x_i-\\bar x)^\\top`.
    third : ndarray of shape (n_features,)
        :math:`\\sum_i \\lVert x_i-\\bar x\\rVert^2 (x_i-\\bar x)`, needed to move the
        fourth moment to a merged mean.
    fourth : float
        :math:`\\sum_i \\lVert x_i-\\bar x\\rVert^4`, the only extra moment the
        Ledoit–Wolf intensity needs.
    """

    n: int
    mean: np.ndarray
    scatter: np.ndarray
    third: np.ndarray
    fourth: float

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    @property
    def empirical_covariance(self) -> np.ndarray:
        """Maximum-likelihood covariance ``scatter / n``."""
        return self.scatter / self.n

    def merge(self, other: GaussianStats) -> GaussianStats:
        """Statistics of the union of both samples (see :func:`merge_stats`)."""
        return merge_stats(self, other)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "n": np.asarray(self.n, dtype=np.int64),
            "mean": self.mean,
            "scatter": self.scatter,
            "third": self.third,
            "fourth": np.asarray(self.fourth, dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> GaussianStats:
        return cls(
            n=int(arrays["n"]),
            mean=np.asarray(arrays["mean"], dtype=np.float64),
            scatter=np.asarray(arrays["scatter"], dtype=np.float64),
            third=np.asarray(arrays["third"], dtype=np.float64),
            fourth=float(arrays["fourth"]),
        )


def default_chunk_size(n_features: int) -> int:
    """Rows per block so that one float64 block of rows is about 32 MiB (at least 256)."""
    return max(256, _BLOCK_BYTES // (8 * max(int(n_features), 1)))


def iter_chunks(n_rows: int, chunk_size: int) -> Iterator[slice]:
    """Yield consecutive row slices of at most ``chunk_size`` rows."""
    for start in range(0, n_rows, chunk_size):
        yield slice(start, min(start + chunk_size, n_rows))


def _stats_of_block(block: np.ndarray, name: str, first_row: int | None = None) -> GaussianStats:
    """Statistics of one in-memory block (float64 arithmetic throughout).

    The mean gets one correction pass (the mean of the residuals, Björck's two-pass
    refinement), so with a large offset it is exact to about one ulp of the offset, and the
    deviations keep every digit the data hold. Finiteness is checked on the block's mean and
    fourth moment (any NaN/inf, or a value whose powers overflow, makes them non-finite), so
    valid data pay no extra pass. ``first_row``: the block's first row in the whole data
    (errors then name that row number).
    """
    y = np.array(block, dtype=np.float64, order="C", copy=True)
    n = y.shape[0]
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite input raises below
        mean = y.mean(axis=0)  # pairwise summation
        y -= mean
        correction = y.mean(axis=0)  # the rounding error of the mean, seen in the residuals
        mean += correction
        y -= correction
        r = np.einsum("ij,ij->i", y, y)
        fourth = float(r @ r)
    if not (np.isfinite(mean).all() and np.isfinite(fourth)):
        bad = np.flatnonzero(~np.isfinite(np.asarray(block, dtype=np.float64)).all(axis=1))
        if bad.size and first_row is not None:
            where = f" (first at row {first_row + int(bad[0])})"
        else:
            where = f" (first at row {bad[0]} of the block)" if bad.size else ""
        raise ValueError(
            f"`{name}` contains NaN or infinity{where}, or values too large to square in "
            "float64; remove or rescale them first"
        )
    scatter = y.T @ y
    diag = np.diag(scatter)
    underflow = (diag == 0) & np.any(y != 0, axis=0)
    if underflow.any():
        j = int(np.flatnonzero(underflow)[0])
        raise ValueError(
            f"`{name}` varies on a scale too small to square in float64 (column {j}: largest "
            f"deviation {float(np.max(np.abs(y[:, j]))):.3g}, whose square underflows to 0); "
            "rescale X first, e.g. X / X.std()"
        )
    return GaussianStats(
        n=n,
        mean=mean,
        scatter=(scatter + scatter.T) * 0.5,
        third=y.T @ r,
        fourth=fourth,
    )


def stats_from_array(X: Any, *, chunk_size: int | None = None) -> GaussianStats:
    """Sufficient statistics of ``X``, computed block by block in float64.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Finite real data. A ``numpy.memmap`` is read one block at a time.
    chunk_size : int, optional
        Rows per block; bounds the extra memory to about ``3 * chunk_size * n_features``
        float64 values. Default: :func:`default_chunk_size`.

    Returns
    -------
    GaussianStats

    Examples
    --------
    >>> import numpy as np
    >>> s = stats_from_array(np.array([[0.0, 1.0], [2.0, 3.0]]))
    >>> s.n, s.mean.tolist()
    (2, [1.0, 2.0])
    """
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "biuf" and X.shape[0]:
        arr = X  # blocks are checked one by one (a memmap is never read whole)
    else:
        arr = check_float_array(X, "X")
    chunk = check_positive_int(chunk_size, "chunk_size", allow_none=True)
    chunk = chunk or default_chunk_size(arr.shape[1])
    return stats_from_chunks(
        (arr[s] for s in iter_chunks(arr.shape[0], chunk)), name="X", blocks=False
    )


def stats_from_chunks(
    chunks: Iterable[Any], *, name: str = "chunks", blocks: bool = True
) -> GaussianStats:
    """Merge the statistics of an iterable of 2-D blocks (all of the same width and dtype).

    Each block is checked (finite, real, 2-D, consistent width and dtype); a block with
    another width raises a ValueError that names the block's position. With
    ``blocks=False`` errors name ``name`` itself (the blocks are slices of one array).
    """
    total: GaussianStats | None = None
    width = None
    dtype = None
    row = 0
    for i, block in enumerate(chunks):
        label = f"{name}[{i}]" if blocks else name
        arr = check_float_array(block, label, finite=False)
        if width is None:
            width, dtype = arr.shape[1], arr.dtype
        elif arr.shape[1] != width:
            raise ValueError(
                f"`{name}[{i}]` has {arr.shape[1]} features, but earlier blocks had {width}; "
                "every block must have the same number of columns"
            )
        elif arr.dtype != dtype:
            raise TypeError(
                f"`{name}[{i}]` has dtype {arr.dtype}, but earlier blocks had {dtype}; "
                "mixed dtypes across blocks are refused (cast them to one dtype first)"
            )
        s = _stats_of_block(arr, label, first_row=None if blocks else row)
        row += arr.shape[0]
        total = s if total is None else merge_stats(total, s)
    if total is None:
        raise ValueError(f"`{name}` yielded no data (need at least one non-empty block)")
    return total


def _shift(s: GaussianStats, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Scatter, third and fourth moments of ``s`` about ``mean - delta`` … i.e. with
    deviations ``y + delta`` where ``y`` are the deviations about ``s.mean``."""
    c = float(delta @ delta)
    sd = s.scatter @ delta
    tr = float(np.trace(s.scatter))
    scatter = s.scatter + s.n * np.outer(delta, delta)
    third = s.third + 2.0 * sd + tr * delta + s.n * c * delta
    fourth = (
        s.fourth
        + 4.0 * float(delta @ sd)
        + s.n * c * c
        + 4.0 * float(delta @ s.third)
        + 2.0 * c * tr
    )
    return scatter, third, fourth


def merge_stats(a: GaussianStats, b: GaussianStats) -> GaussianStats:
    """Exact statistics of the union of two samples (Chan, Golub & LeVeque's update).

    The moments of each part are moved to the merged mean and added, so the result equals
    the statistics of the concatenated data up to float64 rounding.
    """
    if a.n_features != b.n_features:
        raise ValueError(f"cannot merge statistics of {a.n_features} and {b.n_features} features")
    n = a.n + b.n
    delta = b.mean - a.mean
    mean = a.mean + delta * (b.n / n)
    sa, ta, qa = _shift(a, a.mean - mean)
    sb, tb, qb = _shift(b, b.mean - mean)
    scatter = sa + sb
    return GaussianStats(
        n=n, mean=mean, scatter=(scatter + scatter.T) * 0.5, third=ta + tb, fourth=qa + qb
    )


# --------------------------------------------------------------------------------------
# Covariance estimates
# --------------------------------------------------------------------------------------
def ledoit_wolf_shrinkage_from_stats(s: GaussianStats) -> float:
    r"""Ledoit–Wolf shrinkage intensity, identical to ``sklearn.covariance.ledoit_wolf``.

    Notes
    -----
    With :math:`C=S/n`, :math:`\mu=\operatorname{tr}C/d`,
    :math:`\delta=(\lVert C\rVert_F^2-2\mu\operatorname{tr}C+d\mu^2)/d` and
    :math:`\beta=\min\!\big(\delta,\;(\sum_i\lVert x_i-\bar x\rVert^4/n-\lVert C\rVert_F^2)/(dn)\big)`,
    the intensity is :math:`\beta/\delta` (0 when :math:`\beta=0`).
    """
    n, d = s.n, s.n_features
    if d == 1:
        return 0.0
    emp = s.scatter / n
    trace = float(np.trace(emp))
    mu = trace / d
    delta_ = float(np.sum(emp * emp))
    beta = (s.fourth / n - delta_) / (d * n)
    delta = (delta_ - 2.0 * mu * trace + d * mu * mu) / d
    beta = min(beta, delta)
    return 0.0 if beta == 0 else float(beta / delta)


def oas_shrinkage_from_stats(s: GaussianStats) -> float:
    """Oracle Approximating Shrinkage intensity, identical to ``sklearn.covariance.oas``."""
    n, d = s.n, s.n_features
    if d == 1:
        return 0.0
    emp = s.scatter / n
    alpha = float(np.mean(emp * emp))
    mu = float(np.trace(emp)) / d
    num = alpha + mu * mu
    den = (n + 1) * (alpha - mu * mu / d)
    return 1.0 if den == 0 else float(min(num / den, 1.0))


def _check_shrinkage(shrinkage: Any) -> str | float:
    if isinstance(shrinkage, str):
        if shrinkage not in SHRINKAGE_METHODS:
            raise ValueError(
                f"`shrinkage` must be one of {SHRINKAGE_METHODS} or a float in [0, 1], "
                f"got {shrinkage!r}"
            )
        return shrinkage
    if isinstance(shrinkage, bool) or not isinstance(
        shrinkage, (int, float, np.integer, np.floating)
    ):
        raise TypeError(
            f"`shrinkage` must be one of {SHRINKAGE_METHODS} or a float in [0, 1], "
            f"got {type(shrinkage).__name__}"
        )
    value = float(shrinkage)
    if not (0.0 <= value <= 1.0):
        raise ValueError(f"`shrinkage` must lie in [0, 1], got {shrinkage!r}")
    return value


def covariance_from_stats(
    s: GaussianStats, shrinkage: str | float = "ledoit_wolf"
) -> tuple[np.ndarray, float | None]:
    """Covariance estimate and the shrinkage intensity used.

    Parameters
    ----------
    s : GaussianStats
    shrinkage : {"empirical", "ledoit_wolf", "oas", "diagonal"} or float in [0, 1]
        ``"empirical"`` is the MLE ``S/n``; a float ``a`` gives ``(1-a) S/n + a (tr(S/n)/d) I``;
        ``"ledoit_wolf"`` and ``"oas"`` choose ``a`` from the data as scikit-learn does;
        ``"diagonal"`` keeps the variances only.

    Returns
    -------
    covariance : ndarray of shape (n_features, n_features), float64
    shrinkage : float or None
        The intensity used (None for ``"diagonal"``).
    """
    method = _check_shrinkage(shrinkage)
    emp = s.scatter / s.n
    d = s.n_features
    if method == "diagonal":
        return np.diag(np.diag(emp)), None
    if method == "empirical":
        a = 0.0
    elif method == "ledoit_wolf":
        a = ledoit_wolf_shrinkage_from_stats(s)
    elif method == "oas":
        a = oas_shrinkage_from_stats(s)
    else:
        a = float(method)
    cov = (1.0 - a) * emp
    cov.flat[:: d + 1] += a * (np.trace(emp) / d)
    return cov, float(a)


def cholesky_factor(covariance: np.ndarray, *, name: str = "covariance") -> np.ndarray:
    """Lower Cholesky factor ``L`` with ``L @ L.T == covariance``.

    Raises
    ------
    ValueError
        If the matrix is not positive definite, naming the zero-variance coordinates when
        there are any, with the remedy (shrinkage).
    """
    cov = np.asarray(covariance, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or cov.shape[0] == 0:
        raise ValueError(f"`{name}` must be a non-empty square matrix, got shape {cov.shape}")
    if not np.isfinite(cov).all():
        raise ValueError(f"`{name}` contains NaN or infinity; it must be a finite matrix")
    try:
        L = linalg.cholesky(cov, lower=True, check_finite=True)
    except (linalg.LinAlgError, ValueError) as exc:
        diag = np.diag(cov)
        scale = float(np.max(np.abs(diag))) if diag.size else 0.0
        zero = np.flatnonzero(diag <= scale * 1e-14)
        detail = (
            f" coordinates {zero[:10].tolist()}{'…' if zero.size > 10 else ''} have zero variance;"
            if zero.size
            else ""
        )
        raise ValueError(
            f"the {name} is singular (not positive definite):{detail} the data span fewer "
            "dimensions than features. Use shrinkage='ledoit_wolf' (the default), 'oas' or a "
            "float in (0, 1], or drop constant/duplicated columns."
        ) from exc
    return L


def is_cholesky_factor(L: np.ndarray, covariance: np.ndarray, *, rtol: float = 1e-8) -> bool:
    """Whether ``L`` is lower triangular with a positive diagonal and ``L @ L.T`` equals
    ``covariance`` to ``rtol`` of its largest entry (how a model file's factor is checked)."""
    if np.any(np.triu(L, 1)) or not np.all(np.diag(L) > 0):
        return False
    scale = max(float(np.max(np.abs(covariance))), np.finfo(float).tiny)
    return bool(np.max(np.abs(L @ L.T - covariance)) <= rtol * scale)


# --------------------------------------------------------------------------------------
# Blocked scoring
# --------------------------------------------------------------------------------------
def _compute_dtype(X: np.ndarray, dtype: Any) -> np.dtype:
    if dtype is None:
        return np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"`dtype` must be float32, float64 or None, got {dtype!r}")
    return dt


class _Centering:
    """Centres rows accurately in the compute dtype.

    Subtracting a float32 copy of the mean is exact to float32 rounding of the *deviation*
    (not of the value), and the remainder ``location - location32`` is applied after the
    linear map, so data with mean 1e4 and std 1 keep their digits in float32.
    """

    def __init__(self, location: np.ndarray, dt: np.dtype) -> None:
        self.dt = dt
        self.loc = location.astype(dt)
        self.rest = location - self.loc.astype(np.float64)  # zero in float64

    def block(self, X: np.ndarray, sl: slice, buf: np.ndarray | None = None) -> np.ndarray:
        """The centred rows ``X[sl] - location`` in the compute dtype, in one pass.

        With ``buf`` (a per-call buffer of at least the block's rows) the result lives in it,
        reused from block to block (no page faults from fresh allocations) and valid until the
        next call; the object itself holds no per-call state, so one instance serves several
        threads at once.
        """
        m = sl.stop - sl.start
        Y = np.empty((m, self.loc.shape[0]), dtype=self.dt) if buf is None else buf[:m]
        np.subtract(X[sl], self.loc, out=Y, casting="unsafe")
        return Y


# Up to this many rows, one triangular solve per row (trsv) beats one multi-row trsm, whose
# packing overhead dominates tiny batches (about 5x for one row at d = 512; the crossover
# is above 2 rows on the CPUs measured, see benchmarks/latency.py).
_TRSV_MAX_ROWS = 2


def _solve_lower_rows(L: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Rows ``z_i = L^{-1} y_i`` for a C-contiguous block ``Y`` (trsm in place, or trsv per
    row for tiny blocks). ``L`` is Fortran-ordered in ``Y``'s dtype."""
    if Y.shape[0] <= _TRSV_MAX_ROWS:
        trsv = blas.strsv if Y.dtype == np.float32 else blas.dtrsv
        for i in range(Y.shape[0]):
            Y[i] = trsv(L, Y[i], lower=1)
        return Y
    trsm = blas.strsm if Y.dtype == np.float32 else blas.dtrsm
    # Y.T is Fortran-ordered: solve L Z^T = Y^T on the left without a copy.
    Zt = trsm(1.0, L, Y.T, side=0, lower=1, trans_a=0, diag=0, overwrite_b=1)
    return Zt.T


class ScoringFactor:
    """What scoring against one Cholesky factor needs, prepared once per compute dtype.

    Scoring a small batch is dominated by per-call set-up, not arithmetic: converting the
    ``d × d`` factor to Fortran order in the compute dtype and solving the means against it.
    An estimator builds one ``ScoringFactor`` at fit time and passes it to the scoring
    functions, which then do only the per-row work. It is read-only after construction
    except for a per-dtype cache filled on first use (idempotent, so concurrent first uses
    from several threads are safe: they compute equal values).

    Parameters
    ----------
    chol : ndarray of shape (d, d)
        Lower Cholesky factor of the covariance.
    means : ndarray of shape (n_means, d)
    center : ndarray of shape (d,)
        Centring point of the solves (see :func:`mahalanobis_sq_to_means`).
    """

    def __init__(
        self, chol: np.ndarray, means: np.ndarray, center: np.ndarray | None = None
    ) -> None:
        self.chol = np.asarray(chol, dtype=np.float64)
        self.means = np.asarray(means, dtype=np.float64)
        if self.means.ndim != 2 or self.means.shape[0] == 0:
            raise ValueError(
                "`means` must be a 2-D array of shape (n_means, n_features), got shape "
                f"{self.means.shape}"
            )
        d = self.means.shape[1]
        self.center = (
            self.means.mean(axis=0) if center is None else np.asarray(center, dtype=np.float64)
        )
        if self.chol.shape != (d, d):
            raise ValueError(
                f"`chol` must have shape ({d}, {d}) to match `means`, got {self.chol.shape}"
            )
        self.logdet = _logdet_from_chol(self.chol)
        self._by_dtype: dict[str, tuple] = {}

    def get(self, dt: np.dtype) -> tuple[np.ndarray, _Centering, np.ndarray]:
        """``(L in Fortran order, centring, solved means)`` in compute dtype ``dt``."""
        key = dt.char  # "f" or "d" (cheaper than the dtype's name on every call)
        got = self._by_dtype.get(key)
        if got is None:
            L = np.asfortranarray(self.chol, dtype=dt)
            cen = _Centering(self.center, dt)
            # L^{-1}(mu_k - c) plus the float32 rounding remainder of the centre (zero in float64)
            M = linalg.solve_triangular(
                self.chol, (self.means - self.center + cen.rest).T, lower=True
            ).T.astype(dt)
            got = self._by_dtype[key] = (L, cen, M)
        return got


def _scoring_setup(X: Any, location: np.ndarray, dtype: Any, chunk_size: int | None):
    """Validate shape and dtype (finiteness is checked on each output block)."""
    d = location.shape[0]
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype in (np.float32, np.float64):
        if X.shape[1] != d or X.shape[0] == 0:
            check_float_array(X[:1] if X.shape[0] else X, "X", n_features=d)
    else:
        X = check_float_array(X, "X", n_features=d, finite=False)
    return X, _compute_dtype(X, dtype), (chunk_size or default_chunk_size(d))


def _check_block(values: np.ndarray, sl: slice) -> None:
    ok = np.isfinite(values)
    if not ok.all():
        bad = int(np.argmin(ok if ok.ndim == 1 else ok.all(axis=1)))
        raise nonfinite_error("X", sl.start + bad)


def mahalanobis_sq(
    X: Any,
    location: np.ndarray,
    chol: np.ndarray,
    *,
    dtype: Any = None,
    chunk_size: int | None = None,
    factor: ScoringFactor | None = None,
) -> np.ndarray:
    """Squared Mahalanobis distances ``(x - location)^T Σ^{-1} (x - location)``.

    Computed block by block as ``‖L^{-1}(x - location)‖²`` with a BLAS triangular solve;
    no inverse is formed.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    location : ndarray of shape (n_features,)
    chol : ndarray of shape (n_features, n_features)
        Lower Cholesky factor of the covariance (:func:`cholesky_factor`).
    dtype : {None, float32, float64}
        Compute precision; None follows ``X`` (float32 stays float32, the rest float64).
    chunk_size : int, optional
        Rows per block (bounds extra memory).
    factor : ScoringFactor, optional
        ``ScoringFactor(chol, location[None], location)`` prepared once (an estimator's fit
        does this), so a call does only per-row work; ``location`` and ``chol`` are then
        ignored.

    Returns
    -------
    ndarray of shape (n_samples,), float64
        **Squared** distances (larger = farther from the mean).
    """
    location = np.asarray(location, dtype=np.float64)
    return mahalanobis_sq_to_means(
        X, location[None, :], chol, center=location, dtype=dtype, chunk_size=chunk_size,
        factor=factor,
    ).reshape(-1)


def mahalanobis_sq_to_means(
    X: Any,
    means: np.ndarray,
    chol: np.ndarray,
    *,
    center: np.ndarray | None = None,
    dtype: Any = None,
    chunk_size: int | None = None,
    factor: ScoringFactor | None = None,
) -> np.ndarray:
    r"""Squared Mahalanobis distances of every row to every mean, one shared covariance.

    Each block of rows is centred at ``center`` and solved once against the Cholesky factor
    (``z = L^{-1}(x - c)``); the means are solved once too (``m_k = L^{-1}(\mu_k - c)``), and
    ``d_k(x)^2 = \lVert z - m_k\rVert^2`` is summed explicitly (no expansion
    ``‖z‖² − 2 z·m + ‖m‖²``, so there is no cancellation). No inverse is formed.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    means : ndarray of shape (n_means, n_features)
    chol : ndarray of shape (n_features, n_features)
        Lower Cholesky factor of the shared covariance
        (:func:`infogauss.gaussian.cholesky_factor`).
    center : ndarray of shape (n_features,), optional
        Centring point for the solves (any point works; one near the data keeps float32
        accurate). Default: the mean of ``means``.
    dtype : {None, float32, float64}
        Compute precision; None follows ``X`` as :func:`infogauss.gaussian.mahalanobis_sq`.
    chunk_size : int, optional
        Rows per block.

    Returns
    -------
    ndarray of shape (n_samples, n_means), float64
        **Squared** distances (larger = farther from that mean).

    Examples
    --------
    >>> import numpy as np
    >>> d2 = mahalanobis_sq_to_means(np.zeros((1, 2)), np.array([[1.0, 0.0], [0.0, 2.0]]),
    ...                              np.eye(2))
    >>> d2.tolist()
    [[1.0, 4.0]]

    Notes
    -----
    With one mean this equals :func:`mahalanobis_sq` (its many-means twin, used by the
    class- and cluster-conditional OOD detectors).
    """
    if factor is None:
        factor = ScoringFactor(chol, means, center)
    X, dt, chunk = _scoring_setup(X, factor.center, dtype, chunk_size)
    L, cen, M = factor.get(dt)
    out = np.empty((X.shape[0], M.shape[0]), dtype=np.float64)
    buf = np.empty((min(chunk, X.shape[0]), L.shape[0]), dtype=dt) if X.shape[0] > 0 else None
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite rows raise below
        for sl in iter_chunks(X.shape[0], chunk):
            Z = _solve_lower_rows(L, cen.block(X, sl, buf))
            if M.shape[0] == 1:  # one mean: subtract in place (nothing to do in float64)
                if np.any(M[0]):
                    Z -= M[0]
                out[sl, 0] = np.einsum("ij,ij->i", Z, Z)
            else:
                for k in range(M.shape[0]):
                    D = Z - M[k]
                    out[sl, k] = np.einsum("ij,ij->i", D, D)
            _check_block(out[sl], sl)
    return out


def log_density(
    X: Any,
    location: np.ndarray,
    chol: np.ndarray,
    *,
    dtype: Any = None,
    chunk_size: int | None = None,
    factor: ScoringFactor | None = None,
) -> np.ndarray:
    """Gaussian log-density of each row (natural log; higher = more typical of the model).

    ``log p(x) = -½ (d log 2π + log det Σ + m²(x))`` with ``log det Σ = 2 Σ log L_ii``.

    Returns
    -------
    ndarray of shape (n_samples,), float64
    """
    m2 = mahalanobis_sq(X, location, chol, dtype=dtype, chunk_size=chunk_size, factor=factor)
    if factor is None:
        d, logdet = location.shape[0], _logdet_from_chol(chol)
    else:
        d, logdet = factor.chol.shape[0], factor.logdet
    return -0.5 * (d * _LOG_2PI + logdet + m2)


def scoring_precision(location: np.ndarray, covariance: np.ndarray, chol: np.ndarray) -> dict:
    """How many digits scoring can keep with this fit, from the data's offset and conditioning.

    Returns
    -------
    dict
        ``offset_ratio``: ``max_j |mean_j| / sd_j`` — float64 scoring represents the mean to one
        ulp, so deviations of points near the mean keep about ``16 - log10(offset_ratio)``
        digits; ``factor_condition``: LAPACK's 1-norm estimate of the condition number of the
        Cholesky factor — the triangular solve's relative error grows with it (float32 scores
        drift from float64 ones by about ``factor_condition * 1e-9`` relative: measured, see
        ``tests/test_model.py``); ``float32_ok``: whether float32 scoring stays within the
        documented ``1e-4`` of float64 (``factor_condition <= 1.7e4``, a margin of about 4);
        ``float64_ok``: whether float64 scores keep 10 digits (``offset_ratio <= 1e6``).
    """
    from scipy.linalg import lapack

    sd = np.sqrt(np.maximum(np.diag(covariance), 0.0))
    live = sd > 0
    ratio = float(np.max(np.abs(location[live]) / sd[live])) if live.any() else 0.0
    rcond = float(lapack.dtrcon(np.asfortranarray(chol), norm="1", uplo="L")[0])
    cond = float("inf") if rcond <= 0 else 1.0 / rcond
    return {"offset_ratio": ratio, "factor_condition": cond,
            "float32_ok": cond <= _FLOAT32_MAX_FACTOR_CONDITION,
            "float64_ok": ratio <= _FLOAT64_MAX_OFFSET_RATIO}  # fmt: skip


_FLOAT32_MAX_FACTOR_CONDITION = 1.7e4
_FLOAT64_MAX_OFFSET_RATIO = 1e6


def _logdet_from_chol(chol: np.ndarray) -> float:
    return 2.0 * float(np.sum(np.log(np.diag(chol))))


def gaussian_entropy(chol: np.ndarray) -> float:
    """Differential entropy (nats) of N(μ, LLᵀ): ``½ d (1 + log 2π) + ½ log det Σ``."""
    chol = np.asarray(chol, dtype=np.float64)
    if chol.ndim != 2 or chol.shape[0] != chol.shape[1] or not np.all(np.diag(chol) > 0):
        raise ValueError(
            "`chol` must be a square lower Cholesky factor with a positive diagonal (as "
            f"cholesky_factor returns), got shape {chol.shape}"
            + (f" and diagonal minimum {float(np.min(np.diag(chol)))!r}" if chol.ndim == 2 else "")
        )
    d = chol.shape[0]
    return 0.5 * d * (1.0 + _LOG_2PI) + 0.5 * _logdet_from_chol(chol)


def whitening_matrix(
    covariance: np.ndarray,
    chol: np.ndarray | None = None,
    *,
    method: str = "zca",
    n_components: int | None = None,
) -> np.ndarray:
    """Matrix ``W`` such that ``(x - μ) @ W`` has identity covariance under the model.

    Parameters
    ----------
    covariance : ndarray of shape (d, d)
    chol : ndarray of shape (d, d), optional
        Its lower Cholesky factor (used by ``method="cholesky"``).
    method : {"zca", "pca", "cholesky"}
        ``"zca"``: ``W = U_k Λ_k^{-1/2} U_kᵀ`` (closest whitened vectors to the originals;
        d columns, rank k); ``"pca"``: ``W = U_k Λ_k^{-1/2}``, components by decreasing
        variance (k columns); ``"cholesky"``: ``W = L^{-T}`` (full rank only).
    n_components : int, optional
        Rank ``k``: keep this many leading components (default: all ``d``).

    Returns
    -------
    ndarray of shape (d, k), float64
    """
    if method not in WHITENING_METHODS:
        raise ValueError(f"`whiten` must be one of {WHITENING_METHODS}, got {method!r}")
    d = covariance.shape[0]
    if n_components is not None:
        if method == "cholesky":
            raise ValueError(
                f"`n_components` truncates PCA or ZCA whitening; got n_components={n_components} "
                "with whiten='cholesky' (use whiten='pca' or 'zca')"
            )
        if not (1 <= n_components <= d):
            raise ValueError(f"`n_components` must be in [1, {d}], got {n_components}")
    if method == "cholesky":
        L = cholesky_factor(covariance) if chol is None else chol
        return linalg.solve_triangular(L, np.eye(d), lower=True).T
    evals, evecs = linalg.eigh(covariance)
    if evals[0] <= 0:
        raise ValueError(
            "the covariance is singular; whitening needs shrinkage (e.g. shrinkage='ledoit_wolf')"
        )
    order = np.argsort(evals)[::-1]
    evals, evecs = evals[order], evecs[:, order]
    # fix the sign of each eigenvector (largest-magnitude entry positive) for reproducibility
    signs = np.sign(evecs[np.argmax(np.abs(evecs), axis=0), np.arange(d)])
    evecs = evecs * np.where(signs == 0, 1.0, signs)
    k = d if n_components is None else n_components
    scaled = evecs[:, :k] / np.sqrt(evals[:k])
    if method == "zca":
        return scaled @ evecs[:, :k].T
    return np.ascontiguousarray(scaled)


def whiten(
    X: Any,
    location: np.ndarray,
    W: np.ndarray,
    *,
    dtype: Any = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Whitened rows ``(x - location) @ W``, blocked, in the compute dtype.

    Returns
    -------
    ndarray of shape (n_samples, W.shape[1]), float32 or float64 (the compute dtype)
    """
    X, dt, chunk = _scoring_setup(X, location, dtype, chunk_size)
    Wd = np.ascontiguousarray(W, dtype=dt)
    cen = _Centering(location, dt)
    offset = (cen.rest @ W).astype(dt) if np.any(cen.rest) else None
    out = np.empty((X.shape[0], W.shape[1]), dtype=dt)
    buf = np.empty((min(chunk, X.shape[0]), W.shape[0]), dtype=dt) if X.shape[0] > 0 else None
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite rows raise below
        for sl in iter_chunks(X.shape[0], chunk):
            np.matmul(cen.block(X, sl, buf), Wd, out=out[sl])
            if offset is not None:
                out[sl] -= offset
            _check_block(out[sl], sl)
    return out


# --------------------------------------------------------------------------------------
# p-values
# --------------------------------------------------------------------------------------
def mahalanobis_pvalues(m2: Any, n_samples: int, n_features: int, method: str = "f") -> np.ndarray:
    r"""Upper-tail p-values of squared Mahalanobis distances.

    Parameters
    ----------
    m2 : array-like of shape (n,)
        Squared distances computed with the maximum-likelihood covariance ``S/n`` of
        ``n_samples`` points (as :func:`mahalanobis_sq` does for an empirical fit).
    n_samples, n_features : int
        ``n`` and ``d`` of the fit.
    method : {"f", "beta", "chi2"}
        * ``"f"`` (new points, the default): a point independent of the fit has
          :math:`\frac{n}{n+1}m_u^2\sim T^2(d,n-1)` with :math:`m_u^2=\frac{n-1}{n}m^2`
          (unbiased covariance), hence :math:`m^2\frac{n-d}{(n+1)d}\sim F(d,n-d)`. Exact for
          Gaussian data and an empirical fit; needs ``n > d``.
        * ``"beta"`` (the fitted points themselves): :math:`\frac{n}{(n-1)^2}m_u^2 =
          \frac{m^2}{n-1}\sim\mathrm{Beta}(d/2,(n-d-1)/2)`; needs ``n > d + 1``.
        * ``"chi2"``: the :math:`n\to\infty` limit :math:`\chi^2_d`. It is far off when
          ``d/n`` is not small (e.g. KS distance ≈ 0.44 at n = 2,500, d = 256).

    Returns
    -------
    ndarray of shape (n,)
        p-values in [0, 1]; small = farther out than the law expects (the upper tail of
        :func:`distance_law`).

    Notes
    -----
    With shrinkage none of these laws is exact (shrinkage makes distances smaller than the
    empirical ones, so the p-values are conservative for large ``n`` and can be far off for
    small ``n``). For decisions with a guaranteed false-alarm rate use conformal calibration
    on held-out in-distribution data.
    """
    m2 = np.asarray(m2, dtype=np.float64)
    return distance_law(n_samples, n_features, method).sf(m2)


def _count(value: Any, name: str) -> int:
    """An integer >= 1 (numpy integers and 0-d integer arrays included; not bool or float)."""
    try:
        v = operator.index(value)
    except TypeError:
        v = None
    if v is None or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be an integer >= 1, got {value!r}")
    if v < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}")
    return int(v)


def distance_law(n_samples: int, n_features: int, method: str = "f"):
    r"""The law of a squared Mahalanobis distance under an empirical Gaussian fit (frozen scipy).

    The one home of these laws: :func:`mahalanobis_pvalues` takes their upper tails, the
    typicality score their moments, the diagnostics their quantiles.

    Parameters
    ----------
    n_samples, n_features : int
        ``n`` and ``d`` of the fit (maximum-likelihood covariance ``S/n``).
    method : {"f", "beta", "chi2"}
        * ``"f"``: a new point independent of the fit, :math:`m^2 \sim \frac{(n+1)d}{n-d}
          F(d, n-d)` (Hotelling's :math:`T^2`); needs ``n > d``;
        * ``"beta"``: one of the fitted points, :math:`m^2 \sim (n-1)\,
          \mathrm{Beta}(d/2, (n-d-1)/2)`; needs ``n > d + 1``;
        * ``"chi2"``: the :math:`n \to \infty` limit :math:`\chi^2_d`.

    Returns
    -------
    scipy.stats frozen distribution
        Of the **squared** distance itself (the scale is part of the law).

    Examples
    --------
    >>> law = distance_law(1000, 10)
    >>> round(float(law.mean()), 4)   # E[m²] = (n+1)d/(n-d-2) for a new point
    10.1316
    """
    if method not in PVALUE_METHODS:
        raise ValueError(f"`method` must be one of {PVALUE_METHODS}, got {method!r}")
    n, d = _count(n_samples, "n_samples"), _count(n_features, "n_features")
    if method == "chi2":
        return stats.chi2(d)
    if method == "f":
        if n <= d:
            raise ValueError(
                f"method='f' needs more samples than features (n={n}, d={d}); use method='chi2' "
                "only as a rough approximation, or calibrate on held-out data"
            )
        return stats.f(d, n - d, scale=(n + 1.0) * d / (n - d))
    if n <= d + 1:
        raise ValueError(f"method='beta' needs n > d + 1 (n={n}, d={d})")
    return stats.beta(d / 2.0, (n - d - 1) / 2.0, scale=n - 1.0)


def random_orthonormal(d: int, k: int, seed: Any = 0) -> np.ndarray:
    """``k`` orthonormal directions in ``R^d``, uniformly (Haar) distributed.

    QR of a seeded ``d × k`` standard Gaussian matrix, with the signs of ``R``'s diagonal
    moved into ``Q``. Returns an ndarray of shape (d, k) with ``Q.T @ Q = I``.

    Examples
    --------
    >>> random_orthonormal(5, 2).shape
    (5, 2)
    """
    if k > d:
        raise ValueError(f"`k` must be <= n_features ({d}), got {k}")
    G = np.random.default_rng(seed).standard_normal((d, k))
    Q, R = np.linalg.qr(G)
    s = np.sign(np.diag(R))
    return Q * np.where(s == 0, 1.0, s)
