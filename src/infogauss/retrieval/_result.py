"""The search result, and the relevance calibrators (score -> P(relevant | score)).

No faiss here. The calibrators are defined by a few arrays (isotonic: the step function's
knots; Platt: slope and intercept), so a saved retriever scores exactly as the fitted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

__all__ = ["RetrievalResult"]


@dataclass(frozen=True, eq=False)
class RetrievalResult:
    """Neighbours of each query with calibrated scores (rows = queries, columns = rank).

    Attributes
    ----------
    indices : ndarray of shape (n_queries, k), int64
        Database rows, best first (by whitened cosine). -1 marks a missing neighbour (only
        approximate indexes, when the probed cells hold fewer than ``k`` items).
    similarities : ndarray of shape (n_queries, k), float32
        Cosine similarity in the **raw** embedding space (higher = more similar).
    whitened_similarities : ndarray of shape (n_queries, k), float32
        Cosine similarity after whitening, the ranking score.
    pvalues : ndarray of shape (n_queries, k), float64
        Per-pair p-value of the whitened similarity under the non-match null (small = more
        similar than a non-matching pair).
    corrected_pvalues : ndarray of shape (n_queries, k), float64
        p-value of the similarity as the best of ``n_searched`` non-matches (top-1 correction).
    match : ndarray of shape (n_queries, k), bool
        ``corrected_pvalues <= alpha``. The probability that a query declares any non-matching
        item a match is at most ``alpha`` (under the null law).
    ood_pvalues : ndarray of shape (n_queries,), float64
        Query-level p-value under the Gaussian model of the database (small = out of
        distribution).
    abstain : ndarray of shape (n_queries,), bool
        ``ood_pvalues <= ood_alpha``: the query is unlike the database; decline to answer.
    relevance : ndarray of shape (n_queries, k), float64, or None
        Calibrated P(relevant | score), after :meth:`CalibratedRetriever.calibrate_relevance`.
    labels : ndarray of shape (n_queries, k), or None
        Database labels of the neighbours, when the retriever was fitted with labels.
    alpha, ood_alpha : float
    n_searched : int
        Number of distinct database items searched (the ``n`` of the top-1 correction;
        duplicate rows count once).
    """

    indices: np.ndarray
    similarities: np.ndarray
    whitened_similarities: np.ndarray
    pvalues: np.ndarray
    corrected_pvalues: np.ndarray
    match: np.ndarray
    ood_pvalues: np.ndarray
    abstain: np.ndarray
    relevance: np.ndarray | None
    labels: np.ndarray | None
    alpha: float
    ood_alpha: float
    n_searched: int

    @property
    def accept(self) -> np.ndarray:
        """``match`` for queries that are not abstained on (shape (n_queries, k))."""
        return self.match & ~self.abstain[:, None]


class IsotonicCalibrator:
    """Monotone step function fitted by isotonic regression, evaluated by linear interpolation
    between its knots and clipped at the ends (what ``IsotonicRegression.predict`` does)."""

    method = "isotonic"

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    @classmethod
    def fit(cls, scores: np.ndarray, relevant: np.ndarray) -> IsotonicCalibrator:
        from sklearn.isotonic import IsotonicRegression

        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        model.fit(scores, relevant.astype(np.float64))
        return cls(model.X_thresholds_, model.y_thresholds_)

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        s = np.asarray(scores, dtype=np.float64)
        return np.interp(s.ravel(), self.x, self.y).reshape(s.shape)

    def state(self) -> tuple[dict, dict]:
        return {}, {"x": self.x, "y": self.y}

    @classmethod
    def from_state(cls, attrs: dict, arrays: dict) -> IsotonicCalibrator:
        return cls(arrays["x"], arrays["y"])


class PlattCalibrator:
    """Logistic curve ``expit(slope * score + intercept)`` (unpenalised logistic regression)."""

    method = "platt"

    def __init__(self, slope: float, intercept: float) -> None:
        self.slope, self.intercept = float(slope), float(intercept)

    @classmethod
    def fit(cls, scores: np.ndarray, relevant: np.ndarray) -> PlattCalibrator:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=np.inf).fit(scores[:, None], relevant)
        return cls(model.coef_[0, 0], model.intercept_[0])

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return expit(self.slope * np.asarray(scores, dtype=np.float64) + self.intercept)

    def state(self) -> tuple[dict, dict]:
        return {"slope": self.slope, "intercept": self.intercept}, {}

    @classmethod
    def from_state(cls, attrs: dict, arrays: dict) -> PlattCalibrator:
        return cls(attrs["slope"], attrs["intercept"])


CALIBRATORS = {"isotonic": IsotonicCalibrator, "platt": PlattCalibrator}
CALIBRATION_METHODS = tuple(CALIBRATORS)
