r"""Norm-aware OOD scoring: a Gaussian of the directions and a Gaussian of the log-norms (one
joint squared Mahalanobis distance)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from sklearn.base import clone

from .. import persistence
from . import _nested
from ._base import CalibratedDetector, check_finite
from ._detector import MahalanobisOOD

__all__ = ["NormAwareOOD"]

# the smallest standard deviation of the log-norms (already normalised embeddings have sd 0
# up to rounding; their norm test then flags any norm off by more than about 1e-6 relative)
_MIN_LOG_NORM_SD = 1e-6


class NormAwareOOD(CalibratedDetector):
    r"""Mahalanobis distance of the directions plus a standardised deviation of the log-norm.

    Contrastive embeddings are usually compared by direction (cosine), and a Gaussian of the
    L2-normalised features is a strong detector — but it is blind to the norm, which often
    carries OOD signal of its own (feature-norm detectors). This detector models both: the
    direction with a Mahalanobis model and the log-norm with a 1-D Gaussian, and scores the
    sum of the two squared standardised deviations.

    Parameters
    ----------
    base : MahalanobisOOD, optional
        Template of the direction model, fitted on the unit vectors ``x / ||x||`` (cloned, with
        ``calibration=None``; its ``random_state`` is drawn from ours when None). It must use
        ``statistic="distance"`` and a method other than ``"relative"`` (the score needs a
        squared distance). Default: ``MahalanobisOOD()`` (one global Gaussian).
        ``fit(X, y)`` passes ``y`` to it (class labels for ``method="class"``).
    norm_weight : float >= 0, default=1.0
        Weight ``w`` of the log-norm term. 1: the squared Mahalanobis distance of the joint
        vector ``(u, log ||x||)`` (see Notes); 0: the plain normalised Mahalanobis detector.
    contamination : float in (0, 0.5], default=0.05
    calibration : {"split", None}, default="split"
    calibration_size : float in (0, 1) or int, default=0.2
        As :class:`~infogauss.ood.MahalanobisOOD`: ``fit`` holds out ``calibration_size`` of
        ``X`` and sets the split-conformal threshold on it.
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    base_ : MahalanobisOOD
        The direction model (fitted on unit vectors).
    log_norm_mean_, log_norm_scale_ : float
        Mean and standard deviation (``ddof=1``, at least 1e-6) of the training log-norms.
    offset_, calibration_scores_, n_calibration_, n_samples_seen_, n_features_in_
        As :class:`~infogauss.ood.LocalGaussianOOD`.

    Examples
    --------
    >>> import numpy as np
    >>> from infogauss.ood import NormAwareOOD
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 8))
    >>> det = NormAwareOOD(random_state=0).fit(X)
    >>> x = X[:1]
    >>> det.predict(np.r_[x, 6 * x]).tolist()   # same direction, six times the norm
    [1, -1]

    Notes
    -----
    With :math:`u=x/\lVert x\rVert` and :math:`\ell=\log\lVert x\rVert`,
    ``score_samples(x)`` :math:`=-\big(m^2(u)+w\,z^2(\ell)\big)` (higher = more
    in-distribution), where :math:`m^2(u)` is the direction model's **squared** Mahalanobis
    distance and :math:`z=(\ell-a)/(b\sqrt{1+1/n})` the standardised (predictive) deviation of
    the log-norm from :math:`N(a,b^2)` fitted on the ``n`` training log-norms. With
    :math:`w=1` this is the squared Mahalanobis distance of :math:`(u,\ell)` under the Gaussian
    with the base's covariance for :math:`u` and variance :math:`b^2` for :math:`\ell`,
    independent: the norm is one more coordinate. It adds one degree of freedom to the
    :math:`\approx d` of the direction, so it changes little where the norm is typical and
    dominates where the norm is many standard deviations off (a norm 5 times too large is
    :math:`\log 5/b` of them, about :math:`1.6\sqrt{2d}` for Gaussian data). The
    split-conformal calibration makes ``predict`` and ``pvalues`` valid for any data.
    """

    _fitted_attr = "base_"
    _uses_y = True

    def __init__(
        self,
        *,
        base: Any = None,
        norm_weight: float = 1.0,
        contamination: float = 0.05,
        calibration: str | None = "split",
        calibration_size: float | int = 0.2,
        random_state: Any = None,
    ) -> None:
        self.base = base
        self.norm_weight = norm_weight
        self.contamination = contamination
        self.calibration = calibration
        self.calibration_size = calibration_size
        self.random_state = random_state

    def _validate_params_(self) -> None:
        base = self.base
        if base is not None:
            if not isinstance(base, MahalanobisOOD):
                raise TypeError(f"`base` must be a MahalanobisOOD or None, got {base!r}")
            if base.statistic != "distance" or base.method == "relative":
                raise ValueError(
                    "`base` must use statistic='distance' and a method other than 'relative' "
                    f"(its squared distance needs an analytic law), got statistic="
                    f"{base.statistic!r}, method={base.method!r}"
                )
        w = self.norm_weight
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not (
            math.isfinite(float(w)) and float(w) >= 0
        ):
            raise ValueError(f"`norm_weight` must be a finite float >= 0, got {w!r}")
        self._check_protocol_params()

    # ------------------------------------------------------------------ input
    def _validate_fit_X(self, X: Any) -> np.ndarray:
        X = super()._validate_fit_X(X)
        if X.shape[1] < 2:
            raise ValueError(
                "NormAwareOOD needs at least 2 features (a direction in one dimension is only "
                f"a sign), got {X.shape[1]} feature(s)"
            )
        self._polar(X)  # zero rows refused here, named by their row in X
        return X

    @staticmethod
    def _polar(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors and log-norms of the rows (zero rows refused).

        Each row is divided by its largest absolute value first, so norms neither overflow
        nor underflow: directions and log-norms are exact for rows at any scale.
        """
        X = np.asarray(X, dtype=np.float64)
        check_finite(X, "X")
        peak = np.max(np.abs(X), axis=1)
        zero = np.flatnonzero(peak == 0)
        if zero.size:
            raise ValueError(
                f"`X` row {int(zero[0])} has zero norm: its direction is undefined; remove or "
                "impute it first"
            )
        Y = X / peak[:, None]
        r = np.sqrt(np.einsum("ij,ij->i", Y, Y))
        return Y / r[:, None], np.log(peak) + np.log(r)

    # ------------------------------------------------------------------ fitting
    def _fit_state(self, X: np.ndarray, y: Any, rng: Any) -> dict:
        base = clone(self.base) if self.base is not None else MahalanobisOOD()
        base.set_params(calibration=None)
        if base.random_state is None and self.random_state is not None:
            base.set_params(random_state=int(rng.randint(np.iinfo(np.int32).max)))
        U, log_norm = self._polar(X)
        base.fit(U, y)
        sd = float(np.std(log_norm, ddof=1))
        return {"base_": base, "log_norm_mean_": float(np.mean(log_norm)),
                "log_norm_scale_": max(sd, _MIN_LOG_NORM_SD),
                "n_samples_seen_": int(X.shape[0])}  # fmt: skip

    # ------------------------------------------------------------------ scoring
    def _deviations(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        U, log_norm = self._polar(X)
        n = self.n_samples_seen_
        z = (log_norm - self.log_norm_mean_) / (self.log_norm_scale_ * math.sqrt(1 + 1 / n))
        return self.base_.mahalanobis(U), z * z

    def squared_deviations(self, X: Any) -> np.ndarray:
        """The two terms of the score: direction and log-norm.

        Returns
        -------
        ndarray of shape (n_samples, 2), float64
            Column 0: the **squared** Mahalanobis distance of the direction under ``base_``;
            column 1: the squared standardised deviation ``z²`` of the log-norm. Larger = less
            typical.
        """
        return np.column_stack(self._deviations(self._check_X(X)))

    def _scores(self, X: np.ndarray) -> np.ndarray:
        m2, z2 = self._deviations(X)
        w = float(self.norm_weight)
        return -m2 if w == 0 else -(m2 + w * z2)

    # ------------------------------------------------------------------ persistence
    def _saved_params(self) -> dict:
        params = super()._saved_params()
        del params["base"]  # an estimator: stored as the fitted base's kind and parameters
        return params

    def _state_arrays(self) -> tuple[dict, dict]:
        sub, arrays = _nested.nested_state(self.base_, "base_")
        template = None
        if self.base is not None:
            rs = self.base.random_state
            template = {"calibration": self.base.calibration,
                        "random_state": int(rs) if isinstance(rs, (int, np.integer)) else None}
        attrs = {"base_": sub, "base_template": template,
                 "log_norm_mean_": self.log_norm_mean_,
                 "log_norm_scale_": self.log_norm_scale_}  # fmt: skip
        return attrs, persistence.prefixed("base_.", arrays)

    @classmethod
    def _instance_from_state(cls, path: Any, meta: dict, arrays: dict) -> NormAwareOOD:
        err = persistence.ModelFileError
        attrs = meta["attrs"]
        fitted = _nested.nested_from_state(path, attrs.get("base_"),
                                           persistence.sub_state("base_.", arrays), "base_")
        if type(fitted) is not MahalanobisOOD:
            raise err(path, f"base_ is a {type(fitted).__name__}, not a MahalanobisOOD")
        template = attrs.get("base_template")
        params = dict(meta["params"])
        if "base" in params:
            raise err(path, "stores `base` as a parameter (it is an attribute)")
        if template is not None:
            if not isinstance(template, dict) or set(template) != {"calibration", "random_state"}:
                raise err(path, "base_template is malformed")
            params["base"] = clone(fitted).set_params(**template)
        det = cls._new_from_params(path, params)
        det._loaded_base = fitted
        return det

    def _restore(self, path: Any, attrs: dict, arrays: dict) -> None:
        err = persistence.ModelFileError
        base = self.__dict__.pop("_loaded_base")
        attrs.pop("base_")
        attrs.pop("base_template", None)
        for key in [k for k in arrays if k.startswith("base_.")]:
            del arrays[key]
        if base.n_features_in_ != self.n_features_in_:
            raise err(path, "base_ does not match n_features_in_")
        mean, scale = attrs.pop("log_norm_mean_", None), attrs.pop("log_norm_scale_", None)
        if not all(isinstance(v, float) and math.isfinite(v) for v in (mean, scale)) \
                or scale < _MIN_LOG_NORM_SD:
            raise err(path, "log_norm_mean_ and log_norm_scale_ are missing or invalid")
        self.base_, self.log_norm_mean_, self.log_norm_scale_ = base, mean, scale
