"""The :class:`GaussianityReport`: its sections, JSON and markdown."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ._format import _f, _jsonable, _pct, _region

__all__ = ["GaussianityReport"]


@dataclass(eq=False)
class GaussianityReport:
    """Result of :func:`diagnose`; every section is a plain dict (JSON-ready via
    :meth:`to_dict`).

    Attributes
    ----------
    n_samples, n_features : int
        Shape of the input.
    n_used : int
        Rows used (a seeded subsample when ``n_samples > max_samples``).
    settings : dict
        Options, seed and library versions.
    norms : dict
        CV of the norms (raw, as the paper; centred), isotropic floor ``1/sqrt(2d)``,
        covariance-implied ``sqrt(tr Σ²/2)/tr Σ``, and the standardised gap.
    coordinates, projections, whitened : dict
        Per-column AD and DP summaries (mean statistic, pass fraction, its Wilson interval,
        the null pass fraction and the null band, z from the null); ``None`` when not
        applicable, with the reason in ``notes``.
    joint : dict or None
        Held-out squared Mahalanobis distances against F (exact) and χ² (limit): KS
        distances, tail rates and their tail-excess statistic, Monte-Carlo p-values
        (``monte_carlo``: p-value, null median, pass region and simulations per statistic),
        QQ summary.
    mardia : dict or None
        See :func:`mardia`.
    constant_features : list of int
        Columns dropped from every check as constant or near-constant (SD at most
        ``settings["constant_rtol"]`` × the median column SD); the paper's raw norm CV keeps
        them.
    checks : list of dict
        One entry per check: ``name``; ``status`` — "pass" (p-value above ``level``),
        "fail" (at or below), "inconclusive" (a Monte-Carlo check whose resolution is above
        the level: it cannot fail) or "n/a" (not run; ``detail`` says why); ``observed``
        (the statistic), ``expected`` (its value under the null: the null mean, or the
        median of the simulated null), ``band`` (the pass region ``[low, high]`` at the
        level, None for an unbounded side), ``z``, ``pvalue``, ``level``, ``pvalue_holm``
        (Holm-adjusted within the family), ``rejected`` (family-wise), ``detail``; Monte-Carlo
        checks add ``n_simulations`` and ``mc_resolution``.
    verdict : str
        One line: "Gaussian" or "not Gaussian" at the family-wise level (Holm over the
        checks that could decide), with the checks behind it, those failing alone, the
        inconclusive ones and those not run — never a bare yes/no.
    reasons : list of str
        One sentence per check, with the distance from the null.
    notes : list of str
        Caveats and degenerate cases met.
    familywise : dict
        The verdict's decision: ``method`` ("holm"), ``level``, ``n_checks``, ``decision``
        ("Gaussian", "not Gaussian" or "none"), ``rejected``, ``fail_alone``,
        ``inconclusive``, ``not_run`` (check names) and ``min_adjusted_pvalue``.
    baseline : GaussianityReport or None
        The same report for the baseline embeddings.
    comparison : dict or None
        Trained versus baseline, metric by metric.
    """

    n_samples: int
    n_features: int
    n_used: int
    settings: dict
    norms: dict
    coordinates: dict | None
    projections: dict | None
    whitened: dict | None
    joint: dict | None
    mardia: dict | None
    constant_features: list
    checks: list
    verdict: str
    reasons: list
    notes: list
    familywise: dict | None = None
    baseline: GaussianityReport | None = None
    comparison: dict | None = None
    arrays: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        """All sections as JSON-ready Python objects (non-finite floats become None)."""
        out = {
            k: getattr(self, k)
            for k in (
                "n_samples", "n_features", "n_used", "settings", "verdict", "reasons",
                "familywise", "checks", "norms", "coordinates", "projections", "whitened",
                "joint", "mardia", "constant_features", "notes", "comparison",
            )
        }  # fmt: skip
        out["baseline"] = None if self.baseline is None else self.baseline.to_dict()
        return _jsonable(out)

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as a JSON string (``kwargs`` go to :func:`json.dumps`)."""
        kwargs.setdefault("indent", 2)
        return json.dumps(self.to_dict(), **kwargs)

    def to_markdown(self) -> str:
        """A human-readable summary: verdict, reasons, the paper's numbers, the checks table,
        and the baseline comparison."""
        alpha = self.settings.get("alpha")
        lines = [
            "# Gaussianity report",
            "",
            f"{self.n_samples} samples × {self.n_features} features "
            f"({self.n_used} used, seed {self.settings.get('seed')}).",
            "",
            f"**Verdict:** {self.verdict}",
            "",
        ]
        lines += [f"- {r}" for r in self.reasons]
        p = self.paper_numbers()
        lines += [
            "",
            "## Paper's protocol",
            "",
            "| CV of norms | floor 1/√(2d) | implied √(trΣ²/2)/trΣ | AD mean A² | AD pass "
            "| DP mean K² | DP pass |",
            "|---|---|---|---|---|---|---|",
            f"| {_f(p['cv'])} | {_f(self.norms['cv_isotropic_floor'])} | "
            f"{_f(self.norms['cv_implied'])} | {_f(p['ad_mean'])} | {_pct(p['ad_pass'])} | "
            f"{_f(p['dp_mean'])} | {_pct(p['dp_pass'])} |",
            "",
            "## Checks",
            "",
            f"Each check at level {_f(alpha)}: it passes when its p-value is above the level, "
            "i.e. when the observed statistic lies in its pass region. The verdict is "
            "family-wise (Holm-adjusted p-values).",
            "",
            "| check | status | observed | null value | pass region | p-value | Holm p "
            "| family-wise | detail |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for c in self.checks:
            fw = {True: "rejects", False: "–", None: ""}[c.get("rejected")]
            lines.append(
                f"| {c['name']} | {c['status']} | {_f(c.get('observed'))} | "
                f"{_f(c.get('expected'))} | {_region(c.get('band'))} | {_f(c.get('pvalue'))} | "
                f"{_f(c.get('pvalue_holm'))} | {fw} | {c.get('detail', '')} |"
            )
        if self.constant_features:
            cf = self.constant_features
            rtol = self.settings.get("constant_rtol")
            rule = f"; SD <= {rtol:.0e} × the median column SD".replace("e-0", "e-") if rtol else ""
            lines += ["", f"Dropped features, constant or near-constant ({len(cf)}{rule}): "
                      f"{cf[:20]}{' …' if len(cf) > 20 else ''}"]
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        if self.comparison is not None:
            lines += ["", "## Against the baseline", "", self.comparison["summary"], "",
                      "| metric | ours | baseline | difference |", "|---|---|---|---|"]
            for row in self.comparison["metrics"]:
                lines.append(
                    f"| {row['metric']} | {_f(row['ours'])} | {_f(row['baseline'])} | "
                    f"{_f(row['difference'])} |"
                )
        return "\n".join(lines) + "\n"

    def paper_numbers(self) -> dict[str, float | None]:
        """The paper's three numbers (raw CV, AD pass, DP pass) plus the mean statistics."""
        c = self.coordinates or {}
        return {
            "cv": self.norms.get("cv"),
            "ad_pass": c.get("ad", {}).get("pass_fraction"),
            "dp_pass": c.get("dp", {}).get("pass_fraction"),
            "ad_mean": c.get("ad", {}).get("mean_statistic"),
            "dp_mean": c.get("dp", {}).get("mean_statistic"),
        }
