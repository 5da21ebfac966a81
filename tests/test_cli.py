"""The command line as a whole: one error convention, no lost inputs, ordinary file modes."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from infogauss import __version__
from infogauss.cli import COMMANDS, build_parser, main


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


# ====================================================================== one dialect (issue 14)
# Every command: bad input -> exit 2 and one stderr line naming the argument; `--json` prints
# one parseable object; no command writes over its input.


def _has(module: str, cls: str, attr: str) -> bool:
    try:
        return hasattr(getattr(importlib.import_module(module), cls), attr)
    except ImportError:
        return False


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


# persistence of the detector and the retriever comes from their own modules (issue 14 split):
# the commands that need it are tested once it is there
OOD_SAVE = _has("infogauss.ood", "MahalanobisOOD", "save")
RETRIEVER_SAVE = _has("infogauss.retrieval", "CalibratedRetriever", "save")
NEEDS = {
    "torch": (_installed("torch"), "needs torch"),
    "ood_save": (OOD_SAVE, "MahalanobisOOD.save/load not available yet"),
    "retriever_save": (RETRIEVER_SAVE, "CalibratedRetriever.save/load (and faiss) not available yet"),
}
LEAVES = ("train", "embed", "fit", "score", "diagnose", "ood fit", "ood score", "retrieve fit",
          "retrieve search", "demo", "bench")


def _need(*what: str) -> None:
    for w in what:
        ok, reason = NEEDS[w]
        if not ok:
            pytest.skip(reason)


@pytest.fixture
def ws(tmp_path, rng):
    """A workspace: embeddings X (300 x 5), queries Q, labels y, a fitted model file."""
    w = SimpleNamespace(tmp=tmp_path)
    w.X, w.Q, w.y = tmp_path / "X.npy", tmp_path / "Q.npy", tmp_path / "y.npy"
    np.save(w.X, rng.standard_normal((300, 5)).astype(np.float32))
    np.save(w.Q, rng.standard_normal((40, 5)).astype(np.float32))
    np.save(w.y, rng.integers(0, 3, 300))
    w.short_labels = tmp_path / "short.npy"
    np.save(w.short_labels, np.zeros(10, dtype=np.int64))
    w.missing = tmp_path / "missing.npy"
    w.afile = tmp_path / "a_file.txt"
    w.afile.write_text("not a directory\n")
    w.model = tmp_path / "model.npz"
    assert main(["fit", str(w.X), "--out", str(w.model), "--no-progress"]) == 0
    w.det = tmp_path / "det.npz"
    w.retriever = tmp_path / "retriever.npz"
    return w


def _det(w):
    if not w.det.exists():
        assert main(["ood", "fit", str(w.X), "--out", str(w.det)]) == 0
    return w.det


def _retriever(w):
    if not w.retriever.exists():
        assert main(["retrieve", "fit", str(w.X), "--out", str(w.retriever),
                     "--n-null-queries", "100"]) == 0
    return w.retriever


def _s(*parts):
    return [str(p) for p in parts]


def test_every_command_is_in_the_tree():
    assert COMMANDS == ("train", "embed", "fit", "score", "diagnose", "ood", "retrieve", "demo",
                        "bench")
    for leaf in LEAVES:
        argv = [*leaf.split(), "--help"]
        with pytest.raises(SystemExit) as exc:
            build_parser(leaf.split()[0]).parse_args(argv)
        assert exc.value.code == 0


# one bad input per command: (argv, the argument the one error line must name)
BAD_INPUT = {
    "train": lambda w: (_s("train", "--data", w.missing, "--out", w.tmp / "run"), "`--data`"),
    "embed": lambda w: (_s("embed", "--checkpoint", w.missing, "--data", w.X,
                           "--out", w.tmp / "z.npy"), "`--checkpoint`"),
    "fit": lambda w: (_s("fit", w.missing, "--out", w.tmp / "m.npz"), "`EMBEDDINGS`"),
    "score": lambda w: (_s("score", w.missing, w.X, "--out", w.tmp / "s.npy"), "`MODEL`"),
    "diagnose": lambda w: (_s("diagnose", w.X, "--baseline", w.missing), "`--baseline`"),
    "ood fit": lambda w: (_s("ood", "fit", w.X, "--out", w.tmp / "d.npz", "--method", "class"),
                          "`--labels`"),
    "ood score": lambda w: (_s("ood", "score", w.missing, w.X, "--out", w.tmp / "s.npy"),
                            "`DETECTOR`"),
    "retrieve fit": lambda w: (_s("retrieve", "fit", w.X, "--out", w.tmp / "r.npz",
                                  "--labels", w.short_labels), "`--labels`"),
    "retrieve search": lambda w: (_s("retrieve", "search", w.missing, w.Q,
                                     "--out", w.tmp / "res.npz"), "`RETRIEVER`"),
    "demo": lambda w: (_s("demo", "--out", w.afile, "--quick"), "`--out`"),
    "bench": lambda w: (_s("bench", "no-such-benchmark"), "`NAME`"),
}


@pytest.mark.parametrize("leaf", LEAVES)
def test_bad_input_is_exit_2_and_one_line_naming_the_argument(leaf, ws, capsys):
    argv, name = BAD_INPUT[leaf](ws)
    capsys.readouterr()
    err = _bad_input(argv, capsys, name)
    assert err.startswith(f"infogauss {leaf}: error: "), err


# one usage error per command, found by the parser: SystemExit(2), one line naming the flag
USAGE = {
    "train": lambda w: (_s("train", "--epochs", "many"), "--epochs"),
    "embed": lambda w: (_s("embed", "--layer", "middle"), "--layer"),
    "fit": lambda w: (_s("fit", w.X, "--out", w.tmp / "m.npz", "--shrinkage", "2.5"), "--shrinkage"),
    "score": lambda w: (_s("score", w.model, w.X, "--out", w.tmp / "s.npy", "--kind", "density"),
                        "--kind"),
    "diagnose": lambda w: (_s("diagnose", w.X, "--heldout-fraction", "1.5"), "--heldout-fraction"),
    "ood fit": lambda w: (_s("ood", "fit", w.X, "--out", w.tmp / "d.npz", "--contamination", "0.7"),
                          "--contamination"),
    "ood score": lambda w: (_s("ood", "score", w.det, w.X, "--out", w.tmp / "s.npy",
                               "--kind", "probability"), "--kind"),
    "retrieve fit": lambda w: (_s("retrieve", "fit", w.X, "--out", w.tmp / "r.npz", "--alpha", "2"),
                               "--alpha"),
    "retrieve search": lambda w: (_s("retrieve", "search", w.retriever, w.Q,
                                     "--out", w.tmp / "res.npz", "--k", "0"), "--k"),
    "demo": lambda w: (_s("demo", "--epochs", "0"), "--epochs"),
    "bench": lambda w: (["bench"], "NAME"),
}


@pytest.mark.parametrize("leaf", LEAVES)
def test_usage_errors_are_one_line_naming_the_flag(leaf, ws, capsys):
    argv, flag = USAGE[leaf](ws)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"infogauss {leaf}: error: ") and flag in err, err
    assert "Traceback" not in err and err.count("\n") == 1, err


def _fake_demo(monkeypatch):
    """infogauss.demo.main stand-in: writes the report files and prints a human report."""
    import infogauss.demo

    def fake(argv):
        out = Path(argv[argv.index("--out") + 1])
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps({"digits": {"plots": []}, "seconds": 1.5}))
        (out / "report.md").write_text("# report\n")
        print("# infogauss demo report (human text)")
        return 0

    monkeypatch.setattr(infogauss.demo, "main", fake)


def _fake_bench(monkeypatch, tmp_path):
    import infogauss.cli._bench as bench

    d = tmp_path / "benchmarks"
    d.mkdir()
    (d / "dialect_probe.py").write_text("print('human line from the benchmark')\n")
    monkeypatch.setattr(bench, "benchmarks_dir", lambda: d)


def _train_argv(w, run, *extra):
    return _s("train", "--data", w.X, "--out", run, "--encoder", "mlp", "--epochs", "1",
              "--batch-size", "64", "--hidden-dim", "8", "--out-dim", "4", "--precision", "fp32",
              "--no-progress", *extra)


# (needs, argv maker, outputs that must exist afterwards)
JSON = {
    "train": (("torch",), lambda w, mp: (_train_argv(w, w.tmp / "run", "--embed"), [
        w.tmp / "run" / f for f in ("last.pt", "encoder.pt", "config.json", "log.json",
                                    "embeddings.npy", "embeddings.labels.npy")])),
    "embed": (("torch",), lambda w, mp: (
        main(_train_argv(w, w.tmp / "run")) and None
        or _s("embed", "--checkpoint", w.tmp / "run", "--data", w.X, "--out", w.tmp / "Z.npy",
              "--no-progress"), [w.tmp / "Z.npy", w.tmp / "Z.labels.npy"])),
    "fit": ((), lambda w, mp: (_s("fit", w.X, "--out", w.tmp / "m2.npz"), [w.tmp / "m2.npz"])),
    "score": ((), lambda w, mp: (_s("score", w.model, w.X, "--out", w.tmp / "s.npy", "--kind",
                                    "pvalue"), [w.tmp / "s.npy"])),
    "diagnose": ((), lambda w, mp: (_s("diagnose", w.X, "--out", w.tmp / "r.json",
                                       "--markdown", w.tmp / "r.md"), [w.tmp / "r.json"])),
    "ood fit": (("ood_save",), lambda w, mp: (_s("ood", "fit", w.X, "--out", w.tmp / "d2.npz",
                                                 "--method", "class", "--labels", w.y),
                                              [w.tmp / "d2.npz"])),
    "ood score": (("ood_save",), lambda w, mp: (_s("ood", "score", _det(w), w.Q,
                                                   "--out", w.tmp / "o.npy"), [w.tmp / "o.npy"])),
    "retrieve fit": (("retriever_save",), lambda w, mp: (
        _s("retrieve", "fit", w.X, "--out", w.tmp / "r2.npz", "--labels", w.y,
           "--n-null-queries", "100"), [w.tmp / "r2.npz"])),
    "retrieve search": (("retriever_save",), lambda w, mp: (
        _s("retrieve", "search", _retriever(w), w.Q, "--out", w.tmp / "res.npz", "--k", "3"),
        [w.tmp / "res.npz"])),
    "demo": (("torch",), lambda w, mp: (_fake_demo(mp) or _s("demo", "--out", w.tmp / "demo",
                                                             "--quick"),
                                        [w.tmp / "demo" / "report.json"])),
    "bench": ((), lambda w, mp: (_fake_bench(mp, w.tmp) or ["bench", "dialect_probe"], [])),
}


@pytest.mark.parametrize("leaf", LEAVES)
def test_json_output_is_one_parseable_object(leaf, ws, capsys, monkeypatch, request):
    needs, make = JSON[leaf]
    _need(*needs)
    if "torch" in needs:
        torch = pytest.importorskip("torch")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        request.addfinalizer(lambda: torch.set_num_threads(threads))
    argv, outputs = make(ws, monkeypatch)
    capsys.readouterr()
    # --json is accepted after the command (and before it: see below); bench passes what
    # follows NAME to the benchmark, so its own flags go before NAME
    assert main([*argv, "--json"] if leaf != "bench" else ["bench", "--json", *argv[1:]]) == 0
    out = capsys.readouterr().out
    payload = json.loads(out)  # strict JSON, one object, nothing else on stdout
    assert isinstance(payload, dict) and payload["command"] == leaf
    assert out.count("\n") == 1
    if leaf != "bench":
        assert isinstance(payload["outputs"], dict) and payload["outputs"]
    for path in outputs:
        assert path.exists(), path
    for value in payload.get("outputs", {}).values():
        for p in value if isinstance(value, list) else [value]:
            assert Path(p).exists(), p
    # and without --json the same command prints human text, not JSON
    if leaf in ("fit", "score", "ood score", "retrieve search"):
        assert main(argv) == 0
        human = capsys.readouterr().out
        with pytest.raises(json.JSONDecodeError):
            json.loads(human)
        assert "wrote" in human


def test_bench_json_moves_the_benchmarks_stdout_to_stderr(ws, capsys, monkeypatch):
    _fake_bench(monkeypatch, ws.tmp)
    assert main(["--json", "bench", "dialect_probe"]) == 0
    cap = capsys.readouterr()
    assert json.loads(cap.out) == {"command": "bench", "name": "dialect_probe",
                                   "ran": str(ws.tmp / "benchmarks" / "dialect_probe.py"),
                                   "exit_status": 0}
    assert "human line from the benchmark" in cap.err
    assert main(["bench", "dialect_probe"]) == 0  # without --json: the benchmark's own stdout
    assert capsys.readouterr().out == "human line from the benchmark\n"


def test_common_flags_work_before_and_after_a_nested_command(ws, capsys):
    _need("ood_save")
    d = ws.tmp / "d.npz"
    for argv in (["-v", "--json", "ood", "fit"], ["ood", "-v", "--json", "fit"],
                 ["ood", "fit", "--json", "-v"]):
        assert main([*argv, str(ws.X), "--out", str(d)]) == 0, argv
        assert json.loads(capsys.readouterr().out)["command"] == "ood fit"


# (needs, argv maker with the output path last, inputs it must not write over)
OVERWRITE = {
    "ood fit": lambda w: [(_s("ood", "fit", w.X, "--method", "class", "--labels", w.y, "--out"),
                           t) for t in (w.X, w.y)],
    "ood score": lambda w: [(_s("ood", "score", w.det, w.Q, "--out"), t) for t in (w.det, w.Q)],
    "retrieve fit": lambda w: [(_s("retrieve", "fit", w.X, "--labels", w.y, "--out"), t)
                               for t in (w.X, w.y)],
    "retrieve search": lambda w: [(_s("retrieve", "search", w.retriever, w.Q, "--out"), t)
                                  for t in (w.retriever, w.Q)],
}


@pytest.mark.parametrize("leaf", sorted(OVERWRITE))
def test_ood_and_retrieve_do_not_overwrite_their_inputs(leaf, ws, capsys):
    # stand-in model files: the output check comes before the file is read
    for f in (ws.det, ws.retriever):
        f.write_bytes(b"model file stand-in")
    cases = OVERWRITE[leaf](ws)
    before = _snapshot(*{t for _, t in cases})
    for argv, target in cases:
        _bad_input([*argv, str(target)], capsys, "`--out` must not be an input file")
        link = ws.tmp / f"alias_of_{target.name}"  # another name of the same file
        if not link.exists():
            os.link(target, link)
        _bad_input([*argv, str(link)], capsys, "`--out` must not be an input file")
    assert _snapshot(*before) == before


def test_cheap_commands_import_no_heavy_dependency(ws):
    code = f"""
