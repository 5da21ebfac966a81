"""Plots of a GaussianityReport show what its checks test (Agg backend, no display)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from infogauss import diagnose  # noqa: E402
from infogauss.diagnostics import anderson_darling_normal  # noqa: E402
from infogauss.plotting import (  # noqa: E402
    plot_norm_histogram,
    plot_ood_roc,
    plot_qq_columns,
    plot_report,
)
from infogauss.plotting._mpl import matplotlib, plt  # noqa: E402

from .conftest import correlated_gaussian  # noqa: E402


@pytest.fixture(scope="module")
def far_report():
    """An exact Gaussian far from the origin (mean 100 in every coordinate)."""
    rng = np.random.default_rng(7)
    X = correlated_gaussian(rng, 2000, 16, offset=100.0)
    return X, diagnose(X, n_null_simulations=300, n_joint_simulations=99)


def test_backend_is_agg():
    assert matplotlib.get_backend().lower() == "agg"


def test_norm_histogram_draws_the_checked_quantity(far_report):
    X, rep = far_report
    check = next(c for c in rep.checks if c["name"] == "norm CV vs covariance-implied")
    assert check["status"] == "pass"  # exact Gaussian: the check passes ...
    ax = plot_norm_histogram(rep)
    try:
        # ... and the histogram is of the centred norms the check tests, not of raw ‖x‖ ≈ 400
        centred = np.linalg.norm(X - X.mean(axis=0), axis=1)
        heights, edges = np.histogram(centred, bins=50, density=True)
        bars = ax.containers[0]
        np.testing.assert_allclose([b.get_height() for b in bars], heights, rtol=1e-10)
        np.testing.assert_allclose([b.get_x() for b in bars], edges[:-1], rtol=1e-10)
        assert centred.std() / centred.mean() == pytest.approx(check["observed"], rel=1e-10)
        # the reference is for the same quantity: centred mean, implied CV
        x, y = ax.get_lines()[0].get_data()
        sd = 1.0 / (np.sqrt(2 * np.pi) * y.max())
        mode = x[np.argmax(y)]
        assert mode == pytest.approx(centred.mean(), rel=0.01)
        assert sd / centred.mean() == pytest.approx(check["expected"], rel=1e-3)
        assert edges[0] < mode < edges[-1]  # the curve sits on the histogram
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels[0].startswith("‖x − x̄‖") and labels[1].startswith("Gaussian-implied")
        assert "(pass)" in ax.get_title()
    finally:
        plt.close(ax.figure)


@pytest.mark.parametrize("which, noun", [("coordinates", "coordinate"),
                                         ("projections", "projection"),
                                         ("whitened", "whitened coordinate")])
def test_qq_legend_is_worst_median_best_with_full_labels(far_report, which, noun):
    _, rep = far_report
    sel = rep.arrays[f"qq_{which}"]
    a2 = anderson_darling_normal(np.asarray(sel["values"], dtype=np.float64))
    expect = [int(sel["index"][j]) for j in np.argsort(-a2)]
    ax = plot_qq_columns(rep, which)
    try:
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert [lab.split(":")[0] for lab in labels] == ["worst", "median", "best"]
        assert [int(lab.split(f": {noun} ")[1].split(" ")[0]) for lab in labels] == expect
        stats_ = [float(lab.split("(A² ")[1].rstrip(")")) for lab in labels]
        assert stats_ == sorted(stats_, reverse=True)
        assert "worst / median / best" in ax.get_title()
        assert not any("whitene " in lab for lab in labels)
    finally:
        plt.close(ax.figure)


def test_qq_two_columns_are_worst_and_best(rng):
    rep = diagnose(np.column_stack([rng.standard_normal(200), rng.exponential(size=200)]),
                   n_null_simulations=100, n_joint_simulations=99, n_projections=2)
    ax = plot_qq_columns(rep, "coordinates")
    try:
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels[0].startswith("worst: coordinate 1 ")  # the exponential column
        assert labels[1].startswith("best: coordinate 0 ")
    finally:
        plt.close(ax.figure)
    with pytest.raises(ValueError, match="`which` must be"):
        plot_qq_columns(rep, "whitene")


def test_plot_report_writes_every_figure(far_report, tmp_path):
    _, rep = far_report
    plt.close("all")  # figures other tests left open are not plot_report's
    paths = plot_report(rep, tmp_path / "plots", prefix="x_")
    assert [p.name for p in paths] == [f"x_{n}.png" for n in (
        "norms", "qq_coordinates", "qq_projections", "qq_whitened", "qq_mahalanobis")]
    assert all(p.stat().st_size > 0 for p in paths)
    assert plt.get_fignums() == []  # every figure closed


def test_package_exports():
    import infogauss.plotting as ip

    assert set(ip.__all__) == {"plot_report", "plot_norm_histogram", "plot_qq_columns",
                               "plot_mahalanobis_qq", "plot_ood_roc", "save_figure"}
    assert ip.plot_ood_roc is plot_ood_roc and "plot_report" in dir(ip)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ip.nope  # noqa: B018


def test_import_without_matplotlib_fails_only_on_use():
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import infogauss.plotting as ip\n"
        "try:\n"
        "    ip.plot_report\n"
        "except ImportError as e:\n"
        "    print('ImportError', 'infogauss[plot]' in str(e))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ImportError", "True"]
