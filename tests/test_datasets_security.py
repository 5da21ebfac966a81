"""Readers on untrusted data: crafted pickles, zip bombs, path traversal, links, bad members."""

import io
import os
import pickle
import struct
import sys
import time
import warnings
import zipfile

import numpy as np
import pytest

from infogauss import datasets as ds
from infogauss.datasets import _archive, _unpickle
from infogauss.datasets._unpickle import restricted_loads

MiB = 2**20


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INFOGAUSS_CACHE", str(tmp_path / "cache"))


def _full_loads(data: bytes):
    """The full unpickler, as the old reader used it (only ever on pickles written here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core is numpy._core now
        return pickle.loads(data, encoding="bytes")


def _assert_same(a, b):
    """Equal values, types, dtypes and array bytes (bit-identical)."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, (np.ndarray, np.generic)):
        # same numbers bit for bit; arrays come back in native byte order (numpy 2's setstate
        # does that too, its protocol-5 path keeps the written order)
        assert a.dtype.isnative and a.dtype == b.dtype.newbyteorder("=") and a.shape == b.shape
        assert a.tobytes(order="A") == b.astype(a.dtype).tobytes(order="A")
        if isinstance(a, np.ndarray):
            assert a.flags.f_contiguous == b.flags.f_contiguous
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        assert a == b


# --- a CIFAR batch as Python 2 cPickle + numpy 1.x wrote the official files -----------------------

