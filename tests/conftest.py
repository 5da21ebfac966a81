from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture(autouse=True)
def _seed_global_numpy_rng() -> None:
    """Seed NumPy's global generator before every test: an estimator left at
    ``random_state=None`` draws from it, and its state must not depend on which tests ran
    before (a statistical assertion on such a draw was flaky across CI machines)."""
    np.random.seed(20260229)


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


def assert_batch_close(actual, expected, compute_dtype) -> None:
    """Scores of the same rows from different batches agree to the documented rounding bound.

    :data:`infogauss.gaussian.BATCH_RTOL`: ``|a - b| <= rtol * max(1, |b|)``; BLAS kernels round
    a row differently with the number of rows per call and the CPU, so no bit-identity.
    """
    from infogauss.gaussian import BATCH_RTOL

    rtol = BATCH_RTOL[np.dtype(compute_dtype).name]
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape
    bound = rtol * np.maximum(1.0, np.abs(expected))
    excess = np.abs(actual - expected) - bound
    worst = int(np.argmax(excess)) if excess.size else 0
    assert not excess.size or excess.flat[worst] <= 0, (
        f"row {worst}: {actual.flat[worst]!r} vs {expected.flat[worst]!r} differ by more than "
        f"rtol={rtol} ({compute_dtype})"
    )
