"""Apply cleaning decisions to pairs: the only place that changes a pair.

- keep: the pair as it is;
- flip: chosen and rejected exchanged (each with its own context) and the label
  reversed with the same confidence: ``p_chosen`` stays what it was, now about
  the other reply (a hard label of 1 stays 1);
- remove: left out of the output (and listed in the manifest);
- relabel: ``p_chosen`` set to the decision's ``p_new``; nothing else changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from preflab.data.pair import PreferencePair


def check_aligned(pairs: Sequence[PreferencePair], table: pd.DataFrame, where: str) -> None:
    """Fail unless the decisions (or audit) cover exactly these pairs, in order."""
    if len(table) != len(pairs):
        raise ValueError(f"{where} covers {len(table)} pairs but the data has {len(pairs)}: "
                         "clean the file the audit read (an audit made with --limit N is "
                         "cleaned on the same first N pairs)")
    ids = table["id"].to_numpy()
    for i, pair in enumerate(pairs):
        if ids[i] != pair.id:
            raise ValueError(f"{where}: row {i + 1} is pair {ids[i]} but the data's pair "
                             f"{i + 1} is {pair.id}: the audit is of other data")


def apply_decisions(pairs: Sequence[PreferencePair], table: pd.DataFrame
                    ) -> tuple[list[PreferencePair], pd.DataFrame]:
    """The cleaned pairs and the manifest (the decisions plus ``output_id``, the id of
    the pair written out; empty for removed pairs)."""
    check_aligned(pairs, table, "the decisions")
    out: list[PreferencePair] = []
    output_ids = []
    for pair, action, p_new in zip(pairs, table["action"], table["p_new"], strict=True):
        if action == "remove":
            output_ids.append("")
            continue
        if action == "flip":
            new = pair.swapped(p_chosen=pair.p_chosen)
        elif action == "relabel":
            new = dataclasses.replace(pair, p_chosen=float(p_new), flags=list(pair.flags),
                                      meta=dict(pair.meta))
        elif action == "keep":
            new = pair
        else:
            raise ValueError(f"unknown action {action!r}")
        out.append(new)
        output_ids.append(new.id)
    manifest = table.copy()
    manifest.insert(1, "output_id", np.asarray(output_ids, dtype=object))
    return out, manifest
