r"""Per-column and multivariate statistics: Anderson–Darling and D'Agostino–Pearson column
tests with their null pass rates, norm concentration, random projections and Mardia.

Notes
-----
*Anderson–Darling.* ``A²`` is computed column by column exactly as
``scipy.stats.anderson(x, "norm")`` does (mean and ``ddof=1`` standard deviation plugged in,
``A² = -n - Σ (2i-1)/n [log Φ(w_(i)) + log(1-Φ(w_(n+1-i)))]``); the 5% critical value is
scipy's, ``round(0.752 / (1 + 0.75/n + 2.25/n²), 3)`` — the paper's ``A² < 0.752`` for
``n ≳ 1130``. scipy ≥ 1.17 deprecates the ``critical_values`` attribute, so the value is
computed here (and tested against scipy).

*D'Agostino–Pearson.* ``scipy.stats.normaltest`` (``K²`` and its χ²₂ p-value); a coordinate
passes when ``p > 0.05``.

*Null pass rates.* The AD and DP laws under normality do not depend on the mean and scale,
only on ``n``; the rate at which an exact Gaussian column of ``n`` values passes each test (and
the mean statistic it gives) is estimated from ``n_null_simulations`` seeded standard normal
columns (Monte Carlo standard error ≈ ``sqrt(0.05·0.95/n_sim)`` ≈ 0.005 for 2,000). The band
for ``k`` tested columns is the central interval of Binomial(k, p₀)/k
(:func:`infogauss.calibration.binomial_band`), exact for independent columns (whitened
coordinates, projections of isotropic data); correlated raw coordinates make the pass count
more variable than binomial, so their band is a guide.

*Norms.* For ``x ~ N(0, Σ)``, ``CV(‖x‖) ≈ ½ CV(‖x‖²) = sqrt(tr Σ²/2) / tr Σ``; it equals the
isotropic floor ``1/sqrt(2d)`` when ``Σ ∝ I``. ``tr Σ`` is estimated by the trace of the
unbiased covariance ``Ŝ`` and ``tr Σ²`` by the unbiased
``N²/((N-1)(N+2)) (tr Ŝ² - (tr Ŝ)²/N)``, ``N = n - 1``. The paper's CV is on the raw
embeddings; the comparison with the covariance-implied value is made on centred embeddings,
with the standard error ``CV·sqrt((1/2 + CV²)/n)``.

*Mardia.* With the maximum-likelihood covariance ``S/n`` and
``g_ij = (x_i-x̄)ᵀ(S/n)⁻¹(x_j-x̄)``: ``b₁ = Σ_ij g_ij³/n²`` and ``b₂ = Σ_i g_ii²/n``. Skewness:
Mardia's small-sample corrected ``n·k·b₁/6 ~ χ²`` with ``d(d+1)(d+2)/6`` degrees of freedom,
``k = (d+1)(n+1)(n+3)/(n((n+1)(d+1)-6))``. Kurtosis: ``b₂`` standardised with its exact null
mean ``d(d+2)(n-1)/(n+1)`` and variance
``8d(d+2)(n-3)(n-d-1)(n-d+1)/((n+1)²(n+3)(n+5))``. Both are approximate when ``d/n`` is not
small (reported, with the ratio).
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import linalg, special, stats

from .. import gaussian as core
from .._validation import check_float_array
from ..calibration import binomial_band, binomial_interval

__all__ = [
    "anderson_darling_normal",
    "anderson_critical_value",
    "null_pass_rates",
    "mardia",
    "random_orthonormal",
    "heldout_whitened_ad_pass",
]

AD_BASE_5PCT = 0.752  # Stephens' 5% point of the adjusted A² (scipy's _Avals_norm[2])
TEST_ALPHA = 0.05  # the paper's per-column level (AD 5% critical value; DP p > 0.05)
BAND_LEVEL = 0.99  # default coverage of the null bands (1 - the report's level)


# --------------------------------------------------------------------------------------
# Per-column tests (vectorised over columns)
# --------------------------------------------------------------------------------------
def anderson_critical_value(n: int) -> float:
    """5% critical value of ``scipy.stats.anderson(x, "norm")`` for ``n`` values.

    ``round(0.752 / (1 + 0.75/n + 2.25/n²), 3)``; the paper's 0.752 is its large-``n`` value.

    Examples
    --------
    >>> anderson_critical_value(100), anderson_critical_value(5000)
    (0.746, 0.752)
    """
    return float(np.around(AD_BASE_5PCT / (1.0 + 0.75 / n + 2.25 / n / n), 3))


def heldout_whitened_ad_pass(train: np.ndarray, test: np.ndarray) -> float:
    """Share of held-out coordinates that pass Anderson–Darling at 5% after whitening.

    ``test`` is whitened with the Gaussian of ``train`` (empirical covariance; the Ledoit–Wolf
    one when the empirical covariance is singular) and each whitened coordinate is tested
    (:func:`anderson_darling_normal` against :func:`anderson_critical_value`). About 95% for
    exact Gaussians and a well-conditioned fit.
    """
    from ..model import GaussianModel

    try:
        W = GaussianModel(shrinkage="empirical").fit(train).transform(test)
    except ValueError:  # singular (collinear or dead columns)
        W = GaussianModel().fit(train).transform(test)
    return float(np.mean(anderson_darling_normal(W) < anderson_critical_value(W.shape[0])))


def anderson_darling_normal(X: np.ndarray) -> np.ndarray:
    """Anderson–Darling ``A²`` for normality of each column, as ``scipy.stats.anderson``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_columns)
        Non-constant columns (a constant column gives NaN).

    Returns
    -------
    ndarray of shape (n_columns,)
        The unadjusted statistic scipy returns (larger = less normal).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(50, 2))
    >>> anderson_darling_normal(x).shape
    (2,)
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    y = np.sort(X, axis=0)
    w = (y - X.mean(axis=0)) / X.std(axis=0, ddof=1)
    logcdf = special.log_ndtr(w)
    logsf = special.log_ndtr(-w)
    i = np.arange(1, n + 1, dtype=np.float64)[:, None]
    return -n - np.sum((2 * i - 1.0) / n * (logcdf + logsf[::-1]), axis=0)


