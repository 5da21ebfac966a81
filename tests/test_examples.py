"""Every script in examples/ runs as a user would run it and prints its key results.

Each script runs in a subprocess (``sys.executable examples/NAME.py``) from an empty
temporary working directory, which must stay empty: examples write files only to ``--out``
or a temporary directory. Scripts that need an optional extra skip when it is missing.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

EXAMPLES = REPO / "examples"
TIMEOUT_S = 120  # generous: the machine may be shared; each script takes seconds alone

# script -> (module that must import, extra arguments, patterns that must appear in stdout)
CASES = {
    "scoring_service.py": (
        None,
        ["--out", "{out}"],
        [
            r"loaded model reproduces the fitted model's scores exactly: True",
            r"service decisions == MahalanobisOOD\.predict\(alpha=0\.05\): True",
            r"false-alarm rate on \d+ fresh in-distribution embeddings",
            r"^\s+0\.05\s+0\.\d+\s+0\.\d+ \+- 0\.\d+\s+0\.\d+$",
        ],
    ),
    "sklearn_pipeline.py": (
        None,
        [],
        [
            r"selected shrinkage=\S+ \(intensity used: \d\.\d+\)",
            r"AUROC, held-out 0-5 vs unseen classes 6-9 by log-density: 0\.\d+",
            r"selected n_components=\d+; test accuracy 0\.\d+",
        ],
    ),
    "pyod_detector.py": (
        "pyod",
        [],
        [
            r"^\s+infogauss GaussianLikelihood\s+[01]\.\d{3}\s+\d+\.\d%\s+True\s",
            r"^\s+pyod KNN\s+[01]\.\d{3}",
            r"^digits: train",
        ],
    ),
    "retrieval.py": (
        "faiss",
        [],
        [
            r"queries with no match in the database: [01]\.\d{3} declared a match",
            r"abstained \(query OOD p-value <= 0\.01\): [\d.]+% of in-distribution",
            r"ECE 0\.\d+, Brier 0\.\d+",
        ],
    ),
    "diagnostics.py": (
        None,
        ["--out", "{out}"],
        [r"^verdict \(embeddings\): ", r"^# Gaussianity report$", r"^## Against the baseline$"],
    ),
    "train_and_embed.py": (
        "torch",
        [],
        [
            r"trained \d+ epochs on 1200 digits in [\d.]+s; InfoNCE loss [\d.]+ -> [\d.]+",
            r"embed\(\): backbone \(597, 32\) float32, C-contiguous True",
            r"GaussianModel on 1200 x 32 embeddings",
        ],
    ),
}
MARKS = {"pyod": pytest.mark.pyod, "faiss": pytest.mark.faiss, "torch": pytest.mark.torch}
EXTRAS = {"pyod": "pyod", "faiss": "faiss", "torch": "train"}  # module -> infogauss extra


def _params() -> list:
    return [
        pytest.param(name, marks=[MARKS[needs]] if needs else [], id=name.removesuffix(".py"))
        for name, (needs, _, _) in CASES.items()
    ]


# examples with a test file of their own (offline model weights, longer runs)
OWN_TESTS = {"text_embeddings.py": "test_examples_text.py"}


def test_every_example_is_run_here():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted([*CASES, *OWN_TESTS])
    for test_file in OWN_TESTS.values():
        assert (Path(__file__).parent / test_file).is_file()
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for name in [*CASES, *OWN_TESTS]:
        assert f"`{name}`" in readme, f"examples/README.md does not list {name}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_shape(name):
    """A docstring saying how to run it, ``main() -> int`` and the SystemExit guard."""
    source = (EXAMPLES / name).read_text(encoding="utf-8")
    tree = ast.parse(source)
    doc = ast.get_docstring(tree)
    assert doc and f"python examples/{name}" in doc
    mains = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
    assert mains and ast.unparse(mains[0].returns) == "int"
    assert 'if __name__ == "__main__":\n    raise SystemExit(main())' in source


@pytest.mark.parametrize("name", _params())
def test_example_runs(name, tmp_path):
    needs, extra_args, patterns = CASES[name]
    if needs is not None and importlib.util.find_spec(needs) is None:
        pytest.skip(f"examples/{name} needs {needs}: pip install 'infogauss[{EXTRAS[needs]}]'")
    cwd, out = tmp_path / "cwd", tmp_path / "out"
    cwd.mkdir()
    args = [a.format(out=out) for a in extra_args]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    # one BLAS/OpenMP thread: the workloads are tiny, and on a shared machine several
    # spinning thread pools slow each other down many-fold
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd, env=env, capture_output=True, text=True, encoding="utf-8", timeout=TIMEOUT_S,
    )  # fmt: skip
    assert proc.returncode == 0, f"examples/{name} failed:\n{proc.stdout}\n{proc.stderr}"
    for pattern in patterns:
        assert re.search(pattern, proc.stdout, flags=re.MULTILINE), (
            f"examples/{name}: no line matches {pattern!r} in:\n{proc.stdout}"
        )
    assert list(cwd.iterdir()) == [], f"examples/{name} wrote into its working directory"
    if "--out" in extra_args:
        assert any(out.iterdir()), f"examples/{name} wrote nothing to --out"
