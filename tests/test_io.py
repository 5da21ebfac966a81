"""``infogauss._io``: provenance (git state with a dirty flag, versions, machine) and the one
results schema every benchmark writes and the report reads, with the older committed forms."""

from __future__ import annotations

import json
import logging
import subprocess

import pytest

from infogauss import _io


def _git(repo, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture
def repo(tmp_path, monkeypatch):
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
    monkeypatch.setattr(_io, "SOURCE_ROOT", r)
    return r


def test_clean_tree_records_the_commit(repo):
    g = _io.git_state()
    assert g == {"sha": _git(repo, "rev-parse", "HEAD").strip(), "dirty": False,
                 "modified": [], "modified_outputs": []}
    (repo / "new_untracked.py").write_text("")  # untracked files do not count
    (repo / "src" / "code.py").touch()  # nor does a touch without a change
    assert _io.git_state()["dirty"] is False


def test_dirty_tree_names_the_files_and_warns(repo, caplog):
    (repo / "src" / "code.py").write_text("x = 2\n")
    (repo / "benchmarks" / "results" / "a.json").write_text('{"b": 1}\n')
    g = _io.git_state()
    assert g["dirty"] is True and g["modified"] == ["src/code.py"]
    assert g["modified_outputs"] == ["benchmarks/results/a.json"]  # outputs: listed, not dirty
    with caplog.at_level(logging.WARNING, logger="infogauss._io"):
        e = _io.environment()
    assert e["git"] == g and {"timestamp_utc", "versions", "machine"} <= set(e)
    msg = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "DIRTY TREE" in msg and "src/code.py" in msg
    _git(repo, "add", "src/code.py")  # staged changes are dirty too
    assert _io.git_state()["modified"] == ["src/code.py"]
    assert _io.git_state(repo) == _io.git_state()  # an explicit root is the same checkout


def test_outside_a_checkout(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    g = _io.git_state(tmp_path)
    assert g["sha"] is None and g["dirty"] is None
    with caplog.at_level(logging.WARNING, logger="infogauss._io"):
        _io.warn_if_dirty(g)
    assert "not a git checkout" in caplog.text
    monkeypatch.setattr(_io, "SOURCE_ROOT", None)  # imported from a wheel: no git call at all
    assert _io.git_state() == {"sha": None, "dirty": None, "modified": [], "modified_outputs": []}


def test_versions_come_from_metadata_without_importing():
    code = ("import sys; from infogauss import _io; v = _io.versions(); "
            "print(v['numpy'] is not None, 'torch' in sys.modules, 'faiss' in sys.modules)")
    out = subprocess.run([__import__("sys").executable, "-c", code], capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["True", "False", "False"]


# ------------------------------------------------------------------ the results schema
def _env() -> dict:
    return {"timestamp_utc": "T", "git": {"sha": "a" * 40, "dirty": False, "modified": [],
                                          "modified_outputs": []},
            "versions": {}, "machine": {"cpu": "C", "cores": 2}}


def test_write_results_writes_the_one_schema(tmp_path):
    out = tmp_path / "new" / "dir" / "r.json"  # parents are created
    payload = {"metrics": {"x": 1.5}, "config": {"seed": 3}, "environment": _env(),
               "benchmark": "probe"}
    assert _io.write_results(out, payload) == out
    back = json.loads(out.read_text())
    assert list(back)[:4] == ["benchmark", "schema", "config", "environment"]
    assert back["schema"] == _io.RESULTS_SCHEMA == 1 and back["metrics"] == {"x": 1.5}
    assert _io.read_results(out) == back
    assert out.read_text().endswith("}\n")


@pytest.mark.parametrize("bad, match", [
    ({"config": {}, "environment": _env()}, "benchmark"),
    ({"benchmark": "b", "environment": _env()}, r"payload\['config'\]"),
    ({"benchmark": "b", "config": {}, "environment": {"git": {}}}, "environment()"),
    ({"benchmark": "b", "config": {}, "environment": _env(), "schema": 2}, "schema"),
])
def test_write_results_refuses_other_shapes(tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        _io.write_results(tmp_path / "r.json", bad)
    assert not (tmp_path / "r.json").exists()
    with pytest.raises(TypeError, match="mapping"):
        _io.write_results(tmp_path / "r.json", [1])


def test_write_results_never_overwrites_an_input(tmp_path):
    src = tmp_path / "in.json"
    src.write_text("{}")
    with pytest.raises(ValueError, match="input file"):
        _io.write_results(src, {"benchmark": "b", "config": {}, "environment": _env()},
                          inputs=[src])


def test_read_results_refuses_what_is_not_a_results_file(tmp_path):
    (tmp_path / "a.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="'benchmark' name"):
        _io.read_results(tmp_path / "a.json")
    (tmp_path / "b.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        _io.read_results(tmp_path / "b.json")
    (tmp_path / "c.json").write_text('{"benchmark": "x", "schema": 7}')
    with pytest.raises(ValueError, match="upgrade infogauss"):
        _io.read_results(tmp_path / "c.json")


@pytest.mark.parametrize("payload, sha, dirty", [
    ({"environment": {"git": {"sha": "a" * 40, "dirty": True, "modified": ["x.py"]}}},
     "a" * 40, True),
    ({"environment": {"git_sha": "b" * 40 + "+dirty"}}, "b" * 40, True),  # older files
    ({"git_sha": "c" * 40, "machine": {"cores": 2}}, "c" * 40, False),
    ({"git": {"sha": "d" * 40, "dirty": False}, "machine": {"cores": 2}}, "d" * 40, False),
    ({"environment": {"git": {"sha": None, "dirty": None}}}, None, None),
    ({"provenance": {"git_sha": "f" * 40, "cpu_model": "EPYC", "cpu_count": 2,
                     "python": "3.11", "machine": "x86_64"}}, "f" * 40, False),
])
def test_upgrade_reads_every_older_form(payload, sha, dirty):
    up = _io.upgrade_results({"benchmark": "b", **payload})
    git = up["environment"]["git"]
    assert (git["sha"], git["dirty"]) == (sha, dirty)
    assert up["schema"] == 1 and up["benchmark"] == "b" and isinstance(up["config"], dict)
    assert {"timestamp_utc", "git", "versions", "machine"} <= set(up["environment"])
    assert {"modified", "modified_outputs"} <= set(git)
    for old in ("git_sha", "git", "machine", "versions", "provenance"):
        assert old not in up  # moved into the environment, not left beside it
    assert _io.upgrade_results(up) == up  # the current schema is left as it is
    json.dumps(up)


def test_upgrade_keeps_the_machine_of_the_oldest_form():
    up = _io.upgrade_results({"benchmark": "b", "provenance": {
        "git_sha": "f" * 40, "cpu_model": "AMD EPYC", "processor": "", "cpu_count": 2,
        "python": "3.11.7", "numpy": "2.4", "torch": "2.13", "machine": "x86_64",
        "torch_threads": 2}})
    env = up["environment"]
    assert env["machine"]["cpu"] == "AMD EPYC" and env["machine"]["cores"] == 2
    assert env["machine"]["architecture"] == "x86_64" and env["machine"]["torch_threads"] == 2
    assert env["versions"] == {"python": "3.11.7", "numpy": "2.4", "torch": "2.13"}
    assert env["timestamp_utc"] == ""


def test_every_committed_results_file_reads_in_the_schema():
    from .conftest import REPO

    files = sorted((REPO / "benchmarks" / "results").glob("*.json"))
    if not files:
        pytest.skip("no committed results files")
    for f in files:
        up = _io.read_results(f)
        assert up["schema"] == 1 and up["benchmark"], f
        env = up["environment"]
        assert {"timestamp_utc", "git", "versions", "machine"} <= set(env), f
        assert env["git"]["sha"], f  # every committed result names its commit
