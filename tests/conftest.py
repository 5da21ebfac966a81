from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20260229)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real CIFAR-10 and Tiny ImageNet zips); skips when absent."""
    if not (SHARED_DATA / "cifar10_jpeg.zip").exists():
        pytest.skip(f"real image data not found at {SHARED_DATA} (see shared/data/README.md)")
    return SHARED_DATA


def correlated_gaussian(
    rng: np.random.Generator, n: int, d: int, *, offset: float = 0.0
) -> np.ndarray:
    """n samples of a d-dim Gaussian with a random non-trivial covariance."""
    A = rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
    return rng.standard_normal((n, d)) @ A.T + offset
