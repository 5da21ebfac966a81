r"""Calibration laws, each in one place: rank p-values, conformal thresholds, multiplicity
corrections and binomial intervals (numpy and scipy only).

Everything in infogauss that turns scores into decisions with a stated error rate uses these
functions, so the formulas exist once:

* :func:`rank_pvalues` — the rank (split-conformal, or Monte-Carlo) p-value
  :math:`p = (1 + \#\{r \in R : r \text{ at least as extreme as } s\}) / (|R| + 1)`;
* :func:`conformal_pvalues` — the same for scores where *higher = more normal*;
* :func:`monte_carlo_pvalue` — one- or two-sided rank p-value of a statistic against
  simulated null statistics, with its resolution :func:`monte_carlo_resolution`;
* :func:`conformal_threshold` and :func:`min_calibration_size` — the decision rule that flags
  at most a fraction ``alpha`` of exchangeable in-distribution points, and how many
  calibration points it needs;
* :func:`sidak`, :func:`holm` — multiplicity corrections;
* :func:`binomial_interval`, :func:`binomial_band` — intervals of observed rates.

Guarantee: for a calibration set exchangeable with a new in-distribution point,
:math:`P(p \le \alpha) \le \alpha` for the conformal p-value (ties count against the test
point, so it is conservative), and :func:`conformal_threshold` flags with probability at most
``alpha`` (Vovk et al. 2005; Bates et al. 2023).
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np
from scipy import stats

from ._validation import check_positive_int, check_probability

__all__ = [
    "rank_pvalues",
    "rank_pvalue_from_count",
    "conformal_pvalues",
    "monte_carlo_pvalue",
    "monte_carlo_resolution",
    "conformal_threshold",
    "min_calibration_size",
    "check_calibration_size",
    "holdout_split",
    "sidak",
    "holm",
    "binomial_interval",
    "binomial_band",
]


# --------------------------------------------------------------------------------------
# Rank p-values
# --------------------------------------------------------------------------------------
def rank_pvalues(reference: Any, statistics: Any, *, larger_is_extreme: bool = True) -> np.ndarray:
    r"""Rank p-values of ``statistics`` against a reference sample of the same statistic.

    Parameters
    ----------
    reference : array-like of shape (n_ref,)
        The statistic on reference points (calibration data, or simulations under the null).
        Must be finite.
    statistics : array-like
        The statistic on the points to test. NaN is refused.
    larger_is_extreme : bool, default=True
        True: a large statistic is evidence against the null (a distance, a test statistic);
        False: a small one is (a similarity, a log-likelihood).

    Returns
    -------
    ndarray, the shape of ``statistics``
        :math:`(1 + \#\{i : r_i \ge t\}) / (n_{ref} + 1)` (or :math:`r_i \le t` when
        ``larger_is_extreme=False``): ties count against the tested point, so for a point
        exchangeable with the reference, :math:`P(p \le \alpha) \le \alpha`. The smallest
        possible value is :math:`1/(n_{ref}+1)`.

    Examples
    --------
    >>> rank_pvalues([1.0, 2.0, 3.0], [0.5, 2.0, 9.0]).tolist()
    [1.0, 0.75, 0.25]
    """
    return _rank(reference, statistics, larger_is_extreme, ("reference", "statistics"))


def _rank(reference: Any, statistics: Any, larger_is_extreme: bool, names: tuple) -> np.ndarray:
    """:func:`rank_pvalues`, with errors naming the caller's arguments ``names``."""
    ref = _finite_1d(reference, names[0])
    t = _real(statistics, names[1])
    if np.isnan(t).any():
        raise ValueError(
            f"`{names[1]}` must not contain NaN (a NaN score has no rank; it would get p = 1, "
            "the most typical value possible); remove or impute those rows first"
        )
    ref = np.sort(ref)
    if larger_is_extreme:
        count = ref.shape[0] - np.searchsorted(ref, t, side="left")  # #{r >= t}
    else:
        count = np.searchsorted(ref, t, side="right")  # #{r <= t}
    return rank_pvalue_from_count(count, ref.shape[0])


def rank_pvalue_from_count(count: Any, n_reference: int) -> np.ndarray:
    r"""The rank p-value :math:`(1 + c) / (n + 1)` from the count ``c`` of reference values at
    least as extreme (for callers that keep counts, e.g. a histogram of a large null)."""
    return (1.0 + np.asarray(count, dtype=np.float64)) / (float(n_reference) + 1.0)


