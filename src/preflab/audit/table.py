"""The audit table: one row per pair with every member's margin and vote.

Pure functions over arrays; no model is touched here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from preflab.audit.crossfit import fit_bradley_terry, fold_ids

BIN_NAMES = ("none", "low", "mixed", "high", "unanimous")


def agreement_bin(v: np.ndarray, m: int, low: float = 0.25, high: float = 0.75) -> np.ndarray:
    """none: v=0; low: 0<v/M<=low; mixed; high: high<=v/M<M; unanimous: v=M."""
    a = v / m
    return np.select([v == 0, a <= low, a < high, v < m], BIN_NAMES[:4], default="unanimous")


def committee_probability(margins: np.ndarray, method: str = "stacked", folds: int = 5,
                          seed: int = 0, member_p: np.ndarray | None = None) -> np.ndarray:
    """The committee's P(chosen better) for each pair.

    ``stacked`` (default): a Bradley-Terry combination of the members' margins,
    each scaled to unit spread, with weights fitted on the labels themselves and
    cross-fitted (no pair's weight fit saw that pair). Members that agree with the
    labels more get more weight, and margins on different scales become
    comparable. ``mean``: the average of the members' own probabilities.
    """
    if method == "mean":
        if member_p is None:
            raise ValueError("method 'mean' needs the members' probabilities")
        return np.nanmean(member_p, axis=1)
    if method != "stacked":
        raise ValueError(f"method must be 'stacked' or 'mean', got {method!r}")
    x = np.nan_to_num(margins / (np.nanstd(margins, axis=0) + 1e-12))
    n = len(x)
    if n < 2 * folds:
        return 1.0 / (1.0 + np.exp(-x.mean(axis=1)))
    assign = fold_ids(n, folds, seed)
    p = np.zeros(n)
    for k in range(folds):
        w = fit_bradley_terry(x[assign != k], seed=seed)
        p[assign == k] = 1.0 / (1.0 + np.exp(-(x[assign == k] @ w)))
    return p


def audit_table(ids: Sequence[str], subsets: Sequence[str | None], names: Sequence[str],
                margins: np.ndarray, member_p: np.ndarray, r_chosen: np.ndarray,
                r_rejected: np.ndarray, bins: tuple[float, float] = (0.25, 0.75),
                combine: str = "stacked", flipped: Sequence[bool] | None = None,
                seed: int = 0) -> pd.DataFrame:
    """Build the table from per-member arrays of shape [pairs, members]."""
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
    table["p_chosen"] = committee_probability(margins, combine, seed=seed, member_p=member_p)
    table["spread"] = np.nanstd(member_p, axis=1)
    return table
