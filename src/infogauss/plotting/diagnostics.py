"""Plots of a :class:`~infogauss.diagnostics.GaussianityReport` (the ``plot`` extra).

:func:`plot_report` writes the five figures to a directory; the ``plot_*`` functions draw one
each on a given (or new) axes and return it. Each figure shows the quantity its check in
:func:`infogauss.diagnose` tests, against the reference that check uses.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from ..diagnostics import anderson_darling_normal
from ..gaussian import distance_law
from ._mpl import plt

__all__ = [
    "plot_norm_histogram",
    "plot_qq_columns",
    "plot_mahalanobis_qq",
    "plot_report",
]


def _axes(ax: Any):
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    return ax


_NORM_CHECK = "norm CV vs covariance-implied"


def _check_status(report: Any, name: str) -> str | None:
    return next((c.get("status") for c in report.checks if c.get("name") == name), None)


def plot_norm_histogram(report: Any, ax: Any = None):
    """Histogram of the centred norms ``‖x − x̄‖``: the quantity the norm check tests.

    The check (``"norm CV vs covariance-implied"`` in ``report.checks``) compares the
    coefficient of variation of the centred norms with the one a Gaussian with the fitted
    covariance implies, ``sqrt(tr Σ²/2) / tr Σ``. The dashed curve is that reference for the
    same quantity: a normal density with the observed mean centred norm and standard
    deviation ``cv_implied × mean``. Centring makes the picture independent of the mean, as the
    check is (raw norms ‖x‖ of data far from the origin concentrate near ‖x̄‖ whatever the
    covariance); the raw CV (the paper's number) is given in the legend.

    Parameters
    ----------
    report : GaussianityReport
        From :func:`infogauss.diagnose`.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure is made otherwise.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax)
    norms_ = report.norms
    cen = report.arrays.get("norms_centered")
    if cen is None:
        ax.text(0.5, 0.5, "centred norms not in this report", ha="center", va="center")
        return ax
    cen = np.asarray(cen)
    ax.hist(cen, bins=50, density=True, alpha=0.6,
            label=f"‖x − x̄‖ (CV {norms_['cv_centered']:.3g}; raw ‖x‖ CV {norms_['cv']:.3g})")
    mean = float(cen.mean())
    implied = norms_["cv_implied"]
    sd_implied = implied * mean
    if np.isfinite(sd_implied) and sd_implied > 0:
        lo = min(float(cen.min()), mean - 4 * sd_implied)
        hi = max(float(cen.max()), mean + 4 * sd_implied)
        grid = np.linspace(max(lo, 0.0), hi, 200)
        ax.plot(grid, stats.norm.pdf(grid, mean, sd_implied), "--",
                label=f"Gaussian-implied (CV {implied:.3g})")
    ax.set_xlabel("centred norm ‖x − x̄‖")
    ax.set_ylabel("density")
    status = _check_status(report, _NORM_CHECK)
    ax.set_title(f"Centred norms: CV {norms_['cv_centered']:.3g} vs implied {implied:.3g}"
                 + (f" ({status})" if status else ""), fontsize=10)
    ax.legend(fontsize=8)
    return ax


_COLUMN_NOUN = {"coordinates": "coordinate", "projections": "projection",
                "whitened": "whitened coordinate"}
_ROLES = {1: ("only",), 2: ("worst", "best"), 3: ("worst", "median", "best")}


def _qq_columns(report: Any, which: str) -> list[tuple[str, int, float, np.ndarray]] | None:
    """(role, column index, A², values) of the plotted columns, worst first (largest A²)."""
    sel = report.arrays.get(f"qq_{which}")
    if sel is None:
        return None
    values = np.asarray(sel["values"], dtype=np.float64)
    a2 = anderson_darling_normal(values)
    order = np.argsort(-a2, kind="stable")
    roles = _ROLES.get(order.size) or tuple(f"#{i + 1}" for i in range(order.size))
    return [(role, int(sel["index"][j]), float(a2[j]), values[:, j])
            for role, j in zip(roles, order)]


