"""The audit table: one row per pair with every member's margin and vote.

Pure functions over arrays; no model is touched here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.combine import DEFAULT, committee_probability

BIN_NAMES = ("none", "low", "mixed", "high", "unanimous")


def agreement_bin(v: np.ndarray, m: int, low: float = 0.25, high: float = 0.75) -> np.ndarray:
    """none: v=0; low: 0<v/M<=low; mixed; high: high<=v/M<M; unanimous: v=M."""
    a = v / m
    return np.select([v == 0, a <= low, a < high, v < m], BIN_NAMES[:4], default="unanimous")


def audit_table(ids: Sequence[str], subsets: Sequence[str | None], names: Sequence[str],
                margins: np.ndarray, member_p: np.ndarray, r_chosen: np.ndarray,
                r_rejected: np.ndarray, bins: tuple[float, float] = (0.25, 0.75),
                combine: str = DEFAULT, flipped: Sequence[bool] | None = None,
                seed: int = 0, groups: np.ndarray | None = None
                ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The table from per-member arrays of shape [pairs, members], and how the
    committee probability was formed (see :mod:`preflab.audit.combine`). `groups`:
    pairs that must share a fold when the combination is cross-fitted."""
    m = margins.shape[1]
    votes = (margins > 0).astype(np.int8)  # a tie is not a vote for the human label
    v = votes.sum(axis=1)
    # A member with no score for a pair (NaN: a request that failed, a pair missing from
    # a scores file) casts no vote: the pair is judged by the members that scored it.
    present = (~np.isnan(margins)).sum(axis=1)
    table = pd.DataFrame({"id": list(ids), "subset": [s or "(none)" for s in subsets]})
    if flipped is not None:
        table["flipped"] = np.asarray(flipped, dtype=bool)
    for k, name in enumerate(names):
        table[f"margin.{name}"] = margins[:, k]
        table[f"vote.{name}"] = votes[:, k]
        table[f"r_chosen.{name}"] = r_chosen[:, k]
        table[f"r_rejected.{name}"] = r_rejected[:, k]
        table[f"p_chosen.{name}"] = member_p[:, k]
    table["votes"] = v
    table["members"] = present
    if (present < m).any():
        table["missing_votes"] = m - present
    table["agreement"] = v / np.maximum(present, 1)
    table["bin"] = agreement_bin(v, np.maximum(present, 1), *bins)
    table["p_chosen"], info = committee_probability(margins, combine, seed=seed,
                                                    member_p=member_p, groups=groups)
    table["spread"] = np.nanstd(member_p, axis=1)
    info["weights"] = {n: round(w, 4) for n, w in zip(names, info.pop("member_weights"),
                                                      strict=True)}
    info["merged"] = [[names[k] for k in g] for g in info["merged"]]
    return table, info
