"""infogauss's GaussianLikelihoodDetector next to PyOD's own detectors, same data, same protocol.

:class:`infogauss.GaussianLikelihoodDetector` is a PyOD ``BaseDetector``: ``fit`` on
(possibly contaminated) training data sets ``decision_scores_`` (higher = more abnormal),
``threshold_`` and ``labels_`` (0/1), and ``decision_function`` / ``predict`` /
``predict_proba`` score new rows. Here it runs beside PyOD's ``KNN``, ``LOF`` and ``IForest``
on two data sets, each with 5% anomalies in the training data:

* **correlated** — 16-d Gaussian "embeddings" with strongly correlated coordinates; the
  anomalies have the same per-coordinate spread but no correlation (each coordinate on its
  own looks normal);
* **digits** — scikit-learn's handwritten digits (PCA to 16-d): 0-5 are inliers, unseen
  classes 6-9 are the anomalies.

Prints the test AUROC (:func:`infogauss.metrics.auroc`) of each detector, the fraction of
test anomalies above ``threshold_``, and whether ``decision_scores_`` (set by ``fit``) equals
``decision_function(X_train)`` (the same rows scored again).
A single Gaussian suits unimodal embeddings; on multimodal data (several classes) distance
based detectors can win, and :class:`infogauss.MahalanobisOOD` with ``method="class"`` or
``"cluster"`` is the Gaussian tool for that case.

Run::

    python examples/pyod_detector.py

Needs the ``pyod`` extra (``pip install 'infogauss[pyod]'``). Writes no files.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from infogauss.metrics import auroc

try:  # the pyod extra
    from pyod.models.iforest import IForest
    from pyod.models.knn import KNN
    from pyod.models.lof import LOF

    from infogauss import GaussianLikelihoodDetector
except ImportError as exc:
    raise SystemExit(f"{exc}\nthis example needs PyOD: pip install 'infogauss[pyod]'") from None

SEED = 0
CONTAMINATION = 0.05


def split(rng, inliers: np.ndarray, anomalies: np.ndarray, n_train: int):
    """Contaminated training set and labelled test set (1 = anomaly)."""
    inliers, anomalies = rng.permutation(inliers), rng.permutation(anomalies)
    n_bad = int(round(CONTAMINATION * n_train))
    X_train = rng.permutation(np.vstack([inliers[: n_train - n_bad], anomalies[:n_bad]]))
    X_test = np.vstack([inliers[n_train - n_bad :], anomalies[n_bad:]])
    y_test = np.r_[np.zeros(len(inliers) - n_train + n_bad), np.ones(len(anomalies) - n_bad)]
    return X_train, X_test, y_test.astype(bool)


def correlated(rng):
    d = 16
    A = rng.standard_normal((d, d)) @ np.diag(np.geomspace(3.0, 0.1, d))
    inliers = rng.standard_normal((3000, d)) @ A.T
    # same marginal standard deviations, independent coordinates
    anomalies = rng.standard_normal((300, d)) * inliers.std(axis=0)
    return split(rng, inliers, anomalies, n_train=2000)


def digits(rng):
    X, y = load_digits(return_X_y=True)
    Z = PCA(n_components=16, svd_solver="full").fit_transform(X)  # unsupervised, all images
    return split(rng, Z[y <= 5], Z[y > 5], n_train=700)


def detectors():
    return {
        "infogauss GaussianLikelihood": GaussianLikelihoodDetector(contamination=CONTAMINATION),
        "pyod KNN": KNN(contamination=CONTAMINATION),
        "pyod LOF": LOF(contamination=CONTAMINATION),
        "pyod IForest": IForest(contamination=CONTAMINATION, random_state=SEED),
    }


def main() -> int:
    rng = np.random.default_rng(SEED)
    for name, make in (("correlated", correlated), ("digits", digits)):
        X_train, X_test, is_anomaly = make(rng)
        print(
            f"{name}: train {X_train.shape[0]} x {X_train.shape[1]} ({CONTAMINATION:.0%} anomalies), "
            f"test {is_anomaly.size} ({is_anomaly.sum()} anomalies)"
        )
        print("  detector                       AUROC  anomalies caught  train == rescored  seconds")
        for det_name, det in detectors().items():
            t = time.perf_counter()
            det.fit(X_train)
            scores = det.decision_function(X_test)  # PyOD: higher = more abnormal
            seconds = time.perf_counter() - t
            # infogauss.metrics takes "higher = more normal": negate PyOD's anomaly scores
            auc = auroc(-scores[~is_anomaly], -scores[is_anomaly])
            caught = np.mean(det.predict(X_test)[is_anomaly] == 1)
            pure = np.array_equal(det.decision_scores_, det.decision_function(X_train))
            print(f"  {det_name:29}  {auc:.3f}  {caught:16.1%}  {pure!s:17}  {seconds:7.2f}")
    print(
        "train == rescored: decision_scores_ (set by fit) equal decision_function(X_train) "
        "(the same rows scored again); anomalies caught: predict(X_test) == 1 at threshold_"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
