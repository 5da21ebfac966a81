r"""Per-column power transforms and the maximum-likelihood fit of their exponents.

Every function works on a 2-D float64 array, one exponent per column (``lambdas`` broadcast
along the rows), and is elementwise, so a row's output never depends on the other rows.

Notes
-----
*Yeo–Johnson* (Yeo & Johnson 2000), written with ``boxcox1p(x, λ) = ((1+x)^λ − 1)/λ``::

    ψ(x; λ) =  boxcox1p(x, λ)          for x ≥ 0
    ψ(x; λ) = −boxcox1p(−x, 2 − λ)     for x < 0

Its inverse uses ``inv_boxcox1p`` branch by branch. ``λ`` maximises the profile
log-likelihood of ``ψ(x)`` being ``N(μ, σ²)`` (μ, σ² at their MLE)::

    ℓ(λ) = −n/2 · log var(ψ(x; λ)) + (λ − 1) Σ sign(x_i) log(1 + |x_i|)

the criterion of ``scipy.stats.yeojohnson_normmax`` and ``sklearn.preprocessing.PowerTransformer``
(bounded Brent search on ``[-LAMBDA_MAX, LAMBDA_MAX]``).

*Box–Cox with zeros* (Box & Cox 1964; censored form: Poirier 1978, JASA 73:284). For a
non-negative column, ``b(x; λ) = (x^λ − 1)/λ`` (``log x`` at λ = 0). Exact zeros — a post-ReLU
unit's inactive samples — are treated as **left-censored**: the latent pre-activation lies at or
below the threshold ``c = b(0; λ) = −1/λ`` (finite for λ > 0) of a latent ``N(μ, σ²)``. λ
maximises the Tobit likelihood, profiled over ``(μ, σ)`` (an inner Newton solve, concave in
Olsen's parametrisation)::

    ℓ = Σ_{x_i>0} [log φ(z_i) − log σ + (λ − 1) log x_i] + n₀ log Φ((c − μ)/σ),
    z_i = (b(x_i; λ) − μ)/σ

With no zeros (``n₀ = 0``) this is the ordinary Box–Cox maximum likelihood, the criterion of
``scipy.stats.boxcox_normmax(method="mle")`` and ``PowerTransformer(method="box-cox")``. With
zeros, λ is kept ≥ :data:`LAMBDA_MIN_ZERO` > 0 so that a zero maps to a finite value. λ does
not depend on the scale of ``x`` (``b(cx) = c^λ b(x) + b(c)``), so the fit runs on
``x / geometric_mean(x>0)`` for conditioning and the transform uses ``x`` itself.

A zero is then sent not to the censoring point ``c`` but to the latent's conditional mean
below it, ``E[b | b ≤ c] = μ − σ φ(a)/Φ(a)``, ``a = (c − μ)/σ``: the one value that stands for
all the censored latent values with the least squared error, and keeps the column's mean. The
map stays strictly increasing (it jumps down at 0), and every value at or below ``c`` inverts
to 0.

*Fixed power*: ``sign(x)·|x|^p`` (``p > 0``): the square root of a post-ReLU feature at
``p = 0.5``; nothing is fitted, so it streams exactly.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special

__all__ = [
    "LAMBDA_MAX",
    "LAMBDA_MIN_ZERO",
    "yeo_johnson",
    "yeo_johnson_inverse",
    "fit_yeo_johnson",
    "box_cox",
    "box_cox_inverse",
    "fit_box_cox",
    "zero_value",
    "signed_power",
    "signed_power_inverse",
    "has_three_values",
]

#: Bound on |λ| for the fitted exponents (beyond it ``x^λ`` overflows for ordinary data).
LAMBDA_MAX = 5.0
#: Smallest Box–Cox λ for a column that contains (or may meet) exact zeros: ``b(0) = −1/λ``.
LAMBDA_MIN_ZERO = 0.01
_XATOL = 1e-9  # λ tolerance of the bounded Brent search
_SQRT_2PI = math.sqrt(2 * math.pi)
_SQRT_2 = math.sqrt(2.0)


# --------------------------------------------------------------------------------------
# Yeo–Johnson
# --------------------------------------------------------------------------------------
def yeo_johnson(X: np.ndarray, lambdas: np.ndarray) -> np.ndarray:
    """``ψ(X; λ)`` column by column (``lambdas`` broadcasts along the rows)."""
    lam = np.broadcast_to(lambdas, X.shape)
    out = np.empty_like(X, dtype=np.float64)
    pos = X >= 0
    with np.errstate(over="ignore", invalid="ignore"):
        out[pos] = special.boxcox1p(X[pos], lam[pos])
        out[~pos] = -special.boxcox1p(-X[~pos], 2.0 - lam[~pos])
    return out


def yeo_johnson_inverse(Y: np.ndarray, lambdas: np.ndarray) -> np.ndarray:
    """Inverse of :func:`yeo_johnson`; NaN where ``Y`` lies outside the transform's image."""
    lam = np.broadcast_to(lambdas, Y.shape)
    out = np.empty_like(Y, dtype=np.float64)
    pos = Y >= 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out[pos] = special.inv_boxcox1p(Y[pos], lam[pos])
        out[~pos] = -special.inv_boxcox1p(-Y[~pos], 2.0 - lam[~pos])
    return out


