"""The command line as a whole: one error convention, no lost inputs, ordinary file modes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from infogauss import __version__
from infogauss.cli import main


@pytest.fixture
def emb(tmp_path, rng):
    path = tmp_path / "X.npy"
    np.save(path, rng.standard_normal((300, 5)).astype(np.float32))
    return path


@pytest.fixture
def model_file(tmp_path, emb):
    path = tmp_path / "model.npz"
    assert main(["fit", str(emb), "--out", str(path), "--no-progress"]) == 0
    return path


def _bad_input(argv, capsys, match: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def _snapshot(*paths):
    return {p: p.read_bytes() for p in paths}


def test_fit_out_equal_to_its_input_is_refused(emb, capsys):
    before = _snapshot(emb)
    _bad_input(["fit", str(emb), "--out", str(emb), "--no-progress"], capsys,
               "`--out` must not be an input file")
    # another name of the same file (a hard link) is the same file
    link = emb.with_name("alias.npy")
    os.link(emb, link)
    _bad_input(["fit", str(emb), "--out", str(link), "--no-progress"], capsys,
               "`--out` must not be an input file")
    assert _snapshot(emb) == before


def test_score_out_equal_to_an_input_is_refused(emb, model_file, capsys):
    before = _snapshot(emb, model_file)
    for target in (emb, model_file):
        _bad_input(["score", str(model_file), str(emb), "--out", str(target), "--no-progress"],
                   capsys, "`--out` must not be an input file")
    assert _snapshot(emb, model_file) == before


def test_diagnose_outputs_equal_to_an_input_are_refused(emb, tmp_path, capsys):
    base = tmp_path / "base.npy"
    np.save(base, np.random.default_rng(1).standard_normal((300, 5)))
    before = _snapshot(emb, base)
    for flag in ("--out", "--markdown"):
        for target in (emb, base):
            _bad_input(["diagnose", str(emb), "--baseline", str(base), flag, str(target)],
                       capsys, f"`{flag}` must not be an input file")
    _bad_input(["diagnose", str(emb), "--out", str(tmp_path)], capsys,
               "`--out` must be a file path, got the directory")
    assert _snapshot(emb, base) == before


def test_outputs_have_ordinary_modes_and_missing_dirs_are_created(emb, tmp_path, capsys):
    old = os.umask(0o022)
    try:
        model = tmp_path / "new" / "dir" / "m.npz"
        assert main(["fit", str(emb), "--out", str(model), "--no-progress"]) == 0
        scores = tmp_path / "s" / "scores.npy"
        assert main(["score", str(model), str(emb), "--out", str(scores), "--no-progress"]) == 0
        report = tmp_path / "r" / "report.json"
        assert main(["diagnose", str(emb), "--out", str(report), "--quiet"]) == 0
        for path in (model, scores, report):
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
        os.umask(0o077)
        private = tmp_path / "private.npz"
        assert main(["fit", str(emb), "--out", str(private), "--no-progress"]) == 0
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert [p.name for p in tmp_path.rglob("*.tmp")] == []


def test_library_save_names_a_missing_directory(emb, tmp_path):
    from infogauss import GaussianModel

    model = GaussianModel().fit(np.load(emb))
    missing = tmp_path / "nowhere" / "m.npz"
    with pytest.raises(FileNotFoundError, match=r"directory '.*nowhere' of '.*m\.npz' does not"):
        model.save(missing)


def test_errors_that_used_to_leak_internals(emb, tmp_path, capsys):
    # an .npy passed where the model file goes
    _bad_input(["score", str(emb), str(emb), "--out", str(tmp_path / "s.npy")], capsys,
               "is not a readable infogauss model file")
    # a text file named .npy given to diagnose
    text = tmp_path / "notes.npy"
    text.write_text("these are not embeddings\n")
    _bad_input(["diagnose", str(text)], capsys, "is not a valid .npy file")
    # a pickled object array is refused without being unpickled
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _bad_input(["fit", str(pickled), "--out", str(tmp_path / "m.npz")], capsys, "holds dtype object")


def test_missing_matplotlib_is_one_line_before_any_work(emb, tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None; from infogauss.cli import main; "
            f"sys.exit(main(['diagnose', {str(emb)!r}, '--plots', {str(tmp_path / 'p')!r}]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert out.stderr.strip().startswith("infogauss diagnose: error:") and "infogauss[plot]" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_version_and_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "infogauss", "--version"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"infogauss {__version__}"
    out = subprocess.run([sys.executable, "-m", "infogauss", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "fit" in out.stdout and "Exit status" in out.stdout


def test_verbose_flag_works_after_the_command(emb, tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert main(["fit", str(emb), "--out", str(out), "--no-progress", "-v"]) == 0
    assert main(["-v", "fit", str(emb), "--out", str(out), "--no-progress"]) == 0


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit"])
    assert exc.value.code == 2
    assert main([]) == 2
