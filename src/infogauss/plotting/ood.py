"""ROC curves for OOD detectors (the ``plot`` extra)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..metrics import auroc, ood_roc_curve
from ._mpl import plt

__all__ = ["plot_ood_roc", "save_figure"]


def plot_ood_roc(
    curves: Mapping[str, tuple[Any, Any]],
    *,
    ax: Any = None,
    title: str | None = None,
    log_fpr: bool = False,
) -> Any:
    """Draw one ROC curve per detector (in-distribution = positive class).

    Parameters
    ----------
    curves : mapping of name -> (scores_in, scores_out)
        Scores where higher = more in-distribution (``score_samples``; pass
        ``-decision_function`` for PyOD detectors).
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure is made otherwise.
    title : str, optional
    log_fpr : bool, default=False
        Logarithmic FPR axis (shows the low-false-alarm region).

    Returns
    -------
    matplotlib.axes.Axes
        The legend gives each detector's AUROC; the dotted horizontal line marks
        TPR = 0.95 (a curve's FPR95 is where it first reaches that line).
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("`curves` must be a non-empty mapping name -> (scores_in, scores_out)")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5.0))
    for name, pair in curves.items():
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(
                f"`curves[{name!r}]` must be a pair (scores_in, scores_out), "
                f"got {type(pair).__name__}"
            )
        fpr, tpr, _ = ood_roc_curve(*pair)
        ax.plot(fpr, tpr, lw=1.4, label=f"{name} (AUROC {100 * auroc(*pair):.1f})")
    ax.axhline(0.95, color="grey", ls=":", lw=0.8)
    if log_fpr:
        ax.set_xscale("log")
        ax.set_xlim(1e-4, 1.0)
    else:
        ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8)
        ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("FPR (fraction of OOD accepted)")
    ax.set_ylabel("TPR (fraction of in-distribution accepted)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    return ax


def save_figure(ax_or_fig: Any, path: Any, *, dpi: int = 110) -> Any:
    """Save the figure of ``ax_or_fig`` (an Axes or a Figure) to ``path`` and close it.

    Returns the path, so callers need no matplotlib import of their own.
    """
    fig = getattr(ax_or_fig, "figure", ax_or_fig)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path

