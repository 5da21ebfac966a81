"""CalibratedRetriever.save / load: no pickle, bit-exact round trips for every index type, and a
clear ValueError for every broken file."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

faiss = pytest.importorskip("faiss")

import infogauss  # noqa: E402
from infogauss import GaussianModel, persistence  # noqa: E402
from infogauss.retrieval import CalibratedRetriever  # noqa: E402

pytestmark = pytest.mark.faiss
D = 12
FIELDS = ("indices", "similarities", "whitened_similarities", "pvalues", "corrected_pvalues",
          "match", "ood_pvalues", "abstain", "relevance", "labels")  # fmt: skip


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(8)
    means = rng.standard_normal((5, D)) * 1.5
    y = rng.integers(0, 5, 1500)
    X = (means[y] + rng.standard_normal((1500, D))).astype(np.float32)
    yq = rng.integers(0, 5, 300)
    Q = (means[yq] + rng.standard_normal((300, D))).astype(np.float32)
    return X, y, Q, yq


def user_ivf(trained: bool):
    quantizer = faiss.IndexFlatIP(D)
    index = faiss.IndexIVFFlat(quantizer, D, 8, faiss.METRIC_INNER_PRODUCT)
    index.nprobe = 3
    if trained:
        Z = np.random.default_rng(0).standard_normal((400, D)).astype(np.float32)
        index.train(Z / np.linalg.norm(Z, axis=1, keepdims=True))
    return index


INDEXES = {
    "flat": ("flat", None),
    "ivf": ("ivf", {"nlist": 8, "nprobe": 2}),
    "hnsw": ("hnsw", {"M": 8, "efSearch": 20}),
    "factory-sq": ("IVF8,SQ8", None),  # compressed: rescored from the exact copy
    "factory-pca-hnsw": ("PCA8,HNSW16", {"efSearch": 30}),
    "user-untrained": (lambda: user_ivf(False), None),
    "user-trained": (lambda: user_ivf(True), None),
}


def assert_same_results(a, b):
    for field in FIELDS:
        x, y = getattr(a, field), getattr(b, field)
        if x is None:
            assert y is None, field
        else:
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), field
    assert (a.alpha, a.ood_alpha, a.n_searched) == (b.alpha, b.ood_alpha, b.n_searched)


@pytest.mark.parametrize("name", list(INDEXES))
@pytest.mark.parametrize("null, correction", [("empirical", "evt"), ("analytic", "sidak")])
def test_save_load_round_trip_is_bit_exact(tmp_path, data, name, null, correction):
    X, y, Q, yq = data
    index, params = INDEXES[name]
    index = index() if callable(index) else index
    r = CalibratedRetriever(index=index, index_params=params, null=null, correction=correction)
    r.fit(X[:1200], y[:1200]).calibrate_relevance(Q[:150], yq[:150], k=5)
    r.add(X[1200:], y[1200:])
    path = r.save(tmp_path / "retriever.npz")
    with np.load(path, allow_pickle=False) as npz:  # readable without pickle
        assert all(npz[k].dtype != object for k in npz.files)
        assert npz["index"].dtype == np.uint8
    for loaded in (CalibratedRetriever.load(path), infogauss.load(path)):
        assert type(loaded) is CalibratedRetriever
        assert_same_results(r.search(Q, k=7), loaded.search(Q, k=7))
        p = r.get_params()
        q = loaded.get_params()
        if isinstance(p["index"], faiss.Index):
            assert isinstance(q["index"], faiss.Index) and q["index"].ntotal == 0
            p["index"] = q["index"] = None
        assert p == q
        assert loaded.n_database_ == 1500 and loaded.relevance_method_ == "isotonic"
        assert loaded.relevance_ece_ == r.relevance_ece_
    # a loaded retriever keeps working: add and search like the original
    more = X[:50] + 0.3
    a, b = r.add(more, y[:50]).search(Q[:20], 5), loaded.add(more, y[:50]).search(Q[:20], 5)
    assert_same_results(a, b)


def test_save_load_keeps_everything_else(tmp_path, data):
    X, y, Q, yq = data
    import pandas as pd

    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(D)])
    Qf = pd.DataFrame(Q, columns=frame.columns)
    r = CalibratedRetriever(whiten="pca", n_components=6, shrinkage=0.2, alpha=0.05).fit(frame, y)
    r.calibrate_relevance(Qf[:200], yq[:200], method="platt")
    loaded = CalibratedRetriever.load(r.save(tmp_path / "r.npz"))
    np.testing.assert_array_equal(loaded.feature_names_in_, r.feature_names_in_)
    assert loaded.dim_ == 6 and loaded.relevance_method_ == "platt"
    assert_same_results(r.search(Qf, 3), loaded.search(Qf, 3))
    np.testing.assert_array_equal(loaded.embed(Qf), r.embed(Qf))
    np.testing.assert_array_equal(loaded.ood_pvalues(Qf), r.ood_pvalues(Qf))
    np.testing.assert_array_equal(loaded.labels_, r.labels_)


def test_pickle_round_trip(data):
    """faiss pickles its own indexes, so pickle works too (save/load is the supported format)."""
    X, y, Q, _ = data
    r = CalibratedRetriever(index="hnsw").fit(X, y)
    assert_same_results(r.search(Q, 4), pickle.loads(pickle.dumps(r)).search(Q, 4))


# --------------------------------------------------------------------------------------
# broken files
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory, data):
    X, y, *_ = data
    path = tmp_path_factory.mktemp("saved") / "r.npz"
    CalibratedRetriever(null="empirical", correction="evt").fit(X, y).save(path)
    return path


def rewrite(src, dst, *, arrays=None, meta=None, redigest=False):
    """Copy a model file, changing arrays and/or metadata (optionally with a fresh digest)."""
    with np.load(src, allow_pickle=False) as npz:
        content = {k: npz[k] for k in npz.files}
    m = json.loads(str(content.pop(persistence._META_KEY)[()]))
    content.update(arrays or {})
    for k, v in (meta or {}).items():
        m[k] = v(m[k]) if callable(v) else v
    if redigest:
        m["sha256"] = persistence.digest(m, content)
    buf = io.BytesIO()
    np.savez(buf, **content, **{persistence._META_KEY: np.array(json.dumps(m))})
    dst.write_bytes(buf.getvalue())
    return dst


def corrupt_message(path):
    return rf"corrupt or incompatible model file: '{path}'"


def test_truncated_file(tmp_path, saved):
    for size in (10, 1000, saved.stat().st_size // 2, saved.stat().st_size - 1):
        bad = tmp_path / f"cut{size}.npz"
        bad.write_bytes(saved.read_bytes()[:size])
        with pytest.raises(ValueError, match=corrupt_message(bad)):
            CalibratedRetriever.load(bad)


def test_tampered_index_bytes_are_caught_before_faiss_reads_them(tmp_path, saved):
    with np.load(saved, allow_pickle=False) as npz:
        index_bytes = npz["index"].copy()
    index_bytes[len(index_bytes) // 2] ^= 0xFF
    bad = rewrite(saved, tmp_path / "flip.npz", arrays={"index": index_bytes})
    with pytest.raises(ValueError, match=corrupt_message(bad) + ".*checksum"):
        CalibratedRetriever.load(bad)


def test_tampered_metadata(tmp_path, saved):
    bad = rewrite(saved, tmp_path / "alpha.npz",
                  meta={"params": lambda p: {**p, "alpha": 0.5}})  # fmt: skip
    with pytest.raises(ValueError, match=corrupt_message(bad) + ".*checksum"):
        CalibratedRetriever.load(bad)


def test_future_version(tmp_path, saved):
    bad = rewrite(saved, tmp_path / "future.npz", meta={"format_version": 99}, redigest=True)
    with pytest.raises(ValueError, match=corrupt_message(bad) + ".*format 99.*upgrade"):
        CalibratedRetriever.load(bad)


def test_wrong_class(tmp_path, data):
    X, *_ = data
    path = GaussianModel().fit(X).save(tmp_path / "model.npz")
    with pytest.raises(ValueError, match=corrupt_message(path) + ".*GaussianModel, not a Calib"):
        CalibratedRetriever.load(path)
    not_npz = tmp_path / "text.npz"
    not_npz.write_text("hello")
    with pytest.raises(ValueError, match=corrupt_message(not_npz)):
        CalibratedRetriever.load(not_npz)
    with pytest.raises(FileNotFoundError):
        CalibratedRetriever.load(tmp_path / "missing.npz")


@pytest.mark.parametrize(
    "change, what",
    [
        ({"attrs": lambda a: {**a, "n_database_": a["n_database_"] + 1}}, "database_unit"),
        ({"attrs": lambda a: {**a, "dim_": 3}}, "dimension 12, expected 3"),
        ({"attrs": lambda a: {**a, "null": {**a["null"], "kind": "bootstrap"}}}, "null kind"),
        ({"attrs": lambda a: {k: v for k, v in a.items() if k != "ood_law"}}, "ood_law"),
        ({"params": lambda p: {**p, "colour": "red"}}, "does not take"),
    ],
)
def test_consistent_checksum_but_inconsistent_content(tmp_path, saved, change, what):
    """A file whose checksum was recomputed after an edit is still checked for consistency."""
    bad = rewrite(saved, tmp_path / "edited.npz", meta=change, redigest=True)
    with pytest.raises(ValueError, match=corrupt_message(bad) + ".*" + what):
        CalibratedRetriever.load(bad)


def test_inconsistent_arrays(tmp_path, saved):
    with np.load(saved, allow_pickle=False) as npz:
        groups = npz["groups"].copy()
        flat = npz["index"].copy()
    groups[5] = 7  # a row pointing to a later representative
    bad = rewrite(saved, tmp_path / "groups.npz", arrays={"groups": groups}, redigest=True)
    with pytest.raises(ValueError, match="groups does not describe"):
        CalibratedRetriever.load(bad)
    bad = rewrite(saved, tmp_path / "index.npz", arrays={"index": flat[:100]}, redigest=True)
    with pytest.raises(ValueError, match=corrupt_message(bad) + ".*faiss could not read"):
        CalibratedRetriever.load(bad)


def test_save_needs_a_fit_and_plain_labels(tmp_path, data):
    X, y, *_ = data
    with pytest.raises(NotFittedError):
        CalibratedRetriever().save(tmp_path / "r.npz")
    r = CalibratedRetriever(null="analytic").fit(X, np.array([f"c{v}" for v in y], dtype=object))
    with pytest.raises(TypeError, match="no pickled objects"):
        r.save(tmp_path / "r.npz")
    assert not (tmp_path / "r.npz").exists()
    ok = CalibratedRetriever(null="analytic").fit(X, np.array([f"c{v}" for v in y]))
    loaded = CalibratedRetriever.load(ok.save(tmp_path / "r.npz"))
    assert loaded.labels_.dtype.kind == "U"
    assert zipfile.is_zipfile(tmp_path / "r.npz")
