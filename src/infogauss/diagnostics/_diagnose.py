""":func:`diagnose`: input checks, dead columns, the sample split, every section, the checks
and the family-wise verdict, and the comparison with a baseline."""

from __future__ import annotations

import logging
import platform
from typing import Any

import numpy as np

from .. import gaussian as core
from .._validation import check_float_array, check_positive_int, check_probability
from ._checks import JOINT_CHECKS, familywise, floor_checks, make_checks, simulations_needed, verdict
from ._joint import HeldOutFit, _joint_section, extend_simulations
from ._report import GaussianityReport
from ._statistics import (
    TEST_ALPHA,
    _norm_section,
    _test_section,
    mardia,
    null_pass_rates,
    random_orthonormal,
)

__all__ = ["diagnose"]

logger = logging.getLogger(__name__)

MIN_SAMPLES = 8
CONSTANT_RTOL = 1e-6  # a column is near-constant when its SD is below this × the median SD


def _versions() -> dict[str, str]:
    import scipy
    import sklearn

    from .._version import __version__

    return {
        "infogauss": __version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
    }


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
    add("Mahalanobis tail excess", None if ours.joint is None else ours.joint["tail"]["excess"],
        None if base.joint is None else base.joint["tail"]["excess"])
    n_ours = sum(c["status"] == "pass" for c in ours.checks)
    n_base = sum(c["status"] == "pass" for c in base.checks)
    n_all = sum(c["status"] in ("pass", "fail") for c in ours.checks)
    # the credit InfoNCE can take: what the embeddings pass beyond what the baseline passes
    gained = [c["name"] for c, cb in zip(ours.checks, base.checks)
              if c["status"] == "pass" and cb["status"] == "fail"]
    lost = [c["name"] for c, cb in zip(ours.checks, base.checks)
            if c["status"] == "fail" and cb["status"] == "pass"]
    summary = (f"Family-wise verdict: {ours.familywise['decision']} here, "
               f"{base.familywise['decision']} for the baseline. "
               f"These embeddings pass {n_ours}/{n_all} checks, the baseline {n_base}. "
               + (f"Passed here but failed by the baseline: {', '.join(gained)}. " if gained else
                  "No check passes here that the baseline fails: Gaussianity cannot be credited "
                  "to training on this evidence. ")
               + (f"Failed here but passed by the baseline: {', '.join(lost)}." if lost else ""))
    return {"summary": summary.strip(), "gained": gained, "lost": lost, "metrics": rows}


def _sci(v: float) -> str:
    return f"{v:.0e}".replace("e-0", "e-")