def _py2_pickle(obj) -> bytes:
    """Protocol 2 with Python 2 ``str`` opcodes (SHORT_BINSTRING/BINSTRING) for bytes, and the
    ``numpy.core.multiarray._reconstruct`` / ``numpy.dtype`` layout of the official batches."""
    out = [b"\x80\x02"]

    def s(b: bytes):
        out.append(b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b)

    def i(v: int):
        if 0 <= v < 256:
            out.append(b"K" + bytes([v]))
        elif 0 <= v < 65536:
            out.append(b"M" + struct.pack("<H", v))
        else:
            out.append(b"J" + struct.pack("<i", v))

    def emit(o):
        if isinstance(o, dict):
            out.append(b"}(")
            for k, v in o.items():
                emit(k)
                emit(v)
            out.append(b"u")
        elif isinstance(o, list):
            out.append(b"](")
            for v in o:
                emit(v)
            out.append(b"e")
        elif isinstance(o, bytes):
            s(o)
        elif isinstance(o, int):
            i(o)
        elif isinstance(o, np.ndarray):
            assert o.dtype == np.uint8 and o.flags.c_contiguous
            out.append(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85")
            s(b"b")
            out.append(b"\x87R(K\x01(")
            for d in o.shape:
                i(d)
            out.append(b"tcnumpy\ndtype\n")
            s(b"u1")
            out.append(b"K\x00K\x01\x87R(K\x03")
            s(b"|")
            out.append(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89")
            s(o.tobytes())
            out.append(b"tb")
        else:
            raise TypeError(type(o))

    emit(obj)
    out.append(b".")
    return b"".join(out)


def _batch(rng, n=6, cifar100=False):
    batch = {b"batch_label": b"training batch 1 of 5",
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"filenames": [f"img_{k:04d}.png".encode() for k in range(n)]}
    if cifar100:
        batch[b"fine_labels"] = [int(v) for v in rng.integers(0, 100, n)]
        batch[b"coarse_labels"] = [int(v) for v in rng.integers(0, 20, n)]
    else:
        batch[b"labels"] = [int(v) for v in rng.integers(0, 10, n)]
    return batch


@pytest.mark.parametrize("cifar100", [False, True])
def test_official_python2_batch_loads_bit_identically(tmp_path, rng, cifar100):
    batch = _batch(rng, n=300, cifar100=cifar100)  # > 255 items: BININT2 and BINSTRING paths
    raw = _py2_pickle(batch)
    assert b"cnumpy.core.multiarray\n_reconstruct" in raw and b"T" in raw
    (tmp_path / "b").write_bytes(raw)
    full = _full_loads(raw)
    _assert_same(restricted_loads(raw, "b"), full)
    got = ds.load_cifar_batch(tmp_path / "b")
    np.testing.assert_array_equal(got[b"data"], batch[b"data"])
    for k in (b"labels", b"fine_labels", b"coarse_labels"):
        if k in batch:
            assert got[k].dtype == np.int64 and got[k].tolist() == batch[k]
    assert got[b"filenames"] == batch[b"filenames"] and got[b"batch_label"] == batch[b"batch_label"]


def test_official_python2_meta_file(tmp_path):
    meta = {b"label_names": [c.encode() for c in ds.CIFAR10_CLASSES], b"num_cases_per_batch": 10000,
            b"num_vis": 3072}
    (tmp_path / "batches.meta").write_bytes(_py2_pickle(meta))
    assert ds.load_cifar_batch(tmp_path / "batches.meta") == meta


def test_load_cifar10_reads_python2_batches(tmp_path, rng):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    truth = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        b = _batch(rng, n=5)
        (d / name).write_bytes(_py2_pickle(b))
        truth.append(b)
    tr = ds.load_cifar10(tmp_path)
    np.testing.assert_array_equal(tr.images.reshape(25, -1), np.concatenate([b[b"data"] for b in truth[:5]]))
    assert tr.labels.tolist() == sum((b[b"labels"] for b in truth[:5]), [])


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("variant", ["bytes-keys", "str-keys", "numpy-labels", "numpy-scalars"])
def test_python3_batches_every_protocol(tmp_path, rng, protocol, variant):
    batch = _batch(rng, n=7)
    if variant == "str-keys":
        batch = {k.decode(): v for k, v in batch.items()}
    elif variant == "numpy-labels":
        batch[b"labels"] = np.asarray(batch[b"labels"], np.int64)
    elif variant == "numpy-scalars":
        batch[b"labels"] = list(np.asarray(batch[b"labels"], np.int32))
    raw = pickle.dumps(batch, protocol=protocol)
    _assert_same(restricted_loads(raw, "b"), _full_loads(raw))
    (tmp_path / "b").write_bytes(raw)
    got = ds.load_cifar_batch(tmp_path / "b")
    key = "data" if variant == "str-keys" else b"data"
    np.testing.assert_array_equal(got[key], _full_loads(raw)[key])


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("dtype", ["uint8", "bool", ">i2", "<i4", "int64", ">f4", "float64", "complex128"])
@pytest.mark.parametrize("order", ["C", "F", "strided"])
def test_numeric_arrays_round_trip(protocol, dtype, order, rng):
    a = (rng.standard_normal((4, 6)) * 100).astype(dtype)
    a = np.asfortranarray(a) if order == "F" else a[:, ::2] if order == "strided" else a
    obj = {"a": a, "scalar": a.ravel()[0], "t": (a.shape, None, True, 1.5, "x"), "empty": a[:0]}
    raw = pickle.dumps(obj, protocol=protocol)
    got = restricted_loads(raw, "x")
    _assert_same(got, _full_loads(raw))
    assert got["a"].flags.writeable and got["a"].flags.owndata


# --- crafted pickles ------------------------------------------------------------------------------

class _System:
    """Unpickles as ``os.system(cmd)`` under the full unpickler."""

    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def _gates(monkeypatch, which):
    """Disable all but one gate, to show each refuses the payload on its own."""
    if which == "find_class":
        monkeypatch.setattr(_unpickle, "_scan", lambda data: None)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("gate", ["all", "find_class"])
def test_crafted_pickle_calling_os_system_is_refused(tmp_path, monkeypatch, protocol, gate):
    marker = tmp_path / "pwned"
    payload = _System(f"touch {marker}")
    raw = pickle.dumps({b"data": payload, b"labels": [0]}, protocol=protocol)
    assert os.system.__module__.encode() in raw and b"system" in raw  # a real payload
    _gates(monkeypatch, gate)
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    (d / "test_batch").write_bytes(raw)
    mod = os.system.__module__  # posix (nt on Windows)
    with pytest.raises(ds.UnsafeDataError, match=rf"(?s)test_batch.*{mod}\.system is not allowed.*"
                                                  r"Nothing in it was run.*download_cifar10"):
        ds.load_cifar10(tmp_path, "test")
    with pytest.raises(ValueError, match=rf"refused to unpickle: global {mod}\.system"):
        ds.load_cifar_batch(d / "test_batch")
    assert not marker.exists()


_CRAFTED = {
    # hand-written protocol 0 streams: GLOBAL + REDUCE, INST, builtins, numpy's own loaders
    "eval": b"cbuiltins\neval\n(S'__import__(\"os\").system(\"true\")'\ntR.",
    "getattr": b"c__builtin__\ngetattr\n(c__builtin__\nobject\nS'__subclasses__'\ntR.",
    "inst": b"(S'true'\nios\nsystem\n.",
    "numpy.load": b"cnumpy\nload\n(S'/etc/passwd'\ntR.",
    "subprocess": b"csubprocess\nPopen\n((S'true'\nltR.",
    "object-array": pickle.dumps(np.array([1, "a"], dtype=object), protocol=2),
    "object-array-p5": pickle.dumps(np.array([1, "a"], dtype=object), protocol=5),
    "string-dtype": pickle.dumps(np.array([b"ab"]), protocol=2),
    "structured": pickle.dumps(np.zeros(2, dtype=[("a", "u1")]), protocol=2),
    "codecs-rot13": b"c_codecs\nencode\n(Vabc\nVrot13\ntR.",
    "bytes-alloc": b"\x80\x02c__builtin__\nbytes\nJ\x00\xca\x9a;\x85R.",  # bytes(10**9)
    "newobj": b"\x80\x02cnumpy\nndarray\n)\x81.",
    "ext": b"\x80\x02\x82\x01.",
    "persid": b"P0\n.",
    "set": pickle.dumps({1, 2}, protocol=4),
    "bytearray": pickle.dumps(bytearray(b"ab"), protocol=5),
    "dtype-state": (b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00u1K\x00K\x01\x87R(K\x03X\x01\x00\x00\x00|"
                    b"N(X\x01\x00\x00\x00at}NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb."),
}


@pytest.mark.parametrize("gate", ["all", "find_class"])
@pytest.mark.parametrize("name", sorted(_CRAFTED))
def test_crafted_pickles_are_refused(name, gate, monkeypatch):
    _gates(monkeypatch, gate)
    if gate == "find_class" and name in ("ext", "newobj", "persid"):
        # without the scan these still fail inside pickle (unregistered code, NEWOBJ of a
        # non-type, no persistent_load), as invalid rather than refused
        with pytest.raises(ValueError, match="crafted: not a valid pickle"):
            restricted_loads(_CRAFTED[name], "crafted")
        return
    with pytest.raises(ds.UnsafeDataError, match="refused to unpickle.*Nothing in it was run"):
        restricted_loads(_CRAFTED[name], "crafted")


def test_array_with_wrong_length_is_refused():
    good = pickle.dumps(np.arange(6, dtype=np.uint8), protocol=3)
    short = good.replace(b"C\x06\x00\x01\x02\x03\x04\x05", b"C\x05\x00\x01\x02\x03\x04")
    assert short != good
    with pytest.raises(ds.UnsafeDataError, match="holds 5 bytes where its shape and dtype need 6"):
        restricted_loads(short, "x")


def test_malformed_pickles_fail_cleanly_and_fast():
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="not a valid pickle"):
        restricted_loads(b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"abc.", "huge-claim")  # BINBYTES8
    with pytest.raises(ValueError, match="not a valid pickle"):
        restricted_loads(pickle.dumps({b"data": b"x" * 100})[:-20], "truncated")
    assert time.perf_counter() - t0 < 5
    deep = b"\x80\x02" + b"]" * 100 + b"a" * 99 + b"."
    with pytest.raises(ds.UnsafeDataError, match="nested deeper"):
        restricted_loads(deep, "deep")


def test_mutated_pickles_raise_only_valueerror():
    hyp = pytest.importorskip("hypothesis")
    st = hyp.strategies
    seeds = [_py2_pickle(_batch(np.random.default_rng(0), n=2)),
             *(pickle.dumps(_batch(np.random.default_rng(0), n=2), protocol=p) for p in (0, 2, 5))]

    @hyp.settings(max_examples=300, deadline=None, database=None)
    @hyp.given(st.sampled_from(seeds), st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)),
                                                min_size=1, max_size=4))
    def check(raw, edits):
        raw = bytearray(raw)
        for pos, val in edits:
            raw[pos % len(raw)] = val
        try:
            restricted_loads(bytes(raw), "fuzz")
        except ValueError:
            pass

    check()


