"""Cross-fitted linear reward models: no pair is scored by a model trained on it.

The pairs are split into K folds; for each fold a Bradley-Terry model
r(x, y) = w . f(x, y) is fitted on the other K-1 folds (logistic regression on
f_chosen - f_rejected, made symmetric by adding each pair reversed) and scores
only the held-out fold. An audit needs no external gold model this way.
"""

from __future__ import annotations

import numpy as np


def fold_ids(n: int, folds: int, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """A seeded assignment of n items to folds; every member of a group (see
    :func:`preflab.data.groups.pair_groups`) lands in its group's fold.

    Groups, not items, are dealt out in a seeded random order, so folds hold
    near-equal numbers of groups; with no groups (or all of size one, numbered by
    position) this is the plain seeded assignment of items.
    """
    if groups is None:
        groups = np.arange(n)
    groups = np.asarray(groups)
    if len(groups) != n:
        raise ValueError(f"fold_ids: {len(groups)} groups for {n} items")
    n_groups = int(groups.max()) + 1 if n else 0
    rng = np.random.default_rng(seed)
    return rng.permutation(np.arange(n_groups) % folds)[groups]


def fit_bradley_terry(diff: np.ndarray, C: float = 1.0, weights: np.ndarray | None = None,
                      seed: int = 0) -> np.ndarray:
    """w maximising sum log sigmoid(w . diff) - |w|^2 / 2C (no intercept: symmetric)."""
    from sklearn.linear_model import LogisticRegression

    x = np.vstack([diff, -diff])
    y = np.concatenate([np.ones(len(diff)), np.zeros(len(diff))])
    sw = None if weights is None else np.concatenate([weights, weights])
    model = LogisticRegression(C=C, fit_intercept=False, max_iter=2000, random_state=seed)
    model.fit(x, y, sample_weight=sw)
    return model.coef_[0]


def crossfit_linear_rewards(f_chosen: np.ndarray, f_rejected: np.ndarray, folds: int = 5,
                            seed: int = 0, C: float = 1.0, groups: np.ndarray | None = None
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold rewards (r_chosen, r_rejected) for every pair; pairs of one group
    (copies, one prompt) share a fold, so no copy of a pair trains its scorer."""
    n = len(f_chosen)
    n_groups = n if groups is None else len(np.unique(groups))
    if folds < 2 or n_groups < folds:
        raise ValueError(f"crossfit needs 2 <= folds <= groups of pairs, got folds={folds}, "
                         f"pairs={n}, groups={n_groups}")
    assign = fold_ids(n, folds, seed, groups)
    r_c, r_r = np.zeros(n), np.zeros(n)
    for k in range(folds):
        train, test = assign != k, assign == k
        w = fit_bradley_terry(f_chosen[train] - f_rejected[train], C=C, seed=seed)
        r_c[test], r_r[test] = f_chosen[test] @ w, f_rejected[test] @ w
    return r_c, r_r
