r"""Gaussianize features before a Gaussian model: :class:`Gaussianizer`.

Post-ReLU backbone features are non-negative with an atom at zero, and no coordinate passes a
normality test; a Gaussian fitted to them mis-states its own tail probabilities. A monotone
map per coordinate (a power with λ fitted by maximum likelihood, or the empirical CDF followed
by the normal quantile function), or an iteration of such maps and rotations (RBIG), brings
them closer to Gaussian at the cost of one elementwise pass::

    Pipeline([("gauss", Gaussianizer()), ("model", GaussianModel())])

The package reads part by part:

* :mod:`._power` — Yeo–Johnson, Box–Cox (zeros left-censored) and fixed powers, with the
  maximum-likelihood fits of λ (formulas in its notes);
* :mod:`._quantile` — the marginal quantile map with linear Gaussian tails, and RBIG;
* :mod:`._estimator` — the scikit-learn transformer;
* :mod:`._persist` — its model file (:mod:`infogauss.persistence`, kind ``"Gaussianizer"``).

Only numpy, scipy and scikit-learn are needed.
"""

from __future__ import annotations

from ._estimator import METHODS, Gaussianizer

__all__ = ["Gaussianizer", "METHODS"]