def test_cifar_batch_content_is_validated(tmp_path, rng):
    f = tmp_path / "b"
    cases = {
        "a uint8 array of shape \\(N, 3072\\), got int64": {b"data": np.zeros((2, 3072), np.int64)},
        "a uint8 array of shape \\(N, 3072\\), got uint8 array of shape \\(2, 100\\)":
            {b"data": np.zeros((2, 100), np.uint8)},
        "'labels' must be a list of ints": {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1.5, 2]},
        "'labels' must have 2 entries": {b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]},
        "'fine_labels' must be non-negative": {b"fine_labels": [3, -1]},
        "must be a pickled dict": [1, 2],
    }
    for msg, obj in cases.items():
        f.write_bytes(pickle.dumps(obj))
        with pytest.raises(ValueError, match=msg):
            ds.load_cifar_batch(f)
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    (d / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}))
    with pytest.raises(ValueError, match="label 10 is not in 0..9"):
        ds.load_cifar10(tmp_path, "test")


# --- zips: bombs, traversal, limits ---------------------------------------------------------------

def _png(arr):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _tiny_png(seed=0):
    return _png(np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8))


def _zip(path, members, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression=compression, compresslevel=9) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return path


@pytest.fixture
def no_reads(monkeypatch):
    """Fail the test if any member is decompressed: the refusal must come from the directory."""
    def boom(*a, **k):
        raise AssertionError("a member was read before the archive was checked")
    monkeypatch.setattr("infogauss.datasets.images.read_member", boom)