import sys
from infogauss.cli import COMMANDS, build_parser, main
X, tmp = {str(ws.X)!r}, {str(ws.tmp)!r}
assert main(['fit', X, '--out', tmp + '/m.npz', '--no-progress']) == 0
assert main(['score', tmp + '/m.npz', X, '--out', tmp + '/s.npy', '--no-progress']) == 0
assert main(['diagnose', X, '--quiet']) == 0
if {OOD_SAVE!r}:
    assert main(['ood', 'fit', X, '--out', tmp + '/d.npz']) == 0
    assert main(['ood', 'score', tmp + '/d.npz', X, '--out', tmp + '/o.npy', '--no-progress']) == 0
for command in COMMANDS:  # configuring any command (its --help) imports none of them
    build_parser(command)
heavy = {{m.split('.')[0] for m in sys.modules}} & {{'torch', 'faiss', 'pyod', 'dask', 'matplotlib'}}
print(sorted(heavy))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_ood_commands_match_the_library(ws, capsys):
    _need("ood_save")
    from infogauss import MahalanobisOOD

    X, Q, y = np.load(ws.X), np.load(ws.Q), np.load(ws.y)
    d = ws.tmp / "d.npz"
    assert main(["ood", "fit", str(ws.X), "--out", str(d), "--method", "class", "--labels",
                 str(ws.y), "--contamination", "0.1", "--seed", "3"]) == 0
    ref = MahalanobisOOD(method="class", contamination=0.1, random_state=3).fit(X, y)
    for kind, expected in (("score", ref.score_samples(Q)), ("pvalue", ref.pvalues(Q)),
                           ("label", ref.predict(Q))):
        out = ws.tmp / f"{kind}.npy"
        assert main(["ood", "score", str(d), str(ws.Q), "--out", str(out), "--kind", kind,
                     "--chunk-size", "7", "--no-progress"]) == 0
        np.testing.assert_array_equal(np.load(out), expected)
    out = ws.tmp / "alpha.npy"
    assert main(["ood", "score", str(d), str(ws.Q), "--out", str(out), "--kind", "label",
                 "--alpha", "0.2", "--no-progress"]) == 0
    np.testing.assert_array_equal(np.load(out), ref.predict(Q, alpha=0.2))
    capsys.readouterr()
    _bad_input(["ood", "score", str(d), str(ws.Q), "--out", str(out), "--alpha", "0.2"], capsys,
               "`--alpha` is used with --kind label only")
    _bad_input(["ood", "score", str(ws.model), str(ws.Q), "--out", str(out)], capsys,
               "model file")  # a GaussianModel file is not a detector
    wide = ws.tmp / "wide.npy"
    np.save(wide, np.zeros((4, 7)))
    _bad_input(["ood", "score", str(d), str(wide), "--out", str(out)], capsys,
               "`EMBEDDINGS` has 7 features, but the detector")
    _bad_input(["ood", "fit", str(ws.X), "--out", str(d), "--labels", str(ws.y)], capsys,
               "`--labels` is used by --method class or relative only")
    unlabelled = ws.tmp / "unlabelled.npy"
    np.save(unlabelled, np.full(300, -1))
    _bad_input(["ood", "fit", str(ws.X), "--out", str(d), "--method", "class",
                "--labels", str(unlabelled)], capsys, "`--labels` marks 300 rows as unlabelled")


