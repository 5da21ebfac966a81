"""Downloads against an HTTP server on 127.0.0.1 serving small generated files."""

import hashlib
import http.server
import io
import pickle
import tarfile
import threading
from functools import partial

import numpy as np
import pytest

from infogauss import datasets as ds


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _cifar_tar(path):
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
            obj = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [1, 2]}
            raw = pickle.dumps(obj)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_cifar10(server, tmp_path):
    root, url = server
    md5 = _cifar_tar(root / "cifar-10-python.tar.gz")
    out = ds.download_cifar10(tmp_path / "data", url=f"{url}/cifar-10-python.tar.gz", md5=md5)
    assert out.name == "cifar-10-batches-py"
    d = ds.load_cifar10(tmp_path / "data", "train")
    assert d.images.shape == (10, 3, 32, 32)
    assert not (tmp_path / "data" / "cifar-10-python.tar.gz").exists()
    # present: no second download (the server file may even vanish)
    (root / "cifar-10-python.tar.gz").unlink()
    assert ds.download_cifar10(tmp_path / "data", url=f"{url}/cifar-10-python.tar.gz", md5=md5) == out


def test_download_svhn_sha256(server, tmp_path):
    from scipy.io import savemat

    root, url = server
    savemat(root / "test_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[10], [3]])})
    sha = hashlib.sha256((root / "test_32x32.mat").read_bytes()).hexdigest()
    p = ds.download_svhn(tmp_path, "test", url=f"{url}/test_32x32.mat", sha256=sha)
    np.testing.assert_array_equal(ds.load_svhn(p.parent, "test").labels, [0, 3])


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    root, url = server
    (root / "f.bin").write_bytes(b"hello")
    with pytest.raises(ValueError, match="checksum mismatch.*expected md5 0+, got"):
        ds.download_url(f"{url}/f.bin", tmp_path / "f.bin", md5="0" * 32)
    assert list(tmp_path.glob("*f.bin*")) == []
    good = hashlib.md5(b"hello").hexdigest()
    assert ds.download_url(f"{url}/f.bin", tmp_path / "f.bin", md5=good).read_bytes() == b"hello"
    with pytest.raises(ValueError, match="`md5` or `sha256` must be given"):
        ds.download_url(f"{url}/f.bin", tmp_path / "g.bin")
    with pytest.raises(OSError):
        ds.download_url(f"{url}/missing.bin", tmp_path / "m.bin", md5=good)
