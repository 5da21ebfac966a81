"""OOD-detection metrics (see infogauss.metrics)."""

__all__: list[str] = []
