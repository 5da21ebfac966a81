"""GaussianModel inside scikit-learn: a Pipeline, GridSearchCV, and a whitening step.

1. As a **density model**: ``PCA -> GaussianModel`` on scikit-learn's handwritten digits
   0-5, with few samples per dimension (200 training images, 48 components).
   ``GaussianModel.score`` is the mean held-out log-density, so ``GridSearchCV`` with no
   ``scoring`` argument picks the covariance shrinkage with the best cross-validated
   likelihood. The selected pipeline's ``score_samples`` (higher = more normal) then
   separates unseen digit classes 6-9 from held-out 0-5.
2. As a **transformer**: ``GaussianModel(whiten="pca", n_components=k)`` whitens features
   before a classifier; ``GridSearchCV`` picks ``k`` by accuracy.

Only the shrinkage is searched in part 1: log-densities in different dimensions (e.g. for
different PCA sizes) are not comparable, so the PCA size stays fixed there.

Run::

    python examples/sklearn_pipeline.py

Writes no files.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline

from infogauss import GaussianModel
from infogauss.metrics import auroc

SEED = 0


def density_model(X: np.ndarray, y: np.ndarray) -> None:
    inside = y <= 5
    X_tr, X_te = train_test_split(X[inside], train_size=200, random_state=SEED)
    X_new_classes = X[~inside]

    pipe = make_pipeline(PCA(n_components=48, svd_solver="full"), GaussianModel())
    grid = {"gaussianmodel__shrinkage": ["empirical", "ledoit_wolf", "oas", 0.01, 0.1, 0.3]}
    search = GridSearchCV(pipe, grid, cv=5).fit(X_tr)  # scoring: GaussianModel.score
    print(f"1. density model: PCA(48) -> GaussianModel, {X_tr.shape[0]} training images of digits 0-5")
    print("   shrinkage     mean held-out log-density (5-fold)")
    for params, mean, std in zip(
        search.cv_results_["params"],
        search.cv_results_["mean_test_score"],
        search.cv_results_["std_test_score"],
    ):
        print(f"   {params['gaussianmodel__shrinkage']!s:12}  {mean:8.2f} +- {std:.2f}")
    best = search.best_estimator_
    fitted = best[-1]
    print(
        f"   selected shrinkage={search.best_params_['gaussianmodel__shrinkage']!s} "
        f"(intensity used: {fitted.shrinkage_:.4f}); test log-density {best.score(X_te):.2f}"
    )
    s_in, s_out = best.score_samples(X_te), best.score_samples(X_new_classes)
    print(f"   AUROC, held-out 0-5 vs unseen classes 6-9 by log-density: {auroc(s_in, s_out):.3f}")


def whitening_step(X: np.ndarray, y: np.ndarray) -> None:
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=SEED, stratify=y)
    pipe = make_pipeline(GaussianModel(whiten="pca"), LogisticRegression(C=0.1, max_iter=2000))
    grid = {"gaussianmodel__n_components": [8, 16, 32]}
    search = GridSearchCV(pipe, grid, cv=3).fit(X_tr, y_tr)  # scoring: accuracy
    print("2. whitening step: GaussianModel(whiten='pca') -> LogisticRegression on digits 0-9")
    for params, mean in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
        print(f"   n_components={params['gaussianmodel__n_components']:2d}  CV accuracy {mean:.3f}")
    k = search.best_params_["gaussianmodel__n_components"]
    print(f"   selected n_components={k}; test accuracy {search.score(X_te, y_te):.3f}")


def main() -> int:
    X, y = load_digits(return_X_y=True)
    density_model(X, y)
    whitening_step(X, y)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