def test_ood_fit_mixture_matches_the_library(ws, capsys):
    _need("ood_save")
    from infogauss.ood import GaussianMixtureOOD

    X, Q = np.load(ws.X), np.load(ws.Q)
    d = ws.tmp / "mix.npz"
    assert main(["ood", "fit", str(ws.X), "--out", str(d), "--method", "mixture",
                 "--n-restarts", "3", "--seed", "2"]) == 0  # fmt: skip
    assert "fitted a Gaussian mixture OOD detector" in capsys.readouterr().out
    ref = GaussianMixtureOOD(n_components="auto", tied=True, n_restarts=3,
                             random_state=2).fit(X)  # fmt: skip
    out = ws.tmp / "s.npy"
    assert main(["ood", "score", str(d), str(ws.Q), "--out", str(out), "--no-progress"]) == 0
    np.testing.assert_array_equal(np.load(out), ref.score_samples(Q))


def test_retrieve_commands_match_the_library(ws, capsys):
    _need("retriever_save")
    from infogauss import CalibratedRetriever

    X, Q, y = np.load(ws.X), np.load(ws.Q), np.load(ws.y)
    r = ws.tmp / "r.npz"
    assert main(["retrieve", "fit", str(ws.X), "--out", str(r), "--labels", str(ws.y),
                 "--n-null-queries", "100", "--seed", "1"]) == 0
    ref = CalibratedRetriever(n_null_queries=100, seed=1).fit(X, y).search(Q, k=4)
    res = ws.tmp / "res.npz"
    assert main(["retrieve", "search", str(r), str(ws.Q), "--out", str(res), "--k", "4",
                 "--chunk-size", "9", "--no-progress"]) == 0
    with np.load(res, allow_pickle=False) as z:
        for field in ("indices", "similarities", "pvalues", "corrected_pvalues", "match",
                      "ood_pvalues", "abstain", "labels"):
            np.testing.assert_array_equal(z[field], getattr(ref, field), err_msg=field)
        assert int(z["n_searched"]) == 300
    capsys.readouterr()
    _bad_input(["retrieve", "search", str(r), str(ws.Q), "--out", str(res), "--k", "301"], capsys,
               "`--k` must be at most the database size (300)")


