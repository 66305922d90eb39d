"""Cross-fitted linear reward models: no pair is scored by a model trained on it.

The pairs are split into K folds; for each fold a Bradley-Terry model
r(x, y) = w . f(x, y) is fitted on the other K-1 folds (logistic regression on
f_chosen - f_rejected, made symmetric by adding each pair reversed) and scores
only the held-out fold. An audit needs no external gold model this way.
"""

from __future__ import annotations

import numpy as np

ROWS = 65536  # rows read at a time from (possibly memory-mapped) features
# Pairs a fold's model is fitted on at most: a seeded sample of its training folds
# beyond this (a linear model of a few hundred features is settled long before),
# so fitting memory stays bounded as the data grows. Smaller sets are used whole.
MAX_TRAIN = 40_000


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
    (copies, one prompt) share a fold, so no copy of a pair trains its scorer. A pair
    whose features are not finite (the engine failed on one of its texts) trains
    nothing and gets NaN rewards. The features may be memory-mapped arrays: each fold
    reads its rows, and is fitted on at most :data:`MAX_TRAIN` of them (a seeded
    sample)."""
    n = len(f_chosen)
    n_groups = n if groups is None else len(np.unique(groups))
    if folds < 2 or n_groups < folds:
        raise ValueError(f"crossfit needs 2 <= folds <= groups of pairs, got folds={folds}, "
                         f"pairs={n}, groups={n_groups}")
    assign = fold_ids(n, folds, seed, groups)
    finite = np.ones(n, dtype=bool)
    for start in range(0, n, ROWS):
        rows = slice(start, start + ROWS)
        finite[rows] = (np.isfinite(f_chosen[rows]).all(axis=1)
                        & np.isfinite(f_rejected[rows]).all(axis=1))
    r_c, r_r = np.full(n, np.nan), np.full(n, np.nan)
    for k in range(folds):
        train, test = np.flatnonzero((assign != k) & finite), np.flatnonzero(
            (assign == k) & finite)
        if len(train) > MAX_TRAIN:
            rng = np.random.default_rng([seed, k])
            train = np.sort(rng.choice(train, MAX_TRAIN, replace=False))
        w = fit_bradley_terry(f_chosen[train] - f_rejected[train], C=C, seed=seed)
        for start in range(0, len(test), ROWS):
            rows = test[start:start + ROWS]
            r_c[rows], r_r[rows] = f_chosen[rows] @ w, f_rejected[rows] @ w
    return r_c, r_r