def conformal_pvalues(calibration_scores: Any, scores: Any) -> np.ndarray:
    r"""Split-conformal p-values from in-distribution calibration scores.

    Parameters
    ----------
    calibration_scores : array-like of shape (n_cal,)
        Scores (higher = more in-distribution) of held-out in-distribution points.
    scores : array-like of shape (n,)
        Scores of the points to test, on the same scale.

    Returns
    -------
    ndarray of shape (n,)
        :math:`p(x) = \big(1 + \#\{i : s_i \le \text{score}(x)\}\big) / (n_{cal} + 1)`, the rank
        p-value (:func:`rank_pvalues`) of the nonconformity :math:`-\text{score}` (Bates et al.,
        2023); ties count against the test point, so the p-value is conservative. For an
        exchangeable in-distribution point, :math:`P(p \le \alpha) \le \alpha`.

    Raises
    ------
    ValueError
        If a calibration score is not finite, or a test score is NaN.

    Examples
    --------
    >>> conformal_pvalues([1.0, 2.0, 3.0], [0.5, 2.0, 9.0]).tolist()
    [0.25, 0.75, 1.0]
    """
    return _rank(calibration_scores, scores, False, ("calibration_scores", "scores"))


def monte_carlo_resolution(n_simulations: int, *, two_sided: bool = False) -> float:
    """The smallest p-value :func:`monte_carlo_pvalue` can return with ``n_simulations``.

    A test at level ``alpha`` can only reject when this is ``<= alpha``; below that the check
    is inconclusive by construction, never a pass.

    Examples
    --------
    >>> monte_carlo_resolution(99), monte_carlo_resolution(99, two_sided=True)
    (0.01, 0.02)
    """
    floor = 1.0 / (check_positive_int(n_simulations, "n_simulations", minimum=0) + 1.0)
    return min(1.0, 2.0 * floor) if two_sided else floor


def monte_carlo_pvalue(null: Any, statistic: float, *, tail: str = "upper") -> float:
    r"""Rank p-value of one observed statistic against simulated null statistics.

    Parameters
    ----------
    null : array-like of shape (n_simulations,)
        The statistic on data simulated under the null hypothesis.
    statistic : float
        The observed statistic.
    tail : {"upper", "lower", "two-sided"}, default="upper"
        Which values count as extreme. ``"two-sided"`` doubles the smaller one-sided p-value
        (capped at 1).

    Returns
    -------
    float
        :math:`(1 + \#\{\text{null} \ge t\}) / (B + 1)` for ``"upper"``; at least
        :func:`monte_carlo_resolution` of ``B``.

    Examples
    --------
    >>> monte_carlo_pvalue(np.arange(99.0), 1000.0), monte_carlo_pvalue(np.arange(99.0), -1.0)
    (0.01, 1.0)
    """
    if tail not in ("upper", "lower", "two-sided"):
        raise ValueError(f"`tail` must be 'upper', 'lower' or 'two-sided', got {tail!r}")
    upper = float(rank_pvalues(null, [statistic], larger_is_extreme=True)[0])
    if tail == "upper":
        return upper
    lower = float(rank_pvalues(null, [statistic], larger_is_extreme=False)[0])
    return lower if tail == "lower" else min(1.0, 2.0 * min(upper, lower))


# --------------------------------------------------------------------------------------
# Conformal decisions
# --------------------------------------------------------------------------------------
def min_calibration_size(alpha: float) -> int:
    """Smallest calibration set for which split-conformal p-values can reach ``alpha``.

    The smallest conformal p-value is ``1 / (n_cal + 1)``, so ``n_cal >= ceil(1/alpha) - 1``
    points are needed for any decision at level ``alpha``.

    Examples
    --------
    >>> min_calibration_size(0.05), min_calibration_size(0.01), min_calibration_size(0.3)
    (19, 99, 3)
    """
    a = check_probability(alpha, "alpha")
    n = max(math.ceil(1.0 / a) - 1, 1)
    # the same floating-point comparison the p-values use: 1 / (n + 1) <= alpha
    while n > 1 and 1.0 / n <= a:
        n -= 1
    while 1.0 / (n + 1) > a:
        n += 1
    return n


def check_calibration_size(n_cal: int, alpha: float, name: str = "alpha") -> None:
    """Raise a ValueError naming ``name`` when ``n_cal`` points cannot reach level ``alpha``."""
    need = min_calibration_size(alpha)
    if n_cal < need:
        raise ValueError(
            f"the calibration set is too small for `{name}`={alpha!r}: split-conformal p-values "
            f"are at least 1/(n_calibration + 1), so level {alpha!r} needs at least "
            f"ceil(1/alpha) - 1 = {need} calibration points, got {n_cal}. Calibrate on more "
            "held-out in-distribution points or use a larger level"
        )


