"""Out-of-core fitting and scoring: streamed results equal the in-memory ones."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from infogauss import GaussianModel
from infogauss.cli import main
from infogauss.streaming import (
    fit_chunks,
    fit_npy,
    iter_npy_chunks,
    read_npy_header,
    read_npy_rows,
    score_npy,
    stats_from_npy,
)
from tests.conftest import assert_batch_close, correlated_gaussian

ATTRS = ("location_", "covariance_", "cholesky_", "whitening_")


def assert_same_model(a: GaussianModel, b: GaussianModel, atol: float = 1e-10) -> None:
    assert a.n_samples_seen_ == b.n_samples_seen_
    assert a.n_features_in_ == b.n_features_in_
    for attr in ATTRS:
        np.testing.assert_allclose(getattr(a, attr), getattr(b, attr), rtol=0, atol=atol)
    assert a.shrinkage_ == pytest.approx(b.shrinkage_, abs=1e-12)


@pytest.fixture
def data(rng) -> np.ndarray:
    return correlated_gaussian(rng, 3001, 6, offset=50.0)


@pytest.fixture
def npy32(tmp_path, data) -> tuple:
    X = data.astype(np.float32)
    path = tmp_path / "emb32.npy"
    np.save(path, X)
    return path, X


@pytest.mark.parametrize("dtype", [np.float32, np.float64, ">f8"])
@pytest.mark.parametrize("chunk_size", [1, 7, 1000, 5000])
def test_fit_npy_equals_in_memory_fit(tmp_path, data, dtype, chunk_size):
    X = data.astype(dtype)
    path = tmp_path / "emb.npy"
    np.save(path, X)
    X_native = X.astype(X.dtype.newbyteorder("="))
    streamed = fit_npy(None, path, chunk_size=chunk_size)
    assert_same_model(streamed, GaussianModel().fit(X_native))
    # ... and the memory-mapped array through the estimator gives the same model too
    mm = np.load(path, mmap_mode="r")
    if mm.dtype.isnative:
        assert_same_model(streamed, GaussianModel(chunk_size=chunk_size).fit(mm))


def test_fit_npy_uses_the_model_parameters(npy32):
    path, X = npy32
    model = fit_npy(GaussianModel(shrinkage=0.3, whiten="pca"), path, chunk_size=500)
    assert model.shrinkage_ == 0.3
    assert_same_model(model, GaussianModel(shrinkage=0.3, whiten="pca").fit(X))


def test_stats_from_npy_memory_is_bounded_by_the_block(tmp_path, rng):
    X = rng.standard_normal((40_000, 32))  # 10 MiB float64 file
    path = tmp_path / "big.npy"
    np.save(path, X)
    del X
    tracemalloc.start()
    try:
        stats = stats_from_npy(path, chunk_size=1000)  # blocks of 256 KiB
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats.n == 40_000
    assert peak < 2 * 2**20, f"peak traced memory {peak / 2**20:.1f} MiB for a 10 MiB file"


def test_iter_npy_chunks_and_read_rows(npy32):
    path, X = npy32
    blocks = list(iter_npy_chunks(path, 1000, start=5, stop=2500))
    assert [b.shape[0] for b in blocks] == [1000, 1000, 495]
    np.testing.assert_array_equal(np.concatenate(blocks), X[5:2500])
    np.testing.assert_array_equal(read_npy_rows(path, 10, 12), X[10:12])
    assert read_npy_rows(path, 3, 3).shape == (0, 6)
    with pytest.raises(ValueError, match="0 <= start <= stop <= 3001"):
        read_npy_rows(path, 10, 5000)
    with pytest.raises(ValueError, match="chunk_size"):
        next(iter_npy_chunks(path, 0))


def test_fit_chunks_equals_fit(data):
    model = fit_chunks(None, iter(np.array_split(data, 9)), progress=True, total=len(data))
    assert_same_model(model, GaussianModel().fit(data))


def test_fit_chunks_refuses_inconsistent_widths(data):
    chunks = [data[:100], data[100:200, :5]]
    with pytest.raises(ValueError, match=r"`chunks\[1\]` has 5 features, but earlier blocks had 6"):
        fit_chunks(None, iter(chunks))


def test_fit_chunks_refuses_mixed_dtypes(data):
    chunks = [data[:100], data[100:200].astype(np.float32)]
    with pytest.raises(TypeError, match="mixed dtypes"):
        fit_chunks(None, chunks)


def test_fit_chunks_refuses_empty_iterator_and_non_estimator(data):
    with pytest.raises(ValueError, match="yielded no data"):
        fit_chunks(None, iter([]))
    with pytest.raises(TypeError, match="fit_stats"):
        fit_chunks(object(), [data])


@pytest.mark.parametrize("bad", [np.int64, np.complex128, np.bool_])
def test_wrong_dtype_file_is_refused(tmp_path, bad):
    path = tmp_path / "bad.npy"
    np.save(path, np.ones((10, 3), dtype=bad))
    with pytest.raises(TypeError, match=r"holds dtype .* must be float32 or float64"):
        fit_npy(None, path)


def test_non_2d_fortran_empty_truncated_files_are_refused(tmp_path, data):
    one_d = tmp_path / "1d.npy"
    np.save(one_d, data[:, 0])
    with pytest.raises(ValueError, match="must be 2-D"):
        read_npy_header(one_d)
    fortran = tmp_path / "f.npy"
    np.save(fortran, np.asfortranarray(data))
    with pytest.raises(ValueError, match="Fortran"):
        fit_npy(None, fortran)
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((0, 4)))
    with pytest.raises(ValueError, match="empty array"):
        fit_npy(None, empty)
    trunc = tmp_path / "trunc.npy"
    np.save(trunc, data)
    with open(trunc, "r+b") as fh:
        fh.truncate(trunc.stat().st_size - 8)
    with pytest.raises(ValueError, match="truncated"):
        fit_npy(None, trunc)
    not_npy = tmp_path / "x.npy"
    not_npy.write_bytes(b"hello world, not numpy")
    with pytest.raises(ValueError, match="not a valid .npy"):
        fit_npy(None, not_npy)
    with pytest.raises(FileNotFoundError):
        fit_npy(None, tmp_path / "missing.npy")


def test_nan_in_file_names_the_rows(tmp_path, data):
    X = data.copy()
    X[2345, 1] = np.nan
    path = tmp_path / "nan.npy"
    np.save(path, X)
    with pytest.raises(ValueError, match=r"NaN.*block \[i\] holds rows i\*1000"):
        fit_npy(None, path, chunk_size=1000)
    model = GaussianModel().fit(data)
    with pytest.raises(ValueError, match="rows 2000:3000"):
        score_npy(model, path, chunk_size=1000)


@pytest.mark.parametrize("kind", ["logpdf", "mahalanobis", "pvalue"])
def test_score_npy_float64_equals_in_memory(tmp_path, data, kind):
    path = tmp_path / "emb64.npy"
    np.save(path, data)
    model = GaussianModel().fit(data)
    expected = {"logpdf": model.score_samples, "mahalanobis": model.mahalanobis,
                "pvalue": model.pvalues}[kind](data)  # fmt: skip
    assert_batch_close(score_npy(model, path, kind=kind, chunk_size=700), expected, np.float64)


@pytest.mark.parametrize("kind", ["logpdf", "mahalanobis", "pvalue"])
def test_score_npy_equals_in_memory(tmp_path, npy32, kind):
    path, X = npy32
    model = GaussianModel().fit(X)
    expected = {
        "logpdf": model.score_samples,
        "mahalanobis": model.mahalanobis,
        "pvalue": model.pvalues,
    }[kind](X)
    in_memory = score_npy(model, path, kind=kind, chunk_size=700)
    assert_batch_close(in_memory, expected, np.float32)  # float32 file: float32 compute
    out = tmp_path / "scores.npy"
    assert score_npy(model, path, out, kind=kind, chunk_size=700) == out
    np.testing.assert_array_equal(np.load(out), in_memory)


def test_score_npy_refuses_bad_input(tmp_path, npy32):
    path, X = npy32
    model = GaussianModel().fit(X)
    with pytest.raises(ValueError, match="`kind` must be one of"):
        score_npy(model, path, kind="density")
    with pytest.raises(ValueError, match="not fitted"):
        score_npy(GaussianModel(), path)
    other = tmp_path / "w.npy"
    np.save(other, X[:, :4])
    with pytest.raises(ValueError, match="has 4 features, but the model is expecting 6"):
        score_npy(model, other)
    with pytest.raises(ValueError, match="must not be an input file"):
        score_npy(model, path, path)
    assert np.load(path).shape == X.shape  # the input survived


def test_cli_streams_a_file_larger_than_its_chunk(tmp_path, npy32, capsys):
    path, X = npy32
    model_path = tmp_path / "model.npz"
    rc = main(["fit", str(path), "--out", str(model_path), "--chunk-size", "256",
               "--shrinkage", "oas", "--no-progress"])  # fmt: skip
    assert rc == 0
    assert "3001 x 6" in capsys.readouterr().out
    loaded = GaussianModel.load(model_path)
    assert_same_model(loaded, GaussianModel(shrinkage="oas").fit(X))
    for kind, method in [("logpdf", loaded.score_samples), ("mahalanobis", loaded.mahalanobis),
                         ("pvalue", loaded.pvalues)]:  # fmt: skip
        out = tmp_path / f"{kind}.npy"
        rc = main(["score", str(model_path), str(path), "--out", str(out), "--kind", kind,
                   "--chunk-size", "256"])  # fmt: skip (progress bar on: it goes to stderr)
        assert rc == 0
        scores = np.load(out)
        assert scores.shape == (len(X),) and scores.dtype == np.float64
        assert_batch_close(scores, method(X), np.float32)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_cli_reports_errors_clearly(tmp_path, capsys):
    bad = tmp_path / "ints.npy"
    np.save(bad, np.arange(12).reshape(4, 3))
    rc = main(["fit", str(bad), "--out", str(tmp_path / "m.npz"), "--no-progress"])
    assert rc == 2  # bad input
    err = capsys.readouterr().err
    assert "infogauss fit: error:" in err and "int64" in err
    assert not (tmp_path / "m.npz").exists()
    with pytest.raises(SystemExit):
        main(["fit", str(bad), "--out", "m.npz", "--shrinkage", "2.5"])
    rc = main(["score", str(tmp_path / "none.npz"), str(bad), "--out", str(tmp_path / "s.npy")])
    assert rc == 2 and "no model file" in capsys.readouterr().err


def test_streaming_and_cli_do_not_import_dask():
    code = ("import sys, infogauss.streaming, infogauss.cli._gaussian; "
            "sys.exit(int(any(m == 'dask' or m.startswith('dask.') for m in sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_old_argument_order_still_works_with_a_deprecation_warning(npy32, data):
    path, X = npy32
    with pytest.warns(DeprecationWarning, match=r"pass the model first, fit_npy\(model, path\)"):
        old = fit_npy(path, GaussianModel(shrinkage="oas"), chunk_size=500)
    assert_same_model(old, fit_npy(GaussianModel(shrinkage="oas"), path, chunk_size=500))
    with pytest.warns(DeprecationWarning, match="fit_chunks"):
        old = fit_chunks(np.array_split(data, 3))
    assert_same_model(old, fit_chunks(None, np.array_split(data, 3)))
