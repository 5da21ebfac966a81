"""The same-item null (``null="neighbour"``, the default) against brute-force references."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("faiss")

from infogauss import CalibratedRetriever, GaussianModel  # noqa: E402
from infogauss.calibration import binomial_interval  # noqa: E402
from infogauss.persistence import ModelFileError  # noqa: E402
from infogauss.retrieval.neighbour import (  # noqa: E402
    TailRank,
    distinct_candidates,
    held_out_cosines,
    neighbour_ratio,
)


def gaussian(seed, n, d=12):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
    return lambda m: (rng.standard_normal((m, d)) @ A.T).astype(np.float32), rng


# ----------------------------------------------------------------------------- the pieces
def test_neighbour_ratio_matches_a_loop():
    rng = np.random.default_rng(0)
    s = rng.uniform(-1, 1, (20, 9))
    s[3, 5:] = np.nan
    K = 4
    got = neighbour_ratio(s, K)
    for i in range(s.shape[0]):
        d = np.where(np.isnan(s[i]), 2.0, 1 - s[i])
        for c in range(s.shape[1]):
            if np.isnan(s[i, c]):
                assert np.isnan(got[i, c])
                continue
            others = np.sort(np.delete(d, c))[:K]
            assert got[i, c] == pytest.approx(np.log(others.mean() / d[c]), rel=1e-12)


def test_distinct_candidates_matches_a_loop():
    rng = np.random.default_rng(1)
    groups = np.arange(60)
    for g in range(0, 60, 3):  # groups of 3 copies, represented by their first row
        groups[g : g + 3] = g
    ids = np.array([rng.permutation(60)[:25] for _ in range(30)])
    ids[0, 20:] = -1
    exclude = groups[rng.integers(0, 60, 30)]
    for ex in (None, exclude):
        kept, pos, col_rank = distinct_candidates(ids, groups, 6, exclude=ex)
        for r in range(ids.shape[0]):
            seen, want = [], []
            for c, i in enumerate(ids[r]):
                g = groups[i] if i >= 0 else -1
                if i < 0 or g in seen or (ex is not None and g == ex[r]):
                    continue
                seen.append(g)
                want.append((i, c))
            want = want[:6]
            assert [tuple(x) for x in zip(kept[r], pos[r]) if x[0] >= 0] == want
            kept_groups = [groups[i] for i, _ in want]
            for c, i in enumerate(ids[r]):
                g = groups[i] if i >= 0 else -1
                bad = i < 0 or (ex is not None and g == ex[r]) or g not in kept_groups
                assert col_rank[r, c] == (-1 if bad else kept_groups.index(g))


def test_tail_rank_is_the_conformal_rank_then_a_decaying_tail():
    rng = np.random.default_rng(2)
    sample = np.sort(rng.exponential(size=400))
    law = TailRank(sample)
    t = rng.uniform(0, sample[-1], 100)
    want = (1 + (sample[None, :] >= t[:, None]).sum(1)) / 401
    np.testing.assert_allclose(law.sf(t), want, rtol=0, atol=0)
    beyond = sample[-1] + np.array([1e-9, 1.0, 5.0, 50.0, np.inf])
    p = law.sf(beyond)
    assert p[0] == pytest.approx(1 / 401) and np.all(np.diff(p) < 0) and p[-1] == 0.0
    # an exponential sample: the tail scale is its mean (1) within sampling error
    assert 0.6 < law.scale < 1.6


@pytest.mark.parametrize("n_components", [None, 6])
def test_held_out_cosines_equal_a_refit_without_the_item(n_components):
    """Unshrunk covariance, full rank: the Sherman-Morrison held-out cosines are exact."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 8)) @ (rng.standard_normal((8, 8)) / 3 + np.eye(8))
    kw = {"shrinkage": "empirical", "whiten": "zca" if n_components is None else "pca",
          "n_components": n_components}  # fmt: skip
    model = GaussianModel(**kw).fit(X)
    Z = model.transform(X)
    norms = np.linalg.norm(Z, axis=1)
    U = Z / norms[:, None]
    for i in (0, 7, 31):
        others = np.delete(np.arange(60), i)[:10]
        got = held_out_cosines((U[i] @ U[others].T)[None], norms[[i]], norms[others][None], 60,
                               0.0)[0]  # fmt: skip
        loo = GaussianModel(**kw).fit(np.delete(X, i, axis=0))
        zi, zo = loo.transform(X[[i]])[0], loo.transform(X[others])
        want = zo @ zi / (np.linalg.norm(zo, axis=1) * np.linalg.norm(zi))
        if n_components is None:
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
        else:  # first order: the retained subspace moves too, but the correction helps
            before = np.abs(U[i] @ U[others].T - want).max()
            assert np.abs(got - want).max() < before


# ----------------------------------------------------------------------------- guarantees
def test_false_match_rate_holds_on_gaussian_data():
    """Queries exchangeable with the database and no copy in it: declared matches at about
    alpha (averaged over databases: the guarantee is marginal)."""
    counts = {0.01: 0, 0.05: 0}
    total = 0
    for seed in range(6):
        draw, _ = gaussian(seed, 0)
        db, q = draw(1200), draw(1500)
        r = CalibratedRetriever(seed=seed).fit(db)
        p = r.search(q, k=3).corrected_pvalues
        assert np.all(p[:, 1:] >= 0) and np.all(p <= 1)
        for a in counts:
            counts[a] += int(np.count_nonzero((p <= a).any(axis=1)))
        total += q.shape[0]
    for a, c in counts.items():
        lo, hi = binomial_interval(c, total, level=0.999)
        # dependence through the shared databases widens the spread: allow 1.5x the band
        assert 0.5 * a <= c / total <= 1.5 * a, (a, c / total, lo, hi)


