r"""OOD-detection metrics (see infogauss.metrics).

Convention: every function takes **scores where higher = more in-distribution** (scikit-learn's
``score_samples``/``decision_function``, :meth:`infogauss.MahalanobisOOD.score_samples`) for
the in-distribution points (``scores_in``) and the out-of-distribution points
(``scores_out``). A point is *accepted* as in-distribution at threshold ``t`` when its score
is ``>= t``. For PyOD detectors (higher = more abnormal) pass ``-decision_function(X)``.

All curves are computed from one sort of the pooled scores (:func:`ood_roc_curve`); ties are
handled exactly: tied scores move together across a threshold, as in scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from .._validation import check_float_array, check_probability, reject_device_tensor
from ..calibration import binomial_band, binomial_interval

__all__ = [
    "ood_roc_curve",
    "auroc",
    "aupr_in",
    "aupr_out",
    "fpr_at_tpr",
    "detection_error",
    "empirical_fpr",
    "ood_report",
]


def _scores(x: Any, name: str) -> np.ndarray:
    return check_float_array(x, name, ndim=1, dtype=np.float64)


def _cumulative(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct thresholds (descending) and the counts of ``pos``/``neg`` scores ``>=`` each."""
    scores = np.concatenate([pos, neg])
    is_pos = np.concatenate([np.ones(pos.shape[0]), np.zeros(neg.shape[0])])
    order = np.argsort(-scores, kind="mergesort")
    scores, is_pos = scores[order], is_pos[order]
    # last index of each run of equal scores
    last = np.r_[np.flatnonzero(np.diff(scores)), scores.shape[0] - 1]
    tp = np.cumsum(is_pos)[last]
    fp = (last + 1) - tp
    return scores[last], tp, fp