def conformal_threshold(calibration_scores: Any, alpha: float, *, name: str = "alpha") -> float:
    r"""Score threshold of the split-conformal decision at level ``alpha``.

    Parameters
    ----------
    calibration_scores : array-like of shape (n_cal,)
        Finite scores (higher = more in-distribution) of held-out in-distribution points.
    alpha : float in (0, 1)
        Target false-alarm rate.
    name : str, default="alpha"
        How ``alpha`` is named in errors (e.g. ``"contamination"``).

    Returns
    -------
    float
        ``t`` such that "flag iff score < t" is exactly "flag iff conformal p-value <= alpha":
        ``t`` is the calibration score of rank ``m + 1``, with ``m`` the largest count for which
        ``(1 + m) / (n_cal + 1) <= alpha``.

    Examples
    --------
    >>> conformal_threshold(np.arange(1.0, 20.0), 0.05)   # n = 19: flag below the minimum
    1.0
    """
    cal = np.sort(_finite_1d(calibration_scores, "calibration_scores"))
    check_calibration_size(cal.shape[0], alpha, name)
    counts = np.arange(cal.shape[0])
    m = int(np.flatnonzero((1.0 + counts) / (cal.shape[0] + 1.0) <= alpha)[-1])
    return float(cal[m])


def holdout_split(
    n: int,
    alpha: float,
    size: float | int,
    rng: Any,
    *,
    min_fit: int = 2,
    codes: np.ndarray | None = None,
    what: str = "the threshold",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows to fit on and rows to hold out for split-conformal calibration at level ``alpha``.

    Parameters
    ----------
    n : int
        Number of rows.
    alpha : float
        The level the calibration must reach (the held-out count is raised to
        :func:`min_calibration_size` of it).
    size : float in (0, 1) or int
        Share or number of rows to hold out.
    rng : numpy RandomState or Generator
        Draws the split.
    min_fit : int, default=2
        Fewest rows to fit on; the fitting part is also never smaller than the held-out one.
    codes : ndarray of shape (n,), optional
        Integer class codes: the split is stratified and keeps one row of every class to fit.
    what : str
        Named in the warning (e.g. ``"`offset_`"``).

    Returns
    -------
    fit_idx : ndarray
    cal_idx : ndarray or None
        None when ``n`` is too small to hold out enough rows: then a UserWarning says the
        result is not calibrated, and ``fit_idx`` is every row.
    """
    everything = np.arange(n)
    need = min_calibration_size(alpha)
    want = int(size) if isinstance(size, numbers.Integral) else math.ceil(float(size) * n)
    n_cal = max(want, need)
    min_fit = max(int(min_fit), n_cal, 2)
    if codes is not None:
        min_fit = max(min_fit, int(codes.max()) + 1)
    if n - n_cal < min_fit:
        warnings.warn(
            f"calibration='split' would hold out {n_cal} of the {n} rows of X (level {alpha} "
            f"needs at least {need} held-out points) and fit on the rest, which needs at least "
            f"{min_fit} rows: too few rows, so the estimator is fitted on all of X and "
            f"{what} is the training-score quantile, WITHOUT the false-alarm guarantee. Pass "
            "more data, or calibrate on held-out in-distribution data",
            UserWarning,
            stacklevel=4,
        )
        return everything, None
    if codes is None:
        perm = rng.permutation(n)
        return np.sort(perm[n_cal:]), np.sort(perm[:n_cal])
    return _stratified_split(codes, n_cal, rng)


def _stratified_split(codes: np.ndarray, n_cal: int, rng: Any) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``n_cal`` rows, in proportion to each class, keeping >= 1 row of every class."""
    n = codes.shape[0]
    counts = np.bincount(codes)
    room = np.maximum(counts - 1, 0)
    if room.sum() < n_cal:
        raise ValueError(
            f"calibration='split' needs {n_cal} held-out rows while keeping one row of each "
            f"class to fit on, but only {int(room.sum())} can be held out; pass more data or "
            "calibration=None"
        )
    share = n_cal * counts / n
    take = np.minimum(np.floor(share).astype(int), room)
    for k in np.argsort(-(share - np.floor(share)), kind="stable"):  # largest remainders first
        while take.sum() < n_cal and take[k] < room[k] and take[k] < np.ceil(share[k]):
            take[k] += 1
    for k in np.argsort(-room, kind="stable"):  # then wherever there is room
        while take.sum() < n_cal and take[k] < room[k]:
            take[k] += 1
    cal = np.concatenate([rng.permutation(np.flatnonzero(codes == k))[: take[k]]
                          for k in range(counts.shape[0])])  # fmt: skip
    mask = np.zeros(n, dtype=bool)
    mask[cal] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


# --------------------------------------------------------------------------------------
# Multiplicity
# --------------------------------------------------------------------------------------
def sidak(pvalues: Any, n: int) -> np.ndarray:
    r"""Šidák correction :math:`1-(1-p)^n` for the best of ``n`` independent comparisons.

    Computed as ``-expm1(n * log1p(-p))``, accurate for tiny ``p`` (where it is ``≈ n p``) and
    exact for independent comparisons.

    Examples
    --------
    >>> round(float(sidak(1e-12, 1000)) / 1e-9, 6)   # naive 1-(1-p)**n: 0.99998
    1.0
    """
    n = check_positive_int(n, "n")
    p = np.clip(np.asarray(pvalues, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        return 0.0 - np.expm1(n * np.log1p(-p))


def holm(pvalues: Any) -> np.ndarray:
    r"""Holm's step-down adjusted p-values (family-wise error control, any dependence).

    Parameters
    ----------
    pvalues : array-like of shape (m,)

    Returns
    -------
    ndarray of shape (m,)
        Adjusted p-values in the input order: reject hypothesis ``i`` at family-wise level
        ``alpha`` iff ``adjusted[i] <= alpha``. NaN entries (checks that did not run) stay NaN
        and do not count in ``m``.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim > 1:
        raise ValueError(f"`pvalues` must be a 1-D array of shape (m,), got shape {p.shape}")
    p = p.ravel()
    if np.any((p < 0) | (p > 1)):
        bad = int(np.flatnonzero((p < 0) | (p > 1))[0])
        raise ValueError(
            f"`pvalues` must lie in [0, 1] (NaN marks a check that did not run), got {p[bad]} "
            f"at index {bad}"
        )
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


# --------------------------------------------------------------------------------------
# Binomial intervals
# --------------------------------------------------------------------------------------
def binomial_interval(k: int, n: int, *, level: float = 0.95, method: str = "exact") -> list[float]:
    """Confidence interval of a rate from ``k`` successes in ``n`` trials.

    Parameters
    ----------
    k, n : int
    level : float, default=0.95
    method : {"exact", "wilson"}
        ``"exact"``: Clopper–Pearson (never below its nominal coverage); ``"wilson"``: the
        Wilson score interval (shorter, near-nominal coverage).

    Returns
    -------
    list of two floats
        ``[low, high]``; ``[0, 1]`` when ``n == 0``.

    Examples
    --------
    >>> [round(v, 4) for v in binomial_interval(5, 100)]
    [0.0164, 0.1128]
    """
    k = check_positive_int(k, "k", minimum=0)
    n = check_positive_int(n, "n", minimum=0)
    if k > n:
        raise ValueError(
            f"`k` must be at most `n` (need 0 <= k <= n: k successes of n trials), got k={k}, "
            f"n={n}"
        )
    check_probability(level, "level")
    if n == 0:
        return [0.0, 1.0]
    if method == "exact":
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
        return [float(ci.low), float(ci.high)]
    if method != "wilson":
        raise ValueError(f"`method` must be 'exact' or 'wilson', got {method!r}")
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return [max(0.0, centre - half), min(1.0, centre + half)]


def binomial_band(p0: float, n: int, *, level: float = 0.95) -> list[float]:
    """Central ``level`` range of an observed rate when the true rate is ``p0``.

    Returns ``[ppf((1-level)/2), ppf(1-(1-level)/2)] / n`` of Binomial(n, p0): where the observed
    fraction of ``n`` independent trials lands with probability at least ``level``.

    Examples
    --------
    >>> binomial_band(0.05, 1000)
    [0.037, 0.064]
    """
    check_probability(p0, "p0", open_left=False, open_right=False)
    check_probability(level, "level")
    n = check_positive_int(n, "n")
    tail = (1.0 - level) / 2.0
    return [float(stats.binom.ppf(tail, n, p0)) / n, float(stats.binom.ppf(1.0 - tail, n, p0)) / n]


def _real(x: Any, name: str) -> np.ndarray:
    """``x`` as a float64 array; complex, string and other non-numbers refused (TypeError)."""
    raw = np.asarray(x)
    if raw.dtype.kind == "c":
        raise TypeError(f"`{name}` must be real-valued, got complex dtype {raw.dtype}")
    if raw.dtype.kind not in "biufO":
        raise TypeError(f"`{name}` must hold numbers, got dtype {raw.dtype}")
    try:
        return raw.astype(np.float64, copy=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`{name}` must hold numbers, got dtype {raw.dtype} ({exc})") from None


def _finite_1d(x: Any, name: str) -> np.ndarray:
    a = _real(x, name).ravel()
    if a.size == 0:
        raise ValueError(f"`{name}` must hold at least one value, got none")
    if not np.isfinite(a).all():
        bad = int(np.flatnonzero(~np.isfinite(a))[0])
        raise ValueError(
            f"`{name}` must be finite, got {a[bad]} at index {bad}; remove non-finite scores "
            "before calibrating"
        )
    return a