def test_zip_bomb_one_member_is_refused_before_reading(tmp_path, no_reads):
    pytest.importorskip("PIL")
    z = _zip(tmp_path / "bomb.zip", {"cls/ok.png": _tiny_png(), "cls/bomb.png": bytes(64 * MiB)})
    assert z.stat().st_size < 1 * MiB  # small archive, 64 MiB expansion
    with pytest.raises(ds.UnsafeDataError, match=r"bomb\.zip: member 'cls/bomb\.png': compression ratio "
                                                 r"\(a zip bomb\?\) \([\d,]+\) exceeds the limit "
                                                 r"`max_ratio=200.0`.*load_image_folder"):
        ds.load_image_folder(z)


def test_zip_bomb_many_members_is_refused_before_reading(tmp_path, no_reads):
    pytest.importorskip("PIL")
    # every member under the per-member floor; together 64 MiB from about 64 KiB
    z = _zip(tmp_path / "many.zip", {f"cls/{k}.png": bytes(MiB) for k in range(64)})
    with pytest.raises(ds.UnsafeDataError, match=r"many\.zip: uncompressed size / archive size"):
        ds.load_image_folder(z)


@pytest.mark.parametrize("reader", ["folder", "cifar", "tiny"])
def test_zip_bomb_is_refused_by_every_zip_reader(tmp_path, no_reads, reader):
    name = {"folder": "cls/b.png", "cifar": "train/cat/00000.jpg", "tiny": "test/test_0.JPEG"}[reader]
    z = _zip(tmp_path / "bomb.zip", {name: bytes(64 * MiB)})
    load = {"folder": ds.load_image_folder, "cifar": ds.load_cifar10_zip, "tiny": ds.load_tinyimagenet_zip}
    with pytest.raises(ds.UnsafeDataError, match=rf"member '{name}': compression ratio"):
        load[reader](z)


def test_zip_bomb_allowed_when_the_limit_is_raised(tmp_path):
    pytest.importorskip("PIL")
    z = _zip(tmp_path / "z.zip", {"cls/ok.png": _tiny_png(), "cls/bomb.png": bytes(16 * MiB)})
    with pytest.raises(ValueError, match=r"member 'cls/bomb\.png': cannot decode image"):
        ds.load_image_folder(z, max_ratio=None, cache=False)  # gets past the limit, then fails to decode


def test_lying_directory_never_expands_past_declared_size(tmp_path):
    pytest.importorskip("PIL")
    z = _zip(tmp_path / "liar.zip", {"cls/a.png": bytes(8 * MiB), "cls/b.png": _tiny_png()})
    raw = bytearray(z.read_bytes())
    cd = raw.index(b"PK\x01\x02")  # central directory entry of cls/a.png; sizes at +20, +24
    raw[cd + 24:cd + 28] = struct.pack("<I", 100)
    z.write_bytes(bytes(raw))
    assert zipfile.ZipFile(z).getinfo("cls/a.png").file_size == 100
    with pytest.raises(ValueError, match=r"liar\.zip: member 'cls/a\.png': cannot read: BadZipFile.*CRC"):
        ds.load_image_folder(z, cache=False)


