r"""Joint checks on held-out points: squared Mahalanobis distances against their exact law.

A Gaussian is fitted with the empirical covariance on a fit split of ``n_fit`` points; a
held-out point then has ``m² ~ (n_fit+1)d/(n_fit-d) · F(d, n_fit-d)`` (Hotelling's T²; the law
is :func:`infogauss.gaussian.distance_law`), so its p-values
(:func:`infogauss.gaussian.mahalanobis_pvalues`, method ``"f"``) are uniform. The held-out
points share the fit, so they are independent only given it and the plain KS p-value is
slightly liberal; the KS distance is therefore referred to its exact null law, simulated
(:func:`null_joint_ks`; the distances are affine invariant, so one Gaussian serves all), with
the Monte-Carlo p-value of :func:`infogauss.calibration.monte_carlo_pvalue`. ``χ²_d`` is the
``n → ∞`` limit; the KS distance between the two laws is reported as what an exact Gaussian
would show against χ².

A KS distance barely sees the tails, so the rates of held-out points beyond the F law's 95%
and 99% points are tested too: their largest standardised excess ``max_q (r_q - q) /
sqrt(q(1-q)/n)`` is referred to the same simulations. Each simulated null is seeded and
sequential, so a longer run starts with the samples of a shorter one
(:func:`extend_simulations` adds simulations to one statistic when its observed value beat
them all).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import linalg, stats

from .. import gaussian as core
from ..calibration import monte_carlo_pvalue, monte_carlo_resolution
from ._statistics import _check_full_rank

__all__ = ["null_joint_ks"]

QQ_LEVELS = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
TAIL_LEVELS = (0.05, 0.01)  # upper quantiles of the F law whose exceedance rates are tested


@dataclass(frozen=True)
class HeldOutFit:
    """A Gaussian fitted on the fit split (core arrays, no estimator)."""

    mean: np.ndarray
    covariance: np.ndarray
    chol: np.ndarray
    shrinkage: float | None

    @classmethod
    def fit(cls, X: np.ndarray, shrinkage: str) -> HeldOutFit:
        """Fit with ``shrinkage`` (``"empirical"`` for the exact law); ValueError if singular."""
        s = core.stats_from_array(X)
        cov, a = core.covariance_from_stats(s, shrinkage)
        if not np.any(np.diag(cov) > 0):
            raise ValueError("every feature of the fit split is constant (zero variance)")
        chol = core.cholesky_factor(cov, name="fit-split covariance")
        _check_full_rank(cov, "fit-split covariance")
        return cls(s.mean.copy(), cov, chol, a)

    def whiten(self, X: np.ndarray) -> np.ndarray:
        """ZCA-whitened rows (identity covariance under the fit)."""
        W = core.whitening_matrix(self.covariance, self.chol, method="zca")
        return core.whiten(X, self.mean, W)

    def mahalanobis(self, X: np.ndarray) -> np.ndarray:
        """**Squared** Mahalanobis distances of the rows of ``X`` to the fit."""
        return core.mahalanobis_sq(X, self.mean, self.chol)


def _qq_summary(m2: np.ndarray, n_fit: int, d: int) -> list[dict[str, float]]:
    law_f, law_c = core.distance_law(n_fit, d, "f"), core.distance_law(n_fit, d, "chi2")
    rows = []
    for q in QQ_LEVELS:
        rows.append({
            "q": q,
            "observed_m2": float(np.quantile(m2, q)),
            "f_law_m2": float(law_f.ppf(q)),
            "chi2_m2": float(law_c.ppf(q)),
        })  # fmt: skip
    return rows


def _f_vs_chi2_ks(n_fit: int, d: int) -> float:
    """sup |CDF_scaledF - CDF_χ²| — the KS distance an exact Gaussian shows against χ²."""
    law_f, law_c = core.distance_law(n_fit, d, "f"), core.distance_law(n_fit, d, "chi2")
    q = np.linspace(1e-4, 1 - 1e-4, 4001)
    grid = np.unique(np.concatenate([law_c.ppf(q), law_f.ppf(q)]))
    return float(np.max(np.abs(law_f.cdf(grid) - law_c.cdf(grid))))


def _ks_uniform(p: np.ndarray) -> np.ndarray:
    """KS distance of each row of p-values from U(0, 1)."""
    p = np.sort(p, axis=-1)
    k = p.shape[-1]
    i = np.arange(1, k + 1)
    return np.maximum((i / k - p).max(axis=-1), (p - (i - 1) / k).max(axis=-1))


def _tail_excess(p_f: np.ndarray) -> float:
    """Largest standardised excess of held-out points beyond the F law's upper quantiles.

    ``max_q (r_q - q) / sqrt(q (1 - q) / n)`` over ``q`` in :data:`TAIL_LEVELS`, with ``r_q``
    the fraction of the ``n`` F p-values below ``q``: large when too many points lie far out
    (heavy tails), which a KS distance barely sees.
    """
    n = p_f.shape[-1]
    return float(max((np.mean(p_f < q) - q) / math.sqrt(q * (1.0 - q) / n) for q in TAIL_LEVELS))


@lru_cache(maxsize=16)
def _null_joint(n_fit: int, n_heldout: int, d: int, n_simulations: int, seed: int) -> np.ndarray:
    """Rows: sorted simulated KS vs F, KS vs χ², tail excess (see :func:`null_joint_ks`)."""
    rng = np.random.default_rng([int(seed), 104729, n_fit, n_heldout, d])
    out = np.empty((3, n_simulations))
    rows, cols = np.tril_indices(d, -1)
    for b in range(n_simulations):
        A = np.zeros((d, d))
        A[np.arange(d), np.arange(d)] = np.sqrt(rng.chisquare(n_fit - np.arange(1, d + 1)))
        A[rows, cols] = rng.standard_normal(rows.size)
        Y = rng.standard_normal((n_heldout, d)) - rng.standard_normal(d) / math.sqrt(n_fit)
        Z = linalg.solve_triangular(A, Y.T, lower=True, check_finite=False)
        m2 = n_fit * np.einsum("ij,ij->j", Z, Z)
        p_f = core.mahalanobis_pvalues(m2, n_fit, d, "f")
        out[0, b] = _ks_uniform(p_f)
        out[1, b] = _ks_uniform(core.mahalanobis_pvalues(m2, n_fit, d, "chi2"))
        out[2, b] = _tail_excess(p_f)
    out = np.sort(out, axis=1)
    out.setflags(write=False)  # cached: shared by every caller
    return out


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
    ``N(0, I/n_fit)``. Simulations are seeded and sequential: the first ``B`` of a longer
    run are the same ``B`` samples.

    Returns
    -------
    ndarray of shape (2, n_simulations)
        The sorted simulated KS distances against F (row 0) and against χ² (row 1).

    Examples
    --------
    >>> null_joint_ks(50, 40, 3, n_simulations=20).shape
    (2, 20)
    """
    return np.array(_null_joint(int(n_fit), int(n_heldout), int(d), int(n_simulations),
                                int(seed))[:2])


