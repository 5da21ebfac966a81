"""Issue 19 for the command line: every command against bad files and arguments, as one table.

Each row is ``Case(command, case_id, argv, expected)``: ``argv(ws)`` builds the arguments in a
workspace of good and broken files, and ``expected`` is either ``(exit_status, regex)`` — the
command exits with that status (2 bad input or usage, 1 failure) and writes exactly one line on
stderr, ``infogauss CMD: error: ...`` (or argparse's ``infogauss ...: error: ...``), matching
``regex``, which names the argument — or ``("ok", checker)``: exit 0 and ``checker(ws)`` holds.
Commands run in-process through :func:`infogauss.cli.main`.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from infogauss.cli import main
from infogauss.persistence import digest

META = "__infogauss_meta__"


@dataclass(frozen=True)
class Case:
    command: str
    case_id: str
    argv: Callable[[Any], list]
    expected: tuple
    xfail: str | None = None


CASES: list[Case] = []


def add(command: str, case_id: str, argv: Callable, expected: tuple, xfail: str | None = None):
    CASES.append(Case(command, case_id, argv, expected, xfail))


def s(*parts) -> list[str]:
    return [str(p) for p in parts]


# ====================================================================== the workspace
def _rewrite(src: Path, dst: Path, mutate: Callable, *, rehash: bool) -> Path:
    with np.load(src, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays.pop(META)[()]))
    mutate(meta, arrays)
    if rehash:
        meta["arrays"] = sorted(arrays)
        meta["sha256"] = digest(meta, arrays)
    np.savez(dst, **arrays, **{META: np.array(json.dumps(meta))})
    return dst


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """Good inputs, fitted files and every kind of broken file, built once."""
    t = tmp_path_factory.mktemp("cli_bad_input")
    w = SimpleNamespace(tmp=t)
    rng = np.random.default_rng(190)
    X = (rng.standard_normal((120, 4)) @ (np.eye(4) + 0.3)).astype(np.float32)

    def npy(name, arr, **kw):
        path = t / name
        np.save(path, arr, **kw)
        return path

    w.X, w.Q = npy("X.npy", X), npy("Q.npy", X[:20] + 0.01)
    w.y = npy("y.npy", np.arange(120) % 3)
    w.nan = npy("nan.npy", np.where(np.arange(120)[:, None] == 3, np.nan, X))
    w.inf = npy("inf.npy", np.where(np.arange(120)[:, None] == 3, np.inf, X))
    w.one_d, w.three_d = npy("one_d.npy", X[:, 0]), npy("three_d.npy", X[:, :, None])
    w.ints = npy("ints.npy", np.arange(480).reshape(120, 4))
    w.obj = npy("obj.npy", np.array([[1, "a"]] * 3, dtype=object), allow_pickle=True)
    w.fortran = npy("fortran.npy", np.asfortranarray(X))
    w.empty = npy("empty.npy", X[:0])
    w.narrow = npy("narrow.npy", X[:, :3])
    w.const = npy("const.npy", np.ones((50, 4), np.float32))
    w.one_row = npy("one_row.npy", X[:1])
    w.dups = npy("dups.npy", np.vstack([X, X[:6]]))
    raw = w.X.read_bytes()
    w.trunc = t / "trunc.npy"
    w.trunc.write_bytes(raw[: len(raw) // 2])
    w.garbage = t / "garbage.npy"
    w.garbage.write_bytes(b"not an npy file\n" * 8)
    w.missing, w.directory = t / "missing.npy", t / "a_dir"
    w.directory.mkdir()
    w.afile = t / "a_file.txt"
    w.afile.write_text("a file, not a directory\n")
    # labels
    w.short = npy("short.npy", np.zeros(10, np.int64))
    w.float_labels = npy("float_labels.npy", np.linspace(0, 1, 120))
    w.labels_2d = npy("labels_2d.npy", np.zeros((120, 2), np.int64))
    w.unlabelled = npy("unlabelled.npy", np.where(np.arange(120) < 3, -1, np.arange(120) % 3))
    w.obj_labels = npy("obj_labels.npy", np.array(["a"] * 120, dtype=object), allow_pickle=True)
    # fitted files
    assert main(s("fit", w.X, "--out", t / "model.npz", "--no-progress")) == 0
    assert main(s("ood", "fit", w.X, "--out", t / "det.npz", "--no-progress")) == 0
    assert main(s("ood", "fit", w.X, "--out", t / "det_nocal.npz", "--calibration", "none",
                  "--no-progress")) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(s("retrieve", "fit", w.X, "--out", t / "ret.npz", "--n-null-queries", "50",
                      "--no-progress")) == 0
    w.model, w.det, w.det_nocal, w.ret = (t / f for f in ("model.npz", "det.npz",
                                                         "det_nocal.npz", "ret.npz"))
    # broken model files, each kind
    for name in ("model", "det", "ret"):
        src = getattr(w, name)
        data = src.read_bytes()
        setattr(w, f"{name}_trunc", t / f"{name}_trunc.npz")
        getattr(w, f"{name}_trunc").write_bytes(data[: len(data) // 2])
        setattr(w, f"{name}_edited", _rewrite(
            src, t / f"{name}_edited.npz",
            lambda m, a: m["attrs"].__setitem__("n_features_in_", 7), rehash=False))
        setattr(w, f"{name}_future", _rewrite(
            src, t / f"{name}_future.npz",
            lambda m, a: m.__setitem__("format_version", 3), rehash=True))
        flipped = bytearray(data)
        flipped[len(data) // 3] ^= 0x10
        setattr(w, f"{name}_flipped", t / f"{name}_flipped.npz")
        getattr(w, f"{name}_flipped").write_bytes(bytes(flipped))
    w.pickle_model = t / "pickle_model.npz"
    w.pickle_model.write_bytes(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.")
    w.bad_ckpt = t / "bad.pt"
    w.bad_ckpt.write_bytes(b"this is not a torch checkpoint")
    return w


# ====================================================================== the table
def _err(cmd: str, pattern: str, status: int = 2) -> tuple:
    return (status, rf"^infogauss {re.escape(cmd)}: error: {pattern}")


def _usage(cmd: str, pattern: str) -> tuple:
    return (2, rf"^infogauss {re.escape(cmd)}: error: .*{pattern}.*\(see `infogauss "
               rf"{re.escape(cmd)} --help`\)$")


def _writes(*names: str) -> tuple:
    return ("ok", lambda w, out: all((w.tmp / n).exists() for n in names) or
            pytest.fail(f"missing outputs among {names}"))


_NPY = r"'.*\.npy'"
# ---------------------------------------------------------------- infogauss fit / score
for cid, src, pattern in [
    ("missing EMBEDDINGS", "missing", r"`EMBEDDINGS`: no \.npy file at '.*missing\.npy'"),
    ("EMBEDDINGS is a directory", "directory", r"`EMBEDDINGS`: no \.npy file at '.*a_dir'"),
    ("NaN rows", "nan", r"`.*nan\.npy\[0\]` contains NaN or infinity \(first at row 3 of the "
                        r"block\)"),
    ("inf rows", "inf", r"`.*inf\.npy\[0\]` contains NaN or infinity \(first at row 3"),
    ("1-D file", "one_d", rf"`EMBEDDINGS`: {_NPY} holds an array of shape \(120,\), but "
                          r"embeddings must be 2-D"),
    ("3-D file", "three_d", rf"`EMBEDDINGS`: {_NPY} holds an array of shape \(120, 4, 1\)"),
    ("int64 file", "ints", rf"`EMBEDDINGS`: {_NPY} holds dtype int64, but embeddings must be "
                           r"float32 or float64"),
    ("object file (pickle)", "obj", rf"`EMBEDDINGS`: {_NPY} holds dtype object"),
    ("Fortran-order file", "fortran", rf"`EMBEDDINGS`: {_NPY} is stored in Fortran"),
    ("empty file", "empty", rf"`EMBEDDINGS`: {_NPY} holds an empty array of shape \(0, 4\)"),
    ("truncated file", "trunc", rf"`EMBEDDINGS`: {_NPY} is truncated: its header announces "
                                r"shape \(120, 4\)"),
    ("not an .npy file", "garbage", rf"`EMBEDDINGS`: {_NPY} is not a valid \.npy file"),
    ("constant rows", "const", r"every feature of X is constant \(zero variance\), so no "
                               r"Gaussian can be fitted to `EMBEDDINGS`"),
    ("one row", "one_row", r"a Gaussian needs at least 2 samples, got n_samples = 1"),
]:
    add("fit", cid, lambda w, src=src: s("fit", getattr(w, src), "--out", w.tmp / "m.npz"),
        _err("fit", pattern))
add("fit", "--out is the input", lambda w: s("fit", w.X, "--out", w.X),
    _err("fit", r"`--out` must not be an input file"))
add("fit", "--out under a file", lambda w: s("fit", w.X, "--out", w.afile / "m.npz"),
    _err("fit", r"`--out`: '.*a_file\.txt', which should hold '.*m\.npz', is a file, not a "
                r"directory"))
add("fit", "--out is a directory", lambda w: s("fit", w.X, "--out", w.directory),
    _err("fit", r"`--out` must be a file path, got the directory '.*a_dir'"))
add("fit", "--chunk-size 0", lambda w: s("fit", w.X, "--out", w.tmp / "m.npz", "--chunk-size",
                                         "0"), _usage("fit", r"--chunk-size: must be an integer "
                                                             r">= 1, got '0'"))
add("fit", "--shrinkage 2.5", lambda w: s("fit", w.X, "--out", w.tmp / "m.npz", "--shrinkage",
                                          "2.5"), _usage("fit", r"--shrinkage: must lie in "
                                                                r"\[0, 1\], got '2\.5'"))
add("fit", "--whiten unknown", lambda w: s("fit", w.X, "--out", w.tmp / "m.npz", "--whiten",
                                           "svd"), _usage("fit", r"--whiten: invalid choice"))
add("fit", "float16 file", lambda w: s("fit", _f16(w), "--out", w.tmp / "m16.npz"),
    _writes("m16.npz"))
add("fit", "big-endian file", lambda w: s("fit", _big_endian(w), "--out", w.tmp / "mbe.npz"),
    _writes("mbe.npz"))


def _f16(w) -> Path:
    path = w.tmp / "f16.npy"
    np.save(path, np.load(w.X).astype(np.float16))
    return path


def _big_endian(w) -> Path:
    path = w.tmp / "be.npy"
    np.save(path, np.load(w.X).astype(">f8"))
    return path


for cid, model, pattern in [
    ("missing MODEL", "missing", r"`MODEL`: no model file at '.*missing\.npy'"),
    ("truncated MODEL", "model_trunc", r"`MODEL`: corrupt or incompatible model file: '.*': is "
                                       r"not a readable infogauss model file"),
    ("edited MODEL (checksum)", "model_edited", r"`MODEL`: corrupt or incompatible model file: "
                                                r"'.*': failed its checksum"),
    ("a flipped bit in MODEL", "model_flipped", r"`MODEL`: corrupt or incompatible model file"),
    ("MODEL from a future version", "model_future", r"`MODEL`: .*uses model format 3.*upgrade "
                                                    r"infogauss"),
    ("a detector as MODEL", "det", r"`MODEL`: .*holds a MahalanobisOOD, not a GaussianModel"),
    ("a retriever as MODEL", "ret", r"`MODEL`: .*holds a CalibratedRetriever, not a "
                                    r"GaussianModel"),
    ("a pickle as MODEL", "pickle_model", r"`MODEL`: corrupt or incompatible model file: '.*': "
                                          r"is not a readable infogauss model file: not an "
                                          r"\.npz archive"),
]:
    add("score", cid, lambda w, m=model: s("score", getattr(w, m) if m != "missing" else w.missing,
                                           w.X, "--out", w.tmp / "s.npy"), _err("score", pattern))
for cid, src, pattern in [
    ("EMBEDDINGS of another width", "narrow", rf"{_NPY} has 3 features, but the model is "
                                              r"expecting 4"),
    ("NaN rows", "nan", rf"{_NPY}, rows 0:120: `EMBEDDINGS` contains NaN or infinity \(first at "
                        r"row 3\)"),
    ("1-D EMBEDDINGS", "one_d", rf"`EMBEDDINGS`: {_NPY} holds an array of shape \(120,\)"),
    ("missing EMBEDDINGS", "missing", r"`EMBEDDINGS`: no \.npy file at"),
]:
    add("score", cid, lambda w, src=src: s("score", w.model, getattr(w, src), "--out",
                                           w.tmp / "s.npy"), _err("score", pattern))
add("score", "--out is MODEL", lambda w: s("score", w.model, w.X, "--out", w.model),
    _err("score", r"`--out` must not be an input file"))
add("score", "--kind unknown", lambda w: s("score", w.model, w.X, "--out", w.tmp / "s.npy",
                                           "--kind", "density"),
    _usage("score", r"--kind: invalid choice: 'density'"))

# ---------------------------------------------------------------- infogauss ood fit / score
for cid, extra, pattern in [
    ("NaN rows", ("nan",), r"`EMBEDDINGS` contains NaN or infinity \(first at row 3\)"),
    ("one row", ("one_row",), r"`EMBEDDINGS` has 1 sample\(s\) \(rows\), but a minimum of 2 is "
                              r"required"),
    ("constant rows", ("const",), r"every feature of X is constant .* fitted to `EMBEDDINGS`"),
    ("--labels of another length", ("X", "--method", "class", "--labels", "short"),
     r"`--labels` must have one label per row of EMBEDDINGS \(120\), got 10"),
    ("float --labels", ("X", "--method", "class", "--labels", "float_labels"),
     r"`--labels` must hold integer or string labels, got dtype float64"),
    ("2-D --labels", ("X", "--method", "class", "--labels", "labels_2d"),
     r"`--labels` must be a 1-D array of labels, got shape \(120, 2\)"),
    ("unlabelled rows in --labels", ("X", "--method", "class", "--labels", "unlabelled"),
     r"`--labels` marks 3 rows as unlabelled \(-1\)"),
    ("pickled --labels", ("X", "--method", "class", "--labels", "obj_labels"),
     r"`--labels` must be a \.npy file of labels, got '.*': Object arrays cannot be loaded"),
    ("--labels with --method global", ("X", "--labels", "y"),
     r"`--labels` is used by --method class or relative only"),
    ("--method class without --labels", ("X", "--method", "class"),
     r"`--labels` must be given with --method class"),
    ("--n-clusters above the rows", ("X", "--method", "cluster", "--n-clusters", "130"),
     r"`n_clusters` must be <= n_samples \(120\), got 130"),
    ("--labels with --method kde", ("X", "--method", "kde", "--labels", "y"),
     r"`--labels` is used by --method class or relative only, got --method kde"),
    ("--bandwidth with --method global", ("X", "--bandwidth", "0.5"),
     r"`--bandwidth` is used by --method kde only, got --method global"),
    ("--statistic typicality with --method kde", ("X", "--method", "kde", "--statistic",
                                                   "typicality"),
     r"`--statistic` typicality is for the Mahalanobis methods"),
    ("--n-clusters with --method mixture", ("X", "--method", "mixture", "--n-clusters", "4"),
     r"`--n-clusters` is used by --method cluster or relative only, got --method mixture"),
    ("--n-components with --method global", ("X", "--n-components", "4"),
     r"`--n-components` is used by --method mixture only, got --method global"),
    ("--n-restarts with --method kde", ("X", "--method", "kde", "--n-restarts", "2"),
     r"`--n-restarts` is used by --method mixture only, got --method kde"),
    ("--statistic typicality with --method mixture", ("X", "--method", "mixture",
                                                       "--statistic", "typicality"),
     r"`--statistic` typicality is for the Mahalanobis methods; --method mixture"),
    ("--labels with --method mixture", ("X", "--method", "mixture", "--labels", "y"),
     r"`--labels` is used by --method class or relative only, got --method mixture"),
    ("--n-components above the rows", ("X", "--method", "mixture", "--n-components", "500"),
     r"`n_components` must be <= n_samples"),
    ("constant rows, --method kde", ("const", "--method", "kde"),
     r"`EMBEDDINGS` has no variance \(all reference rows are equal\)"),
]:
    add("ood fit", cid, lambda w, e=extra: s("ood", "fit", *(getattr(w, a) if hasattr(w, a)
                                                             else a for a in e),
                                             "--out", w.tmp / "d.npz"), _err("ood fit", pattern))
add("ood fit", "--contamination 0.7", lambda w: s("ood", "fit", w.X, "--out", w.tmp / "d.npz",
                                                  "--contamination", "0.7"),
    _usage("ood fit", r"--contamination: must be a number in \(0, 0\.5\], got '0\.7'"))
add("ood fit", "--bandwidth 0", lambda w: s("ood", "fit", w.X, "--out", w.tmp / "d.npz",
                                            "--method", "kde", "--bandwidth", "0"),
    _usage("ood fit", r"--bandwidth: must be 'loo' or a positive number, got '0'"))
add("ood fit", "--n-components 0", lambda w: s("ood", "fit", w.X, "--out", w.tmp / "d.npz",
                                               "--method", "mixture", "--n-components", "0"),
    _usage("ood fit", r"--n-components: must be 'auto' or an integer >= 1, got '0'"))
add("ood fit", "--calibration-size 1.5", lambda w: s("ood", "fit", w.X, "--out", w.tmp / "d.npz",
                                                     "--calibration-size", "1.5"),
    _usage("ood fit", r"--calibration-size: must be a fraction in \(0, 1\) or a count >= 1"))
for cid, det, src, extra, pattern in [
    ("missing DETECTOR", "missing", "X", (), r"`DETECTOR`: no model file at"),
    ("truncated DETECTOR", "det_trunc", "X", (), r"`DETECTOR`: corrupt or incompatible model "
                                                 r"file: '.*': is not a readable"),
    ("edited DETECTOR", "det_edited", "X", (), r"`DETECTOR`: .*failed its checksum"),
    ("a flipped bit in DETECTOR", "det_flipped", "X", (), r"`DETECTOR`: corrupt or incompatible"),
    ("DETECTOR from a future version", "det_future", "X", (), r"`DETECTOR`: .*upgrade infogauss"),
    ("a Gaussian model as DETECTOR", "model", "X", (),
     r"`DETECTOR`: .*is a GaussianModel model file, not an OOD detector"),
    ("EMBEDDINGS of another width", "det", "narrow", (),
     r"`EMBEDDINGS` has 3 features, but the detector in '.*' is expecting 4"),
    ("NaN rows", "det", "nan", (), r"`EMBEDDINGS` contains NaN or infinity \(first at row 3\)"),
    ("--alpha with --kind score", "det", "X", ("--alpha", "0.1"),
     r"`--alpha` is used with --kind label only, got --kind score"),
    ("p-values of an uncalibrated DETECTOR", "det_nocal", "X", ("--kind", "pvalue"),
     r"`DETECTOR` '.*' is not calibrated \(fitted with --calibration none\)"),
    ("--alpha below the calibration set's reach", "det", "X", ("--kind", "label", "--alpha",
                                                                "0.001"),
     r"the calibration set is too small for `--alpha`=0\.001.*got 24"),
]:
    add("ood score", cid, lambda w, d=det, x=src, e=extra: s(
        "ood", "score", getattr(w, d), getattr(w, x), "--out", w.tmp / "o.npy", *e),
        _err("ood score", pattern))

# ---------------------------------------------------------------- infogauss retrieve fit / search
for cid, src, extra, pattern in [
    ("NaN rows", "nan", (), r"`DATABASE` contains NaN or infinity"),
    ("one row", "one_row", (), r"`DATABASE` has 1 sample\(s\) \(rows\), but a minimum of 2"),
    ("1-D DATABASE", "one_d", (), rf"`DATABASE`: {_NPY} holds an array of shape \(120,\)"),
    ("--labels of another length", "X", ("--labels", "short"),
     r"`--labels` must have one label per row of DATABASE \(120\), got 10"),
    ("--n-components with --whiten zca", "X", ("--n-components", "9"),
     r"`n_components` must be <= n_features \(4\), got 9"),
]:
    add("retrieve fit", cid, lambda w, x=src, e=extra: s(
        "retrieve", "fit", getattr(w, x), "--out", w.tmp / "r.npz", "--n-null-queries", "50",
        *(str(getattr(w, a)) if hasattr(w, a) else a for a in e)), _err("retrieve fit", pattern))
add("retrieve fit", "duplicate rows (warned, counted once)", lambda w: s(
    "retrieve", "fit", w.dups, "--out", w.tmp / "rdup.npz", "--n-null-queries", "50", "--json"),
    ("ok", lambda w, out: json.loads(out)["n_database"] == 126 or pytest.fail(out)))
add("retrieve fit", "--alpha 2", lambda w: s("retrieve", "fit", w.X, "--out", w.tmp / "r.npz",
                                             "--alpha", "2"),
    _usage("retrieve fit", r"--alpha: must be a number in \(0, 1\), got '2'"))
for cid, ret, src, extra, pattern in [
    ("missing RETRIEVER", "missing", "Q", (), r"`RETRIEVER`: no model file at"),
    ("truncated RETRIEVER", "ret_trunc", "Q", (), r"`RETRIEVER`: corrupt or incompatible model "
                                                  r"file: '.*': is not a readable"),
    ("edited RETRIEVER", "ret_edited", "Q", (), r"`RETRIEVER`: .*failed its checksum"),
    ("a flipped bit in RETRIEVER", "ret_flipped", "Q", (), r"`RETRIEVER`: corrupt or "
                                                           r"incompatible"),
    ("RETRIEVER from a future version", "ret_future", "Q", (), r"`RETRIEVER`: .*upgrade"),
    ("a detector as RETRIEVER", "det", "Q", (), r"`RETRIEVER`: .*holds a MahalanobisOOD, not a "
                                                r"CalibratedRetriever"),
    ("QUERIES of another width", "ret", "narrow", (),
     r"`QUERIES` has 3 features, but the retriever in '.*' is expecting 4"),
    ("NaN QUERIES", "ret", "nan", (), r"`QUERIES` contains NaN or infinity"),
    ("--k above the database", "ret", "Q", ("--k", "121"),
     r"`--k` must be at most the database size \(120\), got 121"),
]:
    add("retrieve search", cid, lambda w, r=ret, x=src, e=extra: s(
        "retrieve", "search", getattr(w, r), getattr(w, x), "--out", w.tmp / "res.npz", *e),
        _err("retrieve search", pattern))
add("retrieve search", "--k 0", lambda w: s("retrieve", "search", w.ret, w.Q, "--out",
                                            w.tmp / "res.npz", "--k", "0"),
    _usage("retrieve search", r"--k: must be an integer >= 1, got '0'"))

# ---------------------------------------------------------------- infogauss diagnose
for cid, argv, pattern in [
    ("NaN rows", lambda w: s("diagnose", w.nan, "--quiet"), r"`EMBEDDINGS` contains NaN or "
                                                             r"infinity"),
    ("1-D EMBEDDINGS", lambda w: s("diagnose", w.one_d), rf"`EMBEDDINGS`: {_NPY} holds an array "
                                                          r"of shape \(120,\)"),
    ("truncated EMBEDDINGS", lambda w: s("diagnose", w.trunc), r"`EMBEDDINGS`: .* is truncated"),
    ("missing --baseline", lambda w: s("diagnose", w.X, "--baseline", w.missing),
     r"`--baseline`: no \.npy file at"),
    ("--out is EMBEDDINGS", lambda w: s("diagnose", w.X, "--out", w.X),
     r"`--out` must not be an input file"),
    ("--out and --markdown the same file", lambda w: s("diagnose", w.X, "--out", w.tmp / "r.json",
                                                       "--markdown", w.tmp / "r.json"),
     r"`--out` and `--markdown` must be different files"),
    ("--plots is a file", lambda w: s("diagnose", w.X, "--plots", w.afile),
     r"`--plots` must be a directory, got the file '.*a_file\.txt'"),
]:
    add("diagnose", cid, argv, _err("diagnose", pattern))
add("diagnose", "--heldout-fraction 1.5", lambda w: s("diagnose", w.X, "--heldout-fraction",
                                                      "1.5"),
    _usage("diagnose", r"--heldout-fraction: must be a number in \(0, 1\), got '1\.5'"))

# ---------------------------------------------------------------- infogauss train / embed
add("train", "missing --data", lambda w: s("train", "--data", w.missing, "--out", w.tmp / "run"),
    _err("train", r"`--data` must be an existing file or directory, got '.*missing\.npy'"))
add("train", "--data not an .npy file", lambda w: s("train", "--data", w.garbage, "--out",
                                                    w.tmp / "run"),
    _err("train", r"`--data` '.*garbage\.npy' is not a readable \.npy file of numbers"))
add("train", "--data a pickled .npy", lambda w: s("train", "--data", w.obj, "--out",
                                                  w.tmp / "run"),
    _err("train", r"`--data` '.*obj\.npy' is not a readable \.npy file of numbers .*pickled "
                  r"objects, which are never loaded"))
add("train", "--data of complex numbers", lambda w: s("train", "--data", _complex(w), "--out",
                                                      w.tmp / "run"),
    _err("train", r"`--data` must hold numbers \(uint8 images or float vectors\), got dtype "
                  r"complex128"))


def _complex(w) -> Path:
    path = w.tmp / "complex.npy"
    np.save(path, np.load(w.X).astype(complex))
    return path

add("train", "--out is a file", lambda w: s("train", "--data", w.X, "--out", w.afile),
    _err("train", r"`--out` must be a directory, got the file '.*a_file\.txt'"))
add("embed", "missing --checkpoint", lambda w: s("embed", "--checkpoint", w.missing, "--data", w.X,
                                                 "--out", w.tmp / "z.npy"),
    _err("embed", r"`--checkpoint` must be a run directory or a \.pt file, got '.*missing\.npy'"))
add("embed", "--checkpoint not a checkpoint", lambda w: s(
    "embed", "--checkpoint", w.bad_ckpt, "--data", w.X, "--out", w.tmp / "z.npy"),
    _err("embed", r"`--checkpoint` '.*bad\.pt' is neither a training checkpoint nor a "
                  r"state_dict"))
add("embed", "--out is --data", lambda w: s("embed", "--checkpoint", w.bad_ckpt, "--data", w.X,
                                            "--out", w.X),
    _err("embed", r"`--out` must not be an input file"))


# ====================================================================== the test
def _param(case: Case):
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=f"{case.command}::{case.case_id}", marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input_cli(case: Case, ws, capsys) -> None:
    capsys.readouterr()
    argv = case.argv(ws)
    if "--no-progress" not in argv:
        argv.append("--no-progress")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            status = main(argv)
        except SystemExit as exc:  # argparse's usage errors
            status = exc.code
    out, err = capsys.readouterr()
    if case.expected[0] == "ok":
        assert status == 0, err
        case.expected[1](ws, out)
        return
    want, pattern = case.expected
    assert status == want, f"exit status {status}, expected {want}; stderr: {err!r}"
    assert err.count("\n") == 1 and err.endswith("\n"), f"not one stderr line: {err!r}"
    assert "Traceback" not in err, err
    assert re.search(pattern, err.rstrip("\n")), f"{err!r} does not match {pattern!r}"


if __name__ == "__main__":  # pragma: no cover - the table for the report
    from collections import Counter

    for command, n in sorted(Counter(c.command for c in CASES).items()):
        print(f"{n:4d}  infogauss {command}")
    print(f"{len(CASES):4d}  total ({sum(1 for c in CASES if c.xfail)} xfail)")
