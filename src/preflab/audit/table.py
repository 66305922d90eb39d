"""The audit table: one row per pair with every member's margin and vote.

Pure functions over arrays; no model is touched here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from preflab.committee.crossfit import fit_bradley_terry, fold_ids

BIN_NAMES = ("none", "low", "mixed", "high", "unanimous")


def agreement_bin(v: np.ndarray, m: int, low: float = 0.25, high: float = 0.75) -> np.ndarray:
    """none: v=0; low: 0<v/M<=low; mixed; high: high<=v/M<M; unanimous: v=M."""
    a = v / m
    return np.select([v == 0, a <= low, a < high, v < m], BIN_NAMES[:4], default="unanimous")


def _crossfit_logits(x: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Out-of-fold Bradley-Terry logits of a weighted sum of the columns of x."""
    assign = fold_ids(len(x), folds, seed)
    z = np.zeros(len(x))
    for k in range(folds):
        w = fit_bradley_terry(x[assign != k], seed=seed)
        z[assign == k] = x[assign == k] @ w
    return z


def _loglik(z: np.ndarray) -> float:
    """Log-likelihood of the labels (chosen better) under logits z."""
    return float(-np.logaddexp(0, -z).sum())


def select_members(x: np.ndarray, folds: int = 5, seed: int = 0, min_gain: float = 1e-3
                   ) -> tuple[list[int], np.ndarray]:
    """Forward selection of members by cross-fitted likelihood of the labels.

    Start from the member whose out-of-fold fit explains the labels best; add the
    member that improves it most, while the gain exceeds `min_gain` per pair and
    every weight stays positive. Members at chance, or redundant with one already
    in, stay out: with noisy labels a full fit would lend them weight by accident.
    Returns the chosen columns and their weights (fitted on all pairs).
    """
    n, m = x.shape
    chosen: list[int] = []
    best = -np.inf
    while len(chosen) < m:
        trials = {k: _loglik(_crossfit_logits(x[:, [*chosen, k]], folds, seed))
                  for k in range(m) if k not in chosen}
        k = max(trials, key=trials.__getitem__)
        if chosen and trials[k] - best <= min_gain * n:
            break
        if chosen and (fit_bradley_terry(x[:, [*chosen, k]], seed=seed) <= 0).any():
            break
        chosen.append(k)
        best = trials[k]
    return chosen, fit_bradley_terry(x[:, chosen], seed=seed)


def factor_weights(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Member weights from a one-factor model of their (scaled) margins.

    The members' margins are modelled as one shared factor (how good the label
    really is) plus each member's own noise: x_k = lambda_k f + e_k, Var(e_k) =
    psi_k. The factor score weighs member k by lambda_k / psi_k: members that
    track the shared signal closely count most; a member at chance, or one whose
    margins merely lean one way, shares nothing with the others and gets ~0. The
    labels are not used, so no member is rewarded for agreeing with label errors.
    The sign is set so that the committee agrees with most labels.
    """
    from sklearn.decomposition import FactorAnalysis

    fa = FactorAnalysis(n_components=1, random_state=seed).fit(x)
    w = fa.components_[0] / np.maximum(fa.noise_variance_, 1e-6)
    return -w if w @ x.mean(axis=0) < 0 else w


def committee_probability(margins: np.ndarray, method: str = "factor", folds: int = 5,
                          seed: int = 0, member_p: np.ndarray | None = None
                          ) -> tuple[np.ndarray, dict[str, Any]]:
    """The committee's P(chosen better) for each pair, and how it was formed.

    ``factor`` (default): the members' scaled margins weighed by
    :func:`factor_weights`, turned into a probability by a one-parameter
    Bradley-Terry fit on the labels (cross-fitted). ``stacked``: a Bradley-Terry
    combination of the margins of the members chosen by :func:`select_members`,
    each margin scaled to unit spread.
    The weights are fitted on the labels and cross-fitted (no pair's weights saw
    that pair), so margins on different scales become comparable and members that
    explain the labels better count more. ``mean``: the average of all members'
    own probabilities.
    """
    if method == "mean":
        if member_p is None:
            raise ValueError("method 'mean' needs the members' probabilities")
        return np.nanmean(member_p, axis=1), {"method": "mean"}
    if method not in ("factor", "stacked"):
        raise ValueError(f"method must be 'factor', 'stacked' or 'mean', got {method!r}")
    x = np.nan_to_num(margins / (np.nanstd(margins, axis=0) + 1e-12))
    if method == "factor" and x.shape[1] > 1 and len(x) >= 4 * folds:
        w = factor_weights(x, seed)
        score = x @ w
        z = _crossfit_logits((score / (score.std() + 1e-12))[:, None], folds, seed)
        return 1.0 / (1.0 + np.exp(-z)), {"method": "factor",
                                          "weights": [float(v) for v in w]}
    if len(x) < 4 * folds:
        return 1.0 / (1.0 + np.exp(-x.mean(axis=1))), {"method": "mean-of-scaled-margins"}
    chosen, weights = select_members(x, folds, seed)
    z = _crossfit_logits(x[:, chosen], folds, seed)
    return 1.0 / (1.0 + np.exp(-z)), {"method": "stacked", "selected": chosen,
                                      "weights": [float(w) for w in weights]}


def audit_table(ids: Sequence[str], subsets: Sequence[str | None], names: Sequence[str],
                margins: np.ndarray, member_p: np.ndarray, r_chosen: np.ndarray,
                r_rejected: np.ndarray, bins: tuple[float, float] = (0.25, 0.75),
                combine: str = "factor", flipped: Sequence[bool] | None = None,
                seed: int = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The table from per-member arrays of shape [pairs, members], and how the
    committee probability was formed (members selected, weights)."""
    m = margins.shape[1]
    votes = (margins > 0).astype(np.int8)  # a tie is not a vote for the human label
    v = votes.sum(axis=1)
    table = pd.DataFrame({"id": list(ids), "subset": [s or "(none)" for s in subsets]})
    if flipped is not None:
        table["flipped"] = np.asarray(flipped, dtype=bool)
    for k, name in enumerate(names):
        table[f"margin.{name}"] = margins[:, k]
        table[f"vote.{name}"] = votes[:, k]
        table[f"r_chosen.{name}"] = r_chosen[:, k]
        table[f"r_rejected.{name}"] = r_rejected[:, k]
    table["votes"] = v
    table["members"] = m
    table["agreement"] = v / m
    table["bin"] = agreement_bin(v, m, *bins)
    table["p_chosen"], info = committee_probability(margins, combine, seed=seed,
                                                    member_p=member_p)
    table["spread"] = np.nanstd(member_p, axis=1)
    if "selected" in info:
        info["weights"] = {names[k]: round(w, 4) for k, w in zip(info.pop("selected"),
                                                                 info["weights"], strict=True)}
    elif "weights" in info:
        info["weights"] = {n: round(w, 4) for n, w in zip(names, info["weights"], strict=True)}
    return table, info
