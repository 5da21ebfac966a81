"""``infogauss bench sets``: the built-in exact-Gaussian set, in the embedding-set layout."""

from __future__ import annotations

import json

from infogauss.bench import embedding_sets
from infogauss.datasets import read_embedding_set


def test_gaussian_set(tmp_path):
    assert embedding_sets.main(["--sets", "gaussian", "--out", str(tmp_path)]) == 0
    s = read_embedding_set(tmp_path / "gaussian")  # prefix from meta.json
    assert s.prefix == "gaussian" and s.train.shape == (3000, 64) and s.test.shape == (3000, 64)
    assert sorted(s.ood) == ["scaled", "shifted"]
    meta = json.loads((tmp_path / "gaussian" / "meta.json").read_text())
    assert meta["seed"] == 0 and {"sha", "dirty"} <= set(meta["environment"]["git"])
