"""Number formatting and JSON conversion shared by the checks and the report."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _f(v: Any) -> str:
    """Three significant digits; ``–`` for None and non-finite values."""
    if v is None:
        return "–"
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(v):
            return "–"
        return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}"
    return str(v)


def _pct(v: Any) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _region(band: list | None) -> str:
    """``[lo, hi]``, ``≤ hi`` or ``≥ lo`` (None = unbounded side); empty when unknown."""
    if not band:
        return ""
    lo, hi = band
    if lo is None and hi is None:
        return ""
    if lo is None:
        return f"≤ {_f(hi)}"
    if hi is None:
        return f"≥ {_f(lo)}"
    return f"[{_f(lo)}, {_f(hi)}]"


def _jsonable(obj: Any) -> Any:
    """Plain Python objects for :func:`json.dumps`; non-finite floats become None."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj
