r"""How Gaussian are these embeddings? :func:`diagnose` and its :class:`GaussianityReport`.

The report gives the paper's numbers (coefficient of variation of the norms; per-coordinate
Anderson–Darling with the 5% critical value and D'Agostino–Pearson with p > 0.05, as mean
statistic and pass fraction) **and** what they lack:

* a null reference for every pass fraction — the rate an exact Gaussian sample of the same
  size reaches (≈ 95%, not 100%), estimated by a seeded Monte Carlo, with the binomial band
  a Gaussian would fall in;
* the same tests on random orthonormal projections (the theory is about projections) and on
  whitened held-out coordinates (nearly independent under the null);
* joint checks: squared Mahalanobis distances of held-out points against their exact
  finite-sample law (Hotelling's T² ⇒ scaled F(d, n−d)) and against the χ²_d limit, and
  Mardia's multivariate skewness and kurtosis;
* a negative control: the same report for baseline embeddings (e.g. the untrained encoder),
  and a comparison;
* a verdict with reasons — which checks pass or fail and how far from the null — never a
  bare yes/no.

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
for ``k`` tested columns is the central 99% interval of Binomial(k, p₀)/k, exact for
independent columns (whitened coordinates, projections of isotropic data); correlated raw
coordinates make the pass count more variable than binomial, so their band is a guide.

*Norms.* For ``x ~ N(0, Σ)``, ``CV(‖x‖) ≈ ½ CV(‖x‖²) = sqrt(tr Σ²/2) / tr Σ``; it equals the
isotropic floor ``1/sqrt(2d)`` when ``Σ ∝ I``. ``tr Σ`` is estimated by the trace of the
unbiased covariance ``Ŝ`` and ``tr Σ²`` by the unbiased
``N²/((N-1)(N+2)) (tr Ŝ² - (tr Ŝ)²/N)``, ``N = n - 1``. The paper's CV is on the raw embeddings; the
comparison with the covariance-implied value is made on centred embeddings, with the standard
error ``CV·sqrt((1/2 + CV²)/n)``.

*Joint.* A model is fitted with the empirical covariance on a fit split of ``n_fit`` points;
a held-out point then has ``m²·(n_fit-d)/((n_fit+1)d) ~ F(d, n_fit-d)``
(:func:`infogauss.gaussian.mahalanobis_pvalues`, method ``"f"``), so its p-values are
uniform. The held-out points share the fit, so they are independent only given it and the
plain KS p-value is slightly liberal; the KS distance is therefore referred to its exact null
law, simulated (:func:`null_joint_ks`; the distances are affine invariant, so one Gaussian
serves all). ``χ²_d`` is the ``n → ∞`` limit; the KS
distance between the two laws is reported as what an exact Gaussian would show against χ².

*Mardia.* With the maximum-likelihood covariance ``S/n`` and ``g_ij = (x_i-x̄)ᵀ(S/n)⁻¹(x_j-x̄)``:
``b₁ = Σ_ij g_ij³/n²`` and ``b₂ = Σ_i g_ii²/n``. Skewness: Mardia's small-sample corrected
``n·k·b₁/6 ~ χ²`` with ``d(d+1)(d+2)/6`` degrees of freedom,
``k = (d+1)(n+1)(n+3)/(n((n+1)(d+1)-6))``. Kurtosis: ``b₂`` standardised with its exact null
mean ``d(d+2)(n-1)/(n+1)`` and variance
``8d(d+2)(n-3)(n-d-1)(n-d+1)/((n+1)²(n+3)(n+5))``. Both are approximate when ``d/n`` is not
small (reported, with the ratio).
"""

from __future__ import annotations

import json
import math
import platform
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import linalg, special, stats

from . import gaussian as core
from ._validation import check_float_array, check_positive_int, check_probability
from .model import GaussianModel

__all__ = [
    "diagnose",
    "GaussianityReport",
    "anderson_darling_normal",
    "anderson_critical_value",
    "null_pass_rates",
    "null_joint_ks",
    "mardia",
    "random_orthonormal",
]

MIN_SAMPLES = 8
AD_BASE_5PCT = 0.752  # Stephens' 5% point of the adjusted A² (scipy's _Avals_norm[2])
TEST_ALPHA = 0.05  # the paper's per-column level (AD 5% critical value; DP p > 0.05)
BAND_LEVEL = 0.99  # coverage of the null bands used by the verdict
QQ_LEVELS = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
_Z_BAND = float(stats.norm.ppf(0.5 + BAND_LEVEL / 2))


# --------------------------------------------------------------------------------------
# Per-column tests (vectorised over columns)
# --------------------------------------------------------------------------------------
def anderson_critical_value(n: int) -> float:
    """5% critical value of ``scipy.stats.anderson(x, "norm")`` for ``n`` values.

    ``round(0.752 / (1 + 0.75/n + 2.25/n²), 3)``; the paper's 0.752 is its large-``n`` value.
    """
    return float(np.around(AD_BASE_5PCT / (1.0 + 0.75 / n + 2.25 / n / n), 3))


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


