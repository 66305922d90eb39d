"""Cleaning decisions: one row per audited pair, what to do with it and why."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

ACTIONS = ("keep", "flip", "remove", "relabel")


def decisions(ids: Any, action: np.ndarray, reason: np.ndarray, method: str,
              params: dict[str, Any], score: np.ndarray | None = None,
              p_new: np.ndarray | None = None) -> pd.DataFrame:
    """The decisions table.

    Columns: ``id``, ``action`` (keep | flip | remove | relabel), ``reason``,
    ``method``, ``params`` (JSON), ``score`` (the method's suspicion of the label,
    higher = more suspect; NaN where it has none) and ``p_new`` (the new
    ``p_chosen`` of a relabelled pair, NaN otherwise).
    """
    n = len(action)
    action = np.asarray(action, dtype=object)
    bad = sorted(set(action) - set(ACTIONS))
    if bad:
        raise ValueError(f"unknown action(s) {bad}; actions are {ACTIONS}")
    p_new = np.full(n, np.nan) if p_new is None else np.asarray(p_new, dtype=float)
    if ((action == "relabel") & ~((p_new >= 0) & (p_new <= 1))).any():
        raise ValueError("a relabelled pair needs a new p_chosen in [0, 1]")
    return pd.DataFrame({
        "id": np.asarray(ids, dtype=object), "action": action,
        "reason": np.asarray(reason, dtype=object), "method": method,
        "params": json.dumps(params, sort_keys=True),
        "score": np.full(n, np.nan) if score is None else np.asarray(score, dtype=float),
        "p_new": p_new,
    })


def act_where(mask: np.ndarray, act: str, why: str, keep_why: str = "") -> tuple[np.ndarray,
                                                                                np.ndarray]:
    """(action, reason) arrays: `act` with reason `why` where `mask`, keep elsewhere."""
    mask = np.asarray(mask, dtype=bool)
    action = np.where(mask, act, "keep").astype(object)
    reason = np.where(mask, why, keep_why).astype(object)
    return action, reason


def lowest_fraction(score: np.ndarray, k: float) -> np.ndarray:
    """Mask of the round(k * n) pairs with the lowest `score` (ties broken by position)."""
    if not 0 <= k <= 1:
        raise ValueError(f"k must be a fraction in [0, 1], got {k}")
    n = len(score)
    order = np.argsort(np.nan_to_num(score, nan=np.inf), kind="stable")
    mask = np.zeros(n, dtype=bool)
    mask[order[:round(k * n)]] = True
    return mask


def counts(table: pd.DataFrame) -> dict[str, int]:
    c = table["action"].value_counts()
    return {a: int(c.get(a, 0)) for a in ACTIONS}
