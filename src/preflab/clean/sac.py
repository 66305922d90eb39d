"""Source-Aware Cleaning (Yeh et al. 2024, reconstructed; see METHODS.md §2).

Act on each flagged pair according to its source (:mod:`preflab.audit.sources`):

- ``mis-label`` -> flip (or remove with ``flip_action="remove"``: PrefCleanBench
  found removal more robust when the detector is imprecise; measure both with
  ``preflab bench noise``);
- ``both-harmful`` / ``both-bad`` -> remove: no reply is worth preferring;
- ``subjective``, ``different-criteria``, ``different-thresholds`` -> keep, or with
  ``soft=True`` relabel with the committee's probability as a soft label.

Unflagged pairs are kept as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.sources import SourceRules, tag_sources
from preflab.audit.view import AuditView
from preflab.clean.decisions import decisions

BAD_SOURCES = ("both-harmful", "both-bad")


def sac(view: AuditView, flip_action: str = "flip", soft: bool = False,
        remove_bad: bool = True, **rules: Any) -> pd.DataFrame:
    """SAC decisions; `rules` are :class:`SourceRules` thresholds."""
    if flip_action not in ("flip", "remove"):
        raise ValueError(f"flip_action must be 'flip' or 'remove', got {flip_action!r}")
    r = SourceRules(**rules)
    tags = tag_sources(view, r)
    source = tags["source"].to_numpy(dtype=object)
    signal = tags["signal"].to_numpy(dtype=object)
    action = np.full(view.n, "keep", dtype=object)
    reason = np.full(view.n, "", dtype=object)
    p_new = np.full(view.n, np.nan)
    mis = source == "mis-label"
    action[mis] = flip_action
    bad = np.isin(source, BAD_SOURCES) & remove_bad
    action[bad] = "remove"
    rest = tags["flagged"].to_numpy() & ~mis & ~bad
    if soft:
        action[rest] = "relabel"
        p_new[rest] = view.p[rest]
    flagged_rows = tags["flagged"].to_numpy()
    reason[flagged_rows] = [f"{s}: {g}" for s, g in zip(source[flagged_rows],
                                                         signal[flagged_rows], strict=True)]
    params = {"flip_action": flip_action, "soft": soft, "remove_bad": remove_bad,
              **r.params()}
    table = decisions(view.table["id"], action, reason, "sac", params,
                      score=1 - view.p, p_new=p_new)
    table["source"] = source
    table["signal"] = signal
    return table
