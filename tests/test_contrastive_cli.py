"""`infogauss train` / `infogauss embed` through the dispatcher, flags and TOML."""

import json
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from infogauss.cli import main  # noqa: E402


@pytest.fixture(autouse=True)
def _threads(monkeypatch, tmp_path):
    monkeypatch.setenv("INFOGAUSS_CACHE", str(tmp_path / "cache"))
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_train_then_embed_vectors(tmp_path, capsys):
    x = np.random.default_rng(0).standard_normal((64, 10)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    toml = tmp_path / "run.toml"
    toml.write_text('encoder = "mlp"\nepochs = 2\nbatch-size = 16\nprecision = "fp32"\n'
                    f'out = "{tmp_path / "run"}"\nhidden_dim = 16\nout_dim = 6\n')
    assert main(["train", "--config", str(toml), "--data", str(tmp_path / "x.npy"), "--no-progress",
                 "--embed", "--lr", "0.01"]) == 0
    run = tmp_path / "run"
    # one embedding-set convention: Z.npy + Z.labels.npy (issue 14; was labels.npy)
    for f in ("last.pt", "encoder.pt", "config.json", "log.json", "embeddings.npy",
              "embeddings.labels.npy"):
        assert (run / f).exists(), f
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train_config"]["lr"] == 0.01 and cfg["train_config"]["epochs"] == 2  # flag > TOML
    assert len(json.loads((run / "log.json").read_text())["history"]) == 2
    z_train = np.load(run / "embeddings.npy")
    assert z_train.shape == (64, 6) and z_train.dtype == np.float32
    out = tmp_path / "emb" / "z.npy"
    assert main(["embed", "--checkpoint", str(run), "--data", str(tmp_path / "x.npy"),
                 "--out", str(out), "--no-progress"]) == 0
    np.testing.assert_allclose(np.load(out), z_train, rtol=1e-5, atol=1e-6)
    # a state_dict next to its config.json works too
    assert main(["embed", "--checkpoint", str(run / "encoder.pt"), "--data", str(tmp_path / "x.npy"),
                 "--out", str(out), "--layer", "head", "--no-progress"]) == 0
    assert np.load(out).shape == (64, 128)


def test_train_supervised_images(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", images=rng.integers(0, 256, (32, 3, 16, 16), dtype=np.uint8),
             labels=rng.integers(0, 3, 32))
    assert main(["train", "--data", str(tmp_path / "d.npz"), "--supervised", "--epochs", "1",
                 "--batch-size", "16", "--out", str(tmp_path / "sup"), "--no-progress",
                 "--widths", "8", "16", "24", "--crop-size", "12"]) == 0
    cfg = json.loads((tmp_path / "sup" / "config.json").read_text())
    assert cfg["encoder"]["widths"] == [8, 16, 24] and cfg["train_config"]["crop_size"] == 12
    z = tmp_path / "z.npy"
    assert main(["embed", "--checkpoint", str(tmp_path / "sup" / "last.pt"),
                 "--data", str(tmp_path / "d.npz"), "--out", str(z), "--no-progress"]) == 0
    assert np.load(z).shape == (32, 512)


def test_train_progressive_crop_sizes(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.integers(0, 256, (32, 3, 16, 16), dtype=np.uint8))
    assert main(["train", "--data", str(tmp_path / "x.npy"), "--epochs", "2", "--batch-size", "16",
                 "--out", str(tmp_path / "run"), "--no-progress", "--widths", "8", "16", "24",
                 "--crop-size", "8", "12"]) == 0
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["train_config"]["crop_size"] == [8, 12]
    log = json.loads((tmp_path / "run" / "log.json").read_text())
    assert [h["crop_size"] for h in log["history"]] == [8, 12]


def _fails(argv, capsys, match: str) -> None:
    """Bad input: exit 2, one line on stderr naming the problem, no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert re.search(match, err), err
    assert "Traceback" not in err and err.count("\n") == 1


def test_cli_errors(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("colour = 3\n")
    _fails(["train", "--config", str(bad), "--data", "x"], capsys, "unknown keys")
    _fails(["train", "--data", str(tmp_path / "missing.npy")], capsys, "`--data` must be an existing")
    _fails(["embed", "--checkpoint", str(tmp_path / "nothing"), "--data", "x"], capsys,
           "`--checkpoint` must be a run directory")


def test_no_command_overwrites_its_input(tmp_path, capsys):
    x = np.random.default_rng(0).standard_normal((32, 6)).astype(np.float32)
    data = tmp_path / "embeddings.npy"
    np.save(data, x)
    before = data.read_bytes()
    # train --out DIR --embed would write DIR/embeddings.npy, which is the input
    _fails(["train", "--data", str(data), "--out", str(tmp_path), "--embed", "--encoder", "mlp",
            "--epochs", "1", "--no-progress"], capsys, "`--out` must not be an input file")
    assert not (tmp_path / "last.pt").exists()
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--encoder", "mlp",
                 "--epochs", "1", "--batch-size", "16", "--hidden-dim", "8", "--out-dim", "4",
                 "--no-progress", "--precision", "fp32"]) == 0
    capsys.readouterr()
    for output in (data, run / "config.json", run / "last.pt"):  # the data, the checkpoint
        _fails(["embed", "--checkpoint", str(run), "--data", str(data), "--out", str(output),
                "--no-progress"], capsys, "must not be an input")
    # --out z.npy also writes z.labels.npy: that may not be the input either
    labels_named = tmp_path / "z.labels.npy"
    np.save(labels_named, x)
    protected = labels_named.read_bytes()
    _fails(["embed", "--checkpoint", str(run), "--data", str(labels_named),
            "--out", str(tmp_path / "z.npy"), "--no-progress"], capsys, "must not be an input")
    assert labels_named.read_bytes() == protected
    assert data.read_bytes() == before


def test_embed_output_is_a_deprecated_alias_of_out(tmp_path, capsys):
    """Issue 14: one flag name, `--out`; `--output` still works, with a one-line warning."""
    x = np.random.default_rng(0).standard_normal((32, 6)).astype(np.float32)
    data = tmp_path / "x.npy"
    np.save(data, x)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--encoder", "mlp",
                 "--epochs", "1", "--batch-size", "16", "--hidden-dim", "8", "--out-dim", "4",
                 "--no-progress", "--precision", "fp32"]) == 0
    capsys.readouterr()
    z = tmp_path / "z.npy"
    assert main(["embed", "--checkpoint", str(run), "--data", str(data), "--output", str(z),
                 "--no-progress", "--json"]) == 0
    cap = capsys.readouterr()
    assert cap.err == "infogauss embed: warning: `--output` is deprecated; use `--out`\n"
    payload = json.loads(cap.out)
    assert payload["outputs"] == {"embeddings": str(z), "labels": str(tmp_path / "z.labels.npy")}
    assert payload["shape"] == [32, 4]
    np.testing.assert_array_equal(np.load(tmp_path / "z.labels.npy"), np.full(32, -1))
    assert main(["embed", "--checkpoint", str(run), "--data", str(data), "--out", str(z),
                 "--output", str(tmp_path / "other.npy")]) == 2
    warning, error = capsys.readouterr().err.splitlines()  # the warning, then the one error
    assert "deprecated" in warning and "`--out` and its deprecated alias `--output` disagree" in error
    # the old TOML key too
    toml = tmp_path / "embed.toml"
    toml.write_text(f'output = "{tmp_path / "t.npy"}"\nno-progress = true\n')
    assert main(["embed", "--config", str(toml), "--checkpoint", str(run), "--data", str(data)]) == 0
    assert "`output (--config key)` is deprecated" in capsys.readouterr().err
    assert (tmp_path / "t.npy").exists() and (tmp_path / "t.labels.npy").exists()


def test_embed_into_an_embedding_set(tmp_path, capsys):
    """`embed --set DIR --part train|test|ood:NAME` builds the directory the benchmarks read."""
    from infogauss.datasets import read_embedding_set

    rng = np.random.default_rng(0)
    data = tmp_path / "x.npy"  # vectors: unlabelled (-1)
    np.save(data, rng.standard_normal((40, 6)).astype(np.float32))
    ood = tmp_path / "o.npy"
    np.save(ood, rng.standard_normal((12, 6)).astype(np.float32) + 3)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--encoder", "mlp",
                 "--epochs", "1", "--batch-size", "16", "--hidden-dim", "8", "--out-dim", "4",
                 "--no-progress", "--precision", "fp32"]) == 0
    emb = tmp_path / "set"
    base = ["embed", "--checkpoint", str(run), "--no-progress", "--set", str(emb)]
    assert main([*base, "--data", str(data), "--part", "train"]) == 0
    assert main([*base, "--data", str(data), "--split", "test"]) == 0  # --part from --split
    capsys.readouterr()
    assert main([*base, "--data", str(ood), "--part", "ood:shifted", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["part"] == "ood:shifted" and payload["shape"] == [12, 4]
    assert payload["outputs"] == {"embeddings": str(emb / "ood_shifted.npy"),
                                  "meta": str(emb / "meta.json")}
    s = read_embedding_set(emb)
    assert s.train.shape == (40, 4) and s.test.shape == (40, 4) and sorted(s.ood) == ["shifted"]
    np.testing.assert_array_equal(s.train_labels, np.full(40, -1))
    assert s.meta["parts"]["train"]["checkpoint"] == str(run) and s.meta["prefix"] == "cifar10"
    # the same embeddings as --out Z.npy
    assert main(["embed", "--checkpoint", str(run), "--data", str(data), "--no-progress",
                 "--out", str(tmp_path / "z.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), s.test)
    capsys.readouterr()
    # usage errors: one line, exit 2
    for argv, message in (
        ([*base, "--data", str(data), "--out", str(tmp_path / "z2.npy")], "`--out` and `--set`"),
        ([*base, "--data", str(data), "--part", "valid"], "`--part`"),
        ([*base, "--data", str(data), "--prefix", "digits"], "set's own 'cifar10'"),
        (["embed", "--checkpoint", str(run), "--data", str(data), "--part", "train"],
         "`--part` must come with `--set DIR`"),
        ([*base, "--data", str(emb / "ood_shifted.npy"), "--part", "ood:shifted"],
         "must not be an input file"),
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