def _wilson(k: int, n: int, level: float = 0.95) -> list[float]:
    if n == 0:
        return [0.0, 1.0]
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return [max(0.0, centre - half), min(1.0, centre + half)]


def _binomial_band(p0: float, k: int, level: float = BAND_LEVEL) -> list[float]:
    lo = float(stats.binom.ppf((1 - level) / 2, k, p0)) / k
    hi = float(stats.binom.ppf(1 - (1 - level) / 2, k, p0)) / k
    return [lo, hi]


def _summarise_tests(res: dict[str, np.ndarray], null: dict[str, float]) -> dict[str, Any]:
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
            "pass_fraction_ci95": _wilson(passed, k),
            "null_pass_fraction": p0,
            "null_band": _binomial_band(p0, k),
            "z_from_null": (frac - p0) / sd if sd > 0 else float("nan"),
        }
    out["ad"]["critical_value"] = None  # filled by caller (depends on n)
    out["dp"]["median_pvalue"] = float(np.median(res["dp_p"]))
    return out


def random_orthonormal(d: int, k: int, seed: Any = 0) -> np.ndarray:
    """``k`` orthonormal directions in ``R^d``, uniformly (Haar) distributed.

    QR of a seeded ``d × k`` standard Gaussian matrix, with the signs of ``R``'s diagonal
    moved into ``Q``. Returns an ndarray of shape (d, k) with ``Q.T @ Q = I``.
    """
    if k > d:
        raise ValueError(f"`n_projections` must be <= n_features ({d}), got {k}")
    G = np.random.default_rng(seed).standard_normal((d, k))
    Q, R = np.linalg.qr(G)
    s = np.sign(np.diag(R))
    return Q * np.where(s == 0, 1.0, s)


