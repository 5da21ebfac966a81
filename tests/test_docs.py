"""The documentation site builds without a single warning, and the user guide's code runs.

Both are slow (a full Sphinx build imports every module; the guide trains a small encoder) and
need the ``docs`` extra (``pip install -e ".[docs]"``), which CI does not install: without
Sphinx they skip with a reason. ``make docs`` runs the same build.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
GUIDE = DOCS / "guide"

pytestmark = pytest.mark.slow

# what a guide page's code imports -> the module it needs (skip the page without it)
_NEEDS = {
    "infogauss.contrastive": "torch",
    "infogauss.retrieval": "faiss",
    "infogauss.anomaly": "pyod",
    "infogauss.distributed": "dask",
    "dask": "dask",
}


def _need(module: str, why: str) -> None:
    pytest.importorskip(module, reason=f"{why} needs {module} (pip install -e '.[docs]')")


def test_docs_build_without_warnings(tmp_path):
    for module in ("sphinx", "numpydoc", "myst_parser"):
        _need(module, "building the documentation")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
           "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")]  # fmt: skip
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"sphinx failed (exit {out.returncode}):\n{out.stderr[-6000:]}"
    assert "WARNING" not in out.stderr and "ERROR" not in out.stderr, out.stderr[-6000:]
    assert (tmp_path / "html" / "index.html").is_file()
    assert (tmp_path / "html" / "api" / "model.html").is_file()


def _python_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), re.M | re.S)


_PAGES = sorted(p for p in GUIDE.glob("*.md") if _python_blocks(p))


def test_every_capability_page_has_code():
    assert {p.stem for p in _PAGES} >= {"train", "diagnose", "fit", "ood", "anomaly", "retrieve",
                                        "gaussianize", "persistence", "reproducibility"}


@pytest.mark.parametrize("page", _PAGES, ids=lambda p: p.stem)
def test_guide_code_runs(page, tmp_path):
    """Each page's Python blocks, in order, in one fresh interpreter (as a reader would)."""
    code = "\n\n".join(_python_blocks(page))
    for name, module in _NEEDS.items():
        if re.search(rf"\b(from|import) {re.escape(name)}\b", code):
            _need(module, f"docs/guide/{page.name}")
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, f"docs/guide/{page.name}:\n{out.stderr[-4000:]}"