def mc_pass_region(null: np.ndarray, alpha: float, tail: str) -> list[float | None]:
    """The statistics a Monte-Carlo test at level ``alpha`` passes: ``[low, high]``.

    Evaluated with :func:`infogauss.calibration.monte_carlo_pvalue` itself at the simulated
    values (where the p-value steps), so "inside" and "p > alpha" agree; None marks an
    unbounded side (and both are None when the test cannot reject at all).
    """
    nodes = np.unique(null)
    ok = [v for v in nodes if monte_carlo_pvalue(null, v, tail=tail) > alpha]
    if not ok or monte_carlo_resolution(null.size, two_sided=tail == "two-sided") > alpha:
        return [None, None]
    lo = None if tail == "upper" else float(ok[0])
    hi = None if tail == "lower" else float(ok[-1])
    return [lo, hi]


# which null row each simulated statistic is, and the tail its test uses
JOINT_STATISTICS = {"f": (0, "upper"), "tail": (2, "upper"), "chi2": (1, "two-sided")}


def _mc_summary(key: str, observed: float, n_fit: int, n_held: int, d: int, n_sims: int,
                seed: int, alpha: float) -> dict[str, Any]:
    """Monte-Carlo p-value of one joint statistic, its null median and pass region."""
    row, tail = JOINT_STATISTICS[key]
    null = _null_joint(n_fit, n_held, d, n_sims, seed)[row]
    return {
        "pvalue": monte_carlo_pvalue(null, observed, tail=tail),
        "tail": tail,
        "null_median": float(np.median(null)),
        "null_99": float(np.quantile(null, 0.99)),
        "pass_region": mc_pass_region(null, alpha, tail),
        "n_simulations": int(n_sims),
        "mc_resolution": monte_carlo_resolution(n_sims, two_sided=tail == "two-sided"),
    }


