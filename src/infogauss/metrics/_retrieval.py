"""Retrieval and probability-calibration metrics (see infogauss.metrics)."""

__all__: list[str] = []
