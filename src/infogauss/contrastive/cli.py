"""Old home of ``infogauss train`` / ``infogauss embed`` and of two library functions.

The commands live in :mod:`infogauss.cli` (``infogauss.cli._train``); the functions moved to
the library: :func:`infogauss.datasets.read_dataset` (was ``read_data``, needs no torch) and
:func:`infogauss.contrastive.load_encoder`. These names keep working for old imports.
"""

from __future__ import annotations

import os

import numpy as np

from .checkpoints import load_encoder

__all__ = ["load_encoder", "read_data"]


def read_data(path: str | os.PathLike, fmt: str = "auto", split: str = "train"
              ) -> tuple[np.ndarray, np.ndarray]:
    """``infogauss.datasets.read_dataset(path, fmt, split, name="data")`` (the old name)."""
    from ..datasets import read_dataset

    return read_dataset(path, fmt, split, name="data")
