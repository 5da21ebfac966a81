r"""Mahalanobis out-of-distribution detection with calibrated (split-conformal) decisions.

:class:`MahalanobisOOD` scores embeddings by their squared Mahalanobis distance to a Gaussian
model of the in-distribution training embeddings (built on :class:`~infogauss.GaussianModel`
and the functional core :mod:`infogauss.gaussian`), in one of four ways:

* ``"global"`` — one Gaussian on all training points (label-free; the default);
* ``"class"`` — one mean per class and a tied (pooled within-class) covariance, the score is
  the distance to the closest class mean (Lee et al., 2018); needs labels;
* ``"cluster"`` — as ``"class"`` with k-means pseudo-labels (label-free, as SSD: Sehwag et al.,
  2021);
* ``"relative"`` — the class (or cluster) distance minus the distance under a background
  Gaussian fitted to all training points (relative Mahalanobis distance, Ren et al., 2021).

``statistic="typicality"`` replaces the distance by a two-sided typicality score: how far the
squared distance lies from the value held-out in-distribution points get under the fitted
model. In high dimension almost no in-distribution point lies near the mode, so a point
*too close* to the mean is as suspicious as one too far.

Calibrated by default: ``fit(X)`` holds out a random 20% of ``X`` and turns the score into
split-conformal p-values on it (Bates et al., 2023), so ``fit(X).predict(X_new)`` flags at
most ``contamination`` of new in-distribution inputs in expectation, whatever the embedding
distribution. ``calibrate(X_heldout)`` recalibrates on an external set;
``calibration=None`` fits on every row with scikit-learn's training-quantile threshold.

The squared distances to many means sharing one Cholesky factor are computed by
:func:`mahalanobis_sq_to_means` (one triangular solve per block of rows, whatever the number
of means).

Beside it, with the same protocol (``contamination``, split-conformal ``fit``, ``calibrate``,
``pvalues``, ``predict``, ``save``/``load``):

* :class:`LocalGaussianOOD` — a shrunk Gaussian of each query's k nearest reference rows
  (local whitening, optional PPCA truncation; exact numpy or faiss search);
* :class:`GaussianMixtureOOD` — a mixture of shrunk Gaussians on k-means components;
* :class:`KernelDensityOOD` — a Gaussian kernel density: one shrunk Gaussian per reference row
  (the Mahalanobis metric of the fitted Gaussian, bandwidth by leave-one-out likelihood);
* :class:`EnsembleOOD` — detectors on several views of the same rows (layers, backbone and
  head), their conformal p-values combined (Fisher, Cauchy, minimum) and calibrated again;
* :class:`NormAwareOOD` — the Mahalanobis distance of the directions plus the standardised
  squared deviation of the log-norm (the norm as one more coordinate).
"""

from __future__ import annotations

from ._combine import COMBINE_METHODS, combine_pvalues

# the laws live in the core and in infogauss.calibration; re-exported here (public paths)
from ._detector import (
    CALIBRATIONS,
    OOD_METHODS,
    OOD_STATISTICS,
    MahalanobisOOD,
    conformal_pvalues,
    mahalanobis_sq_to_means,
    min_calibration_size,
)
from ._ensemble import EnsembleOOD
from ._kde import BANDWIDTHS, KernelDensityOOD, kernel_log_density, loo_bandwidth
from ._local import METRICS, SEARCHES, LocalGaussianOOD, local_mahalanobis_sq
from ._mixture import MIXTURE_SCORES, GaussianMixtureOOD
from ._norm import NormAwareOOD
from ._select import SelectionResult, default_candidates, select_detector

__all__ = [
    "MahalanobisOOD",
    "LocalGaussianOOD",
    "GaussianMixtureOOD",
    "KernelDensityOOD",
    "EnsembleOOD",
    "NormAwareOOD",
    "select_detector",
    "default_candidates",
    "SelectionResult",
    "local_mahalanobis_sq",
    "kernel_log_density",
    "loo_bandwidth",
    "BANDWIDTHS",
    "combine_pvalues",
    "COMBINE_METHODS",
    "METRICS",
    "MIXTURE_SCORES",
    "SEARCHES",
    "CALIBRATIONS",
    "OOD_METHODS",
    "OOD_STATISTICS",
    "mahalanobis_sq_to_means",
    "conformal_pvalues",
    "min_calibration_size",
]