@pytest.mark.parametrize("index", ["flat", "ivf", "hnsw", "IVF16,SQ8"])
@pytest.mark.parametrize("whiten", ["zca", None])
def test_identical_vector_is_a_match_at_every_alpha(index, whiten):
    draw, _ = gaussian(4, 0)
    X = draw(1500)
    n = X.shape[0]
    r = CalibratedRetriever(index=index, whiten=whiten, alpha=1.0 / n).fit(X)
    res = r.search(X[:200], k=3)
    found = res.indices[:, 0] == np.arange(200)
    assert found.mean() >= 0.97
    assert np.all(res.corrected_pvalues[found, 0] <= 1.0 / n)
    assert res.match[found, 0].all()


def test_noisy_copies_are_found_and_other_items_are_not():
    draw, rng = gaussian(5, 0)
    db = draw(2000)
    noise = 0.05 * db.std() * rng.standard_normal(db[:300].shape).astype(np.float32)
    r = CalibratedRetriever(alpha=0.01).fit(db)
    hit = r.search(db[:300] + noise, k=1)
    assert np.mean(hit.match[:, 0] & (hit.indices[:, 0] == np.arange(300))) >= 0.95
    miss = r.search(draw(2000), k=1)
    assert miss.match[:, 0].mean() <= 0.02


@pytest.mark.parametrize("share", [0.01, 0.5])
def test_duplicates_in_the_database_keep_rate_and_power(share):
    draw, rng = gaussian(6, 0)
    base = draw(1500)
    dup = rng.choice(1500, int(share * 1500), replace=False)
    db = np.vstack([base, base[dup]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "the database holds ... duplicates"
        r = CalibratedRetriever().fit(db)
    distinct = CalibratedRetriever().fit(base)
    q = draw(2000)
    fm = r.search(q, k=2).match.any(axis=1).mean()
    fm0 = distinct.search(q, k=2).match.any(axis=1).mean()
    assert abs(fm - fm0) <= 0.01 and fm <= 0.025
    picked = dup[:200]
    copies = base[picked] + 0.05 * base.std() * rng.standard_normal((picked.size, base.shape[1]))
    res = r.search(copies.astype(np.float32), k=2)
    assert np.mean(res.match[:, 0] & (r._groups[res.indices[:, 0]] == picked)) >= 0.95
    # copies of one item share its p-value
    both = np.flatnonzero(r._groups[res.indices[:, 0]] == r._groups[res.indices[:, 1]])
    np.testing.assert_array_equal(res.pvalues[both, 0], res.pvalues[both, 1])


# ----------------------------------------------------------------------------- state
def test_batch_equals_rows_and_save_load_is_exact(tmp_path):
    draw, _ = gaussian(7, 0)
    db, q = draw(800), draw(40)
    r = CalibratedRetriever(index="hnsw").fit(db)
    batch = r.search(q, k=6)
    rows = [r.search(q[i : i + 1], k=6) for i in range(q.shape[0])]
    for f in ("indices", "pvalues", "match"):
        np.testing.assert_array_equal(getattr(batch, f), np.concatenate([getattr(x, f) for x in rows]))
    loaded = CalibratedRetriever.load(r.save(tmp_path / "r.npz"))
    assert loaded.null == "neighbour"
    again = loaded.search(q, k=6)
    for f in ("indices", "whitened_similarities", "pvalues", "corrected_pvalues", "match"):
        np.testing.assert_array_equal(getattr(again, f), getattr(batch, f))


def test_a_crafted_null_is_refused(tmp_path):
    import json
    import zipfile

    from infogauss import persistence

    draw, _ = gaussian(8, 0)
    path = CalibratedRetriever().fit(draw(300)).save(tmp_path / "r.npz")
    meta, arrays = persistence.read_state(path, "CalibratedRetriever")
    arrays = dict(arrays)
    arrays["null_whitened"] = arrays["null_whitened"][::-1].copy()  # no longer sorted
    bad = persistence.save_state(tmp_path / "bad.npz", "CalibratedRetriever", meta["params"],
                                 meta["attrs"], arrays)  # fmt: skip
    with pytest.raises(ModelFileError, match="neighbour null's samples are not sorted"):
        CalibratedRetriever.load(bad)
    assert zipfile.is_zipfile(path) and json.loads  # the good file stays loadable
    CalibratedRetriever.load(path)


def test_add_keeps_the_null_and_finds_added_copies():
    draw, _ = gaussian(9, 0)
    db, extra = draw(600), draw(100)
    r = CalibratedRetriever().fit(db)
    null = r.null_
    r.add(extra)
    assert r.null_ is null and r.n_database_ == 700
    res = r.search(extra[:20], k=1)
    np.testing.assert_array_equal(res.indices[:, 0], 600 + np.arange(20))
    assert res.match[:, 0].all()