def _joint_section(
    fit: HeldOutFit, X_held: np.ndarray, n_fit: int, d: int, n_sims: int, seed: int,
    alpha: float,
) -> tuple[dict[str, Any], np.ndarray]:
    m2 = fit.mahalanobis(X_held)
    n_held = int(X_held.shape[0])
    p_f = core.mahalanobis_pvalues(m2, n_fit, d, "f")
    p_c = core.mahalanobis_pvalues(m2, n_fit, d, "chi2")
    ks_f = stats.kstest(p_f, "uniform")
    ks_c = stats.kstest(p_c, "uniform")
    # two-sided for χ²: a sample can sit closer to χ² than exact Gaussians do (heavier tails
    # push distances up at this n/d just as the F law does)
    mc = {key: _mc_summary(key, obs, n_fit, n_held, d, n_sims, seed, alpha)
          for key, obs in (("f", ks_f.statistic), ("tail", _tail_excess(p_f)),
                           ("chi2", ks_c.statistic))}
    law_f = core.distance_law(n_fit, d, "f")
    f_mean = float(law_f.mean()) if n_fit - d > 2 else float("nan")
    out = {
        "n_fit": n_fit,
        "n_heldout": n_held,
        "f": {
            "ks": float(ks_f.statistic),
            "ks_pvalue": mc["f"]["pvalue"],
            "ks_pvalue_iid": float(ks_f.pvalue),
            "null_ks_median": mc["f"]["null_median"],
            "null_ks_99": mc["f"]["null_99"],
            "n_simulations": int(n_sims),
            "tail_05": float(np.mean(p_f < 0.05)),
            "tail_01": float(np.mean(p_f < 0.01)),
        },
        "tail": {
            "excess": _tail_excess(p_f),
            "levels": list(TAIL_LEVELS),
            "rates": [float(np.mean(p_f < q)) for q in TAIL_LEVELS],
            "pvalue": mc["tail"]["pvalue"],
            "null_median": mc["tail"]["null_median"],
            "null_99": mc["tail"]["null_99"],
            "n_simulations": int(n_sims),
        },
        "chi2": {
            "ks": float(ks_c.statistic),
            "ks_pvalue": mc["chi2"]["pvalue"],
            "ks_pvalue_iid": float(ks_c.pvalue),
            "null_ks_median": mc["chi2"]["null_median"],
            "n_simulations": int(n_sims),
            "tail_05": float(np.mean(p_c < 0.05)),
            "tail_01": float(np.mean(p_c < 0.01)),
            "ks_of_exact_gaussian": _f_vs_chi2_ks(n_fit, d),
        },
        "mean_m2": float(np.mean(m2)),
        "f_law_mean_m2": f_mean,
        "qq": _qq_summary(m2, n_fit, d),
        "monte_carlo": mc,
    }
    return out, m2


def _observed(joint: dict[str, Any], key: str) -> float:
    return joint["tail"]["excess"] if key == "tail" else joint[key]["ks"]


def extend_simulations(joint: dict[str, Any], key: str, n_sims: int, d: int, seed: int,
                       alpha: float) -> None:
    """Redo the Monte-Carlo p-value of one joint statistic with ``n_sims`` simulations (the
    first ones are those already run), in place."""
    mc = _mc_summary(key, _observed(joint, key), joint["n_fit"], joint["n_heldout"], d,
                     n_sims, seed, alpha)
    joint["monte_carlo"][key] = mc
    sec = joint[key]
    sec["n_simulations"] = int(n_sims)
    if key == "tail":
        sec.update(pvalue=mc["pvalue"], null_median=mc["null_median"], null_99=mc["null_99"])
    else:
        sec.update(ks_pvalue=mc["pvalue"], null_ks_median=mc["null_median"])
        if key == "f":
            sec["null_ks_99"] = mc["null_99"]
