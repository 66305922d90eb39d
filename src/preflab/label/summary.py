"""What a labeling run says about its labels: alignment with the human labels, the
position figures and the failures (pure), and what fitting the prompts into the judge
did.

Alignment is the share of pairs where the AI label's argmax is the human label; an AI
label of exactly 0.5 is a tie and counts as not aligned (ties are reported).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from preflab.engine.judge import CONTEXT_CLIPPING
from preflab.label.config import LabelConfig


def label_summary(table: pd.DataFrame, human: Sequence[float] | np.ndarray
                  ) -> dict[str, Any]:
    """Alignment with the human labels (`human`: the ``p_chosen`` of the pairs of
    `table`, in its order) and the position figures over the pairs that got a label;
    the others are counted by reason (pure).

    ``alignment`` is that of the AI label (both orders averaged);
    ``alignment_chosen_first`` / ``alignment_chosen_second`` are each order's alone
    (the human-chosen reply shown first / second): a judge that prefers a position
    scores high in one and low in the other, so their gap measures position bias
    (None for direct scoring, which has no order)."""
    ok = table["p_ai"].notna().to_numpy()
    failed = table.loc[~ok, "failure"].fillna("unknown")
    out: dict[str, Any] = {"n_pairs": len(table), "n_labelled": int(ok.sum()),
                           "n_failed": int((~ok).sum()),
                           "failures": {str(k): int(v) for k, v in failed.value_counts().items()}}
    if not ok.any():
        return out
    t = table[ok]
    ordered = "first_preferred" in t
    if not ordered:  # direct scoring: no orders
        t = t.assign(consistent=np.nan, first_preferred=np.nan, first_preferred_swapped=np.nan)
    if len(human) != len(table):
        raise ValueError(f"{len(human)} human labels for {len(table)} labelled pairs")
    human_chosen = np.asarray(human, dtype=float)[ok] >= 0.5

    def alignment(column: str) -> float:  # a tie (0.5) is not aligned
        p = t[column].to_numpy()
        return round(float(np.where(human_chosen, p > 0.5, p < 0.5).mean()), 4)

    ties = t["p_ai"].to_numpy() == 0.5
    first = np.concatenate([t["first_preferred"], t["first_preferred_swapped"]])
    return {
        **out,
        "alignment": alignment("p_ai"),
        "alignment_chosen_first": alignment("p_chosen_first") if ordered else None,
        "alignment_chosen_second": alignment("p_chosen_second") if ordered else None,
        "ties": int(ties.sum()),
        "position_consistency": _round(t["consistent"].mean()),
        "first_position_rate": _round(np.mean(first)),
        "label_token_mass": round(float(t["label_mass"].mean()), 4),
        "mean_p_ai": round(float(t["p_ai"].mean()), 4),
    }


def _round(x: Any) -> float | None:
    x = float(x)
    return None if x != x else round(x, 4)


def truncation(scorer: Any, config: LabelConfig) -> dict[str, Any]:
    """What fitting the prompts computed in this run into the judge did: prompts cut
    (``truncated``), conversations shortened (``context_truncated``) and how: a
    conversation gets what ``max_length`` leaves beside the template and the replies,
    at most ``max_context_tokens`` when set."""
    return {"truncated": scorer.truncated,
            "context_truncated": getattr(scorer, "context_truncated", None),
            "context_budget": {"max_length": config.max_length,
                               "max_context_tokens": config.max_context_tokens},
            "context_kept": CONTEXT_CLIPPING}