def plot_qq_columns(report: Any, which: str = "coordinates", ax: Any = None):
    """Normal QQ plot of the worst, median and best columns by Anderson–Darling ``A²``.

    The legend lists them in that order (worst = largest ``A²``), each with its column index
    and statistic, e.g. ``worst: whitened coordinate 3 (A² 2.1)``.

    Parameters
    ----------
    report : GaussianityReport
        From :func:`infogauss.diagnose`.
    which : {"coordinates", "projections", "whitened"}
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure is made otherwise.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if which not in _COLUMN_NOUN:
        raise ValueError(
            f"`which` must be 'coordinates', 'projections' or 'whitened', got {which!r}"
        )
    ax = _axes(ax)
    cols = _qq_columns(report, which)
    if cols is None:
        ax.text(0.5, 0.5, f"{which}: not computed", ha="center", va="center")
        return ax
    n = cols[0][3].shape[0]
    theo = stats.norm.ppf((np.arange(1, n + 1) - 0.375) / (n + 0.25))
    for role, idx, a2, col in cols:
        z = np.sort((col - col.mean()) / col.std(ddof=1))
        ax.plot(theo, z, ".", ms=2, label=f"{role}: {_COLUMN_NOUN[which]} {idx} (A² {a2:.3g})")
    lim = [theo[0], theo[-1]]
    ax.plot(lim, lim, "k--", lw=1)
    ax.set_xlabel("normal quantile")
    ax.set_ylabel("standardised sample quantile")
    ax.set_title(f"QQ: {which} (worst / median / best by A²)")
    ax.legend(fontsize=8, markerscale=4)
    return ax


def plot_mahalanobis_qq(report: Any, ax: Any = None):
    """QQ plot of held-out squared Mahalanobis distances against the exact scaled F law
    and the χ²_d limit."""
    ax = _axes(ax)
    m2 = report.arrays.get("m2")
    if m2 is None:
        ax.text(0.5, 0.5, "joint check not computed", ha="center", va="center")
        return ax
    m2 = np.sort(np.asarray(m2))
    n_fit, d = report.arrays["n_fit"], report.arrays["n_features_tested"]
    q = (np.arange(1, m2.size + 1) - 0.5) / m2.size
    f_q = distance_law(n_fit, d, "f").ppf(q)
    c_q = distance_law(n_fit, d, "chi2").ppf(q)
    ax.plot(f_q, m2, ".", ms=2, label="vs scaled F (exact)")
    ax.plot(c_q, m2, ".", ms=2, label="vs χ² (limit)")
    hi = max(f_q[-1], m2[-1])
    ax.plot([0, hi], [0, hi], "k--", lw=1)
    ax.set_xlabel("theoretical quantile of m²")
    ax.set_ylabel("held-out m²")
    ax.set_title(f"Squared Mahalanobis (n_fit={n_fit}, d={d})")
    ax.legend(fontsize=8, markerscale=4)
    return ax


def plot_report(report: Any, out_dir: str | os.PathLike, *, prefix: str = "") -> list[Path]:
    """Write the norm histogram, the QQ plots (coordinates, projections, whitened) and the
    Mahalanobis QQ plot as PNG files under ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    jobs = [
        ("norms", lambda ax: plot_norm_histogram(report, ax)),
        ("qq_coordinates", lambda ax: plot_qq_columns(report, "coordinates", ax)),
        ("qq_projections", lambda ax: plot_qq_columns(report, "projections", ax)),
        ("qq_whitened", lambda ax: plot_qq_columns(report, "whitened", ax)),
        ("qq_mahalanobis", lambda ax: plot_mahalanobis_qq(report, ax)),
    ]
    for name, draw in jobs:
        fig, ax = plt.subplots(figsize=(5, 4))
        try:
            draw(ax)
            fig.tight_layout()
            path = out / f"{prefix}{name}.png"
            fig.savefig(path, dpi=100)
            paths.append(path)
        finally:
            plt.close(fig)
    return paths
