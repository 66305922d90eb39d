"""Review-test data: real HH pairs (one carrying HTML and script) and an audit of them.

The audit table is built by the audit's own code (:func:`preflab.audit.table.audit_table`
and :func:`preflab.audit.noise_sources.tag_sources`) from seeded member margins, so
the review tests need no model and do not depend on the scoring engine.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from preflab.audit.noise_sources import source_counts, tag_sources
from preflab.audit.table import Combination, audit_table
from preflab.audit.view import AuditView
from preflab.data.pair import PreferencePair
from preflab.data.write import write_pairs

XSS = ('Sure! <script>window.__xss = "script"</script><img src=x '
       'onerror="window.__xss = \'img\'"> & that is all.')
MEMBERS = ["rm-a", "rm-b", "judge", "fit"]
KINDS = {"rm-a": "seq-rm", "rm-b": "seq-rm", "judge": "judge", "fit": "crossfit"}


def with_xss(pairs: list[PreferencePair]) -> list[PreferencePair]:
    """The pairs, the first with HTML and script in its chosen reply (a new id)."""
    first = dataclasses.replace(pairs[0], chosen=XSS, id="", flags=list(pairs[0].flags),
                                meta=dict(pairs[0].meta))
    return [first, *pairs[1:]]


def write_audit(pairs: list[PreferencePair], folder: Path, seed: int = 0,
                merged: bool = False) -> Path:
    """An audit folder (audit.parquet, summary.json) of `pairs` by four members whose
    margins are seeded so every agreement bin occurs. `merged`: rm-b a near copy of
    rm-a (the two form one voter, rm-a+rm-b) and the judge preferring the rejected
    reply on most pairs (counted turned round)."""
    rng = np.random.default_rng(seed)
    n = len(pairs)
    lean = rng.normal(0.3, 1.2, size=(n, 1))  # per pair: how much the members like chosen
    margins = lean + rng.normal(0, 0.8, size=(n, len(MEMBERS)))
    if merged:
        margins[:, 1] = 1.5 * margins[:, 0] + rng.normal(0, 0.01, size=n)
        margins[:, 2] = -(lean[:, 0] + 1.5) + rng.normal(0, 0.8, size=n)
    r_rejected = rng.normal(0, 1, size=(n, len(MEMBERS)))
    r_chosen = r_rejected + margins
    r_chosen[:, 2] = r_rejected[:, 2] = np.nan  # a judge has no absolute rewards
    member_p = 1 / (1 + np.exp(-margins))
    table, combined = audit_table([p.id for p in pairs], [p.subset for p in pairs], MEMBERS,
                                  margins, member_p, r_chosen, r_rejected,
                                  combination=Combination(seed=seed))
    tags = tag_sources(AuditView(table, dict(KINDS)))
    table["source"], table["source_signal"] = tags["source"], tags["signal"]
    folder.mkdir(parents=True, exist_ok=True)
    table.to_parquet(folder / "audit.parquet", index=False)
    (folder / "summary.json").write_text(json.dumps(
        {"member_kinds": KINDS, "sources": source_counts(tags),
         "committee_probability": combined}))
    return folder


def write_data(pairs: list[PreferencePair], folder: Path, name: str = "pairs.jsonl"
               ) -> tuple[Path, Path]:
    """The pairs as a preflab JSONL file and their audit: (data, audit folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / name
    write_pairs(pairs, data)
    return data, write_audit(pairs, folder / "audit")
