"""Model files of every estimator: bit-exact round trips; every corruption refused clearly."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import zipfile

import numpy as np
import pytest

import infogauss
from infogauss import GaussianModel, MahalanobisOOD
from infogauss.persistence import FORMAT_VERSION, ModelFileError, digest

from .conftest import correlated_gaussian

META = "__infogauss_meta__"


def _data(rng, n=300, d=5):
    X = correlated_gaussian(rng, n, d)
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    return X, y


def _fitted(kind, rng):
    X, y = _data(rng)
    if kind == "model":
        return GaussianModel(shrinkage="oas", whiten="pca").fit(X), X
    if kind == "pyod":
        pytest.importorskip("pyod")
        from infogauss.anomaly import GaussianLikelihoodDetector

        return GaussianLikelihoodDetector(random_state=0, statistic="mahalanobis").fit(X), X
    method, statistic, calibration = kind
    det = MahalanobisOOD(method=method, statistic=statistic, calibration=calibration,
                         n_clusters=3, random_state=0)  # fmt: skip
    return (det.fit(X, y) if method in ("class", "relative") else det.fit(X)), X


KINDS = ["model", "pyod",
         ("global", "distance", "split"), ("global", "typicality", None),
         ("class", "distance", "split"), ("cluster", "typicality", "split"),
         ("relative", "distance", None), ("relative", "distance", "split")]  # fmt: skip


def _scores(est, X):
    if isinstance(est, GaussianModel):
        return [est.score_samples(X), est.transform(X), est.pvalues(X)]
    if isinstance(est, MahalanobisOOD):
        out = [est.score_samples(X), est.decision_function(X), est.predict(X)]
        if hasattr(est, "calibration_scores_"):
            out.append(est.pvalues(X))
        return out
    return [est.decision_function(X), est.predict(X), est.predict_proba(X), est.labels_]


@pytest.mark.parametrize("kind", KINDS, ids=str)
def test_round_trip_is_bit_exact_without_pickle(rng, tmp_path, kind):
    est, X = _fitted(kind, rng)
    path = est.save(tmp_path / "est.npz")
    with np.load(path, allow_pickle=False) as npz:  # nothing in it needs pickle
        assert all(npz[k].dtype != object for k in npz.files)
    for back in (infogauss.load(path), type(est).load(path)):
        assert type(back) is type(est)
        for a, b in zip(_scores(back, X), _scores(est, X)):
            np.testing.assert_array_equal(a, b)


def _rewrite(path, out, mutate, *, rehash=False):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays.pop(META)[()]))
    mutate(meta, arrays)
    if rehash:  # a crafted file: a valid checksum over doctored contents
        meta["arrays"] = sorted(arrays)
        meta["sha256"] = digest(meta, arrays)
    np.savez(out, **arrays, **{META: np.array(json.dumps(meta))})
    return out


def _set(path, value):
    def mutate(meta, arrays):
        keys = path.split(".")
        target = meta
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
    return mutate


@pytest.fixture
def ood_file(rng, tmp_path):
    est, X = _fitted(("class", "distance", "split"), rng)
    return est.save(tmp_path / "ood.npz")


@pytest.mark.parametrize("mutate, rehash, match", [
    # metadata edits: the checksum covers the metadata (a silent change of every p-value before)
    (_set("attrs.n_samples_seen_", 10), False, "failed its checksum"),
    (_set("attrs.model_.attrs.n_samples_seen_", 99), False, "failed its checksum"),
    (_set("params.contamination", 0.2), False, "failed its checksum"),
    # crafted files with a valid checksum: the invariants are checked
    (_set("attrs.model_.attrs.n_samples_seen_", 99), True, "does not match its statistics"),
    (lambda m, a: a.__setitem__("model_.cholesky_", a["model_.cholesky_"] * 1.01), True,
     "not the Cholesky factor"),
    (lambda m, a: a.__setitem__("model_.covariance_", a["model_.covariance_"] * 1.01), True,
     "not the Cholesky factor"),
    (lambda m, a: a.__setitem__("calibration_scores_", a["calibration_scores_"][:-1]), True,
     "calibration_scores_ do not match"),
    (_set("attrs.offset_", 123.0), True, "not the conformal threshold"),
    (lambda m, a: a.__setitem__("means_", a["means_"][:, :2]), True, "means_ and classes_"),
    (lambda m, a: m["params"].__setitem__("colour", "red"), True, "parameters \\['colour'\\]"),
    (lambda m, a: m["attrs"].__setitem__("extra_", 1), True, "attributes \\['extra_'\\]"),
    (lambda m, a: m["params"].__setitem__("method", "nearest"), True, "invalid parameters"),
    (lambda m, a: m.pop("params"), True, "no 'params' object"),
    (_set("format_version", FORMAT_VERSION + 1), True, "upgrade infogauss"),
    (_set("format_version", "2"), True, "no valid format_version"),
    (_set("kind", "Pickle"), True, "unknown estimator kind"),
    (lambda m, a: a.pop("means_"), True, "means_ and classes_"),
])  # fmt: skip
def test_edited_or_crafted_files_are_refused(ood_file, tmp_path, mutate, rehash, match):
    bad = _rewrite(ood_file, tmp_path / "bad.npz", mutate, rehash=rehash)
    with pytest.raises(ModelFileError, match=match) as exc:
        infogauss.load(bad)
    assert str(exc.value).startswith("corrupt or incompatible model file: ")
    assert isinstance(exc.value, ValueError)


def test_wrong_class_truncation_and_strangers(ood_file, tmp_path):
    with pytest.raises(ModelFileError, match="holds a MahalanobisOOD, not a GaussianModel"):
        GaussianModel.load(ood_file)
    raw = ood_file.read_bytes()
    for cut in (0, 10, len(raw) // 2, len(raw) - 1):
        (tmp_path / "cut.npz").write_bytes(raw[:cut])
        with pytest.raises(ModelFileError):
            infogauss.load(tmp_path / "cut.npz")
    np.save(tmp_path / "x.npy", np.ones(3))
    with pytest.raises(ModelFileError, match="not an .npz archive"):
        infogauss.load(tmp_path / "x.npy")
    with pytest.raises(FileNotFoundError, match="no model file"):
        infogauss.load(tmp_path / "missing.npz")
    with pytest.raises(ModelFileError, match="is a directory"):
        infogauss.load(tmp_path)


def test_a_pickle_in_disguise_is_never_unpickled(tmp_path):
    ran = tmp_path / "ran"

    class Boom:
        def __reduce__(self):
            return (open, (str(ran), "w"))

    buf = io.BytesIO()
    np.savez(buf, payload=np.array([Boom()], dtype=object),
             **{META: np.array(json.dumps({"magic": "infogauss", "format_version": 2}))})
    (tmp_path / "evil.npz").write_bytes(buf.getvalue())
    with pytest.raises(ModelFileError):
        infogauss.load(tmp_path / "evil.npz")
    assert not ran.exists()
    (tmp_path / "raw.npz").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(ModelFileError):
        infogauss.load(tmp_path / "raw.npz")
    assert not ran.exists()


def test_single_bit_flips_anywhere_never_load_changed_contents(rng, tmp_path):
    X = correlated_gaussian(rng, 40, 2)
    model = GaussianModel().fit(X)
    raw = bytearray(model.save(tmp_path / "m.npz").read_bytes())
    ref = model.score_samples(X)
    loaded = 0
    for pos in range(len(raw)):
        flipped = bytearray(raw)
        flipped[pos] ^= 1 << (pos % 8)
        path = tmp_path / "f.npz"
        path.write_bytes(bytes(flipped))
        try:
            back = infogauss.load(path)
        except ModelFileError:
            continue
        loaded += 1  # a flip in zip padding or unused header fields: contents must be intact
        np.testing.assert_array_equal(back.score_samples(X), ref)
    assert loaded < len(raw) // 4


def test_version_1_files_still_load(rng, tmp_path):
    """A GaussianModel file of format 1 (checksum over the arrays only) loads unchanged."""
    X = correlated_gaussian(rng, 100, 3)
    model = GaussianModel().fit(X)
    params, attrs, arrays = model._state()
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode()); h.update(str(a.dtype).encode())  # noqa: E702
        h.update(str(a.shape).encode()); h.update(a.tobytes())  # noqa: E702
    meta = {"magic": "infogauss.GaussianModel", "format_version": 1, "infogauss_version": "0.1.0",
            "params": params, "n_features_in": 3, "n_samples_seen": 100,
            "shrinkage_": model.shrinkage_, "feature_names_in": None, "sha256": h.hexdigest()}
    np.savez(tmp_path / "v1.npz", **arrays, **{META: np.array(json.dumps(meta))})
    back = GaussianModel.load(tmp_path / "v1.npz")
    np.testing.assert_array_equal(back.score_samples(X), model.score_samples(X))
    # its metadata was outside the checksum, so an edited count is caught by the invariants
    meta["n_samples_seen"] = 7
    np.savez(tmp_path / "v1_edited.npz", **arrays, **{META: np.array(json.dumps(meta))})
    with pytest.raises(ModelFileError, match="does not match its statistics"):
        GaussianModel.load(tmp_path / "v1_edited.npz")


def test_saving_object_labels_is_refused_clearly(rng, tmp_path):
    X, y = _data(rng)
    from decimal import Decimal

    labels = np.array([Decimal(1), Decimal(2), Decimal(3)], dtype=object)[y]
    det = MahalanobisOOD(method="class", random_state=0).fit(X, labels)
    with pytest.raises(TypeError, match="numeric or string labels"):
        det.save(tmp_path / "x.npz")
    assert not list(tmp_path.iterdir())
    # ints or strings in an object array are saved as such
    det = MahalanobisOOD(method="class", random_state=0).fit(X, np.array([7, 8, 9], dtype=object)[y])
    back = infogauss.load(det.save(tmp_path / "ok.npz"))
    assert back.classes_.tolist() == [7, 8, 9] and back.classes_.dtype == np.int64


def test_zip_member_listing_matches_metadata(ood_file, tmp_path):
    with zipfile.ZipFile(ood_file) as zf:
        names = sorted(n[:-4] for n in zf.namelist() if n != META + ".npy")
    with np.load(ood_file, allow_pickle=False) as npz:
        meta = json.loads(str(npz[META][()]))
    assert meta["arrays"] == names and meta["kind"] == "MahalanobisOOD"