def _dead_columns(X: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Constant and near-constant columns (SD <= CONSTANT_RTOL × the median column SD, or zero
    to rounding), and the note that names them."""
    sd = X.std(axis=0)
    exact = sd <= 1e-12 * np.maximum(np.abs(X).max(axis=0), 1e-300)
    if exact.all():
        raise ValueError("every feature of `X` is constant: there is nothing to test")
    ref = float(np.median(sd[~exact]))
    near = ~exact & (sd <= CONSTANT_RTOL * ref)
    dropped = np.flatnonzero(exact | near)
    if not dropped.size:
        return dropped, None
    shown = ", ".join(f"{j} ({'constant' if exact[j] else f'SD {sd[j]:.2g}'})"
                      for j in dropped[:20])
    return dropped, (
        f"{dropped.size} constant or near-constant feature(s) dropped from every check (SD <= "
        f"{_sci(CONSTANT_RTOL)} × the median column SD {ref:.3g}; the paper's raw norm CV keeps "
        f"them): {shown}{' …' if dropped.size > 20 else ''}"
    )


def _heldout_sections(
    X: np.ndarray, perm: np.ndarray, n_held: int, *, n_sims: int, n_joint_sims: int, seed: int,
    alpha: float, notes: list[str], skipped: dict[str, str],
) -> tuple[dict | None, dict | None, dict | None, np.ndarray | None]:
    """Whitened held-out coordinates and the joint (exact-law) section."""
    m, d = X.shape
    n_fit = m - n_held
    if n_held < MIN_SAMPLES or n_fit < 2:
        why = (f"the split gives {n_fit} fit and {n_held} held-out rows (need >= {MIN_SAMPLES} "
               "held out); change heldout_fraction or give more data")
        notes.append(f"whitened and joint checks skipped: {why}")
        skipped["whitened"] = skipped["joint"] = why
        return None, None, None, None
    X_fit, X_held = X[np.sort(perm[n_held:])], X[np.sort(perm[:n_held])]
    exact = n_fit > d + 2
    try:
        fit = HeldOutFit.fit(X_fit, "empirical" if exact else "ledoit_wolf")
    except ValueError:
        why = (f"the covariance of the {n_fit}-row fit split is singular on the {d} features "
               "tested (they span fewer dimensions: collinear or duplicated features); the "
               "whitened and exact-law checks need a full-rank covariance, so reduce the "
               "dimension first (e.g. keep the leading principal components)")
        notes.append(f"whitened and joint checks skipped: {why}")
        skipped["whitened"] = skipped["joint"] = why
        return None, None, None, None
    white, qq_white = _test_section(fit.whiten(X_held), null_pass_rates(n_held, n_sims, seed),
                                    1.0 - alpha)
    white["shrinkage"] = fit.shrinkage
    if not exact:
        why = (f"the fit split has {n_fit} rows for {d} features; the exact law needs n_fit > "
               "d + 2 (give more rows or a smaller heldout_fraction)")
        notes.append(
            f"joint F check skipped: {why}; whitening used Ledoit–Wolf shrinkage, so whitened "
            "coordinates are only approximately standardised"
        )
        skipped["joint"] = why
        return white, qq_white, None, None
    joint, m2 = _joint_section(fit, X_held, n_fit, d, n_joint_sims, seed, alpha)
    return white, qq_white, joint, m2


def _resolve_floors(checks: list, fam: dict, joint: dict | None, d: int, seed: int,
                    alpha: float, notes: list[str]) -> bool:
    """When the family rejects nothing but a Monte-Carlo statistic beat every simulation, its
    p-value is only the resolution: extend that null (sequentially, the first simulations
    reused) until the check could be rejected alone. Returns True when something changed."""
    names = floor_checks(checks) if fam["decision"] == "Gaussian" and joint is not None else []
    changed = False
    for name in names:
        key = JOINT_CHECKS[name]
        before = joint["monte_carlo"][key]["n_simulations"]
        two_sided = joint["monte_carlo"][key]["tail"] == "two-sided"
        b = simulations_needed(fam["n_checks"], alpha, two_sided=two_sided)
        if b <= before:
            continue
        logger.info("diagnose: %s is more extreme than all %d simulations; extending its "
                    "null to %d", name, before, b)
        extend_simulations(joint, key, b, d, seed, alpha)
        changed = True
        notes.append(
            f"{name}: the statistic was more extreme than all {before} null simulations, so its "
            "Monte-Carlo "
            f"p-value was only the resolution; the null was extended to {b} simulations (the "
            f"first {before} reused) so that the check can be rejected family-wise on its own"
        )
    return changed


def diagnose(
    X: Any,
    *,
    baseline: Any = None,
    max_samples: int | None = 5000,
    n_projections: int | None = None,
    heldout_fraction: float = 0.5,
    seed: int = 0,
    n_null_simulations: int = 2000,
    n_joint_simulations: int = 199,
    alpha: float = 0.01,
) -> GaussianityReport:
    """How Gaussian are these embeddings, in which sense, and how sure are we?

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings (finite; at least 8 samples and 2 features). Constant and near-constant
        columns (SD at most ``1e-6`` × the median column SD, e.g. dead units) are dropped from
        every check and named in ``report.constant_features``.
    baseline : array-like of shape (n_baseline, n_features_baseline), optional
        Negative control — e.g. the untrained encoder's embeddings of the same inputs. The
        same report is computed for it (same options) and compared.
    max_samples : int or None, default=5000
        Use a seeded random subsample of this many rows (None: all rows). Mardia's
        skewness costs ``O(n² d)``.
    n_projections : int, optional
        Random orthonormal directions tested (default ``min(d, 256)``; must be ``<= d``, and
        is lowered to the number of features left when columns are dropped).
    heldout_fraction : float in (0, 1), default=0.5
        Share of rows held out from the Gaussian fit for the whitened and joint checks.
    seed : int, default=0
        Seeds the subsample, the split, the projections and the null simulations.
    n_null_simulations : int, default=2000
        Exact Gaussian columns simulated to estimate the null pass rates.
    n_joint_simulations : int, default=199
        Exact Gaussian samples simulated for the null laws of the joint statistics
        (:func:`null_joint_ks`). A Monte-Carlo p-value is at least ``1/(B + 1)`` (``2/(B + 1)``
        two-sided, the χ² check); a check whose floor is above ``alpha`` is reported
        "inconclusive", never "pass" (199 keeps both floors at or below 0.01). When the family
        rejects nothing but a joint statistic beat every simulation, its null is extended
        until the check could be rejected on its own.
    alpha : float in (0, 1), default=0.01
        Level of every check and of the family-wise verdict (Holm); null bands cover
        ``1 - alpha``.

    Returns
    -------
    GaussianityReport
        ``verdict`` starts with "Gaussian" or "not Gaussian" (family-wise, at ``alpha``);
        ``checks`` holds each check's status, statistic, null value, pass region, p-value
        and Holm-adjusted p-value.

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
    >>> report.verdict.startswith("Gaussian")
    True
    >>> diagnose(np.random.default_rng(0).exponential(size=(400, 8)),
    ...          n_null_simulations=200).verdict.startswith("not Gaussian")
    True
    """
    if max_samples is not None:
        max_samples = check_positive_int(max_samples, "max_samples", minimum=MIN_SAMPLES)
    heldout_fraction = check_probability(heldout_fraction, "heldout_fraction")
    alpha = check_probability(alpha, "alpha")
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
        k_proj = None  # min(d, 256) of the features left, once dead columns are dropped
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

    dropped, note = _dead_columns(Xs)
    if note:
        notes.append(note)
    live = np.setdiff1d(np.arange(d), dropped)
    Xl = Xs[:, live]  # a copy even when nothing is dropped: the same rounding as before
    dl = live.size
    if k_proj is None:
        k_proj = min(dl, 256)
    elif k_proj > dl:
        notes.append(f"n_projections lowered from {k_proj} to the {dl} features left")
        k_proj = dl

    s = core.stats_from_array(Xl)
    norms = _norm_section(Xs, Xl, s, Xs.mean(axis=0) if dropped.size else s.mean)
    if norms["cv"] < 1e-6:
        notes.append(
            "all norms are equal (L2-normalised embeddings?): the norm CV is uninformative"
        )
    band_level = 1.0 - alpha
    null_m = null_pass_rates(m, n_sims, seed)
    coords, qq_coords = _test_section(Xl, null_m, band_level)
    Q = random_orthonormal(dl, k_proj, seed=[seed, 1])
    projs, qq_projs = _test_section((Xl - s.mean) @ Q, null_m, band_level)

    skipped: dict[str, str] = {}
    perm = rng.permutation(m)
    n_held = int(round(heldout_fraction * m))
    white, qq_white, joint, m2 = _heldout_sections(
        Xl, perm, n_held, n_sims=n_sims, n_joint_sims=n_joint_sims, seed=seed, alpha=alpha,
        notes=notes, skipped=skipped)
    mard = None
    if m > dl + 5:
        try:
            mard = mardia(Xl)
        except ValueError:
            skipped["mardia"] = (f"the covariance of the {m} rows is singular on the {dl} "
                                 "features tested (collinear or duplicated features)")
            notes.append(f"Mardia's statistics skipped: {skipped['mardia']}")
        else:
            if mard["d_over_n"] > 0.05:
                notes.append(
                    f"Mardia's tests are asymptotic and approximate at d/n = {mard['d_over_n']:.2g}"
                )
    else:
        skipped["mardia"] = f"need n > d + 5 (n={m}, d={dl})"
        notes.append(f"Mardia's statistics skipped: {skipped['mardia']}")
    if m < 20:
        notes.append(
            "n < 20: D'Agostino–Pearson's kurtosis part is inaccurate (null rate simulated)"
        )
    notes.append(
        f"pass-rate checks use one-sided Binomial(k, p0) p-values and null bands are central "
        f"{band_level:.0%} Binomial(k, p0) ranges: exact for independent columns, a guide for "
        "correlated raw coordinates"
    )

    def decide() -> tuple[list, dict]:
        cks = make_checks(norms, coords, projs, white, joint, mard, alpha=alpha, skipped=skipped)
        return cks, familywise(cks, alpha)

    checks, fam = decide()
    if _resolve_floors(checks, fam, joint, dl, seed, alpha, notes):
        checks, fam = decide()
    verdict_text, reasons = verdict(checks, fam)
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
            "alpha": alpha,
            "band_level": band_level,
            "test_alpha": TEST_ALPHA,
            "constant_rtol": CONSTANT_RTOL,
            "versions": _versions(),
        },
        norms=norms,
        coordinates=coords,
        projections=projs,
        whitened=white,
        joint=joint,
        mardia=mard,
        constant_features=dropped.tolist(),
        checks=checks,
        verdict=verdict_text,
        reasons=reasons,
        notes=notes,
        familywise=fam,
        arrays={
            "norms": np.linalg.norm(Xs, axis=1),
            # what the norm check tests (its CV against the covariance-implied one)
            "norms_centered": np.linalg.norm(Xl - s.mean, axis=1),
            "qq_coordinates": {**qq_coords, "index": live[qq_coords["index"]]},
            "qq_projections": qq_projs,
            "qq_whitened": qq_white,
            "m2": m2,
            "n_fit": m - n_held,
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
                alpha=alpha,
            )
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"`baseline`: {exc}") from exc
        report.baseline = base
        report.comparison = _comparison(report, base)
    return report