def _column_tests(X: np.ndarray) -> dict[str, np.ndarray]:
    """AD statistics, AD pass flags, DP K² and DP p-values of every column."""
    n = X.shape[0]
    a2 = anderson_darling_normal(X)
    with warnings.catch_warnings():
        # kurtosistest warns for n < 20; the null simulation accounts for small n.
        warnings.simplefilter("ignore", UserWarning)
        k2, p = stats.normaltest(X, axis=0)
    return {
        "ad": a2,
        "ad_pass": a2 < anderson_critical_value(n),
        "dp": np.asarray(k2, dtype=np.float64),
        "dp_p": np.asarray(p, dtype=np.float64),
        "dp_pass": np.asarray(p) > TEST_ALPHA,
    }


@lru_cache(maxsize=32)
def null_pass_rates(n: int, n_simulations: int = 2000, seed: int = 0) -> dict[str, float]:
    """Pass rates and mean statistics of the AD and DP tests on exact Gaussian columns.

    Parameters
    ----------
    n : int
        Values per column (>= 8).
    n_simulations : int
        Standard normal columns simulated (seeded; cached per arguments).
    seed : int

    Returns
    -------
    dict
        ``ad_pass``, ``dp_pass`` (fractions passing), ``ad_mean``, ``dp_mean`` (mean
        statistics), ``n_simulations`` and ``mc_se`` (Monte Carlo standard error of a 95%
        rate).

    Examples
    --------
    >>> r = null_pass_rates(50, 200)
    >>> 0.85 < r["ad_pass"] < 1.0
    True
    """
    rng = np.random.default_rng([int(seed), 7919, int(n)])
    ad_pass = dp_pass = 0
    ad_sum = dp_sum = 0.0
    block = max(1, min(n_simulations, (1 << 22) // max(n, 1)))
    done = 0
    while done < n_simulations:
        k = min(block, n_simulations - done)
        res = _column_tests(rng.standard_normal((n, k)))
        ad_pass += int(res["ad_pass"].sum())
        dp_pass += int(res["dp_pass"].sum())
        ad_sum += float(res["ad"].sum())
        dp_sum += float(res["dp"].sum())
        done += k
    return {
        "ad_pass": ad_pass / n_simulations,
        "dp_pass": dp_pass / n_simulations,
        "ad_mean": ad_sum / n_simulations,
        "dp_mean": dp_sum / n_simulations,
        "n_simulations": int(n_simulations),
        "mc_se": math.sqrt(0.05 * 0.95 / n_simulations),
    }


def _summarise_tests(
    res: dict[str, np.ndarray], null: dict[str, float], band_level: float = BAND_LEVEL
) -> dict[str, Any]:
    k = int(res["ad"].shape[0])
    out: dict[str, Any] = {"n_columns": k}
    for key, stat_name in (("ad", "A2"), ("dp", "K2")):
        passed = int(res[f"{key}_pass"].sum())
        p0 = null[f"{key}_pass"]
        frac = passed / k
        sd = math.sqrt(p0 * (1 - p0) / k) if 0 < p0 < 1 else float("nan")
        out[key] = {
            "statistic": stat_name,
            "mean_statistic": float(np.mean(res[key])),
            "null_mean_statistic": null[f"{key}_mean"],
            "pass_fraction": frac,
            "n_pass": passed,
            "pass_fraction_ci95": binomial_interval(passed, k, level=0.95, method="wilson"),
            "null_pass_fraction": p0,
            "null_band": binomial_band(p0, k, level=band_level),
            "z_from_null": (frac - p0) / sd if sd > 0 else float("nan"),
        }
    out["ad"]["critical_value"] = None  # filled by caller (depends on n)
    out["dp"]["median_pvalue"] = float(np.median(res["dp_p"]))
    return out


def _pick_columns(values: np.ndarray, Y: np.ndarray, k: int = 4) -> dict[str, np.ndarray]:
    """Worst, median and best columns (by AD) for QQ plots."""
    order = np.argsort(values)
    idx = sorted({int(order[-1]), int(order[len(order) // 2]), int(order[0])})[:k]
    return {"index": np.asarray(idx), "values": np.ascontiguousarray(Y[:, idx])}


def _test_section(
    Y: np.ndarray, null: dict[str, float], band_level: float = BAND_LEVEL
) -> tuple[dict[str, Any], dict]:
    """AD and DP summaries of the columns of ``Y`` and the columns picked for QQ plots."""
    res = _column_tests(Y)
    out = _summarise_tests(res, null, band_level)
    out["ad"]["critical_value"] = anderson_critical_value(Y.shape[0])
    out["n_values_per_column"] = int(Y.shape[0])
    return out, _pick_columns(res["ad"], Y)


random_orthonormal = core.random_orthonormal  # the core's (one home); re-exported


# --------------------------------------------------------------------------------------
# Norms
# --------------------------------------------------------------------------------------
def _norm_section(
    X_raw: np.ndarray, X: np.ndarray, s: core.GaussianStats, raw_mean: np.ndarray
) -> dict[str, Any]:
    """Norm concentration: the paper's raw CV on ``X_raw`` (the embeddings as given, mean
    ``raw_mean``); the centred CV, its covariance-implied value and the isotropic floor on the
    tested columns ``X`` (statistics ``s``)."""
    norms = np.linalg.norm(X_raw, axis=1)
    cen = np.linalg.norm(X - s.mean, axis=1)
    d = X.shape[1]
    # tr Σ and an unbiased tr Σ² (the plug-in tr Ĉ² is biased up by about (tr Σ)²/n, which at
    # d/n = 0.05 moves the implied CV by several standard errors)
    N = s.n - 1
    cov = s.scatter / N
    tr = float(np.trace(cov))
    tr2 = float(np.sum(cov * cov))
    if N > 1:
        tr2 = max(N * N / ((N - 1.0) * (N + 2.0)) * (tr2 - tr * tr / N), 0.0)
    mean_norm = float(norms.mean())
    cv = float(norms.std() / mean_norm) if mean_norm > 0 else float("nan")
    cv_c = float(cen.std() / cen.mean()) if cen.mean() > 0 else float("nan")
    implied = math.sqrt(tr2 / 2.0) / tr if tr > 0 else float("nan")
    n = X.shape[0]
    se = implied * math.sqrt((0.5 + implied**2) / n) if math.isfinite(implied) else float("nan")
    return {
        "cv": cv,
        "cv_centered": cv_c,
        "cv_isotropic_floor": 1.0 / math.sqrt(2.0 * d),
        "cv_implied": implied,
        "cv_centered_se": se,
        "z_centered_vs_implied": (cv_c - implied) / se if se > 0 else float("nan"),
        "mean_norm": mean_norm,
        "norm_of_mean": float(np.linalg.norm(raw_mean)),
        "effective_rank": tr * tr / tr2 if tr2 > 0 else float("nan"),
    }


# --------------------------------------------------------------------------------------
# Mardia
# --------------------------------------------------------------------------------------
RCOND_MIN = 1e-10  # smallest eigenvalue / largest of a correlation matrix treated as full rank


def _check_full_rank(cov: np.ndarray, what: str) -> None:
    """ValueError when ``cov`` (positive definite: already Cholesky-factored) is singular to
    working precision: rounding lets a factor exist for a rank-deficient matrix, and the
    whitened coordinates and distances it gives are then rounding noise."""
    sd = np.sqrt(np.diag(cov))
    lam = linalg.eigvalsh(cov / np.outer(sd, sd))
    if not lam[0] > RCOND_MIN * lam[-1]:
        raise ValueError(
            f"the {what} is singular to working precision (correlation eigenvalues from "
            f"{lam[0]:.2g} to {lam[-1]:.2g}): the data span fewer dimensions than features "
            "(collinear or duplicated features)"
        )


def _empirical_whiten(X: np.ndarray) -> np.ndarray:
    """Rows ``L⁻¹(x - x̄)`` with ``L Lᵀ = S/n`` (the maximum-likelihood covariance)."""
    s = core.stats_from_array(X)
    cov, _ = core.covariance_from_stats(s, "empirical")
    chol = core.cholesky_factor(cov)
    _check_full_rank(cov, "covariance")
    W = core.whitening_matrix(cov, chol, method="cholesky")
    return core.whiten(X, s.mean, W, dtype=np.float64)


def mardia(X: Any, *, block_rows: int = 1024) -> dict[str, float]:
    r"""Mardia's multivariate skewness ``b₁`` and kurtosis ``b₂`` with their p-values.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Needs ``n_samples > n_features`` and a covariance that is non-singular to working
        precision (ValueError otherwise).
    block_rows : int
        Rows of the ``n × n`` Gram matrix formed at a time (memory bound).

    Returns
    -------
    dict
        ``b1``, ``b2``, ``skew_stat`` (corrected ``n k b₁/6``), ``skew_df``,
        ``skew_pvalue``, ``kurt_mean``, ``kurt_sd``, ``kurt_z`` (exact null moments),
        ``kurt_pvalue`` (two-sided) and ``d_over_n``. Small p-values = non-Gaussian.

    Notes
    -----
    See the module notes for the formulas (Mardia 1970, 1974).

    Examples
    --------
    >>> import numpy as np
    >>> r = mardia(np.random.default_rng(0).normal(size=(200, 3)))
    >>> sorted(r)[:3]
    ['b1', 'b2', 'd_over_n']
    """
    X = check_float_array(X, "X", dtype=np.float64)
    n, d = X.shape
    if n <= d:
        raise ValueError(f"Mardia's statistics need n_samples > n_features, got n={n}, d={d}")
    Z = _empirical_whiten(X)  # Z Zᵀ = [g_ij]
    g_diag = np.einsum("ij,ij->i", Z, Z)
    s3 = 0.0
    for sl in core.iter_chunks(n, block_rows):
        G = Z[sl] @ Z.T
        s3 += float(np.sum(G * G * G))
    b1 = s3 / (n * n)
    b2 = float(np.mean(g_diag * g_diag))
    df = d * (d + 1) * (d + 2) / 6.0
    corr = (d + 1) * (n + 1) * (n + 3) / (n * ((n + 1) * (d + 1) - 6.0))
    skew_stat = n * corr * b1 / 6.0
    mean_b2 = d * (d + 2) * (n - 1) / (n + 1)
    var_b2 = 8.0 * d * (d + 2) * (n - 3) * (n - d - 1) * (n - d + 1) / (
        (n + 1) ** 2 * (n + 3) * (n + 5)
    )
    kurt_z = (b2 - mean_b2) / math.sqrt(var_b2) if var_b2 > 0 else float("nan")
    return {
        "b1": b1,
        "b2": b2,
        "skew_stat": skew_stat,
        "skew_df": df,
        "skew_pvalue": float(stats.chi2.sf(skew_stat, df)),
        "skew_z": (skew_stat - df) / math.sqrt(2 * df),
        "kurt_mean": mean_b2,
        "kurt_sd": math.sqrt(var_b2) if var_b2 > 0 else float("nan"),
        "kurt_z": kurt_z,
        "kurt_pvalue": (float(2 * stats.norm.sf(abs(kurt_z))) if np.isfinite(kurt_z)
                        else float("nan")),
        "d_over_n": d / n,
    }
