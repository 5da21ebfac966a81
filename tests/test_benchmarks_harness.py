"""The benchmark scripts' shared plumbing (``benchmarks/_env.py``) and what the scripts write:
provenance with a dirty flag, logging that is never silent, no tracked file rewritten."""

from __future__ import annotations

import ast
import hashlib
import importlib
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_")
                 and p.name != "make_report.py")


@pytest.fixture(scope="module")
def env():
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("_env")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture
def repo(tmp_path, env, monkeypatch):
    """A throwaway git repository standing in for the checkout."""
    if subprocess.run(["git", "--version"], capture_output=True).returncode != 0:
        pytest.skip("git not installed")
    r = tmp_path / "repo"
    (r / "src").mkdir(parents=True)
    (r / "benchmarks" / "results").mkdir(parents=True)
    (r / "src" / "code.py").write_text("x = 1\n")
    (r / "benchmarks" / "results" / "a.json").write_text("{}\n")
    _git(r, "init", "-q")
    _git(r, "add", ".")
    _git(r, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    monkeypatch.setattr(env, "ROOT", r)
    return r


def test_clean_tree_records_the_commit(env, repo):
    g = env.git_state()
    assert g == {"sha": _git(repo, "rev-parse", "HEAD").strip(), "dirty": False,
                 "modified": [], "modified_outputs": []}
    (repo / "new_untracked.py").write_text("")  # untracked files do not count
    (repo / "src" / "code.py").touch()  # nor does a touch without a change
    assert env.git_state()["dirty"] is False


def test_dirty_tree_names_the_files_and_warns(env, repo, caplog):
    (repo / "src" / "code.py").write_text("x = 2\n")
    (repo / "benchmarks" / "results" / "a.json").write_text('{"b": 1}\n')
    g = env.git_state()
    assert g["dirty"] is True and g["modified"] == ["src/code.py"]
    assert g["modified_outputs"] == ["benchmarks/results/a.json"]  # outputs: listed, not dirty
    with caplog.at_level(logging.WARNING, logger="benchmarks"):
        e = env.environment()
    assert e["git"] == g and {"timestamp_utc", "versions", "machine"} <= set(e)
    msg = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "DIRTY TREE" in msg and "src/code.py" in msg
    _git(repo, "add", "src/code.py")  # staged changes are dirty too
    assert env.git_state()["modified"] == ["src/code.py"]


def test_outside_a_checkout(env, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(env, "ROOT", tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    g = env.git_state()
    assert g["sha"] is None and g["dirty"] is None
    with caplog.at_level(logging.WARNING, logger="benchmarks"):
        env.warn_if_dirty(g)
    assert "not a git checkout" in caplog.text


@pytest.mark.parametrize("payload, sha, dirty", [
    ({"environment": {"git": {"sha": "a" * 40, "dirty": True, "modified": ["x.py"]}}},
     "a" * 40, True),
    ({"environment": {"git_sha": "b" * 40 + "+dirty"}}, "b" * 40, True),  # older files
    ({"git_sha": "c" * 40, "machine": {"cores": 2}}, "c" * 40, False),
    ({"git": {"sha": "d" * 40, "dirty": False}, "machine": {"cores": 2}}, "d" * 40, False),
    ({"environment": {"git": {"sha": None, "dirty": None}}}, None, None),
])
def test_provenance_reads_every_schema(env, payload, sha, dirty):
    p = env.provenance(payload)
    assert (p["sha"], p["dirty"]) == (sha, dirty)
    mark = env.describe_commit(payload)
    assert ("DIRTY TREE" in mark) is bool(dirty)
    if sha:
        assert mark.startswith(sha[:12])


def test_describe_commit_counts_the_files(env):
    payload = {"environment": {"git": {"sha": "a" * 40, "dirty": True,
                                       "modified": ["x.py", "y.py"]}}}
    assert env.describe_commit(payload) == "a" * 12 + " ⚠ DIRTY TREE (2 modified files)"


def test_setup_logging_shows_info_under_a_warning_root(env, capsys):
    """``infogauss bench`` configures the root at WARNING; a benchmark's INFO must show."""
    code = (
        "import logging, sys\n"
        f"sys.path.insert(0, {str(BENCH)!r})\n"
        "logging.basicConfig(level=logging.WARNING, format='%(name)s: %(message)s')\n"
        "import _env\n"
        "log = _env.setup_logging('x')\n"
        "log.info('benchmark line')\n"
        "logging.getLogger('infogauss.contrastive.train').info('library line')\n"
        "logging.getLogger('other').info('hidden line')\n"
        "print(_env.show_progress(False), _env.show_progress(True))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "benchmarks.x: benchmark line" in out.stderr
    assert "infogauss.contrastive.train: library line" in out.stderr
    assert "hidden line" not in out.stderr
    assert out.stdout.split() == ["False", "False"]  # stderr is a pipe here: no bars


def test_setup_logging_as_a_script_logs_to_stderr():
    code = (
        f"import sys; sys.path.insert(0, {str(BENCH)!r})\n"
        "import logging, _env\n"
        "_env.setup_logging('y', library=False).info('hello')\n"
        "logging.getLogger('infogauss.contrastive.train').info('epoch line')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "INFO benchmarks.y: hello" in out.stderr and "epoch line" not in out.stderr
    assert out.stdout == ""


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_every_script_takes_provenance_and_logging_from_env(script):
    """One copy of the provenance code: no script runs git or reads versions itself."""
    text = script.read_text()
    tree = ast.parse(text)
    imported = {a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module == "_env" for a in node.names}
    assert "setup_logging" in imported, "logs through _env.setup_logging"
    assert imported & {"environment", "git_state"}, "provenance from _env"
    assert "rev-parse" not in text and "subprocess" not in text
    assert "basicConfig" not in text
    # progress and file paths go through logging (stderr); stdout holds only the result
    stdout_ok = {"paper_table1": "print(md)", "train_cifar10": "print(json.dumps("}
    assert text.count("print(") == (stdout_ok.get(script.stem) is not None)
    if script.stem in stdout_ok:
        assert stdout_ok[script.stem] in text
    assert "SHA256SUMS" not in text


def test_train_cifar10_writes_no_shared_checksum_file():
    text = (BENCH / "train_cifar10.py").read_text()
    assert "SHA256SUMS" not in text and '"checkpoint_sha256": _sha256(' in text
    assert not (BENCH / "checkpoints" / "SHA256SUMS").exists()


def test_default_outputs_are_results_files_or_untracked():
    """What a script writes by default is one of its own results files or an ignored path."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = set(_git(REPO, "ls-files").splitlines()) - set(
        _git(REPO, "ls-files", "--deleted").splitlines())
    tracked_outputs = {f for f in tracked if f.startswith("benchmarks/")
                       and not f.endswith(".py")}
    allowed = ("benchmarks/results/", "benchmarks/checkpoints/small_cnn_")
    assert all(f.startswith(allowed) for f in tracked_outputs), sorted(
        f for f in tracked_outputs if not f.startswith(allowed))
    for pattern in ("benchmarks/checkpoints/x.pt", "runs/benchmarks/x.json",
                    "benchmarks/results/embeddings/x.npy"):
        rc = subprocess.run(["git", "check-ignore", "-q", pattern], cwd=REPO).returncode
        assert rc == 0, f"{pattern} should be ignored"


def test_make_report_check_writes_nothing(tmp_path):
    before = {p: p.stat().st_mtime_ns for p in (REPO / "BENCHMARKS.md", REPO / "README.md")}
    out = subprocess.run([sys.executable, str(BENCH / "make_report.py"), "--check"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode in (0, 1), out.stderr
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_make_report_marks_dirty_results(env):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    mr = importlib.import_module("make_report")
    payload = {"_file": "benchmarks/results/x.json",
               "environment": {"git": {"sha": "e" * 40, "dirty": True, "modified": ["a.py"]},
                               "timestamp_utc": "T", "machine": {"cpu": "C", "cores": 2}}}
    assert mr._prov(payload) == ("_Source: `benchmarks/results/x.json` — git "
                                 + "e" * 12 + " ⚠ DIRTY TREE (1 modified file), T C (2 cores)._")
    payload["environment"]["git"].update(dirty=False, modified=[])
    assert "DIRTY" not in mr._prov(payload)
    json.dumps(payload)  # the schema is plain JSON


def test_embed_cifar10_reports_progress_and_provenance(tmp_path, monkeypatch, caplog, rng):
    """A tiny run with the image loaders swapped for random images: one line per set, the
    files written, a summary; meta.json records the commit."""
    pytest.importorskip("torch")
    pytest.importorskip("PIL")
    import types

    import numpy as np

    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    emb = importlib.import_module("embed_cifar10")

    def fake(n):
        return types.SimpleNamespace(
            images=rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
            labels=rng.integers(0, 10, n).astype(np.int64))

    monkeypatch.setattr(emb, "load_cifar10_zip", lambda path, split: fake(
        40 if split == "train" else 20))
    monkeypatch.setattr(emb, "load_tinyimagenet_zip", lambda path, mode, seed: fake(10))
    out = tmp_path / "emb"
    with caplog.at_level(logging.INFO, logger="benchmarks"):
        rc = emb.main(["--untrained", "small_cnn", "--widths", "4", "8", "8", "--out", str(out),
                       "--precision", "fp32", "--data", str(tmp_path), "--no-progress"])
    assert rc == 0
    text = caplog.text
    for line in ("[1/4] cifar10 train: 40 images", "[2/4] cifar10 test: 20 images",
                 "[4/4] ood tin_crop: 10 images", f"wrote {out}/{{cifar10_train.npy,",
                 "done in"):
        assert line in text, line
    meta = json.loads((out / "meta.json").read_text())
    assert {"sha", "dirty", "modified"} <= set(meta["environment"]["git"])
    assert np.load(out / "ood_tin_resize.npy").shape[0] == 10


def test_train_cifar10_writes_its_outputs_only(tmp_path, monkeypatch, caplog, rng):
    """A one-epoch run on random images: the checkpoint's SHA-256 goes into the results file,
    no shared checksum file is (re)written, every file written is logged."""
    pytest.importorskip("torch")
    import types

    import numpy as np

    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    tc = importlib.import_module("train_cifar10")

    def fake(path, split):
        n = 256 if split == "train" else 64
        return types.SimpleNamespace(
            images=rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
            labels=np.arange(n, dtype=np.int64) % 10)

    monkeypatch.setattr(tc, "load_cifar10_zip", fake)
    monkeypatch.setattr(tc, "ROOT", tmp_path)
    monkeypatch.setattr(tc, "RESULTS", tmp_path / "benchmarks" / "results")
    with caplog.at_level(logging.INFO, logger="benchmarks"):
        rc = tc.main(["--epochs", "1", "--batch-size", "64", "--widths", "4", "8", "8",
                      "--precision", "fp32", "--knn-every", "0", "--name", "t", "--no-progress"])
    assert rc == 0
    ck = tmp_path / "benchmarks" / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["t.config.json", "t.log.json", "t.pt"]
    res = json.loads((tmp_path / "benchmarks" / "results" / "train_cifar10_t.json").read_text())
    assert res["checkpoint_sha256"] == hashlib.sha256((ck / "t.pt").read_bytes()).hexdigest()
    assert {"sha", "dirty", "modified"} <= set(res["environment"]["git"])
    for path in (ck / "t.pt", ck / "t.config.json", ck / "t.log.json",
                 tmp_path / "benchmarks" / "results" / "train_cifar10_t.json"):
        assert f"wrote {path}" in caplog.text
    assert "done in" in caplog.text
