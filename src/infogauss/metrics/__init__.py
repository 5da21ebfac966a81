"""Evaluation metrics: OOD detection (AUROC, AUPR, FPR@95TPR, ...), calibrated decisions,
and retrieval (recall@k, mAP@k, false-match rate, ECE, Brier). numpy/scikit-learn only."""

from ._ood import *  # noqa: F403
from ._ood import __all__ as _ood_all
from ._retrieval import *  # noqa: F403
from ._retrieval import __all__ as _retrieval_all

__all__ = [*_ood_all, *_retrieval_all]
