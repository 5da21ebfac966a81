"""``infogauss.bench``: one module per benchmark, each a ``main(argv)`` over the public API that
takes provenance from ``infogauss._io`` and logging from ``infogauss.bench._env``, edits no
``sys.path``, answers ``--help`` without torch/faiss/pyod/dask, and writes by default only its
own results file or an untracked path."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys

import pytest

import infogauss.bench as bench

from .conftest import REPO

SRC = REPO / "src" / "infogauss" / "bench"
MODULES = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_"))
BENCH_SCRIPTS = REPO / "benchmarks"


def test_every_alias_names_a_module_with_main():
    assert set(bench.ALIASES) == {"ood", "retrieval", "table1", "speed", "train", "throughput",
                                  "scale", "latency", "calibration", "sets", "report", "near_dup", "route2",
                                  "ood_suite"}
    assert set(bench.ALIASES.values()) <= set(MODULES)
    for name in MODULES:
        module = importlib.import_module(f"infogauss.bench.{name}")
        assert callable(module.main), name
        assert module.__doc__, name


def test_help_works_without_the_heavy_extras():
    """``--help`` of every benchmark with torch, faiss, pyod, dask and matplotlib unimportable."""
    code = (
        "import sys, contextlib, io\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'torch', 'faiss', 'pyod', 'dask', 'distributed',\n"
        "                                  'matplotlib'}:\n"
        "            raise ImportError(f'blocked {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from infogauss.cli import main\n"
        f"for name in {MODULES!r}:\n"
        "    buf = io.StringIO()\n"
        "    with contextlib.redirect_stdout(buf):\n"
        "        rc = main(['bench', name, '--help'])\n"
        "    assert rc == 0, name\n"
        "    assert buf.getvalue().startswith('usage: infogauss bench ' + name), buf.getvalue()\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.mark.parametrize("name", [m for m in MODULES], ids=str)
def test_every_module_takes_provenance_and_logging_from_the_package(name):
    """One copy of the provenance code: no benchmark runs git, reads versions or edits sys.path."""
    text = (SRC / f"{name}.py").read_text()
    tree = ast.parse(text)
    imported = {(node.module, a.name) for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) for a in node.names}
    if name != "report":  # the report reads results files; it records no provenance itself
        assert ("infogauss.bench._env", "setup_logging") in imported, "logs through _env"
        assert ("infogauss", "_io") in imported, "provenance and results from infogauss._io"
        assert "_io.environment(" in text or "_io.git_state(" in text
        assert "_io.write_results(" in text or "write_outputs(" in text \
            or name in ("embed_cifar10", "embedding_sets")
    assert "rev-parse" not in text and "subprocess" not in text
    assert "sys.path" not in text
    assert "basicConfig" not in text
    # progress and file paths go through logging (stderr); stdout holds only the result
    stdout_ok = {"paper_table1": "print(md)", "train_cifar10": "print(json.dumps("}
    assert text.count("print(") == (stdout_ok.get(name) is not None)
    if name in stdout_ok:
        assert stdout_ok[name] in text
    assert "SHA256SUMS" not in text
    # heavy optional dependencies only inside functions
    top = {a.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import)
           for a in node.names}
    top |= {(node.module or "").split(".")[0] for node in tree.body
            if isinstance(node, ast.ImportFrom)}
    assert not top & {"torch", "faiss", "pyod", "dask", "distributed", "matplotlib"}
    assert "infogauss.contrastive" not in {node.module for node in tree.body
                                           if isinstance(node, ast.ImportFrom)}


def test_train_cifar10_writes_no_shared_checksum_file():
    text = (SRC / "train_cifar10.py").read_text()
    assert "SHA256SUMS" not in text and '"checkpoint_sha256": _sha256(' in text
    assert not (BENCH_SCRIPTS / "checkpoints" / "SHA256SUMS").exists()


def test_scripts_in_benchmarks_are_thin_shims():
    """What stays in benchmarks/ re-exports the package; none edits sys.path or holds code."""
    for script in sorted(BENCH_SCRIPTS.glob("*.py")):
        if script.name == "gpu_paper_run.py":  # a separate script, not a shim (issue 22)
            continue
        text = script.read_text()
        assert "sys.path" not in text, script.name
        tree = ast.parse(text)
        assert not any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in tree.body), script.name
        modules = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
        assert any(m and m.startswith("infogauss.") for m in modules), script.name


def test_checkout_root_and_default_outputs(tmp_path, monkeypatch):
    (tmp_path / "co" / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "co" / "sub" / "deeper").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "co" / "sub" / "deeper")
    root = (tmp_path / "co").resolve()
    assert bench.checkout_root() == root
    assert bench.results_dir() == root / "benchmarks" / "results"
    assert bench.scratch_dir() == root / "runs" / "benchmarks"
    assert bench.output_path(None, "x.json") == root / "benchmarks" / "results" / "x.json"
    assert bench.output_path(None, "x.json", scratch=True) == root / "runs" / "benchmarks" / "x.json"
    assert bench.output_path("given.json", "x.json") == type(root)("given.json")
    monkeypatch.chdir(tmp_path)  # outside a checkout: ./runs/benchmarks
    assert bench.checkout_root() is None
    assert bench.results_dir() == tmp_path / "runs" / "benchmarks"
    assert bench.checkout_root(tmp_path / "co" / "sub") == root


def test_default_outputs_are_results_files_or_untracked():
    """What a benchmark writes by default is one of its own results files or an ignored path."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")

    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout

    tracked = set(git("ls-files").splitlines()) - set(git("ls-files", "--deleted").splitlines())
    docs = {"benchmarks/GPU_RUN.md"}  # the GPU run's instructions (issue 22), not an output
    tracked_outputs = {f for f in tracked if f.startswith("benchmarks/")
                       and not f.endswith(".py") and f not in docs}
    allowed = ("benchmarks/results/", "benchmarks/checkpoints/small_cnn_")
    assert all(f.startswith(allowed) for f in tracked_outputs), sorted(
        f for f in tracked_outputs if not f.startswith(allowed))
    for pattern in ("benchmarks/checkpoints/x.pt", "runs/benchmarks/x.json",
                    "benchmarks/results/embeddings/x.npy"):
        rc = subprocess.run(["git", "check-ignore", "-q", pattern], cwd=REPO).returncode
        assert rc == 0, f"{pattern} should be ignored"