# --------------------------------------------------------------------------------------
# Mardia
# --------------------------------------------------------------------------------------
def mardia(X: Any, *, block_rows: int = 1024) -> dict[str, float]:
    r"""Mardia's multivariate skewness ``b₁`` and kurtosis ``b₂`` with their p-values.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Needs ``n_samples > n_features`` and a non-singular covariance.
    block_rows : int
        Rows of the ``n × n`` Gram matrix formed at a time (memory bound).

    Returns
    -------
    dict
        ``b1``, ``b2``, ``skew_stat`` (corrected ``n k b₁/6``), ``skew_df``,
        ``skew_pvalue``, ``kurt_mean``, ``kurt_z`` (exact null moments), ``kurt_pvalue``
        (two-sided) and ``d_over_n``. Small p-values = non-Gaussian.

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
    model = GaussianModel(shrinkage="empirical", whiten="cholesky", dtype="float64").fit(X)
    Z = model.transform(X)  # rows L^{-1}(x - mean): Z Zᵀ = [g_ij]
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
        "kurt_z": kurt_z,
        "kurt_pvalue": (float(2 * stats.norm.sf(abs(kurt_z))) if np.isfinite(kurt_z)
                        else float("nan")),
        "d_over_n": d / n,
    }


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------
def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


@dataclass(eq=False)
class GaussianityReport:
    """Result of :func:`diagnose`; every section is a plain dict (JSON-ready via
    :meth:`to_dict`).

    Attributes
    ----------
    n_samples, n_features : int
        Shape of the input.
    n_used : int
        Rows used (a seeded subsample when ``n_samples > max_samples``).
    settings : dict
        Options, seed and library versions.
    norms : dict
        CV of the norms (raw, as the paper; centred), isotropic floor ``1/sqrt(2d)``,
        covariance-implied ``sqrt(tr Σ²/2)/tr Σ``, and the standardised gap.
    coordinates, projections, whitened : dict
        Per-column AD and DP summaries (mean statistic, pass fraction, its Wilson interval,
        the null pass fraction and the null band, z from the null); ``None`` when not
        applicable, with the reason in ``notes``.
    joint : dict or None
        Held-out squared Mahalanobis distances against F (exact) and χ² (limit): KS
        distance and p-value, QQ summary, tail rates.
    mardia : dict or None
        See :func:`mardia`.
    constant_features : list of int
        Columns with zero variance (excluded from the per-column and joint checks).
    checks : list of dict
        One entry per check: ``name``, ``status`` ("pass", "fail", "info" or "n/a"),
        ``observed``, ``expected``, ``band`` and ``detail``.
    verdict : str
        One-line summary (which checks pass/fail), never a bare yes/no.
    reasons : list of str
        One sentence per check, with the distance from the null.
    notes : list of str
        Caveats and degenerate cases met.
    baseline : GaussianityReport or None
        The same report for the baseline embeddings.
    comparison : dict or None
        Trained versus baseline, metric by metric.
    """

    n_samples: int
    n_features: int
    n_used: int
    settings: dict
    norms: dict
    coordinates: dict | None
    projections: dict | None
    whitened: dict | None
    joint: dict | None
    mardia: dict | None
    constant_features: list
    checks: list
    verdict: str
    reasons: list
    notes: list
    baseline: GaussianityReport | None = None
    comparison: dict | None = None
    arrays: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        """All sections as JSON-ready Python objects (non-finite floats become None)."""
        out = {
            k: getattr(self, k)
            for k in (
                "n_samples", "n_features", "n_used", "settings", "verdict", "reasons",
                "checks", "norms", "coordinates", "projections", "whitened", "joint",
                "mardia", "constant_features", "notes", "comparison",
            )
        }  # fmt: skip
        out["baseline"] = None if self.baseline is None else self.baseline.to_dict()
        return _jsonable(out)

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as a JSON string (``kwargs`` go to :func:`json.dumps`)."""
        kwargs.setdefault("indent", 2)
        return json.dumps(self.to_dict(), **kwargs)

    def to_markdown(self) -> str:
        """A human-readable summary: verdict, reasons, the paper's numbers, the checks table,
        and the baseline comparison."""
        lines = [
            "# Gaussianity report",
            "",
            f"{self.n_samples} samples × {self.n_features} features "
            f"({self.n_used} used, seed {self.settings.get('seed')}).",
            "",
            f"**Verdict:** {self.verdict}",
            "",
        ]
        lines += [f"- {r}" for r in self.reasons]
        p = self.paper_numbers()
        lines += [
            "",
            "## Paper's protocol",
            "",
            "| CV of norms | floor 1/√(2d) | implied √(trΣ²/2)/trΣ | AD mean A² | AD pass "
            "| DP mean K² | DP pass |",
            "|---|---|---|---|---|---|---|",
            f"| {_f(p['cv'])} | {_f(self.norms['cv_isotropic_floor'])} | "
            f"{_f(self.norms['cv_implied'])} | {_f(p['ad_mean'])} | {_pct(p['ad_pass'])} | "
            f"{_f(p['dp_mean'])} | {_pct(p['dp_pass'])} |",
            "",
            "## Checks",
            "",
            "| check | status | observed | expected (null) | 99% null band | detail |",
            "|---|---|---|---|---|---|",
        ]
        for c in self.checks:
            band = c.get("band")
            band_s = "" if not band else f"[{_f(band[0])}, {_f(band[1])}]"
            lines.append(
                f"| {c['name']} | {c['status']} | {_f(c.get('observed'))} | "
                f"{_f(c.get('expected'))} | {band_s} | {c.get('detail', '')} |"
            )
        if self.constant_features:
            cf = self.constant_features
            lines += ["", f"Constant features ({len(cf)}): {cf[:20]}{' …' if len(cf) > 20 else ''}"]
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        if self.comparison is not None:
            lines += ["", "## Against the baseline", "", self.comparison["summary"], "",
                      "| metric | ours | baseline | difference |", "|---|---|---|---|"]
            for row in self.comparison["metrics"]:
                lines.append(
                    f"| {row['metric']} | {_f(row['ours'])} | {_f(row['baseline'])} | "
                    f"{_f(row['difference'])} |"
                )
        return "\n".join(lines) + "\n"

    def paper_numbers(self) -> dict[str, float | None]:
        """The paper's three numbers (raw CV, AD pass, DP pass) plus the mean statistics."""
        c = self.coordinates or {}
        return {
            "cv": self.norms.get("cv"),
            "ad_pass": c.get("ad", {}).get("pass_fraction"),
            "dp_pass": c.get("dp", {}).get("pass_fraction"),
            "ad_mean": c.get("ad", {}).get("mean_statistic"),
            "dp_mean": c.get("dp", {}).get("mean_statistic"),
        }


def _f(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(v):
            return "–"
        return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}"
    return str(v)


def _pct(v: Any) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


# --------------------------------------------------------------------------------------
# diagnose
# --------------------------------------------------------------------------------------
def _versions() -> dict[str, str]:
    import scipy
    import sklearn

    from . import __version__

    return {
        "infogauss": __version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
    }


def _norm_section(X: np.ndarray, s: core.GaussianStats, d: int) -> dict[str, Any]:
    norms = np.linalg.norm(X, axis=1)
    cen = np.linalg.norm(X - s.mean, axis=1)
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
        "norm_of_mean": float(np.linalg.norm(s.mean)),
        "effective_rank": tr * tr / tr2 if tr2 > 0 else float("nan"),
    }


def _qq_summary(m2: np.ndarray, n_fit: int, d: int) -> list[dict[str, float]]:
    scale = (n_fit + 1.0) * d / (n_fit - d)
    rows = []
    for q in QQ_LEVELS:
        rows.append({
            "q": q,
            "observed_m2": float(np.quantile(m2, q)),
            "f_law_m2": float(stats.f.ppf(q, d, n_fit - d) * scale),
            "chi2_m2": float(stats.chi2.ppf(q, d)),
        })  # fmt: skip
    return rows


