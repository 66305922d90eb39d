"""People's judgements over a cleaning method's decisions (``preflab clean --review``).

Reads ``reviews.parquet`` from ``preflab review export`` and decides each pair's
consensus again from its verdict counts: a pair's verdict counts only once it has its
quorum and more than half of its latest votes agree. The quorum is the one the export
was made with (its summary.json's ``min_votes``: N votes, or null for a strict majority
of the reviewers assigned to the pair, 2 of 3) unless ``min_votes`` sets another
(:func:`preflab.data.reviews.review_quorum`). Where people reached a consensus it
overrides the method: ``rejected`` (people prefer the rejected reply) flips,
``both-bad`` removes, ``chosen`` and ``both-good`` keep, ``uncertain`` keeps or removes
(`uncertain`). The reason becomes ``human review``; the ``review`` column says what
people decided and with what support (e.g. ``rejected 2/3``), or why nothing was done
(``below quorum: 1 of 2 votes``, ``no majority: 1/3``). Those pairs, and the pairs
nobody reviewed, keep the method's decision. Pure functions over tables (the export is
read by :mod:`preflab.data.reviews`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from preflab.data.reviews import check_reviewed, decide_pairs
from preflab.data.verdicts import VERDICTS

REASON = "human review"
UNCERTAIN = ("keep", "remove")
ACTION_OF = {"chosen": "keep", "rejected": "flip", "both-good": "keep", "both-bad": "remove"}


def apply_review(table: pd.DataFrame, reviews: pd.DataFrame, uncertain: str = "keep",
                 where: str = "the review export", min_votes: int | None = None
                 ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The decisions with people's consensus in force, and what it changed.

    Adds ``review`` (people's verdict and support, or why it is not used; '' for pairs
    nobody reviewed) and ``review_support`` (the fraction of votes behind a consensus,
    NaN elsewhere) to every row. Only pairs that reached their quorum (see
    :func:`preflab.data.reviews.decide_pairs`) change."""
    if uncertain not in UNCERTAIN:
        raise ValueError(f"--uncertain must be keep or remove, got {uncertain!r}")
    ids = set(table["id"])
    check_reviewed(reviews["pair_id"], ids, where)
    decided = decide_pairs(reviews, min_votes).set_index("pair_id")
    agreed = decided[decided["consensus"] != ""]
    out = table.copy()
    hit = out["id"].isin(agreed.index).to_numpy()
    verdict = np.array([agreed["consensus"].get(i, "") for i in out["id"]], dtype=object)
    support = out["id"].map(agreed["support"]).to_numpy(dtype=float)
    votes = out["id"].map(agreed["n_votes"]).to_numpy(dtype=float)
    tag = np.array([agreed["human_source"].get(i, "") or "" for i in out["id"]], dtype=object)
    wanted = np.array([ACTION_OF.get(v, uncertain) for v in verdict], dtype=object)
    before = out["action"].to_numpy(dtype=object)
    out["review"] = [decided["review"].get(i, "") for i in out["id"]]
    out["review_support"] = np.where(hit, support / np.maximum(votes, 1), np.nan)
    out.loc[hit, "action"] = wanted[hit]
    out.loc[hit, "reason"] = REASON
    out.loc[hit, "p_new"] = np.nan
    if "source" in out:
        changed = hit & (wanted != "keep") & (tag != "")
        out.loc[changed, "source"] = tag[changed]
        out.loc[hit & (wanted == "keep"), "source"] = ""
    if "signal" in out:
        out.loc[hit, "signal"] = "people: " + out.loc[hit, "review"]
    below = decided["votes_missing"] > 0
    stats = {
        "reviewed": len(reviews), "with_consensus": int(hit.sum()),
        "no_consensus": int(len(reviews) - hit.sum()),
        "below_quorum": int(below.sum()),
        "votes_missing": int(decided["votes_missing"].sum()),
        "no_majority": int(((decided["consensus"] == "") & ~below).sum()),
        "min_votes": min_votes,
        "consensus": {v: int((verdict[hit] == v).sum()) for v in VERDICTS},
        "actions": {a: int((wanted[hit] == a).sum()) for a in ("keep", "flip", "remove")},
        "changed_from_method": int((before[hit] != wanted[hit]).sum()),
        "uncertain": uncertain,
    }
    return out, stats
