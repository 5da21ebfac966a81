r"""Combinations of several p-values of one point into one score (Fisher, Cauchy, minimum).

Each returns a *score*, higher = more in-distribution (the sign convention of
``score_samples``), so that the ensembles calibrate it like any other score:

* ``"fisher"``: :math:`\sum_v\log p_v` — minus half of Fisher's statistic
  :math:`-2\sum_v\log p_v`, which is :math:`\chi^2_{2V}` for independent uniform p-values;
* ``"cauchy"``: :math:`-\frac1V\sum_v\tan((\tfrac12-p_v)\pi)` — minus the Cauchy
  combination statistic (Liu & Xie, 2020), standard Cauchy for independent uniform p-values
  and approximately so in the tail under any dependence; computed as :math:`\cot(\pi p_v)`
  for accuracy at small :math:`p_v`;
* ``"min"``: :math:`\min_v p_v` (Tippett's statistic).

All p-values of a row count alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["COMBINE_METHODS", "combine_pvalues"]

COMBINE_METHODS = ("fisher", "cauchy", "min")


def check_combine(method: Any, name: str = "combine") -> str:
    if method not in COMBINE_METHODS:
        raise ValueError(f"`{name}` must be one of {COMBINE_METHODS}, got {method!r}")
    return method


def combine_pvalues(pvalues: np.ndarray, method: str = "fisher") -> np.ndarray:
    r"""Combine each row's p-values into one score (higher = more in-distribution).

    Parameters
    ----------
    pvalues : ndarray of shape (n, n_pvalues)
        p-values in (0, 1) (``"cauchy"`` needs p < 1; Fisher and min accept 1).
    method : {"fisher", "cauchy", "min"}

    Returns
    -------
    ndarray of shape (n,)
        See the module docstring: monotone decreasing in the usual combined statistic.

    Examples
    --------
    >>> p = np.array([[0.5, 0.5], [0.01, 0.5]])
    >>> combine_pvalues(p, "min").tolist()
    [0.5, 0.01]
    >>> bool(np.all(np.diff(combine_pvalues(p, "fisher")) < 0))
    True
    """
    check_combine(method, "method")
    p = np.asarray(pvalues, dtype=np.float64)
    if method == "min":
        return p.min(axis=1)
    if method == "fisher":
        return np.log(p).sum(axis=1)
    return -np.mean(1.0 / np.tan(np.pi * p), axis=1)
