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
* one family-wise verdict — Holm's step-down over the checks' p-values at the report's level
  (1% by default) — with every check's status, statistic, null value, pass region, p-value
  and Holm-adjusted p-value beside it, never a bare yes/no. A Monte-Carlo check that could
  not reach the level is "inconclusive", never a pass;
* constant and near-constant columns (dead units: SD at most ``1e-6`` × the median column
  SD) are named and dropped from every check, which then runs on the live ones.

The package reads part by part:

* :mod:`._statistics` — column tests (AD, DP) and their null pass rates, norm concentration,
  random projections, Mardia (formulas in its notes);
* :mod:`._joint` — held-out squared Mahalanobis distances against their exact law and the
  simulated null of the KS distance;
* :mod:`._checks` — one check per question (status from its p-value), the family-wise
  verdict;
* :mod:`._report` — :class:`GaussianityReport`, JSON and markdown;
* :mod:`._diagnose` — :func:`diagnose` and the baseline comparison.

Laws come from their homes: binomial intervals and bands and Monte-Carlo p-values from
:mod:`infogauss.calibration`, the laws of squared distances from
:func:`infogauss.gaussian.distance_law`.
"""

from __future__ import annotations

from ._diagnose import diagnose
from ._joint import null_joint_ks
from ._report import GaussianityReport
from ._statistics import (
    anderson_critical_value,
    anderson_darling_normal,
    heldout_whitened_ad_pass,
    mardia,
    null_pass_rates,
    random_orthonormal,
)

__all__ = [
    "diagnose",
    "GaussianityReport",
    "anderson_darling_normal",
    "anderson_critical_value",
    "heldout_whitened_ad_pass",
    "null_pass_rates",
    "null_joint_ks",
    "mardia",
    "random_orthonormal",
]
