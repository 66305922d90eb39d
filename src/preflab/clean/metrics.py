"""How well decisions find known label errors (pure functions)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def says_wrong(table: pd.DataFrame) -> np.ndarray:
    """Pairs whose label the decisions reject: flipped, removed, or relabelled below 0.5."""
    action = table["action"].to_numpy()
    p_new = table["p_new"].to_numpy(dtype=float)
    return (np.isin(action, ("flip", "remove"))
            | ((action == "relabel") & (np.nan_to_num(p_new, nan=1.0) < 0.5)))


def wrong_after(table: pd.DataFrame, truly_flipped: np.ndarray) -> np.ndarray:
    """Kept pairs (keep, flip, relabel) whose label is wrong after cleaning.

    A relabelled pair counts by its hard reading: p_new >= 0.5 says chosen is better.
    Removed pairs are False.
    """
    action = table["action"].to_numpy()
    truth = np.asarray(truly_flipped, dtype=bool)
    p_new = table["p_new"].to_numpy(dtype=float)
    return (((action == "keep") & truth) | ((action == "flip") & ~truth)
            | ((action == "relabel") & ((np.nan_to_num(p_new, nan=1.0) >= 0.5) == truth)))


def detection_metrics(table: pd.DataFrame, truly_flipped: np.ndarray) -> dict[str, Any]:
    """Precision, recall and F1 of the pairs flagged against the truly flipped ones,
    the pairs kept, and the noise left among them."""
    truth = np.asarray(truly_flipped, dtype=bool)
    flagged = says_wrong(table)
    tp = int((flagged & truth).sum())
    # Undefined ratios (nothing flagged, nothing flipped) are None, not NaN: JSON has no NaN.
    precision = tp / flagged.sum() if flagged.sum() else None
    recall = tp / truth.sum() if truth.sum() else None
    f1 = (2 * precision * recall / (precision + recall)
          if precision is not None and recall is not None and precision + recall > 0 else 0.0)
    r4 = lambda v: None if v is None else round(float(v), 4)  # noqa: E731
    kept = table["action"].to_numpy() != "remove"
    wrong = wrong_after(table, truth)
    return {
        "flagged": int(flagged.sum()),
        "precision": r4(precision),
        "recall": r4(recall),
        "f1": r4(f1),
        "kept": int(kept.sum()),
        "kept_fraction": round(float(kept.mean()), 4),
        "residual_noise": round(float(wrong.sum() / kept.sum()), 4) if kept.any() else None,
        "noise_before": round(float(truth.mean()), 4),
    }