def _f_vs_chi2_ks(n_fit: int, d: int) -> float:
    """sup |CDF_scaledF - CDF_χ²| — the KS distance an exact Gaussian shows against χ²."""
    scale = (n_fit + 1.0) * d / (n_fit - d)
    q = np.linspace(1e-4, 1 - 1e-4, 4001)
    grid = np.unique(np.concatenate([stats.chi2.ppf(q, d), stats.f.ppf(q, d, n_fit - d) * scale]))
    return float(np.max(np.abs(stats.f.cdf(grid / scale, d, n_fit - d) - stats.chi2.cdf(grid, d))))


def _ks_uniform(p: np.ndarray) -> np.ndarray:
    """KS distance of each row of p-values from U(0, 1)."""
    p = np.sort(p, axis=-1)
    k = p.shape[-1]
    i = np.arange(1, k + 1)
    return np.maximum((i / k - p).max(axis=-1), (p - (i - 1) / k).max(axis=-1))


@lru_cache(maxsize=16)
def null_joint_ks(
    n_fit: int, n_heldout: int, d: int, n_simulations: int = 100, seed: int = 0
) -> np.ndarray:
    """KS distances (held-out F p-values vs uniform) of exact Gaussian samples.

    The held-out distances share one fitted mean and covariance, so they are independent
    only given the fit, and the F law holds marginally: the plain KS p-value is slightly
    liberal. The KS distance of the χ² p-values is simulated alongside (an exact Gaussian is
    far from χ² when d/n is not small). Squared Mahalanobis distances are affine invariant,
    so their joint law is the same for every Gaussian: it is simulated with ``Σ = I`` — the
    fitted scatter drawn by Bartlett's decomposition (``S = A Aᵀ``, ``A`` lower triangular with
    ``A_ii² ~ χ²(n_fit - i)``, ``A_ij ~ N(0, 1)`` below), the fitted mean from
    ``N(0, I/n_fit)``. Returns an array of shape (2, n_simulations): the sorted simulated KS
    distances against F (row 0) and against χ² (row 1).
    """
    rng = np.random.default_rng([int(seed), 104729, n_fit, n_heldout, d])
    out = np.empty((2, n_simulations))
    rows, cols = np.tril_indices(d, -1)
    for b in range(n_simulations):
        A = np.zeros((d, d))
        A[np.arange(d), np.arange(d)] = np.sqrt(rng.chisquare(n_fit - np.arange(1, d + 1)))
        A[rows, cols] = rng.standard_normal(rows.size)
        Y = rng.standard_normal((n_heldout, d)) - rng.standard_normal(d) / math.sqrt(n_fit)
        Z = linalg.solve_triangular(A, Y.T, lower=True, check_finite=False)
        m2 = n_fit * np.einsum("ij,ij->j", Z, Z)
        out[0, b] = _ks_uniform(core.mahalanobis_pvalues(m2, n_fit, d, "f"))
        out[1, b] = _ks_uniform(core.mahalanobis_pvalues(m2, n_fit, d, "chi2"))
    return np.sort(out, axis=1)


def _joint_section(
    model: GaussianModel, X_held: np.ndarray, n_fit: int, d: int, n_sims: int, seed: int
) -> tuple[dict[str, Any], np.ndarray]:
    m2 = model.mahalanobis(X_held)
    p_f = core.mahalanobis_pvalues(m2, n_fit, d, "f")
    p_c = core.mahalanobis_pvalues(m2, n_fit, d, "chi2")
    ks_f = stats.kstest(p_f, "uniform")
    ks_c = stats.kstest(p_c, "uniform")
    null_ks, null_ks_c = null_joint_ks(n_fit, int(X_held.shape[0]), d, n_sims, seed)
    ks_mc_p = (1 + int(np.sum(null_ks >= ks_f.statistic))) / (1 + null_ks.size)
    # two-sided: a sample can sit closer to χ² than exact Gaussians do (heavier tails push
    # distances up at this n/d just as the F law does)
    hi = (1 + int(np.sum(null_ks_c >= ks_c.statistic))) / (1 + null_ks_c.size)
    lo = (1 + int(np.sum(null_ks_c <= ks_c.statistic))) / (1 + null_ks_c.size)
    ks_c_mc_p = min(1.0, 2 * min(hi, lo))
    scale = (n_fit + 1.0) * d / (n_fit - d)
    f_mean = scale * (n_fit - d) / (n_fit - d - 2.0) if n_fit - d > 2 else float("nan")
    out = {
        "n_fit": n_fit,
        "n_heldout": int(X_held.shape[0]),
        "f": {
            "ks": float(ks_f.statistic),
            "ks_pvalue": ks_mc_p,
            "ks_pvalue_iid": float(ks_f.pvalue),
            "null_ks_median": float(np.median(null_ks)),
            "null_ks_99": float(np.quantile(null_ks, 0.99)),
            "n_simulations": int(null_ks.size),
            "tail_05": float(np.mean(p_f < 0.05)),
            "tail_01": float(np.mean(p_f < 0.01)),
        },
        "chi2": {
            "ks": float(ks_c.statistic),
            "ks_pvalue": ks_c_mc_p,
            "ks_pvalue_iid": float(ks_c.pvalue),
            "null_ks_median": float(np.median(null_ks_c)),
            "tail_05": float(np.mean(p_c < 0.05)),
            "tail_01": float(np.mean(p_c < 0.01)),
            "ks_of_exact_gaussian": _f_vs_chi2_ks(n_fit, d),
        },
        "mean_m2": float(np.mean(m2)),
        "f_law_mean_m2": f_mean,
        "qq": _qq_summary(m2, n_fit, d),
    }
    return out, m2


