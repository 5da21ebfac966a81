"""The checks (one row per question asked of the data) and the family-wise verdict.

Every check turns its statistic into a p-value against the null "these rows are an i.i.d.
Gaussian sample" and is decided at the report's level ``alpha``:

* ``"pass"`` — ``p > alpha``; ``"fail"`` — ``p <= alpha``. The check's ``band`` is its pass
  region at that level (the observed statistic lies inside it exactly when it passes), so
  the status and the numbers printed beside it agree.
* ``"inconclusive"`` — a Monte-Carlo check whose resolution
  (:func:`infogauss.calibration.monte_carlo_resolution`: ``1/(B+1)``, ``2/(B+1)`` two-sided)
  is above ``alpha``: it could never fail, so it is never reported as a pass.
* ``"n/a"`` — not computed; ``detail`` says why.

The verdict is one family-wise decision: Holm's step-down (:func:`infogauss.calibration.holm`)
over the p-values of the checks that could decide, at level ``alpha``. It says "Gaussian" when
no check is rejected — with the checks that fail on their own at ``alpha`` (which a dozen
checks of a Gaussian do by chance), the inconclusive ones and those not run listed beside it
— and "not Gaussian" with the rejected checks otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from ..calibration import holm, monte_carlo_resolution
from ._format import _f, _pct, _region

__all__ = ["make_checks", "familywise", "verdict", "floor_checks", "simulations_needed"]

STATUSES = ("pass", "fail", "inconclusive", "n/a")
# joint check name -> key of its statistic in the joint section's "monte_carlo" dict
JOINT_CHECKS = {
    "Mahalanobis vs F (exact)": "f",
    "Mahalanobis tails vs F": "tail",
    "Mahalanobis vs χ² (limit)": "chi2",
}


def _finite(v: Any) -> bool:
    return v is not None and math.isfinite(float(v))


def _row(name: str, *, pvalue: float | None, alpha: float, observed: Any, expected: Any,
         band: list | None, detail: str, z: Any = None,
         mc: dict[str, Any] | None = None) -> dict[str, Any]:
    """One check: the status follows from ``pvalue`` and ``alpha`` (and the Monte-Carlo
    resolution when the null was simulated)."""
    if not _finite(pvalue):
        status = "n/a"
    elif mc is not None and mc["mc_resolution"] > alpha:
        status = "inconclusive"
        need = simulations_needed(1, alpha, two_sided=mc["tail"] == "two-sided")
        detail += (f"; inconclusive: with {mc['n_simulations']} simulations the smallest "
                   f"attainable p is {mc['mc_resolution']:.3g} > {alpha:g}, so this check "
                   f"cannot fail (use n_joint_simulations >= {need})")
        band = None
    else:
        status = "fail" if pvalue <= alpha else "pass"
    out = {
        "name": name,
        "status": status,
        "observed": observed,
        "expected": expected,
        "band": band,
        "z": z,
        "pvalue": None if not _finite(pvalue) else float(pvalue),
        "level": alpha,
        "pvalue_holm": None,
        "rejected": None,
        "detail": detail,
    }
    if mc is not None:
        out["n_simulations"] = mc["n_simulations"]
        out["mc_resolution"] = mc["mc_resolution"]
    return out


def _na(name: str, reason: str) -> dict[str, Any]:
    out = _row(name, pvalue=None, alpha=1.0, observed=None, expected=None, band=None,
               detail=f"not run: {reason}")
    out["level"] = None
    return out


def _norm_check(norms: dict[str, Any], alpha: float) -> dict[str, Any]:
    z = norms["z_centered_vs_implied"]
    name = "norm CV vs covariance-implied"
    if not _finite(z):
        return _na(name, "the centred norm CV or its standard error is undefined")
    zc = float(stats.norm.isf(alpha / 2))
    implied, se = norms["cv_implied"], norms["cv_centered_se"]
    return _row(
        name, pvalue=float(2 * stats.norm.sf(abs(z))), alpha=alpha,
        observed=norms["cv_centered"], expected=implied,
        band=[implied - zc * se, implied + zc * se], z=z,
        detail=f"centred CV {_f(norms['cv_centered'])} vs the {_f(implied)} a Gaussian with "
        f"this covariance implies (ratio {_f(norms['cv_centered'] / implied)}, z = {_f(z)}, "
        "two-sided)",
    )


def _rate_check(name: str, section: dict | None, key: str, test_label: str, alpha: float,
                reason: str) -> dict[str, Any]:
    if section is None:
        return _na(name, reason)
    t = section[key]
    k, passed, p0 = section["n_columns"], t["n_pass"], t["null_pass_fraction"]
    # one-sided: departures from normality make columns fail, so too few passes is the signal
    counts = np.arange(k + 1)
    ok = counts[stats.binom.cdf(counts, k, p0) > alpha]
    band = [float(ok[0]) / k, 1.0] if ok.size else None
    hi = t["null_band"][1]
    extra = (f"; above the null's central range (≤ {_pct(hi)}): dependent or discrete columns?"
             if t["pass_fraction"] > hi else "")
    return _row(
        name, pvalue=float(stats.binom.cdf(passed, k, p0)), alpha=alpha,
        observed=t["pass_fraction"], expected=p0, band=band, z=t["z_from_null"],
        detail=f"{test_label} on {passed}/{k} columns vs {_pct(p0)} of exact Gaussian columns "
        f"(one-sided binomial p), z = {_f(t['z_from_null'])}{extra}",
    )


def _joint_checks(joint: dict | None, alpha: float, reason: str) -> list[dict[str, Any]]:
    if joint is None:
        return [_na(name, reason) for name in JOINT_CHECKS]
    mc = joint["monte_carlo"]
    f, t, c = joint["f"], joint["tail"], joint["chi2"]
    rates = " / ".join(_pct(r) for r in t["rates"])
    levels = " / ".join(f"{1 - q:.0%}" for q in t["levels"])
    expect = " / ".join(_pct(q) for q in t["levels"])
    return [
        _row("Mahalanobis vs F (exact)", pvalue=mc["f"]["pvalue"], alpha=alpha,
             observed=f["ks"], expected=mc["f"]["null_median"], band=mc["f"]["pass_region"],
             mc=mc["f"],
             detail=f"KS distance of the held-out F p-values from uniform {_f(f['ks'])} vs "
             f"the median {_f(mc['f']['null_median'])} of exact Gaussians (Monte Carlo, "
             f"{mc['f']['n_simulations']} simulations)"),
        _row("Mahalanobis tails vs F", pvalue=mc["tail"]["pvalue"], alpha=alpha,
             observed=t["excess"], expected=mc["tail"]["null_median"],
             band=mc["tail"]["pass_region"], mc=mc["tail"],
             detail=f"beyond the F law's {levels} points: {rates} of "
             f"{joint['n_heldout']} held-out points (expected {expect}); largest standardised "
             f"excess {_f(t['excess'])} vs the median {_f(mc['tail']['null_median'])} of exact "
             f"Gaussians (Monte Carlo, {mc['tail']['n_simulations']} simulations)"),
        _row("Mahalanobis vs χ² (limit)", pvalue=mc["chi2"]["pvalue"], alpha=alpha,
             observed=c["ks"], expected=mc["chi2"]["null_median"],
             band=mc["chi2"]["pass_region"], mc=mc["chi2"],
             detail=f"KS {_f(c['ks'])} vs the {_f(mc['chi2']['null_median'])} exact Gaussians "
             f"show at this n/d (two-sided Monte Carlo, {mc['chi2']['n_simulations']} "
             f"simulations; F-vs-χ² gap {_f(c['ks_of_exact_gaussian'])}: χ² is only the "
             "large-n limit)"),
    ]


def _mardia_checks(mard: dict | None, alpha: float, reason: str) -> list[dict[str, Any]]:
    names = ("Mardia skewness", "Mardia kurtosis")
    if mard is None:
        return [_na(name, reason) for name in names]
    approx = f" (approximate: d/n = {mard['d_over_n']:.2g})" if mard["d_over_n"] > 0.05 else ""
    zc = float(stats.norm.isf(alpha / 2))
    mean, sd = mard["kurt_mean"], mard["kurt_sd"]
    return [
        _row(names[0], pvalue=mard["skew_pvalue"], alpha=alpha, observed=mard["skew_stat"],
             expected=mard["skew_df"],
             band=[0.0, float(stats.chi2.isf(alpha, mard["skew_df"]))], z=mard["skew_z"],
             detail=f"corrected n·k·b₁/6 vs χ²({_f(mard['skew_df'])}), z ≈ "
             f"{_f(mard['skew_z'])}{approx}"),
        _row(names[1], pvalue=mard["kurt_pvalue"], alpha=alpha, observed=mard["b2"],
             expected=mean, band=[mean - zc * sd, mean + zc * sd] if _finite(sd) else None,
             z=mard["kurt_z"],
             detail=f"b₂ vs its exact null mean and variance, z = {_f(mard['kurt_z'])} "
             f"(two-sided){approx}"),
    ]


def make_checks(norms: dict, coords: dict | None, projs: dict | None, white: dict | None,
                joint: dict | None, mard: dict | None, *, alpha: float,
                skipped: dict[str, str]) -> list[dict[str, Any]]:
    """Every check, in a fixed order; ``skipped`` gives the reason a section is missing."""
    checks = [_norm_check(norms, alpha)]
    for label, sec in (("coordinates", coords), ("projections", projs), ("whitened", white)):
        why = skipped.get(label, "not computed (see notes)")
        checks.append(_rate_check(f"AD on {label}", sec, "ad", "A² below the 5% critical value",
                                  alpha, why))
        checks.append(_rate_check(f"DP on {label}", sec, "dp", "D'Agostino–Pearson p > 0.05",
                                  alpha, why))
    checks += _joint_checks(joint, alpha, skipped.get("joint", "not computed (see notes)"))
    checks += _mardia_checks(mard, alpha, skipped.get("mardia", "not computed (see notes)"))
    return checks


def familywise(checks: list[dict[str, Any]], alpha: float) -> dict[str, Any]:
    """Holm over the checks that could decide; fills ``pvalue_holm`` and ``rejected`` in place.

    Returns the decision (``"Gaussian"``, ``"not Gaussian"`` or ``"none"`` when no check could
    decide) with the names behind it.
    """
    family = [c for c in checks if c["status"] in ("pass", "fail")]
    adjusted = holm([c["pvalue"] for c in family]) if family else np.empty(0)
    for c, a in zip(family, adjusted):
        c["pvalue_holm"] = float(a)
        c["rejected"] = bool(a <= alpha)
    rejected = [c["name"] for c in family if c["rejected"]]
    return {
        "method": "holm",
        "level": alpha,
        "n_checks": len(family),
        "decision": ("none" if not family else "not Gaussian" if rejected else "Gaussian"),
        "rejected": rejected,
        "fail_alone": [c["name"] for c in family if c["status"] == "fail" and not c["rejected"]],
        "inconclusive": [c["name"] for c in checks if c["status"] == "inconclusive"],
        "not_run": [c["name"] for c in checks if c["status"] == "n/a"],
        "min_adjusted_pvalue": float(np.min(adjusted)) if family else None,
    }


def floor_checks(checks: list[dict[str, Any]]) -> list[str]:
    """Monte-Carlo checks that decide but whose statistic beat every simulation without being
    rejected family-wise: their p-value is the resolution, and the true one may be smaller."""
    return [c["name"] for c in checks
            if c["status"] in ("pass", "fail") and "mc_resolution" in c and not c["rejected"]
            and c["pvalue"] <= c["mc_resolution"]]


def simulations_needed(n_checks: int, alpha: float, *, two_sided: bool) -> int:
    """Fewest simulations whose resolution, times ``n_checks`` (Holm's first step), is at most
    ``alpha``: a check at its floor can then be rejected even alone."""
    b = max(math.ceil((2 if two_sided else 1) * n_checks / alpha) - 2, 1)
    while n_checks * monte_carlo_resolution(b, two_sided=two_sided) > alpha:
        b += 1
    return b


def _reason(c: dict[str, Any]) -> str:
    head = f"{c['name']}: {c['status'].upper()}"
    if c["status"] in ("pass", "fail"):
        region = _region(c.get("band"))
        head += (f" — observed {_f(c.get('observed'))}, null {_f(c.get('expected'))}"
                 + (f", pass region {region}" if region else "")
                 + f"; p = {_f(c['pvalue'])}")
        if c.get("pvalue_holm") is not None:
            head += f" (Holm {_f(c['pvalue_holm'])}{', rejected' if c['rejected'] else ''})"
    return f"{head}; {c.get('detail', '')}"


def verdict(checks: list[dict[str, Any]], fam: dict[str, Any]) -> tuple[str, list[str]]:
    """The one-line family-wise verdict and one sentence per check."""
    reasons = [_reason(c) for c in checks]
    alpha, m = fam["level"], fam["n_checks"]
    if fam["decision"] == "none":
        return "no check could decide (see the checks and notes)", reasons
    where = f"at family-wise level {alpha:g} (Holm over {m} checks)"
    if fam["decision"] == "not Gaussian":
        text = (f"not Gaussian: {len(fam['rejected'])} of {m} checks reject {where}: "
                f"{', '.join(fam['rejected'])}")
    else:
        scope = "" if m == len(checks) else f" on the {m} of {len(checks)} checks that decide"
        text = (f"Gaussian{scope}: no check rejects at family-wise level {alpha:g} (Holm over "
                f"{m} checks; smallest adjusted p = {_f(fam['min_adjusted_pvalue'])})")
        if fam["fail_alone"]:
            text += (f"; below {alpha:g} alone but not after Holm: "
                     f"{', '.join(fam['fail_alone'])}")
    if fam["inconclusive"]:
        text += f"; inconclusive: {', '.join(fam['inconclusive'])}"
    if fam["not_run"]:
        text += f"; not run: {', '.join(fam['not_run'])}"
    return text, reasons