def _yj_profile_nll(lam: float, x: np.ndarray, jac: float) -> float:
    y = yeo_johnson(x, np.float64(lam))
    with np.errstate(over="ignore", invalid="ignore"):
        var = float(np.var(y))
    if not np.isfinite(var) or var <= np.finfo(np.float64).tiny:
        return np.inf
    return 0.5 * x.size * np.log(var) - (lam - 1.0) * jac


def fit_yeo_johnson(x: np.ndarray) -> float:
    """Maximum-likelihood Yeo–Johnson λ of one column (1-D float64, ≥ 3 distinct values).

    Examples
    --------
    >>> x = np.random.default_rng(0).exponential(size=2000)
    >>> bool(fit_yeo_johnson(x) < 1.0)   # right skew ⇒ λ < 1
    True
    """
    jac = float(np.sum(np.sign(x) * np.log1p(np.abs(x))))
    res = optimize.minimize_scalar(
        _yj_profile_nll, bounds=(-LAMBDA_MAX, LAMBDA_MAX), args=(x, jac),
        method="bounded", options={"xatol": _XATOL, "maxiter": 500},
    )  # fmt: skip
    return float(res.x)


# --------------------------------------------------------------------------------------
# Box–Cox (zeros left-censored)
# --------------------------------------------------------------------------------------
def box_cox(X: np.ndarray, lambdas: np.ndarray, zero_values: np.ndarray) -> np.ndarray:
    """``b(X; λ) = (X^λ − 1)/λ`` column by column, a zero sent to its column's
    ``zero_values`` (NaN below 0, −inf at 0 where λ ≤ 0)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = special.boxcox(X, lambdas)
    zero = X == 0
    if zero.any():
        out[zero] = np.where(np.broadcast_to(lambdas, X.shape) > 0,
                             np.broadcast_to(zero_values, X.shape), -np.inf)[zero]  # fmt: skip
    return out


def box_cox_inverse(Y: np.ndarray, lambdas: np.ndarray) -> np.ndarray:
    """Inverse of :func:`box_cox`; NaN where ``Y`` lies outside the image.

    For λ > 0 every value at or below ``b(0) = −1/λ`` (where only a zero's stand-in lies)
    inverts to 0; for λ <= 0 the image is ``λY > −1``.
    """
    lam = np.broadcast_to(lambdas, Y.shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        base = 1.0 + lam * Y
        base = np.where(lam > 0, np.maximum(base, 0.0), base)
        out = np.where(lam == 0, np.exp(Y), np.power(base, 1.0 / np.where(lam == 0, 1.0, lam)))
    return np.where((base < 0) | ((base == 0) & (lam <= 0)), np.nan, out)


def _censored_normal_fit(n_pos: int, d2: float, c: float, n0: int) -> tuple[float, float, float]:
    """Maximum-likelihood censored normal of centred values: ``(log-likelihood, β, γ)``.

    The positives' values ``u`` (centred, ``Σu = 0``, ``Σu² = d2``) are ``N(β/γ, 1/γ²)`` and
    ``n0`` more values lie at or below ``c``; in Olsen's parametrisation the log-likelihood
    ``n₊ log γ − (γ² d2 + n₊ β²)/2 + n0 log Φ(γc − β)`` is concave, so Newton's method with
    step halving finds its maximum from the uncensored estimate (exact when ``n0 = 0``).
    """
    beta, gamma = 0.0, math.sqrt(n_pos / d2)

    def loglik(b: float, g: float) -> float:
        ll = n_pos * math.log(g) - 0.5 * (g * g * d2 + n_pos * b * b)
        return ll + n0 * float(special.log_ndtr(g * c - b)) if n0 else ll

    ll = loglik(beta, gamma)
    for _ in range(100 if n0 else 0):
        a = gamma * c - beta
        h = _mills(a)
        w = n0 * h * (a + h)
        g_b, g_g = -n_pos * beta - n0 * h, n_pos / gamma - gamma * d2 + n0 * h * c
        h_bb, h_bg, h_gg = -n_pos - w, w * c, -n_pos / gamma**2 - d2 - w * c * c
        det = h_bb * h_gg - h_bg * h_bg
        step_b = -(h_gg * g_b - h_bg * g_g) / det
        step_g = -(h_bb * g_g - h_bg * g_b) / det
        t = 1.0
        while t > 1e-10:
            b_new, g_new = beta + t * step_b, gamma + t * step_g
            if g_new > 0 and (ll_new := loglik(b_new, g_new)) >= ll:
                break
            t *= 0.5
        else:
            break
        converged = abs(t * step_b) + abs(t * step_g) <= 1e-13 * (1.0 + abs(beta) + gamma)
        beta, gamma, ll = b_new, g_new, ll_new
        if converged:
            break
    return ll, beta, gamma


def _mills(a: float) -> float:
    """``φ(a)/Φ(a)``, as ``2 / (√(2π) erfcx(−a/√2))``: no ``exp`` of a difference of large
    logs, so it keeps full precision (and stays finite) however far in the lower tail ``a``
    lies (the difference-of-logs form overflowed, and lost digits from ``|a|`` ≈ 1e3 on)."""
    return 2.0 / (_SQRT_2PI * float(special.erfcx(-a / _SQRT_2)))


def _box_cox_profile(lam: float, xt: np.ndarray, n0: int) -> tuple[float, float, float]:
    """``(−max_{μ,σ} ℓ(λ, μ, σ), μ, σ)`` of the censored Box–Cox model for ``xt`` with
    ``Σ log xt = 0`` (so the Jacobian term vanishes; see the module notes)."""
    with np.errstate(over="ignore", invalid="ignore"):
        u = special.boxcox(xt, lam)
        mean = float(np.mean(u))
        d2 = float(np.sum((u - mean) ** 2))
    if not (np.isfinite(d2) and d2 > 0):
        return np.inf, np.nan, np.nan
    ll, beta, gamma = _censored_normal_fit(xt.size, d2, -1.0 / lam - mean, n0)
    return -ll, mean + beta / gamma, 1.0 / gamma


def fit_box_cox(x: np.ndarray, *, lambda_min: float = -LAMBDA_MAX) -> tuple[float, float]:
    """Maximum-likelihood Box–Cox λ of one non-negative column, zeros left-censored.

    Parameters
    ----------
    x : ndarray of shape (n,)
        Non-negative float64 values with at least 3 distinct values.
    lambda_min : float, default=-LAMBDA_MAX
        Lower bound of λ; raised to :data:`LAMBDA_MIN_ZERO` when ``x`` holds a zero.

    Returns
    -------
    lam : float
        λ in ``[lambda_min, LAMBDA_MAX]`` (bounded Brent search on the profile likelihood,
        ``(μ, σ)`` maximised for each λ).
    zero_value : float
        What :func:`box_cox` maps a zero to: ``E[b | b ≤ b(0)]`` under the fitted latent
        ``N(μ, σ²)``, ``μ − σ φ(a)/Φ(a)`` with ``a = (b(0) − μ)/σ``; NaN when λ ≤ 0.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=4000) ** 2      # χ²₁: λ ≈ 1/3 (Wilson–Hilferty)
    >>> bool(0.2 < fit_box_cox(x)[0] < 0.45)
    True
    """
    pos = x[x > 0]
    n0 = int(x.size - pos.size)
    log_x = np.log(pos)
    log_gm = float(log_x.mean())
    xt = np.exp(log_x - log_gm)  # x / geometric mean: λ is unchanged, the sums better scaled
    lo = max(lambda_min, LAMBDA_MIN_ZERO) if n0 else lambda_min
    res = optimize.minimize_scalar(
        lambda lam: _box_cox_profile(lam, xt, n0)[0], bounds=(lo, LAMBDA_MAX),
        method="bounded", options={"xatol": _XATOL, "maxiter": 500},
    )  # fmt: skip
    lam = float(res.x)
    if lam <= 0:
        return lam, np.nan
    _, mu, sigma = _box_cox_profile(lam, xt, n0)
    # back to the units of b(x): b(g·xt) = g^λ b(xt) + b(g), g the geometric mean
    g_lam = math.exp(lam * log_gm)
    mu, sigma = g_lam * mu + float(special.boxcox(math.exp(log_gm), lam)), g_lam * sigma
    return lam, zero_value(lam, mu, sigma)


def zero_value(lam: float, mu: float, sigma: float) -> float:
    """``E[b | b ≤ −1/λ]`` for ``b ~ N(μ, σ²)``: the conditional mean of a censored zero."""
    c = -1.0 / lam
    a = (c - mu) / sigma
    # E[b | b <= c] < c; far in the tail the difference is below rounding: keep it at c
    return min(mu - sigma * _mills(a), c)


# --------------------------------------------------------------------------------------
# Fixed power
# --------------------------------------------------------------------------------------
def signed_power(X: np.ndarray, p: float) -> np.ndarray:
    """``sign(X)·|X|^p``."""
    with np.errstate(over="ignore"):
        return np.sign(X) * np.abs(X) ** p


def signed_power_inverse(Y: np.ndarray, p: float) -> np.ndarray:
    """Inverse of :func:`signed_power`: ``sign(Y)·|Y|^(1/p)``."""
    with np.errstate(over="ignore"):
        return np.sign(Y) * np.abs(Y) ** (1.0 / p)


def has_three_values(X: np.ndarray) -> np.ndarray:
    """Per column: at least three distinct values (enough to fit an exponent)."""
    lo, hi = X.min(axis=0), X.max(axis=0)
    return np.any((X > lo) & (X < hi), axis=0)
