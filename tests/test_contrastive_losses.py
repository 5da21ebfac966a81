"""InfoNCE against a loop-by-loop transcription of the formula and closed forms."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from infogauss.contrastive import gaussian_entropy, gaussian_regularizer, info_nce  # noqa: E402


def _loop_info_nce(za, zb, tau, symmetric):
    """Direct transcription: -log( exp(s(x, x+)/tau) / sum_k exp(s(x, x_k)/tau) )."""
    za = [np.asarray(v, float) / np.linalg.norm(v) for v in za]
    zb = [np.asarray(v, float) / np.linalg.norm(v) for v in zb]
    n = len(za)
    if not symmetric:
        total = 0.0
        for i in range(n):
            num = math.exp(za[i] @ zb[i] / tau)
            den = sum(math.exp(za[i] @ zb[k] / tau) for k in range(n))
            total += -math.log(num / den)
        return total / n
    views = za + zb
    total = 0.0
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        num = math.exp(views[i] @ views[pos] / tau)
        den = sum(math.exp(views[i] @ views[k] / tau) for k in range(2 * n) if k != i)
        total += -math.log(num / den)
    return total / (2 * n)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("n,d", [(2, 3), (5, 4), (8, 16)])
def test_info_nce_matches_loop(symmetric, tau, n, d):
    g = torch.Generator().manual_seed(n * 100 + d)
    za = torch.randn(n, d, generator=g, dtype=torch.float64)
    zb = za + 0.5 * torch.randn(n, d, generator=g, dtype=torch.float64)
    got = float(info_nce(za, zb, temperature=tau, symmetric=symmetric))
    want = _loop_info_nce(za.numpy(), zb.numpy(), tau, symmetric)
    assert got == pytest.approx(want, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("n", [2, 3, 10, 64])
def test_closed_form_all_similarities_equal(n):
    z = torch.ones(n, 7) * 3.0  # every cosine similarity is 1
    assert float(info_nce(z, z.clone(), 0.3)) == pytest.approx(math.log(2 * n - 1), rel=1e-6)
    assert float(info_nce(z, z.clone(), 0.3, symmetric=False)) == pytest.approx(math.log(n), rel=1e-6)


def test_scale_invariance_and_gradients():
    g = torch.Generator().manual_seed(0)
    za = torch.randn(6, 5, generator=g, requires_grad=True)
    zb = torch.randn(6, 5, generator=g)
    loss = info_nce(za, zb)
    loss.backward()
    assert torch.isfinite(za.grad).all()
    assert float(info_nce(10 * za.detach(), zb)) == pytest.approx(float(loss.detach()), rel=1e-5)
    assert loss.dtype == torch.float32


def test_bf16_inputs_computed_in_float32():
    z = torch.randn(4, 8).to(torch.bfloat16)
    assert info_nce(z, z).dtype == torch.float32


@pytest.mark.parametrize("tau", [0, -1.0, float("nan"), float("inf")])
def test_bad_temperature(tau):
    z = torch.randn(4, 3)
    with pytest.raises(ValueError, match="`temperature` must be"):
        info_nce(z, z, temperature=tau)


def test_bad_inputs():
    z = torch.randn(4, 3)
    with pytest.raises(ValueError, match="at least 2 samples"):
        info_nce(z[:1], z[:1])
    with pytest.raises(ValueError, match="same shape"):
        info_nce(z, z[:3])
    with pytest.raises(ValueError, match="`z_a` must have shape"):
        info_nce(z[0], z[0])
    with pytest.raises(TypeError, match="`z_a` must be a torch.Tensor"):
        info_nce(z.numpy(), z)


def test_gaussian_entropy_matches_scipy():
    from scipy.stats import multivariate_normal

    g = torch.Generator().manual_seed(1)
    z = torch.randn(200, 4, generator=g, dtype=torch.float64) @ torch.tensor(
        [[1.0, 0, 0, 0], [0.5, 2, 0, 0], [0, 0, 0.3, 0], [0, 1, 0, 1]], dtype=torch.float64)
    cov = np.cov(z.numpy(), rowvar=False) + 1e-4 * np.eye(4)
    want = multivariate_normal(np.zeros(4), cov).entropy()
    assert float(gaussian_entropy(z)) == pytest.approx(want, rel=1e-5)


def test_regularizer_terms():
    z = torch.randn(64, 8, requires_grad=True)
    value, terms = gaussian_regularizer(z, beta=0.5, lam=2.0)
    assert set(terms) == {"entropy", "sq_norm", "reg"}
    assert terms["reg"] == pytest.approx(0.5 * (-terms["entropy"] + 2.0 * terms["sq_norm"]), rel=1e-5)
    value.backward()
    assert torch.isfinite(z.grad).all()
