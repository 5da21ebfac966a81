"""What every package has: a complete public namespace, a version, type information."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

import infogauss

REPO = Path(__file__).resolve().parents[1]


def test_every_name_in_all_resolves():
    for name in infogauss.__all__:
        assert getattr(infogauss, name) is not None, name


@pytest.mark.parametrize("name, extra", [("GaussianLikelihoodDetector", "pyod"),
                                         ("CalibratedRetriever", "faiss")])
def test_optional_estimators_are_public_when_installed(name, extra):
    pytest.importorskip(extra)
    assert name in infogauss.__all__


def test_version_matches_the_metadata():
    assert infogauss.__version__ == importlib.metadata.version("infogauss")


def test_typed_and_licensed():
    assert (Path(infogauss.__file__).parent / "py.typed").is_file()
    assert "BSD 3-Clause" in (REPO / "LICENSE").read_text()
    assert (REPO / "CHANGELOG.md").is_file()


def test_plotting_exports_its_public_functions():
    pytest.importorskip("matplotlib")
    from infogauss.plotting import plot_report  # noqa: F401
