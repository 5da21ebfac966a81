"""Fit-time helpers of the OOD detectors: labels, the stratified calibration split, pooled
(tied) statistics."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import calibration
from .. import gaussian as core
from .._validation import check_probability, reject_device_tensor

# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------

def _savable_labels(classes: np.ndarray) -> np.ndarray:
    """Class labels as a numeric or string array (model files hold no objects)."""
    a = np.asarray(classes)
    if a.dtype.kind in "biufU":
        return a
    values = a.tolist()
    if all(isinstance(c, str) for c in values):
        return a.astype(str)
    if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in values):
        return a.astype(np.int64)
    raise TypeError(
        f"cannot save class labels of dtype {a.dtype}: model files hold numeric or string "
        "labels only; refit with integer or string labels"
    )


def _encode_labels(y: Any, n: int, classes: Any) -> tuple[np.ndarray, np.ndarray]:
    """Classes and integer codes of ``y``; refuses wrong length, NaN and empty classes."""
    reject_device_tensor(y, "y")
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"`y` must be a 1-D array of class labels, got shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"`y` must have one label per row of X ({n}), got {y.shape[0]}")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError("`y` contains NaN or infinity; class labels must be finite")
    if y.dtype.kind not in "biufUSO":
        raise TypeError(f"`y` must hold class labels (ints or strings), got dtype {y.dtype}")
    present, codes = np.unique(y, return_inverse=True)
    if classes is None:
        return present, codes.astype(np.intp)
    classes = np.asarray(classes)
    if classes.ndim != 1 or classes.shape[0] == 0:
        raise ValueError(f"`classes` must be a non-empty 1-D array of labels, got {classes!r}")
    if np.unique(classes).shape[0] != classes.shape[0]:
        raise ValueError("`classes` must not repeat a label")
    unknown = np.setdiff1d(present, classes)
    if unknown.size:
        raise ValueError(
            f"`y` holds labels not in `classes`: {unknown[:10].tolist()}"
        )
    empty = np.setdiff1d(classes, present)
    if empty.size:
        raise ValueError(
            f"`y` has no samples of class(es) {empty[:10].tolist()} (an empty class): a class "
            "mean needs at least one sample; drop the class from `classes` or add its samples"
        )
    order = np.argsort(classes)
    codes = order[np.searchsorted(classes[order], y)]
    return classes, codes.astype(np.intp)


def _pooled_stats(
    X: np.ndarray, codes: np.ndarray, n_classes: int, chunk_size: int | None
) -> tuple[core.GaussianStats, np.ndarray]:
    """Within-class (tied) statistics and class means.

    The scatter, third and fourth moments are sums over classes of the moments about each
    class mean, so the shrinkage intensities are those of the pooled residuals; the
    location is the overall mean.
    """
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_classes + 1))
    parts = [
        core.stats_from_array(X[order[bounds[k] : bounds[k + 1]]], chunk_size=chunk_size)
        for k in range(n_classes)
    ]
    total = parts[0]
    for p in parts[1:]:
        total = core.merge_stats(total, p)
    pooled = core.GaussianStats(
        n=total.n,
        mean=total.mean,
        scatter=sum(p.scatter for p in parts),
        third=sum(p.third for p in parts),
        fourth=float(sum(p.fourth for p in parts)),
    )
    return pooled, np.stack([p.mean for p in parts])


class ConformalCalibrationMixin:
    """What every calibrated detector does with held-out scores (one copy): sort them, set the
    split-conformal threshold ``offset_`` at ``contamination``; and ``fit_predict``."""

    def _set_calibration(self, scores: np.ndarray) -> None:
        scores = np.sort(np.asarray(scores, dtype=np.float64))
        offset = calibration.conformal_threshold(scores, self.contamination, name="contamination")
        self.calibration_scores_ = scores
        self.n_calibration_ = int(scores.shape[0])
        self.offset_ = offset

    def fit_predict(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        """``fit(X, y, **kwargs).predict(X)`` (+1 inlier, -1 outlier)."""
        return self.fit(X, y, **kwargs).predict(X)

    def _conformal_predict(self, X: Any, alpha: Any) -> np.ndarray:
        """+1/-1: ``decision_function(X) < 0`` without ``alpha``, else conformal p <= alpha."""
        if alpha is None:
            flagged = self.decision_function(X) < 0
        else:
            a = check_probability(alpha, "alpha")
            self._check_calibrated()
            calibration.check_calibration_size(self.n_calibration_, a, "alpha")
            flagged = self.pvalues(X) <= a
        return np.where(flagged, -1, 1)

