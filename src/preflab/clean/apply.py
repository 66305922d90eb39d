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
import pyarrow as pa
import pyarrow.compute as pc

from preflab.data.pair import PreferencePair


def check_aligned(pairs: Sequence[PreferencePair], table: pd.DataFrame, where: str) -> None:
    """Fail unless the decisions (or audit) cover exactly these pairs, in order."""
    check_aligned_ids([p.id for p in pairs], table, where)


def check_aligned_ids(pair_ids: Sequence[str] | pa.ChunkedArray, table: pd.DataFrame,
                      where: str) -> None:
    """Fail unless the decisions (or audit) cover exactly the pairs of `pair_ids` (a
    list, or Arrow strings), in order; compared as Arrow arrays."""
    if len(table) != len(pair_ids):
        raise ValueError(f"{where} covers {len(table)} pairs but the data has {len(pair_ids)}: "
                         "clean the file the audit read (an audit made with --limit N is "
                         "cleaned on the same first N pairs)")
    ours = pa.chunked_array([pa.array(table["id"], type=pa.string())])
    data = (pair_ids if isinstance(pair_ids, pa.ChunkedArray)
            else pa.chunked_array([pa.array(pair_ids, type=pa.string())]))
    same = pc.fill_null(pc.equal(ours, data), False)
    if len(table) and not pc.all(same).as_py():
        i = pc.index(same, False).as_py()
        raise ValueError(f"{where}: row {i + 1} is pair {ours[i]} but the data's pair "
                         f"{i + 1} is {data[i]}: the audit is of other data")


def apply_decisions(pairs: Sequence[PreferencePair], table: pd.DataFrame
                    ) -> tuple[list[PreferencePair], pd.DataFrame]:
    """The cleaned pairs and the manifest (the decisions plus ``output_id``, the id of
    the pair written out; empty for removed pairs)."""
    check_aligned(pairs, table, "the decisions")
    out, output_ids = apply_chunk(pairs, table["action"], table["p_new"])
    return out, with_output_ids(table, output_ids)


def apply_chunk(pairs: Sequence[PreferencePair], actions: Sequence[str],
                p_new: Sequence[float]) -> tuple[list[PreferencePair], list[str]]:
    """Each pair with its action and `p_new` applied: (the pairs written out, the
    output id of every input pair, '' where removed)."""
    out: list[PreferencePair] = []
    output_ids = []
    for pair, action, p in zip(pairs, actions, p_new, strict=True):
        if action == "remove":
            output_ids.append("")
            continue
        if action == "flip":
            new = pair.swapped(p_chosen=pair.p_chosen)
        elif action == "relabel":
            new = dataclasses.replace(pair, p_chosen=float(p), flags=list(pair.flags),
                                      meta=dict(pair.meta))
        elif action == "keep":
            new = pair
        else:
            raise ValueError(f"unknown action {action!r}")
        out.append(new)
        output_ids.append(new.id)
    return out, output_ids


def with_output_ids(table: pd.DataFrame, output_ids: Sequence[str]) -> pd.DataFrame:
    """The manifest: the decisions with ``output_id`` as their second column."""
    manifest = table.copy()
    manifest.insert(1, "output_id", np.asarray(output_ids, dtype=object))
    return manifest