def test_train_and_embed_check_their_inputs_before_importing_torch(ws):
    """Without torch, bad input is still exit 2 naming the flag; good input is exit 1 naming
    the extra to install."""
    cases = [
        (["train", "--data", str(ws.missing), "--out", str(ws.tmp / "run")], 2, "`--data`"),
        (["embed", "--checkpoint", str(ws.missing), "--data", str(ws.X)], 2, "`--checkpoint`"),
        (["train", "--data", str(ws.X), "--out", str(ws.tmp / "run")], 1, "infogauss[train]"),
        (["demo", "--out", str(ws.tmp / "demo")], 1, "infogauss[train]"),
    ]
    for argv, status, message in cases:
        code = (
            "import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'torch':\n"
            "            raise ImportError(f'blocked {name}')\n"
            "sys.meta_path.insert(0, Block())\n"
            "from infogauss.cli import main\n"
            f"sys.exit(main({argv!r}))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == status, (argv, out.stderr)
        assert message in out.stderr and out.stderr.count("\n") == 1, out.stderr
        assert out.stdout == ""


def test_output_under_a_file_is_named_as_such(tmp_path, rng, capsys):
    emb = tmp_path / "X.npy"
    np.save(emb, rng.standard_normal((50, 3)))
    (tmp_path / "afile").write_text("x")
    assert main(["fit", str(emb), "--out", str(tmp_path / "afile" / "m.npz"), "--no-progress"]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


def test_ood_select_writes_the_choice_and_score_reads_any_detector(tmp_path, capsys):
    """`ood select` chooses from in-distribution rows alone; `ood score` reads whatever
    detector kind it wrote; a file of another kind is refused by name."""
    from infogauss import GaussianModel, load
    from infogauss.ood import MahalanobisOOD
    from infogauss.ood._base import CalibratedDetector

    rng = np.random.default_rng(5)
    centres = np.array([[0.0, 0, 0], [6, 0, 0], [0, 6, 0]])
    y = rng.integers(0, 3, 500)
    X = centres[y] + rng.standard_normal((500, 3))
    emb, lab = tmp_path / "X.npy", tmp_path / "y.npy"
    np.save(emb, X)
    np.save(lab, y)
    det, rep = tmp_path / "det.npz", tmp_path / "choice.json"
    assert main(["ood", "select", str(emb), "--labels", str(lab), "--out", str(det), "--report",
                 str(rep), "--no-progress"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    choice = json.loads(rep.read_text())["result"]["choice"]
    assert f"chose {choice}" in out
    fitted = load(det)
    assert isinstance(fitted, (MahalanobisOOD, CalibratedDetector))
    scores = tmp_path / "s.npy"
    assert main(["ood", "score", str(det), str(emb), "--out", str(scores), "--no-progress"]) == 0
    np.testing.assert_array_equal(np.load(scores), fitted.score_samples(X))
    other = GaussianModel().fit(X).save(tmp_path / "gm.npz")
    assert main(["ood", "score", str(other), str(emb), "--out", str(scores), "--no-progress"]) == 2
    assert "is a GaussianModel model file, not an OOD detector" in capsys.readouterr().err
