"""Source-Aware Cleaning (Yeh et al. 2024, reconstructed; docs/methods.md,
"Source-Aware Cleaning").

Act on each flagged pair according to its source (:mod:`preflab.audit.noise_sources`):

- ``mis-label`` (a confident, near-unanimous reversal) -> flip, or remove with
  ``flip_action="remove"``;
- ``both-harmful`` / ``both-bad`` -> remove: no reply is worth preferring;
- the other flagged pairs the committee leans against (P(chosen) < 0.5, but not
  confidently enough to flip) -> remove (``against="remove"``, the default) or
  keep (``against="keep"``, the paper's rule: keep subjective, different-criteria
  and different-threshold cases);
- the remaining flagged pairs (low agreement, but the committee sides with the
  label) -> keep, or with ``soft=True`` relabel with the committee's probability.

Why ``against="remove"`` is the default: on the demo data at 25% injected flips,
the paper's rule (keep them) left 24% noise among the kept pairs, while the
``vote-maj-remove`` and ``confident-learning-remove`` baselines left 6-8%. Those
pairs are where an imprecise detector's flips go wrong; removing them is the
PrefCleanBench finding (removal beats flipping under uncertainty). SAC with the
default flips the confident reversals and removes the rest of what the committee
doubts: 6.6% noise left with 76% of the pairs kept (`preflab bench noise`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.noise_sources import SourceRules, tag_sources
from preflab.audit.view import AuditView
from preflab.clean.decisions import decisions

BAD_SOURCES = ("both-harmful", "both-bad")


def sac(view: AuditView, flip_action: str = "flip", against: str = "remove",
        soft: bool = False, remove_bad: bool = True, **rules: Any) -> pd.DataFrame:
    """SAC decisions; `rules` are :class:`SourceRules` thresholds."""
    if flip_action not in ("flip", "remove"):
        raise ValueError(f"flip_action must be 'flip' or 'remove', got {flip_action!r}")
    if against not in ("remove", "keep"):
        raise ValueError(f"against must be 'remove' or 'keep', got {against!r}")
    r = SourceRules(**rules)
    tags = tag_sources(view, r)
    source = tags["source"].to_numpy(dtype=object)
    signal = tags["signal"].to_numpy(dtype=object)
    flagged = tags["flagged"].to_numpy()
    action = np.full(view.n, "keep", dtype=object)
    reason = np.full(view.n, "", dtype=object)
    p_new = np.full(view.n, np.nan)
    mis = source == "mis-label"
    action[mis] = flip_action
    bad = np.isin(source, BAD_SOURCES) & remove_bad
    action[bad] = "remove"
    doubted = tags["against"].to_numpy() & ~mis & ~bad
    if against == "remove":
        action[doubted] = "remove"
    rest = flagged & ~mis & ~bad & (action == "keep")
    if soft:
        action[rest] = "relabel"
        p_new[rest] = view.p[rest]
    reason[flagged] = [f"{s}: {g}" for s, g in zip(source[flagged], signal[flagged],
                                                   strict=True)]
    if against == "remove":
        reason[doubted] = [f"{x}; the committee leans against the label (removed)"
                           for x in reason[doubted]]
    params = {"flip_action": flip_action, "against": against, "soft": soft,
              "remove_bad": remove_bad, **r.params(view)}
    table = decisions(view.table["id"], action, reason, "sac", params,
                      score=1 - view.p, p_new=p_new)
    table["source"] = source
    table["signal"] = signal
    return table
