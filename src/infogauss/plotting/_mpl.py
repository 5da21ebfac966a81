"""The only module that imports matplotlib (headless Agg backend)."""

from __future__ import annotations

try:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "plotting needs matplotlib: pip install 'infogauss[plot]'"
    ) from exc

__all__ = ["matplotlib", "plt"]
