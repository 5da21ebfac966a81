"""The torch fence: the one module of :mod:`infogauss.contrastive` that imports torch.

Every other module of the package takes ``torch``, ``nn`` and ``F`` from here, so a missing
torch produces one clear ImportError naming what to install.
"""

from __future__ import annotations

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "infogauss.contrastive needs torch: pip install torch==2.13.0 (CPU) "
        "then pip install 'infogauss[train]'"
    ) from exc

__all__ = ["torch", "nn", "F"]