def _pick_columns(values: np.ndarray, Y: np.ndarray, k: int = 4) -> dict[str, np.ndarray]:
    """Worst, median and best columns (by AD) for QQ plots."""
    order = np.argsort(values)
    idx = sorted({int(order[-1]), int(order[len(order) // 2]), int(order[0])})[:k]
    return {"index": np.asarray(idx), "values": np.ascontiguousarray(Y[:, idx])}


def _test_section(Y: np.ndarray, null: dict[str, float]) -> tuple[dict[str, Any], dict]:
    res = _column_tests(Y)
    out = _summarise_tests(res, null)
    out["ad"]["critical_value"] = anderson_critical_value(Y.shape[0])
    out["n_values_per_column"] = int(Y.shape[0])
    return out, _pick_columns(res["ad"], Y)


def _rate_check(name: str, section: dict | None, key: str, test_label: str) -> dict[str, Any]:
    if section is None:
        return {"name": name, "status": "n/a", "detail": "not computed (see notes)"}
    t = section[key]
    lo, hi = t["null_band"]
    obs = t["pass_fraction"]
    status = "fail" if obs < lo else "pass"
    extra = " (above the band: dependent or discrete columns?)" if obs > hi else ""
    return {
        "name": name,
        "status": status,
        "observed": obs,
        "expected": t["null_pass_fraction"],
        "band": [lo, hi],
        "z": t["z_from_null"],
        "detail": f"{test_label} pass {t['n_pass']}/{section['n_columns']}, "
        f"z = {_f(t['z_from_null'])}{extra}",
    }


def _make_checks(norms, coords, projs, white, joint, mard) -> list[dict[str, Any]]:
    z_norm = norms["z_centered_vs_implied"]
    checks = [{
        "name": "norm CV vs covariance-implied",
        "status": ("n/a" if not np.isfinite(z_norm)
                   else ("pass" if abs(z_norm) <= _Z_BAND else "fail")),
        "observed": norms["cv_centered"],
        "expected": norms["cv_implied"],
        "band": [norms["cv_implied"] - _Z_BAND * norms["cv_centered_se"],
                 norms["cv_implied"] + _Z_BAND * norms["cv_centered_se"]],
        "z": z_norm,
        "detail": f"centred CV / implied = {_f(norms['cv_centered'] / norms['cv_implied'])}, "
        f"z = {_f(z_norm)}",
    }]  # fmt: skip
    for label, sec in (("coordinates", coords), ("projections", projs), ("whitened", white)):
        checks.append(_rate_check(f"AD on {label}", sec, "ad", "A² < crit"))
        checks.append(_rate_check(f"DP on {label}", sec, "dp", "p > 0.05"))
    if joint is None:
        checks.append({"name": "Mahalanobis vs F (exact)", "status": "n/a",
                       "detail": "not computed (see notes)"})
        checks.append({"name": "Mahalanobis vs χ² (limit)", "status": "n/a",
                       "detail": "not computed (see notes)"})
    else:
        f = joint["f"]
        checks.append({
            "name": "Mahalanobis vs F (exact)",
            "status": "pass" if f["ks_pvalue"] >= 1 - BAND_LEVEL else "fail",
            "observed": f["ks"],
            "expected": 0.0,
            "band": None,
            "z": None,
            "detail": f"KS {_f(f['ks'])} (Monte Carlo p = {_f(f['ks_pvalue'])}; null median "
            f"{_f(f['null_ks_median'])}); "
            f"5% tail {_pct(f['tail_05'])}, 1% tail {_pct(f['tail_01'])}",
        })  # fmt: skip
        c = joint["chi2"]
        checks.append({
            "name": "Mahalanobis vs χ² (limit)",
            "status": "pass" if c["ks_pvalue"] >= 1 - BAND_LEVEL else "fail",
            "observed": c["ks"],
            "expected": c["null_ks_median"],
            "band": None,
            "z": None,
            "detail": f"KS {_f(c['ks'])} vs the {_f(c['null_ks_median'])} exact Gaussians show "
            f"at this n/d (Monte Carlo p = {_f(c['ks_pvalue'])}; F-vs-χ² gap "
            f"{_f(c['ks_of_exact_gaussian'])}: χ² is only the large-n limit)",
        })  # fmt: skip
    if mard is None:
        checks.append({"name": "Mardia skewness", "status": "n/a", "detail": "not computed"})
        checks.append({"name": "Mardia kurtosis", "status": "n/a", "detail": "not computed"})
    else:
        approx = (f" (approximate: d/n = {mard['d_over_n']:.2g})"
                  if mard["d_over_n"] > 0.05 else "")
        checks.append({
            "name": "Mardia skewness",
            "status": "pass" if mard["skew_pvalue"] >= 1 - BAND_LEVEL else "fail",
            "observed": mard["skew_stat"],
            "expected": mard["skew_df"],
            "band": None,
            "z": mard["skew_z"],
            "detail": f"corrected n·k·b₁/6 vs χ²({_f(mard['skew_df'])}), z ≈ {_f(mard['skew_z'])}, "
            f"p = {_f(mard['skew_pvalue'])}{approx}",
        })  # fmt: skip
        checks.append({
            "name": "Mardia kurtosis",
            "status": "pass" if mard["kurt_pvalue"] >= 1 - BAND_LEVEL else "fail",
            "observed": mard["b2"],
            "expected": mard["kurt_mean"],
            "band": None,
            "z": mard["kurt_z"],
            "detail": f"b₂ z = {_f(mard['kurt_z'])}, p = {_f(mard['kurt_pvalue'])}{approx}",
        })  # fmt: skip
    return checks


def _verdict(checks: list[dict[str, Any]]) -> tuple[str, list[str]]:
    tested = [c for c in checks if c["status"] in ("pass", "fail")]
    failed = [c for c in tested if c["status"] == "fail"]
    reasons = []
    for c in checks:
        exp = c.get("expected")
        if c["status"] in ("pass", "fail") and exp is not None:
            head = (f"{c['name']}: {c['status'].upper()} — observed {_f(c.get('observed'))}, "
                    f"null {_f(exp)}")
        else:
            head = f"{c['name']}: {c['status'].upper()}"
        reasons.append(f"{head}; {c.get('detail', '')}")
    if not tested:
        return "no check could be run (see notes)", reasons
    names = ", ".join(c["name"] for c in failed)
    if not failed:
        verdict = (f"consistent with a Gaussian on all {len(tested)} checks run "
                   f"(each at its {BAND_LEVEL:.0%} null band)")
    elif len(failed) <= len(tested) // 4:
        verdict = (f"mostly Gaussian: {len(tested) - len(failed)}/{len(tested)} checks pass; "
                   f"fails: {names}")
    else:
        verdict = f"not Gaussian: {len(failed)}/{len(tested)} checks fail ({names})"
    return verdict, reasons


def _comparison(ours: GaussianityReport, base: GaussianityReport) -> dict[str, Any]:
    rows = []

    def add(metric: str, a: Any, b: Any) -> None:
        diff = a - b if (a is not None and b is not None) else None
        rows.append({"metric": metric, "ours": a, "baseline": b, "difference": diff})

    add("CV of norms (raw)", ours.norms["cv"], base.norms["cv"])
    add("centred CV / implied", ours.norms["cv_centered"] / ours.norms["cv_implied"],
        base.norms["cv_centered"] / base.norms["cv_implied"])
    for label in ("coordinates", "projections", "whitened"):
        a, b = getattr(ours, label), getattr(base, label)
        for key in ("ad", "dp"):
            add(f"{key.upper()} pass on {label}",
                None if a is None else a[key]["pass_fraction"],
                None if b is None else b[key]["pass_fraction"])
    add("KS vs F", None if ours.joint is None else ours.joint["f"]["ks"],
        None if base.joint is None else base.joint["f"]["ks"])
    add("Mardia kurtosis z", None if ours.mardia is None else ours.mardia["kurt_z"],
        None if base.mardia is None else base.mardia["kurt_z"])
    n_ours = sum(c["status"] == "pass" for c in ours.checks)
    n_base = sum(c["status"] == "pass" for c in base.checks)
    n_all = sum(c["status"] in ("pass", "fail") for c in ours.checks)
    # the credit InfoNCE can take: what the embeddings pass beyond what the baseline passes
    gained = [c["name"] for c, cb in zip(ours.checks, base.checks)
              if c["status"] == "pass" and cb["status"] == "fail"]
    lost = [c["name"] for c, cb in zip(ours.checks, base.checks)
            if c["status"] == "fail" and cb["status"] == "pass"]
    summary = (f"These embeddings pass {n_ours}/{n_all} checks, the baseline {n_base}. "
               + (f"Passed here but failed by the baseline: {', '.join(gained)}. " if gained else
                  "No check passes here that the baseline fails: Gaussianity cannot be credited "
                  "to training on this evidence. ")
               + (f"Failed here but passed by the baseline: {', '.join(lost)}." if lost else ""))
    return {"summary": summary.strip(), "gained": gained, "lost": lost, "metrics": rows}


def diagnose(
    X: Any,
    *,
    baseline: Any = None,
    max_samples: int | None = 5000,
    n_projections: int | None = None,
    heldout_fraction: float = 0.5,
    seed: int = 0,
    n_null_simulations: int = 2000,
    n_joint_simulations: int = 100,
) -> GaussianityReport:
    """How Gaussian are these embeddings, in which sense, and how sure are we?

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings (finite; at least 8 samples and 2 features).
    baseline : array-like of shape (n_baseline, n_features_baseline), optional
        Negative control — e.g. the untrained encoder's embeddings of the same inputs. The
        same report is computed for it (same options) and compared.
    max_samples : int or None, default=5000
        Use a seeded random subsample of this many rows (None: all rows). Mardia's
        skewness costs ``O(n² d)``.
    n_projections : int, optional
        Random orthonormal directions tested (default ``min(d, 256)``; must be ``<= d``).
    heldout_fraction : float in (0, 1), default=0.5
        Share of rows held out from the Gaussian fit for the whitened and joint checks.
    seed : int, default=0
        Seeds the subsample, the split, the projections and the null simulation.
    n_null_simulations : int, default=2000
        Exact Gaussian columns simulated to estimate the null pass rates.
    n_joint_simulations : int, default=100
        Exact Gaussian samples simulated for the null law of the joint KS distance
        (:func:`null_joint_ks`); its p-value resolution is ``1/(n_joint_simulations + 1)``.

    Returns
    -------
    GaussianityReport

    Raises
    ------
    ValueError
        Fewer than 8 samples, a single feature, NaN/inf, every feature constant,
        ``n_projections > n_features``, or an option out of range.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(400, 8))
    >>> report = diagnose(X, n_null_simulations=200)
    >>> report.verdict.startswith(("consistent", "mostly"))
    True
    """
    if max_samples is not None:
        max_samples = check_positive_int(max_samples, "max_samples", minimum=MIN_SAMPLES)
    heldout_fraction = check_probability(heldout_fraction, "heldout_fraction")
    n_sims = check_positive_int(n_null_simulations, "n_null_simulations", minimum=100)
    n_joint_sims = check_positive_int(n_joint_simulations, "n_joint_simulations", minimum=99)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"`seed` must be an int, got {type(seed).__name__}")
    seed = int(seed)
    rng = np.random.default_rng(seed)
    notes: list[str] = []

    n = np.shape(X)[0] if np.ndim(X) >= 1 else 0
    if (isinstance(X, np.ndarray) and X.ndim == 2 and max_samples is not None
            and n > max_samples):
        # subsample before converting, so a memory-mapped array is read only where used
        idx = np.sort(rng.choice(n, size=max_samples, replace=False))
        X = X[idx]
        notes.append(f"used a seeded random subsample of {max_samples} of {n} rows "
                     "(only these rows are read and checked)")
    Xs = check_float_array(X, "X", dtype=np.float64)
    d = Xs.shape[1]
    if Xs.shape[0] < MIN_SAMPLES:
        raise ValueError(
            f"`X` must have at least {MIN_SAMPLES} samples (Anderson–Darling and "
            f"D'Agostino–Pearson are undefined below), got {Xs.shape[0]}"
        )
    if d < 2:
        raise ValueError(
            "`X` must have at least 2 features, got 1; for a single variable use "
            "scipy.stats.anderson(x, 'norm') and scipy.stats.normaltest(x) directly"
        )
    if n_projections is None:
        k_proj = min(d, 256)
    else:
        k_proj = check_positive_int(n_projections, "n_projections")
        if k_proj > d:
            raise ValueError(
                f"`n_projections` must be <= n_features ({d}): there are no more than {d} "
                f"orthonormal directions, got {k_proj}"
            )
    if max_samples is not None and Xs.shape[0] > max_samples:  # array-likes: after conversion
        idx = np.sort(rng.choice(n, size=max_samples, replace=False))
        Xs = Xs[idx]
        notes.append(f"used a seeded random subsample of {max_samples} of {n} rows")
    m = Xs.shape[0]

    sd = Xs.std(axis=0)
    scale = np.abs(Xs).max(axis=0)
    constant = np.flatnonzero(sd <= 1e-12 * np.maximum(scale, 1e-300))
    live = np.setdiff1d(np.arange(d), constant)
    if live.size == 0:
        raise ValueError("every feature of `X` is constant: there is nothing to test")
    if constant.size:
        notes.append(
            f"{constant.size} constant feature(s) excluded from the per-coordinate, whitened "
            f"and joint checks: {constant[:20].tolist()}{' …' if constant.size > 20 else ''}"
        )
    Xl = Xs[:, live]
    dl = live.size

    s = core.stats_from_array(Xs)
    norms = _norm_section(Xs, s, d)
    if norms["cv"] < 1e-6:
        notes.append(
            "all norms are equal (L2-normalised embeddings?): the norm CV is uninformative"
        )
    null_m = null_pass_rates(m, n_sims, seed)

    coords, qq_coords = _test_section(Xl, null_m)

    Q = random_orthonormal(d, k_proj, seed=[seed, 1])
    P = (Xs - s.mean) @ Q
    projs, qq_projs = _test_section(P, null_m)

    perm = rng.permutation(m)
    n_held = int(round(heldout_fraction * m))
    n_fit = m - n_held
    white = joint = None
    m2 = None
    qq_white = None
    if n_held < MIN_SAMPLES or n_fit < 2:
        notes.append(
            f"whitened and joint checks skipped: the split gives {n_fit} fit and {n_held} "
            f"held-out rows (need >= {MIN_SAMPLES} held out); change heldout_fraction or "
            "give more data"
        )
    else:
        X_fit, X_held = Xl[np.sort(perm[n_held:])], Xl[np.sort(perm[:n_held])]
        exact = n_fit > dl + 2
        try:
            model = GaussianModel(shrinkage="empirical" if exact else "ledoit_wolf").fit(X_fit)
        except ValueError as exc:
            model = None
            notes.append(f"whitened and joint checks skipped: {exc}")
        if model is not None:
            W = model.transform(X_held)
            null_h = null_pass_rates(n_held, n_sims, seed)
            white, qq_white = _test_section(W, null_h)
            white["shrinkage"] = model.shrinkage_
            if exact:
                joint, m2 = _joint_section(model, X_held, n_fit, dl, n_joint_sims, seed)
            else:
                notes.append(
                    f"joint F check skipped: the fit split has {n_fit} rows for {dl} features "
                    "(needs n_fit > d + 2 for the exact law); whitening used Ledoit–Wolf "
                    "shrinkage, "
                    "so whitened coordinates are only approximately standardised"
                )
    mard = None
    if m > dl + 5:
        try:
            mard = mardia(Xl)
        except ValueError as exc:
            notes.append(f"Mardia's statistics skipped: {exc}")
        else:
            if mard["d_over_n"] > 0.05:
                notes.append(
                    f"Mardia's tests are asymptotic and approximate at d/n = {mard['d_over_n']:.2g}"
                )
    else:
        notes.append(f"Mardia's statistics skipped: need n > d + 5 (n={m}, d={dl})")
    if m < 20:
        notes.append(
            "n < 20: D'Agostino–Pearson's kurtosis part is inaccurate (null rate simulated)"
        )
    notes.append(
        "null bands are central 99% Binomial(k, p0) intervals; exact for independent columns, "
        "a guide for correlated raw coordinates"
    )

    checks = _make_checks(norms, coords, projs, white, joint, mard)
    verdict, reasons = _verdict(checks)
    report = GaussianityReport(
        n_samples=n,
        n_features=d,
        n_used=m,
        settings={
            "max_samples": max_samples,
            "n_projections": k_proj,
            "heldout_fraction": heldout_fraction,
            "seed": seed,
            "n_null_simulations": n_sims,
            "n_joint_simulations": n_joint_sims,
            "band_level": BAND_LEVEL,
            "test_alpha": TEST_ALPHA,
            "versions": _versions(),
        },
        norms=norms,
        coordinates=coords,
        projections=projs,
        whitened=white,
        joint=joint,
        mardia=mard,
        constant_features=constant.tolist(),
        checks=checks,
        verdict=verdict,
        reasons=reasons,
        notes=notes,
        arrays={
            "norms": np.linalg.norm(Xs, axis=1),
            # what the norm check tests (its CV against the covariance-implied one)
            "norms_centered": np.linalg.norm(Xs - s.mean, axis=1),
            "qq_coordinates": {**qq_coords, "index": live[qq_coords["index"]]},
            "qq_projections": qq_projs,
            "qq_whitened": qq_white,
            "m2": m2,
            "n_fit": n_fit,
            "n_features_tested": dl,
            "n_features": d,
        },
    )
    if baseline is not None:
        try:
            base = diagnose(
                baseline,
                max_samples=max_samples,
                n_projections=(None if n_projections is None
                               else min(k_proj, np.shape(baseline)[-1])),
                heldout_fraction=heldout_fraction,
                seed=seed,
                n_null_simulations=n_sims,
                n_joint_simulations=n_joint_sims,
            )
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"`baseline`: {exc}") from exc
        report.baseline = base
        report.comparison = _comparison(report, base)
    return report