@pytest.mark.parametrize("name", ["../evil/x.png", "cls/../../x.png", "/abs/cls/x.png", "C:/cls/x.png",
                                  "c:x.png", "cls\\..\\..\\x.png", "\\\\server\\share\\x.png"])
@pytest.mark.parametrize("reader", ["folder", "cifar", "tiny"])
def test_path_traversal_member_names_are_refused(tmp_path, no_reads, name, reader):
    good = {"folder": "cls/ok.png", "cifar": "test/cat/00000.jpg", "tiny": "test/test_0.JPEG"}[reader]
    z = _zip(tmp_path / "trav.zip", {good: b"x", name: b"x"}, zipfile.ZIP_STORED)
    assert name in zipfile.ZipFile(z).namelist()  # zipfile wrote it as given
    load = {"folder": ds.load_image_folder, "cifar": lambda p: ds.load_cifar10_zip(p, "test"),
            "tiny": ds.load_tinyimagenet_zip}
    with pytest.raises(ds.UnsafeDataError, match=r"trav\.zip: member .*unsafe path"):
        load[reader](z)


def test_dots_inside_a_name_are_not_traversal(tmp_path):
    pytest.importorskip("PIL")
    z = _zip(tmp_path / "ok.zip", {"cls/a..b.png": _tiny_png(), "cls.v2/..c.png": _tiny_png(1)})
    assert ds.load_image_folder(z).classes == ("cls", "cls.v2")


def test_member_and_size_limits(tmp_path, no_reads):
    z = _zip(tmp_path / "z.zip", {f"cls/{k}.png": bytes(1000) for k in range(5)}, zipfile.ZIP_STORED)
    with pytest.raises(ds.UnsafeDataError, match=r"number of members \(5\) exceeds the limit `max_members=3`"
                                                 r".*pass a larger `max_members=` \(or `max_members=None`"):
        ds.load_image_folder(z, max_members=3)
    with pytest.raises(ds.UnsafeDataError, match=r"total uncompressed size \(5,000\).*`max_bytes=4,000`"):
        ds.load_image_folder(z, max_bytes=4000)
    with pytest.raises(ds.UnsafeDataError, match=r"member 'train/cat/0.jpg': uncompressed size.*"
                                                 r"max_member_bytes=999.*load_cifar10_zip"):
        ds.load_cifar10_zip(_zip(tmp_path / "c.zip", {"train/cat/0.jpg": bytes(1000)}), max_member_bytes=999)
    for bad in ({"max_ratio": 0.5}, {"max_members": 0}, {"max_bytes": True}, {"max_member_bytes": 1.5}):
        with pytest.raises(ValueError, match=f"`{next(iter(bad))}` must be"):
            ds.load_image_folder(z, **bad)


def test_npz_bomb_is_refused(tmp_path):
    big = tmp_path / "big.npz"
    np.savez_compressed(big, images=np.zeros((4096, 3, 64, 32), np.uint8))  # 24 MiB of zeros
    assert big.stat().st_size < MiB
    with pytest.raises(ds.UnsafeDataError, match=r"big\.npz: member 'images\.npy': compression ratio"
                                                 r".*`max_ratio=200.0`.*load_arrays"):
        ds.load_arrays(big)
    assert ds.load_arrays(big, max_ratio=None).images.shape == (4096, 3, 64, 32)
    with pytest.raises(ds.UnsafeDataError, match="max_bytes=1,000"):
        ds.load_arrays(big, max_bytes=1000, max_ratio=None)


def test_default_limits_accept_the_real_zips(shared_data):
    lim = _archive.make_limits("t", _archive.MAX_MEMBERS, _archive.MAX_BYTES, _archive.MAX_MEMBER_BYTES,
                               _archive.MAX_RATIO)
    for name in ("cifar10_jpeg.zip", "tinyimagenet_test_jpeg.zip"):
        p = shared_data / name
        if not p.is_file():
            continue
        with _archive.open_zip(p, lim) as zf:
            _archive.check_sizes(p, zf.infolist(), lim)


