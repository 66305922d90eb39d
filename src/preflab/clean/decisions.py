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


def act_where(mask: np.ndarray, act: str, why: Any, keep_why: str = "") -> tuple[np.ndarray,
                                                                                np.ndarray]:
    """(action, reason) arrays: `act` with reason `why` (one string, or one per pair)
    where `mask`, keep with `keep_why` elsewhere."""
    mask = np.asarray(mask, dtype=bool)
    action = np.where(mask, act, "keep").astype(object)
    reason = np.where(mask, why, keep_why).astype(object)
    return action, reason


def act(ids: Any, mask: np.ndarray, action: str, reason: Any, method: str,
        params: dict[str, Any], score: np.ndarray | None = None,
        p_new: np.ndarray | None = None) -> pd.DataFrame:
    """The decisions table of one action (remove | flip | relabel) on the selected pairs.

    `action` applies where `mask` and every other pair is kept; `reason` (one string, or
    one per pair) is kept for the selected pairs only; a relabelled pair gets its new
    ``p_chosen`` from `p_new` (one per pair). `score` is the method's suspicion score.
    """
    if action not in ACTIONS[1:]:
        raise ValueError(f"action must be one of {ACTIONS[1:]}, got {action!r}")
    if (action == "relabel") != (p_new is not None):
        raise ValueError("p_new goes with action='relabel', and only with it")
    mask = np.asarray(mask, dtype=bool)
    actions, reasons = act_where(mask, action, reason)
    if p_new is not None:
        p_new = np.where(mask, np.asarray(p_new, dtype=float), np.nan)
    return decisions(ids, actions, reasons, method, params, score=score, p_new=p_new)


def counts(table: pd.DataFrame) -> dict[str, int]:
    c = table["action"].value_counts()
    return {a: int(c.get(a, 0)) for a in ACTIONS}
