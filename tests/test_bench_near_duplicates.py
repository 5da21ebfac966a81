"""The near-duplicate benchmark's protocol on a synthetic pool (no data, no encoder)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("faiss")

from infogauss.bench import _render  # noqa: E402
from infogauss.bench import near_duplicates as nd  # noqa: E402


def synthetic_pool(seed=0, n=1600, d=10):
    rng = np.random.default_rng(seed)
    items = rng.standard_normal((n, d)).astype(np.float32)
    picked = np.sort(rng.choice(n, 300, replace=False))
    copies = {"noise": items[picked] + 0.05 * rng.standard_normal((300, d)).astype(np.float32),
              "far": rng.standard_normal((300, d)).astype(np.float32)}  # not copies at all
    return {"items": items, "picked": picked, "copies": copies, "meta": {}}


def test_run_set_counts_rates_and_recall():
    res = nd.run_set("gauss", synthetic_pool(), cuts=3, seed=0)
    m = res["methods"]
    assert set(m) == set(nd.METHODS)
    n_eval = res["n_eval_per_cut"] * 3
    for rows in m.values():
        for row in rows.values():
            assert row["n_eval"] == n_eval
            assert 0 <= row["false_match_rate"] <= 1
            lo, hi = row["interval95"]
            assert lo <= row["false_match_rate"] <= hi
    nb = m["neighbour"]
    assert nb["0.05"]["false_match_rate"] < 0.1  # exchangeable queries: about alpha
    assert nb["0.01"]["recall_by_transform"]["noise"] > 0.95
    assert nb["0.05"]["recall_by_transform"]["far"] == 0.0  # independent points are no copies
    # the same-rate oracle declares as many false matches as the neighbour null
    for a in ("0.01", "0.05"):
        assert m["cosine_same_rate"][a]["false_match_rate"] == pytest.approx(
            nb[a]["false_match_rate"], abs=2 / n_eval)
    assert m["analytic"]["0.01"]["false_match_rate"] <= 0.05  # Gaussian data: the pair null holds
    v = nd.verdict(res)
    assert set(v) >= {"rate_0.01_within", "alpha_0.05_inside", "recall_at_least_tuned"}
    md = _render.near_duplicates({"config": {"cuts": 3, "alphas": list(nd.ALPHAS)},
                                  "sets": {"gauss": res}})  # fmt: skip
    assert "| gauss | neighbour |" in md and "| gauss | noise |" in md


def test_threshold_is_the_conformal_order_statistic():
    s = np.arange(1, 100, dtype=float)  # 99 values
    assert nd._threshold(s, 0.1) == 90.0  # ceil(0.9 * 100) = 90th smallest
    assert nd._threshold(s, 0.001) == np.inf  # needs at least 999 calibration queries


def test_cifar10_needs_a_checkpoint(capsys):
    with pytest.raises(SystemExit):
        nd.main(["--sets", "cifar10"])
    assert "needs --checkpoint" in capsys.readouterr().err


def test_text_transforms_change_the_text_and_keep_it_valid():
    rng = np.random.default_rng(0)
    t = "a library for parsing and writing files in many formats"
    assert len(nd._drop_words(t, 3, rng).split()) == len(t.split()) - 3
    swapped = nd._swap_words(t, rng)
    assert sorted(swapped.split()) == sorted(t.split()) and swapped != t
    assert nd._drop_words("two words", 1, rng) == "two words"  # too short: left as is


def test_image_copies_are_uint8_images_of_the_same_shape():
    pytest.importorskip("torch")
    pytest.importorskip("PIL")
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    out = nd._image_copies(images, rng)
    assert set(out) == {"flip", "crop_28", "jitter_0.2", "jpeg_q30", "all_four"}
    for v in out.values():
        assert v.shape == images.shape and v.dtype == np.uint8
    np.testing.assert_array_equal(out["flip"], images[:, :, :, ::-1])
