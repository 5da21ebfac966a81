r"""Ensembles of OOD detectors over several views of the same rows, combined as p-values."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import validate_data

from .. import calibration, persistence
from .._validation import atomic_fit, check_matrix_like, reject_device_tensor
from . import _nested
from ._base import CalibratedDetector, check_finite
from ._combine import check_combine, combine_pvalues

__all__ = ["EnsembleOOD"]

# member scores within this relative distance of a reference score rank as ties with it
# (1000 times BATCH_RTOL["float64"]: a row's rank does not depend on its batch)
_TIE_RTOL = 1e-9


class EnsembleOOD(CalibratedDetector):
    r"""OOD detector combining several detectors, each on its own view, as conformal p-values.

    Typical views are embeddings of the same inputs from several layers of a network
    (backbone and projection head, or several blocks: Lee et al., 2018), or one embedding
    seen by several detectors. Each member turns its view into a conformal p-value; the
    p-values are combined (Fisher, Cauchy or minimum), and the combined score is calibrated
    again, so the ensemble's decisions keep the split-conformal guarantee whatever the
    dependence between the views.

    Parameters
    ----------
    detectors : list of estimators
        One unfitted template per view: any outlier detector with ``fit(X, y=None)`` and
        ``score_samples(X)`` (higher = more normal), e.g. :class:`MahalanobisOOD`,
        :class:`LocalGaussianOOD`, scikit-learn's ``IsolationForest``. Each is cloned; a
        ``calibration`` parameter is set to None (the ensemble calibrates), and a
        ``random_state`` left None is drawn from ``random_state``.
    combine : {"fisher", "cauchy", "min"}, default="fisher"
        How the members' p-values are combined (:func:`combine_pvalues`).
    contamination : float in (0, 0.5], default=0.05
        False-alarm rate of ``predict`` on new in-distribution data (guaranteed with
        ``calibration="split"``).
    calibration : {"split", None}, default="split"
        ``"split"``: the three-part scheme of the Notes. ``None``: members are fitted on every
        row, their p-values are ranks among their own training scores and ``offset_`` is the
        training quantile of the combined score (scikit-learn's convention, no guarantee).
    calibration_size : float in (0, 1) or int, default=0.2
        Share or number of rows in *each* of the two held-out parts (so 40% of ``X`` is held
        out by default).
    random_state : int, RandomState instance or None, default=None
        Seeds the split and the members' own randomness.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted members (fitted on the same rows of every view).
    reference_scores_ : list of ndarray
        Sorted scores of each member on the member-calibration rows: its p-values are ranks
        among them.
    n_features_views_ : tuple of int
        Width of each view.
    shared_view_ : bool
        True when ``fit`` got one array that every member sees.
    offset_, calibration_scores_, n_calibration_, n_samples_seen_
        As :class:`~infogauss.ood.LocalGaussianOOD` (``n_samples_seen_``: rows the members
        were fitted on); ``n_features_in_`` is set for a shared view only.

    Examples
    --------
    >>> import numpy as np
    >>> from infogauss.ood import EnsembleOOD, MahalanobisOOD
    >>> rng = np.random.default_rng(0)
    >>> backbone = rng.normal(size=(600, 8))
    >>> head = np.tanh(backbone[:, :4]) + 0.1 * rng.normal(size=(600, 4))
    >>> det = EnsembleOOD([MahalanobisOOD(), MahalanobisOOD()], random_state=0)
    >>> det = det.fit([backbone, head])
    >>> det.n_samples_seen_, len(det.reference_scores_[0]), det.n_calibration_
    (360, 120, 120)
    >>> det.predict([np.full((1, 8), 5.0), np.full((1, 4), 3.0)]).tolist()
    [-1]

    Notes
    -----
    With ``calibration="split"`` the rows are split at random into a fitting part ``F``, a
    member-calibration part ``C1`` and a calibration part ``C2`` (each of ``C1``, ``C2`` of
    ``calibration_size``). Members are fitted on ``F``; member ``v``'s p-value of a point is
    its mid-rank among the member's scores on ``C1``,
    :math:`p_v=(\#\{s\in S_v^{C1}: s\le s_v(x)\}+\tfrac12)/(|C1|+1)`, which puts the views on a
    common, honest scale (``C1`` rows are not in ``F``); the combined score
    :math:`T(x)=\mathrm{combine}(p_1(x),\dots,p_V(x))` is then a fixed function of ``x`` given
    ``F`` and ``C1``. ``offset_`` and ``pvalues`` come from :math:`T` on ``C2``. Validity:
    conditionally on ``F`` and ``C1``, the ``C2`` rows and a new in-distribution point are
    exchangeable and scored by the same fixed function, so the conformal p-value satisfies
    :math:`P(p\le\alpha)\le\alpha` and ``predict`` flags at most ``contamination`` of new
    in-distribution points in expectation — for any members, any dependence between views, and
    any combination rule (the Fisher and Cauchy laws are never used). ``score_samples`` is
    :math:`T` (higher = more in-distribution); every row is scored on its own.

    Views are converted to float64 before the members see them. A member score is compared
    with its reference scores after raising it by a relative ``1e-9`` (1000 times the
    float64 batch rounding of :data:`infogauss.gaussian.BATCH_RTOL`), so a row scored again
    in another batch — a reference row among them — keeps its rank, and the ensemble's
    scores do not depend on the batch. (Members set to score in float32 round more than this
    and lose that guarantee.)
    """

    _fitted_attr = "estimators_"
    _n_features_required = False

    def __init__(
        self,
        detectors: Any,
        *,
        combine: str = "fisher",
        contamination: float = 0.05,
        calibration: str | None = "split",
        calibration_size: float | int = 0.2,
        random_state: Any = None,
    ) -> None:
        self.detectors = detectors
        self.combine = combine
        self.contamination = contamination
        self.calibration = calibration
        self.calibration_size = calibration_size
        self.random_state = random_state

    # ------------------------------------------------------------------ parameters
    def _validate_params_(self) -> None:
        dets = self.detectors
        if not isinstance(dets, (list, tuple)) or len(dets) == 0:
            raise TypeError(
                f"`detectors` must be a non-empty list of detectors, got {type(dets).__name__}"
            )
        for i, det in enumerate(dets):
            if isinstance(det, type) or not (hasattr(det, "fit") and hasattr(det, "score_samples")
                                             and hasattr(det, "get_params")):  # fmt: skip
                raise TypeError(
                    f"`detectors[{i}]` must be a scikit-learn style detector with fit and "
                    f"score_samples, got {det!r}"
                )
        check_combine(self.combine)
        self._check_protocol_params()

    # ------------------------------------------------------------------ input
    def _views(self, X: Any, *, fit: bool) -> list[np.ndarray]:
        """One validated float array per member (the same array for a shared view)."""
        n_det = len(self.detectors)
        if not _is_view_list(X):
            if isinstance(X, np.ndarray) and X.ndim == 3:
                raise ValueError(
                    f"`X` is a 3-D array of shape {X.shape}; pass the views as a list of 2-D "
                    "arrays (one per detector), or one 2-D array that every detector sees"
                )
            if not fit and not self.shared_view_:
                raise ValueError(
                    f"`X` must be a list of {n_det} views (one 2-D array per detector), as "
                    "in fit"
                )
            check_matrix_like(X, "X", min_samples=2 if fit else 1)
            X = validate_data(self, X, reset=fit, dtype=np.float64, ensure_all_finite=False,
                              ensure_min_samples=2 if fit else 1)  # fmt: skip
            check_finite(X, "X")
            return [X] * n_det
        if len(X) != n_det:
            raise ValueError(
                f"`X` must hold one view per detector ({n_det}), got {len(X)} views"
            )
        views = []
        for i, v in enumerate(X):
            check_matrix_like(v, f"X[{i}]", min_samples=2 if fit else 1)
            v = check_array(v, dtype=np.float64, input_name=f"X[{i}]", ensure_all_finite=False,
                            ensure_min_samples=2 if fit else 1)  # fmt: skip
            check_finite(v, f"X[{i}]")
            views.append(v)
        rows = [v.shape[0] for v in views]
        for i, r in enumerate(rows):
            if r != rows[0]:
                raise ValueError(
                    f"`X[{i}]` has {r} rows but `X[0]` has {rows[0]}: the views must be "
                    "embeddings of the same rows, in the same order"
                )
        if not fit:
            for i, (v, d) in enumerate(zip(views, self.n_features_views_)):
                if v.shape[1] != d:
                    raise ValueError(
                        f"`X[{i}]` has {v.shape[1]} features, but view {i} of this "
                        f"{type(self).__name__} is expecting {d} features as input"
                    )
        return views

    def _check_X(self, X: Any) -> list[np.ndarray]:
        self._check_fitted()
        return self._views(X, fit=False)

    @staticmethod
    def _n_rows(data: list) -> int:
        return int(data[0].shape[0])

    @staticmethod
    def _take(data: list, idx: np.ndarray) -> list:
        return [v[idx] for v in data]

    # ------------------------------------------------------------------ fitting
    def _member(self, i: int, det: Any, rng: Any) -> Any:
        est = clone(det)
        params = est.get_params(deep=False)
        if "calibration" in params:
            est.set_params(calibration=None)
        if "random_state" in params and params["random_state"] is None \
                and self.random_state is not None:
            est.set_params(random_state=int(rng.randint(np.iinfo(np.int32).max)))
        return est

    def _ensemble_split(self, n: int, rng: Any) -> tuple[np.ndarray, np.ndarray, Any]:
        """Rows to fit members on, to rank member scores among, and to calibrate on."""
        everything = np.arange(n)
        if self.calibration is None:
            return everything, everything, None
        size = self.calibration_size
        want = max(int(size) if isinstance(size, (int, np.integer)) else int(np.ceil(size * n)),
                   calibration.min_calibration_size(self.contamination))  # fmt: skip
        fit_idx, held = calibration.holdout_split(
            n, self.contamination, 2 * want, rng, what="`offset_` (two held-out parts of "
            f"{want} rows: member p-values and the ensemble's calibration)",
        )  # fmt: skip
        if held is None:
            return everything, everything, None
        held = rng.permutation(held)
        return fit_idx, np.sort(held[want:]), np.sort(held[:want])

    @atomic_fit
    def fit(self, X: Any, y: Any = None) -> EnsembleOOD:
        """Fit every member on its view of the same rows, then calibrate (see Notes).

        Parameters
        ----------
        X : list of array-like, each of shape (n_samples, n_features_v), or one array-like
            One view per detector (same rows, same order), or one array every detector sees.
        y : array-like of shape (n_samples,), optional
            Passed to every member's ``fit`` (e.g. class labels for
            ``MahalanobisOOD(method="class")``).

        Returns
        -------
        self
        """
        self._validate_params_()
        views = self._views(X, fit=True)
        n = self._n_rows(views)
        if y is not None:
            reject_device_tensor(y, "y")
            y = np.asarray(y)
            if y.ndim != 1 or y.shape[0] != n:
                raise ValueError(f"`y` must have one label per row ({n}), got shape {y.shape}")
        rng = check_random_state(self.random_state)
        fit_idx, ref_idx, cal_idx = self._ensemble_split(n, rng)
        members = [self._member(i, det, rng) for i, det in enumerate(self.detectors)]
        for i, est in enumerate(members):
            est.fit(views[i][fit_idx], None if y is None else y[fit_idx])
        reference = []
        for i, est in enumerate(members):
            if cal_idx is None and isinstance(est, CalibratedDetector):
                # the member's own fitting rows: scored as the member scores them for its
                # offset (a kernel density leaves each row's own kernel out)
                s = np.asarray(est._fit_scores(est._check_X(views[i][ref_idx])), np.float64)
            else:
                s = _member_scores(i, est, views[i][ref_idx])
            if not np.isfinite(s).all():
                raise ValueError(
                    f"detectors[{i}] ({type(est).__name__}) returned non-finite scores on its "
                    "calibration rows; its p-values need finite reference scores"
                )
            reference.append(np.sort(s))
        shared = not _is_view_list(X)
        self._replace_state({
            "estimators_": members, "reference_scores_": reference,
            "n_features_views_": tuple(int(v.shape[1]) for v in views),
            "shared_view_": bool(shared), "n_samples_seen_": int(fit_idx.shape[0]),
        })  # fmt: skip
        if not shared:  # several widths: no single n_features_in_
            for key in ("n_features_in_", "feature_names_in_"):
                self.__dict__.pop(key, None)
        if cal_idx is None:
            scores = self._scores(self._take(views, ref_idx))
            self.offset_ = float(np.percentile(scores, 100.0 * self.contamination))
        else:
            self._set_calibration(self._scores(self._take(views, cal_idx)))
        return self

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """``fit(X, y).predict(X)`` (+1 inlier, -1 outlier)."""
        return self.fit(X, y).predict(X)

    # ------------------------------------------------------------------ scoring
    def _member_pvalues(self, views: list[np.ndarray], *, mid: bool) -> np.ndarray:
        cols = []
        for i, (est, ref) in enumerate(zip(self.estimators_, self.reference_scores_)):
            s = _member_scores(i, est, views[i])
            # a row scored again in another batch differs by rounding (BATCH_RTOL): raising the
            # score by more than that keeps its rank among reference scores it ties with
            finite = np.isfinite(s)
            s = np.where(finite, s + _TIE_RTOL * np.maximum(1.0, np.abs(np.where(finite, s, 0))), s)
            p = calibration.conformal_pvalues(ref, s)
            cols.append(p - 0.5 / (ref.shape[0] + 1.0) if mid else p)
        return np.column_stack(cols)

    def member_pvalues(self, X: Any) -> np.ndarray:
        """Each member's conformal p-value of its view (rank among its reference scores).

        Returns
        -------
        ndarray of shape (n_samples, n_detectors)
            In (0, 1]; small = that view looks out-of-distribution.
        """
        return self._member_pvalues(self._check_X(X), mid=False)

    def _scores(self, views: list[np.ndarray]) -> np.ndarray:
        return combine_pvalues(self._member_pvalues(views, mid=True), self.combine)

    def score_samples(self, X: Any) -> np.ndarray:
        """Combined score of the members' p-values (higher = more in-distribution).

        Parameters
        ----------
        X : list of array-like (one view per detector), or one array-like (a shared view)

        Returns
        -------
        ndarray of shape (n_samples,), float64
            ``combine_pvalues`` of the members' mid-rank p-values (see Notes).
        """
        return self._scores(self._check_X(X))

    # ------------------------------------------------------------------ persistence
    def _saved_params(self) -> dict:
        params = super()._saved_params()
        del params["detectors"]  # stored as the members' kinds and parameters (attrs)
        return params

    def _state_arrays(self) -> tuple[dict, dict]:
        members, arrays, templates = [], {}, []
        for i, (est, det) in enumerate(zip(self.estimators_, self.detectors)):
            sub, sub_arrays = _nested.nested_state(est, f"detectors[{i}]")
            members.append(sub)
            arrays.update(persistence.prefixed(f"member{i}.", sub_arrays))
            arrays[f"reference_scores_{i}"] = self.reference_scores_[i]
            own = det.get_params(deep=False)
            rs = own.get("random_state")
            templates.append({
                key: (None if key == "random_state" and not isinstance(rs, (int, np.integer))
                      else (int(own[key]) if key == "random_state" else own[key]))
                for key in ("calibration", "random_state") if key in own
            })  # fmt: skip
        attrs = {"members": members, "templates": templates,
                 "n_features_views_": list(self.n_features_views_),
                 "shared_view_": self.shared_view_}  # fmt: skip
        return attrs, arrays

    @classmethod
    def _instance_from_state(cls, path: Any, meta: dict, arrays: dict) -> EnsembleOOD:
        err = persistence.ModelFileError
        attrs = meta["attrs"]
        members, templates = attrs.get("members"), attrs.get("templates")
        if not isinstance(members, list) or not members or not isinstance(templates, list) \
                or len(templates) != len(members) \
                or not all(isinstance(t, dict) for t in templates):
            raise err(path, "has no list of members (or of their templates)")
        fitted = [
            _nested.nested_from_state(path, sub, persistence.sub_state(f"member{i}.", arrays),
                                      f"member {i}")
            for i, sub in enumerate(members)
        ]  # fmt: skip
        dets = []
        for est, over in zip(fitted, templates):
            try:
                dets.append(clone(est).set_params(**over))
            except ValueError as exc:
                raise err(path, f"has invalid member templates: {exc}") from exc
        params = dict(meta["params"])
        if "detectors" in params:
            raise err(path, "stores `detectors` as a parameter (members are attributes)")
        det = cls._new_from_params(path, {**params, "detectors": dets})
        det._loaded_members = fitted
        return det

    def _restore(self, path: Any, attrs: dict, arrays: dict) -> None:
        err = persistence.ModelFileError
        fitted = self.__dict__.pop("_loaded_members")
        attrs.pop("members")
        attrs.pop("templates")
        for key in [k for k in arrays if k.startswith("member")]:
            del arrays[key]  # the members' own arrays, restored by them
        widths = attrs.pop("n_features_views_", None)
        shared = attrs.pop("shared_view_", None)
        if not isinstance(widths, list) or len(widths) != len(fitted) \
                or not all(isinstance(w, int) and w >= 1 for w in widths) \
                or not isinstance(shared, bool):
            raise err(path, "n_features_views_ or shared_view_ are missing or malformed")
        if shared != ("n_features_in_" in self.__dict__) or (shared and set(widths) != {
                self.n_features_in_}):
            raise err(path, "n_features_in_ does not match its shared view")
        reference = []
        for i, est in enumerate(fitted):
            ref = arrays.pop(f"reference_scores_{i}", None)
            if ref is None or ref.ndim != 1 or ref.shape[0] == 0 or ref.dtype != np.float64 \
                    or not np.isfinite(ref).all() or not np.all(np.diff(ref) >= 0):
                raise err(path, f"reference_scores_{i} are missing, non-finite or unsorted")
            if getattr(est, "n_features_in_", widths[i]) != widths[i]:
                raise err(path, f"member {i} does not match the width of view {i}")
            reference.append(ref)
        self.estimators_, self.reference_scores_ = fitted, reference
        self.n_features_views_, self.shared_view_ = tuple(widths), shared


def _is_view_list(X: Any) -> bool:
    """A list or tuple of 2-D array-likes (views), as opposed to one matrix given as rows."""
    return isinstance(X, (list, tuple)) and len(X) > 0 and all(np.ndim(v) == 2 for v in X)


def _member_scores(i: int, est: Any, X: np.ndarray) -> np.ndarray:
    s = np.asarray(est.score_samples(X), dtype=np.float64)
    if s.shape != (X.shape[0],):
        raise ValueError(
            f"detectors[{i}] ({type(est).__name__}) returned scores of shape {s.shape} for "
            f"{X.shape[0]} rows; score_samples must return one score per row"
        )
    bad = np.isnan(s)
    if bad.any():
        raise ValueError(
            f"detectors[{i}] ({type(est).__name__}) returned NaN scores for "
            f"{int(bad.sum())} of {s.shape[0]} rows of its view X[{i}] (first at row "
            f"{int(np.flatnonzero(bad)[0])}): a NaN has no rank, so the ensemble cannot combine "
            "it; fix that detector's input or drop it from `detectors`"
        )
    return s