# --- folders: links and counts --------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_folder_symlink_out_of_the_root_is_refused(tmp_path):
    pytest.importorskip("PIL")
    root = tmp_path / "root"
    (root / "cls").mkdir(parents=True)
    (root / "cls" / "a.png").write_bytes(_tiny_png())
    (root / "cls" / "inside.png").symlink_to(root / "cls" / "a.png")  # stays inside: fine
    assert ds.load_image_folder(root, cache=False).images.shape == (2, 3, 8, 8)
    secret = tmp_path / "secret.png"
    secret.write_bytes(_tiny_png(1))
    (root / "cls" / "leak.png").symlink_to(secret)
    with pytest.raises(ds.UnsafeDataError, match=r"member 'cls/leak\.png': a symbolic link to .*secret\.png"
                                                 r".*outside the folder"):
        ds.load_image_folder(root, cache=False)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_folder_symlinked_directories_are_not_followed(tmp_path):
    pytest.importorskip("PIL")
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    (root / "cls").mkdir(parents=True)
    elsewhere.mkdir()
    (root / "cls" / "a.png").write_bytes(_tiny_png())
    (elsewhere / "b.png").write_bytes(_tiny_png(1))
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    d = ds.load_image_folder(root, cache=False)
    assert d.classes == ("cls",) and len(d.images) == 1


def test_folder_member_limit(tmp_path):
    root = tmp_path / "root"
    (root / "cls").mkdir(parents=True)
    for k in range(4):
        (root / "cls" / f"{k}.png").write_bytes(b"x")
    with pytest.raises(ds.UnsafeDataError, match=r"root: number of entries.*`max_members=3`"):
        ds.load_image_folder(root, max_members=3)


# --- decoding errors name the archive and the member ----------------------------------------------

@pytest.mark.parametrize("kind", ["zip", "folder", "cifar", "tiny"])
def test_corrupt_member_error_names_archive_and_member(tmp_path, kind):
    pytest.importorskip("PIL")
    if kind == "folder":
        where = tmp_path / "root"
        (where / "cls").mkdir(parents=True)
        (where / "cls" / "0.png").write_bytes(_tiny_png())
        (where / "cls" / "1.png").write_bytes(b"not an image")
        member, load = "cls/1.png", ds.load_image_folder
    else:
        member = {"zip": "top/cls/1.png", "cifar": "test/cat/00001.jpg", "tiny": "test/test_1.JPEG"}[kind]
        first = member.replace("1", "0")
        where = _zip(tmp_path / "arch.zip", {first: _tiny_png(), member: b"not an image"})
        load = {"zip": ds.load_image_folder, "cifar": lambda p: ds.load_cifar10_zip(p, "test"),
                "tiny": ds.load_tinyimagenet_zip}[kind]
    with pytest.raises(ValueError, match=rf"{where.name}: member '{member}': cannot decode image: "
                                         r"UnidentifiedImageError"):
        load(where)


def test_pixel_bomb_names_member_and_leaves_pillow_setting(tmp_path, monkeypatch):
    PIL = pytest.importorskip("PIL.Image")
    z = _zip(tmp_path / "px.zip", {"cls/big.png": _tiny_png()})  # 64 pixels
    monkeypatch.setattr(PIL, "MAX_IMAGE_PIXELS", 40)  # 64 > 40: Pillow would only warn
    with pytest.raises(ValueError, match=r"px\.zip: member 'cls/big\.png': cannot decode image: "
                                         r"DecompressionBombWarning.*MAX_IMAGE_PIXELS"):
        ds.load_image_folder(z, cache=False)
    assert PIL.MAX_IMAGE_PIXELS == 40
    monkeypatch.setattr(PIL, "MAX_IMAGE_PIXELS", None)  # the user's choice is respected
    assert ds.load_image_folder(z, cache=False).images.shape == (1, 3, 8, 8)


def test_only_plain_image_decoders_run(tmp_path):
    pytest.importorskip("PIL")
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n"  # would start Ghostscript
    z = _zip(tmp_path / "eps.zip", {"cls/a.png": eps})
    with pytest.raises(ValueError, match=r"member 'cls/a\.png': cannot decode image: UnidentifiedImageError"):
        ds.load_image_folder(z, cache=False)
