"""select_detector (leave-group-out, in-distribution data only) and the OOD suite that uses it."""

from __future__ import annotations

import numpy as np
import pytest

from infogauss.ood import MahalanobisOOD, select_detector


def blobs(seed=0, n=600, d=4):
    """Three tight, well separated clusters: a single Gaussian covers the gaps between them."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0, 0], [8, 0, 0, 0], [0, 8, 0, 0]], float)
    y = rng.integers(0, 3, n)
    return centres[y] + 0.5 * rng.standard_normal((n, d)), y


def test_leave_group_out_prefers_a_local_model_on_clusters():
    X, y = blobs()
    res = select_detector(X, y, random_state=0)
    assert res.groups == "labels"
    assert set(res.per_group["global"]) and len(res.per_group["global"]) == 3
    # a held-out cluster sits far from the others: every sensible detector flags it...
    assert res.scores[res.top] == max(res.scores.values()) > 0.9
    # ...the one-SE rule takes the first candidate statistically level with the top one...
    assert res.rule == "one_se" and res.best == res.within_one_se[0] and res.top in res.within_one_se
    assert res.scores[res.best] > 0.9
    # ...and the refitted choice is calibrated by default
    assert res.estimator is not None and res.estimator.get_params()["calibration"] == "split"
    assert res.estimator.predict(X[:5]).shape == (5,)


def test_the_one_standard_error_rule():
    from infogauss.ood._select import _within_one_se

    top = {0: 0.9, 1: 0.8, 2: 0.7}
    assert _within_one_se(top, top)
    assert _within_one_se({0: 0.95, 1: 0.7, 2: 0.66}, top)  # differences -0.05, 0.1, 0.04
    assert not _within_one_se({0: 0.89, 1: 0.79, 2: 0.69}, top)  # always 0.01 below: sd 0
    assert not _within_one_se({0: 0.9, 1: 0.8}, top)  # failed on a group the top one passed
    X, y = blobs(3)
    best = select_detector(X, y, rule="best", refit=False)
    assert best.best == best.top == max(best.scores, key=best.scores.get)
    one = select_detector(X, y, refit=False)
    assert one.top == best.top and one.best == one.within_one_se[0]
    assert list(one.within_one_se) == [k for k in one.scores if k in one.within_one_se]
    with pytest.raises(ValueError, match="`rule` must be one of"):
        select_detector(X, y, rule="max")


def test_without_labels_groups_are_kmeans_clusters():
    X, _ = blobs(1)
    res = select_detector(X, n_groups=3, candidates={"global": MahalanobisOOD(calibration=None)},
                          refit=False)  # fmt: skip
    assert res.groups == "k-means" and res.best == "global" and res.estimator is None
    assert len(res.per_group["global"]) == 3


def test_a_failing_candidate_is_reported_not_chosen():
    X, y = blobs(2)

    class Broken(MahalanobisOOD):
        def fit(self, X, y=None):
            raise ValueError("broken on purpose")

    res = select_detector(X, y, candidates={"broken": Broken(calibration=None),
                                            "global": MahalanobisOOD(calibration=None)})  # fmt: skip
    assert res.best == "global" and "broken on purpose" in res.errors["broken"]
    assert np.isnan(res.scores["broken"])


@pytest.mark.parametrize("kw, match", [
    ({"n_groups": 1}, r"`n_groups` must be an integer >= 2"),
    ({"holdout": 1.0}, r"`holdout` must lie in \(0, 1\)"),
    ({"y": np.zeros(3)}, r"`y` must have one label per row of X \(600\)"),
])  # fmt: skip
def test_bad_arguments_are_named(kw, match):
    X, _ = blobs()
    with pytest.raises(ValueError, match=match):
        select_detector(X, **kw)


def test_the_suite_gives_the_selection_rule_training_rows_only(monkeypatch):
    """No test or OOD row reaches the rule: a spy records every array it gets."""
    pytest.importorskip("faiss")
    pytest.importorskip("pyod")
    from infogauss.bench import _render, ood_suite
    from infogauss.datasets.embeddings import EmbeddingSet

    rng = np.random.default_rng(3)
    train = rng.standard_normal((400, 6)).astype(np.float32)
    test = rng.standard_normal((200, 6)).astype(np.float32)
    far = (rng.standard_normal((100, 6)) + 1e3).astype(np.float32)  # marked: far from train
    emb = EmbeddingSet(train=train, train_labels=np.zeros(400, np.int64), test=test,
                       test_labels=np.zeros(200, np.int64), ood={"far": far})  # fmt: skip
    seen = []
    real = ood_suite.__dict__.get("select_detector")
    import infogauss.ood as iood

    def spy(X, y=None, **kw):
        seen.append(np.asarray(X))
        return iood._select.select_detector(X, y, **kw)

    monkeypatch.setattr(iood, "select_detector", spy)
    res = ood_suite.run_set("toy", emb, splits=2, baseline_max_train=400, select_rows=400)
    assert real is None  # the suite imports the rule at call time (so the spy is what runs)
    assert len(seen) == 1 and seen[0] is train and np.abs(seen[0]).max() < 100
    assert res["selection_inputs_are_train"]
    assert res["detectors"]["selected"]["choice"] in res["detectors"]["selected"]["validation_auroc"]
    summary = ood_suite.summarise(res)
    assert summary["far"]["best_infogauss_auroc"] > 0.99 and summary["far"]["selected_auroc"] > 0.99
    md = _render.ood_suite({"sets": {"toy": {**res, "summary": summary}}})
    assert "| toy | far |" in md and "| selected |" in md


def test_suite_merge_keeps_the_other_sets_with_their_commit(tmp_path):
    """`ood_suite --merge`: the sets of the earlier file that this run does not redo stay, each
    with the environment it ran with, and the report says which sets ran at which commit."""
    import json

    from infogauss.bench import _render, ood_suite

    def one_set(auroc):
        m = {"auroc": auroc, "fpr_at_tpr": 0.1, "aupr_out": 0.9}
        c = {"0.05": {"fpr": 0.05, "n_eval": 100, "band95_one_half": [0.01, 0.1]}}
        det = {"family": "infogauss", "fit_seconds": 1.0, "score_seconds": 1.0, "model_bytes": 8}
        base = {**det, "family": "baseline"}
        res = {"n_train": 10, "dim": 2, "detectors": {"a": det, "b": base},
               "metrics": {"o": {"a": m, "b": {**m, "auroc": 0.5}}},
               "conformal": {"a": c, "b": c}}  # fmt: skip
        return {**res, "summary": ood_suite.summarise(res)}

    old = {"benchmark": "ood_suite", "config": {"sets": ["x=X"], "splits": 2},
           "environment": {"git": {"sha": "a" * 40, "dirty": False}},
           "sets": {"x": one_set(0.9), "y": one_set(0.8)}}  # fmt: skip
    path = tmp_path / "ood_suite.json"
    path.write_text(json.dumps(old))
    kept = ood_suite._kept_sets(path)
    assert list(kept) == ["x", "y"]
    assert kept["x"]["run"]["environment"]["git"]["sha"] == "a" * 40
    assert kept["x"]["run"]["config"] == {"splits": 2}
    kept["y"] = {**one_set(0.7), "run": {"environment": {"git": {"sha": "b" * 40}}}}
    md = _render.ood_suite({"sets": kept, "environment": {"git": {"sha": "b" * 40}}})
    assert "x at aaaaaaa (seed ?, 2 splits); y at bbbbbbb" in md
    (tmp_path / "other.json").write_text(json.dumps({"benchmark": "calibration"}))
    with pytest.raises(SystemExit, match="not an ood_suite results file"):
        ood_suite._kept_sets(tmp_path / "other.json")
    assert ood_suite._kept_sets(tmp_path / "missing.json") == {}