def ood_roc_curve(scores_in: Any, scores_out: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve with in-distribution as the positive class.

    Parameters
    ----------
    scores_in : array-like of shape (n_in,)
        Scores of in-distribution points (higher = more in-distribution).
    scores_out : array-like of shape (n_out,)
        Scores of out-of-distribution points.

    Returns
    -------
    fpr : ndarray of shape (n_thresholds + 1,)
        Fraction of OOD points accepted (score >= threshold), starting at 0.
    tpr : ndarray of shape (n_thresholds + 1,)
        Fraction of in-distribution points accepted, starting at 0.
    thresholds : ndarray of shape (n_thresholds + 1,)
        Decreasing distinct scores, preceded by ``+inf``.

    Examples
    --------
    >>> fpr, tpr, thr = ood_roc_curve([3.0, 2.0], [1.0])
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.0, 1.0], [0.0, 0.5, 1.0, 1.0])
    """
    s_in, s_out = _scores(scores_in, "scores_in"), _scores(scores_out, "scores_out")
    thr, tp, fp = _cumulative(s_in, s_out)
    return (
        np.r_[0.0, fp / s_out.shape[0]],
        np.r_[0.0, tp / s_in.shape[0]],
        np.r_[np.inf, thr],
    )


def auroc(scores_in: Any, scores_out: Any) -> float:
    """Area under the ROC curve, in-distribution as the positive class.

    Equals ``P(score_in > score_out) + ½ P(score_in == score_out)`` and
    ``sklearn.metrics.roc_auc_score(np.r_[ones(n_in), zeros(n_out)], np.r_[scores_in,
    scores_out])``.

    Returns
    -------
    float in [0, 1]
        1 = perfect separation, 0.5 = chance.

    Examples
    --------
    >>> auroc([3.0, 2.0], [1.0, 2.0])
    0.875
    """
    s_in, s_out = _scores(scores_in, "scores_in"), _scores(scores_out, "scores_out")
    _, tp, fp = _cumulative(s_in, s_out)
    tp, fp = np.r_[0.0, tp], np.r_[0.0, fp]
    area = np.sum(np.diff(fp) * (tp[1:] + tp[:-1])) / 2.0  # trapezoids: ties count half
    return float(area / (s_in.shape[0] * s_out.shape[0]))


def _average_precision(pos: np.ndarray, neg: np.ndarray) -> float:
    _, tp, fp = _cumulative(pos, neg)
    precision = tp / (tp + fp)
    recall = np.r_[0.0, tp / pos.shape[0]]
    return float(np.sum(np.diff(recall) * precision))


def aupr_in(scores_in: Any, scores_out: Any) -> float:
    """Average precision with in-distribution as the positive class (AUPR-In).

    ``Σ_k (R_k − R_{k−1}) P_k`` over decreasing distinct thresholds, as
    ``sklearn.metrics.average_precision_score(is_in, scores)``.

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> aupr_in([3.0, 2.0], [1.0])
    1.0
    """
    return _average_precision(_scores(scores_in, "scores_in"), _scores(scores_out, "scores_out"))


def aupr_out(scores_in: Any, scores_out: Any) -> float:
    """Average precision with OOD as the positive class, ranked by ``-score`` (AUPR-Out).

    Equals ``sklearn.metrics.average_precision_score(is_out, -scores)``.

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> aupr_out([3.0, 2.0], [1.0])
    1.0
    """
    s_in, s_out = _scores(scores_in, "scores_in"), _scores(scores_out, "scores_out")
    return _average_precision(-s_out, -s_in)


def fpr_at_tpr(scores_in: Any, scores_out: Any, tpr: float = 0.95) -> float:
    """FPR@TPR (FPR@95TPR by default): fraction of OOD points accepted at the threshold that
    keeps ``tpr`` of the in-distribution points.

    The threshold is the largest score ``t`` with ``#{scores_in >= t} / n_in >= tpr``
    (the OpenOOD / SSD convention: the first ROC point whose TPR reaches ``tpr``); the result
    is ``#{scores_out >= t} / n_out``. Ties are exact: OOD points tied with ``t`` count as
    accepted, and tied in-distribution points may push the achieved TPR above ``tpr``.

    Parameters
    ----------
    scores_in, scores_out : array-like
        Higher = more in-distribution.
    tpr : float in (0, 1], default=0.95

    Returns
    -------
    float in [0, 1]
        Lower is better.

    Examples
    --------
    >>> fpr_at_tpr(np.arange(100.0), [50.0, 4.0, 5.0, 6.0])   # t = 5: accepts 50, 5, 6
    0.75
    """
    level = check_probability(tpr, "tpr", open_right=False)
    s_in, s_out = _scores(scores_in, "scores_in"), _scores(scores_out, "scores_out")
    _, tp, fp = _cumulative(s_in, s_out)
    i = int(np.argmax(tp / s_in.shape[0] >= level))
    return float(fp[i] / s_out.shape[0])


def detection_error(scores_in: Any, scores_out: Any) -> float:
    """Minimum over thresholds of ``½ (1 − TPR) + ½ FPR`` (Liang et al., 2018, ODIN).

    The misclassification rate of the best single threshold when in-distribution and OOD
    points are equally likely (accept-all and reject-all included, so it is at most 0.5).

    Examples
    --------
    >>> detection_error([3.0, 2.0], [1.0, 2.5])
    0.25
    """
    fpr, tpr, _ = ood_roc_curve(scores_in, scores_out)
    return float(np.min(0.5 * (1.0 - tpr) + 0.5 * fpr))


def empirical_fpr(flagged: Any, alpha: float, *, confidence: float = 0.95) -> dict[str, Any]:
    """Empirical false-alarm rate of calibrated decisions on in-distribution data vs ``alpha``.

    Parameters
    ----------
    flagged : array-like of bool, shape (n,)
        For held-out **in-distribution** points: True where the detector flagged the point as
        OOD (e.g. ``det.predict(X_in, alpha=a) == -1`` or ``det.pvalues(X_in) <= a``).
    alpha : float in (0, 1)
        Nominal level of the decisions.
    confidence : float in (0, 1), default=0.95
        Level of both intervals.

    Returns
    -------
    dict
        ``alpha``, ``fpr`` (fraction flagged), ``n``, ``n_flagged``;
        ``interval_low``/``interval_high``: central binomial interval of the FPR that ``n``
        points give when the true rate is exactly ``alpha``, and ``within_interval``;
        ``ci_low``/``ci_high``: Clopper–Pearson interval of the true rate;
        ``pvalue_exceeds``: one-sided binomial p-value of "true rate <= alpha"
        (``P(Binom(n, alpha) >= n_flagged)``); ``confidence``.

    Examples
    --------
    >>> r = empirical_fpr(np.arange(1000) < 50, 0.05)
    >>> r["fpr"], r["within_interval"]
    (0.05, True)
    """
    reject_device_tensor(flagged, "flagged")
    f = np.asarray(flagged)
    if f.dtype != np.bool_:
        raise TypeError(
            f"`flagged` must be a boolean array (True = flagged as OOD, e.g. "
            f"predict(X) == -1), got dtype {f.dtype}"
        )
    if f.ndim != 1 or f.shape[0] == 0:
        raise ValueError(f"`flagged` must be a non-empty 1-D array, got shape {f.shape}")
    a = check_probability(alpha, "alpha")
    c = check_probability(confidence, "confidence")
    n, k = int(f.shape[0]), int(f.sum())
    lo, hi = binomial_band(a, n, level=c)
    ci_low, ci_high = binomial_interval(k, n, level=c, method="exact")
    fpr = k / n
    return {
        "alpha": a,
        "fpr": fpr,
        "n": n,
        "n_flagged": k,
        "interval_low": lo,
        "interval_high": hi,
        "within_interval": bool(lo <= fpr <= hi),
        "ci_low": ci_low,
        "ci_high": ci_high,
        "pvalue_exceeds": float(stats.binom.sf(k - 1, n, a)),
        "confidence": c,
    }


def ood_report(scores_in: Any, scores_out: Any, *, tpr: float = 0.95) -> dict[str, float]:
    """All threshold-free OOD metrics at once.

    Returns
    -------
    dict
        ``auroc``, ``aupr_in``, ``aupr_out``, ``fpr_at_tpr`` (at ``tpr``, 0.95 = FPR95),
        ``tpr``, ``detection_error``, ``n_in``, ``n_out``. Scores: higher = more
        in-distribution.

    Examples
    --------
    >>> r = ood_report([3.0, 2.0, 1.5], [1.0, 0.0])
    >>> r["auroc"], r["fpr_at_tpr"]
    (1.0, 0.0)
    """
    s_in, s_out = _scores(scores_in, "scores_in"), _scores(scores_out, "scores_out")
    return {
        "auroc": auroc(s_in, s_out),
        "aupr_in": aupr_in(s_in, s_out),
        "aupr_out": aupr_out(s_in, s_out),
        "fpr_at_tpr": fpr_at_tpr(s_in, s_out, tpr),
        "tpr": float(tpr),
        "detection_error": detection_error(s_in, s_out),
        "n_in": int(s_in.shape[0]),
        "n_out": int(s_out.shape[0]),
    }
