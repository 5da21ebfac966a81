"""Plots of a :class:`~infogauss.diagnostics.GaussianityReport` (the ``plot`` extra).

:func:`plot_report` writes the four figures to a directory; the ``plot_*`` functions draw one
each on a given (or new) axes and return it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

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


def plot_norm_histogram(report: Any, ax: Any = None):
    """Histogram of the norms ‖x‖ with the Gaussian-implied spread around their mean.

    The dashed curve is a normal density with the observed mean norm and standard deviation
    ``cv_implied × mean`` (what a Gaussian with the fitted covariance would give).
    """
    ax = _axes(ax)
    norms = np.asarray(report.arrays["norms"])
    ax.hist(norms, bins=50, density=True, alpha=0.6, label="‖x‖")
    mean = float(norms.mean())
    sd_implied = report.norms["cv_implied"] * mean
    if np.isfinite(sd_implied) and sd_implied > 0:
        grid = np.linspace(norms.min(), norms.max(), 200)
        ax.plot(grid, stats.norm.pdf(grid, mean, sd_implied), "--",
                label=f"Gaussian-implied (CV {report.norms['cv_implied']:.3g})")
    ax.set_xlabel("norm")
    ax.set_ylabel("density")
    norms_ = report.norms
    ax.set_title(f"Norms: CV {norms_['cv']:.3g}, floor {norms_['cv_isotropic_floor']:.3g}")
    ax.legend(fontsize=8)
    return ax


def plot_qq_columns(report: Any, which: str = "coordinates", ax: Any = None):
    """Normal QQ plot of the worst, median and best columns (by Anderson–Darling).

    Parameters
    ----------
    which : {"coordinates", "projections", "whitened"}
    """
    if which not in ("coordinates", "projections", "whitened"):
        raise ValueError(
            f"`which` must be 'coordinates', 'projections' or 'whitened', got {which!r}"
        )
    ax = _axes(ax)
    sel = report.arrays.get(f"qq_{which}")
    if sel is None:
        ax.text(0.5, 0.5, f"{which}: not computed", ha="center", va="center")
        return ax
    values = np.asarray(sel["values"])
    n = values.shape[0]
    theo = stats.norm.ppf((np.arange(1, n + 1) - 0.375) / (n + 0.25))
    for j, idx in enumerate(sel["index"]):
        col = values[:, j]
        z = np.sort((col - col.mean()) / col.std(ddof=1))
        ax.plot(theo, z, ".", ms=2, label=f"{which[:-1]} {int(idx)}")
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
    scale = (n_fit + 1.0) * d / (n_fit - d)
    f_q = stats.f.ppf(q, d, n_fit - d) * scale
    c_q = stats.chi2.ppf(q, d)
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
