r"""Choosing an OOD detector from in-distribution data only: leave-group-out validation.

No OOD data are available when a detector is chosen (and any OOD set used to choose would
make the benchmark on it optimistic). What in-distribution data *can* tell is how well a
detector flags a region of the data it has not seen: each group of the in-distribution data —
a class when labels are given, else a k-means cluster — is held out in turn, every candidate
is fitted on the other groups, and it scores held-out rows of the other groups (new
in-distribution data) against the held-out group (data from a region it never saw). The
candidates are ranked by their mean AUROC over the groups. This is a proxy for *near* OOD
(new classes from the same source); far-OOD sets are usually easier for every detector.

The proxy is noisy: with five or six groups, candidates often differ by less than the spread of
their per-group differences. By default (``rule="one_se"``, the one-standard-error rule of
Breiman et al., 1984) the choice is the first candidate, in ``candidates`` order, whose mean
AUROC is below the best one's by at most the standard error of their paired per-group
differences; ``rule="best"`` takes the best mean. The default candidates put ``kde`` first (the
highest mean AUROC over the sets of ``infogauss bench ood_suite``, BENCHMARKS.md), then the
Gaussian models from the simplest up, so that a difference the validation cannot resolve goes
to the detector that held up best there, or else to the simpler model.

:func:`select_detector` never sees anything but the rows passed to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import clone

from .._validation import check_matrix_like, check_positive_int
from ..metrics import auroc

__all__ = ["select_detector", "default_candidates", "SelectionResult", "RULES"]

RULES = ("one_se", "best")


def default_candidates(n_rows: int, labelled: bool) -> dict[str, Any]:
    """The detectors :func:`select_detector` compares by default (unfitted, uncalibrated), in
    the order of preference of its one-standard-error rule.

    ``kde`` (a Gaussian kernel density with Ledoit–Wolf kernels and the leave-one-out
    bandwidth: first, the highest mean AUROC across the OOD suite), ``global``, ``cluster`` (k-means,
    10 components), ``mixture`` (shrunk Gaussians with one tied covariance, the count
    chosen by held-out likelihood, 10 k-means restarts averaged), ``local`` (local Gaussian of the
    ``min(50, n/10)`` nearest rows), ``norm_aware`` (a Gaussian of the directions plus the
    log-norm) and, with labels, ``class`` (tied covariance). Direction-only detectors
    (``LocalGaussianOOD(metric="cosine")``, Gaussians of L2-normalised rows) are left out on
    purpose: k-means groups of round data are angular wedges, which a direction-only detector
    flags best, so the validation would favour a detector that is blind to the norm — and an
    OOD set far out along a training direction (a large norm) would then look typical. Pass
    them in ``candidates`` when the norm carries no meaning for your embeddings.
    """
    from ._detector import MahalanobisOOD
    from ._kde import KernelDensityOOD
    from ._local import LocalGaussianOOD
    from ._mixture import GaussianMixtureOOD
    from ._norm import NormAwareOOD

    k = int(max(5, min(50, n_rows // 10)))
    out = {
        "kde": KernelDensityOOD(calibration=None, random_state=0),
        "global": MahalanobisOOD(calibration=None),
        "cluster": MahalanobisOOD(method="cluster", n_clusters=10, calibration=None,
                                  random_state=0),  # fmt: skip
        "mixture": GaussianMixtureOOD(n_components="auto", tied=True, n_restarts=10,
                                      calibration=None, random_state=0),  # fmt: skip
        "local": LocalGaussianOOD(n_neighbors=k, calibration=None),
        "norm_aware": NormAwareOOD(calibration=None, random_state=0),
    }
    if labelled:
        out["class"] = MahalanobisOOD(method="class", calibration=None)
    return out


@dataclass
class SelectionResult:
    """What :func:`select_detector` found.

    Attributes
    ----------
    best : str
        Name of the chosen candidate.
    scores : dict of str to float
        Mean leave-group-out AUROC of each candidate (NaN when it failed on every group).
    per_group : dict of str to list of float
        The AUROC of each candidate on each held-out group.
    errors : dict of str to str
        Candidates that raised, with the first error.
    groups : str
        ``"labels"`` or ``"k-means"``.
    rule : str
        ``"one_se"`` or ``"best"``.
    top : str
        The candidate with the best mean AUROC (``best`` unless the one-SE rule chose another).
    within_one_se : list of str
        Candidates whose mean is below the top one's by at most the standard error of their
        paired per-group differences (in ``candidates`` order; the top one included).
    estimator : object or None
        The chosen candidate refitted on all rows (``refit=True``), with its default
        calibration restored.
    """

    best: str
    scores: dict[str, float]
    per_group: dict[str, list[float]]
    errors: dict[str, str] = field(default_factory=dict)
    groups: str = "k-means"
    estimator: Any = None
    rule: str = "one_se"
    top: str = ""
    within_one_se: list[str] = field(default_factory=list)


def _groups(X: np.ndarray, y: np.ndarray | None, n_groups: int, seed: int) -> tuple[np.ndarray, str]:
    if y is not None and np.unique(y).size >= 3:
        return np.unique(y, return_inverse=True)[1], "labels"
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=n_groups, n_init=3, random_state=seed).fit(X)
    return km.labels_, "k-means"


def select_detector(
    X: Any,
    y: Any = None,
    *,
    candidates: dict[str, Any] | None = None,
    n_groups: int = 5,
    max_rows: int = 4000,
    holdout: float = 0.2,
    refit: bool = True,
    rule: str = "one_se",
    random_state: int = 0,
) -> SelectionResult:
    """Choose an OOD detector by leave-group-out validation on in-distribution data.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        In-distribution data only (module notes).
    y : array-like of shape (n_samples,), optional
        Class labels: the held-out groups are the classes (at least 3), and candidates that
        take labels (``method="class"``) get them. Otherwise ``n_groups`` k-means clusters.
    candidates : dict of str to estimator, optional
        Unfitted detectors with ``fit`` and ``score_samples`` (higher = more
        in-distribution); cloned for every fit. Default: :func:`default_candidates`.
    n_groups : int >= 2, default=5
        k-means clusters when no labels are given.
    max_rows : int, default=4000
        Rows used for the validation (a random subsample; the refit uses all rows).
    holdout : float in (0, 1), default=0.2
        Share of each fitting part held out as new in-distribution data.
    refit : bool, default=True
        Refit the chosen candidate on all of ``X`` (with its default calibration).
    rule : {"one_se", "best"}, default="one_se"
        ``"one_se"``: the first candidate (in ``candidates`` order) within one standard error
        of the best mean (module notes); ``"best"``: the best mean AUROC.
    random_state : int, default=0

    Returns
    -------
    SelectionResult
    """
    X = np.asarray(X, dtype=np.float64)
    check_matrix_like(X, "X", min_samples=20)
    n_groups = check_positive_int(n_groups, "n_groups", minimum=2)
    max_rows = check_positive_int(max_rows, "max_rows", minimum=20)
    if not (0 < holdout < 1):
        raise ValueError(f"`holdout` must lie in (0, 1), got {holdout!r}")
    if rule not in RULES:
        raise ValueError(f"`rule` must be one of {RULES}, got {rule!r}")
    if y is not None:
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"`y` must have one label per row of X ({X.shape[0]}), got shape "
                             f"{y.shape}")  # fmt: skip
    rng = np.random.default_rng(random_state)
    rows = np.sort(rng.permutation(X.shape[0])[:max_rows])
    Xs, ys = X[rows], (None if y is None else y[rows])
    group, kind = _groups(Xs, ys, n_groups, random_state)
    cands = default_candidates(Xs.shape[0], ys is not None) if candidates is None else candidates
    by_group: dict[str, dict[int, float]] = {name: {} for name in cands}
    errors: dict[str, str] = {}
    for g in np.unique(group):
        inside = np.flatnonzero(group != g)
        out = np.flatnonzero(group == g)
        perm = rng.permutation(inside)
        n_new = max(1, int(round(holdout * inside.size)))
        new, fit_rows = perm[:n_new], np.sort(perm[n_new:])
        for name, est in cands.items():
            det = clone(est)
            try:
                if ys is not None and getattr(det, "method", None) == "class":
                    det.fit(Xs[fit_rows], ys[fit_rows])
                else:
                    det.fit(Xs[fit_rows])
                by_group[name][int(g)] = auroc(det.score_samples(Xs[new]),
                                               det.score_samples(Xs[out]))  # fmt: skip
            except (ValueError, np.linalg.LinAlgError) as exc:
                errors.setdefault(name, f"{type(exc).__name__}: {exc}")
    per = {name: list(aurocs.values()) for name, aurocs in by_group.items()}
    scores = {k: (float(np.mean(v)) if v else float("nan")) for k, v in per.items()}
    valid = {k: v for k, v in scores.items() if np.isfinite(v)}
    if not valid:
        raise ValueError(f"every candidate failed on the validation groups: {errors}")
    top = max(valid, key=valid.get)
    close = [name for name in valid if _within_one_se(by_group[name], by_group[top])]
    best = close[0] if rule == "one_se" else top
    estimator = None
    if refit:
        estimator = clone(cands[best])
        if "calibration" in estimator.get_params():
            estimator.set_params(calibration="split")
        if ys is not None and getattr(estimator, "method", None) == "class":
            estimator.fit(X, y)
        else:
            estimator.fit(X)
    return SelectionResult(best, scores, per, errors, kind, estimator, rule, top, close)


def _within_one_se(a: dict[int, float], top: dict[int, float]) -> bool:
    """Whether ``a``'s mean AUROC is below ``top``'s by at most the standard error of their
    paired differences over the groups both were scored on (at least two)."""
    if a is top:
        return True
    shared = sorted(set(a) & set(top))
    if len(shared) < 2 or len(shared) < len(top):
        return False  # failed on a group the top candidate was scored on: not comparable
    d = np.array([top[g] - a[g] for g in shared])
    return float(d.mean()) <= float(d.std(ddof=1)) / np.sqrt(d.size)
