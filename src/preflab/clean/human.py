"""People's judgements over a cleaning method's decisions (``preflab clean --review``).

Reads ``reviews.parquet`` from ``preflab review export``. Where people reached a
consensus (more than half of a pair's latest votes agree) it overrides the method:
``rejected`` (people prefer the rejected reply) flips, ``both-bad`` removes,
``chosen`` and ``both-good`` keep, ``uncertain`` keeps or removes (`uncertain`). The
reason becomes ``human review``; the ``review`` column says what people decided and
with what support (e.g. ``rejected 2/3``). Pairs with no consensus, or nobody's
review, keep the method's decision. Pure functions over tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REASON = "human review"
UNCERTAIN = ("keep", "remove")
ACTION_OF = {"chosen": "keep", "rejected": "flip", "both-good": "keep", "both-bad": "remove"}
NEEDED = ("pair_id", "consensus", "support", "n_votes", "human_source")


def load_review(folder: str | Path) -> pd.DataFrame:
    """The export's per-pair table, checked."""
    path = Path(folder) / "reviews.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no reviews.parquet; run `preflab review export "
                                f"DB --out {folder}` first")
    reviews = pd.read_parquet(path)
    missing = [c for c in NEEDED if c not in reviews]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; export again with "
                         "this preflab")
    bad = sorted(set(reviews["consensus"]) - {"", "uncertain", *ACTION_OF})
    if bad:
        raise ValueError(f"{path}: field 'consensus': unknown verdict(s) {bad}")
    return reviews


def apply_review(table: pd.DataFrame, reviews: pd.DataFrame, uncertain: str = "keep",
                 where: str = "the review export") -> tuple[pd.DataFrame, dict[str, Any]]:
    """The decisions with people's consensus in force, and what it changed.

    Adds ``review`` (people's verdict and support, '' where none) and ``review_support``
    (the fraction of votes behind it, NaN where none) to every row."""
    if uncertain not in UNCERTAIN:
        raise ValueError(f"--uncertain must be keep or remove, got {uncertain!r}")
    ids = set(table["id"])
    unknown = [i for i in reviews["pair_id"] if i not in ids]
    if unknown:
        raise ValueError(f"{where}: {len(unknown)} reviewed pairs are not in the data (first: "
                         f"{unknown[0]}): the review is of other data")
    agreed = reviews[reviews["consensus"] != ""].set_index("pair_id")
    out = table.copy()
    hit = out["id"].isin(agreed.index).to_numpy()
    verdict = out["id"].map(agreed["consensus"]).fillna("").to_numpy(dtype=object)
    support = out["id"].map(agreed["support"]).to_numpy(dtype=float)
    votes = out["id"].map(agreed["n_votes"]).to_numpy(dtype=float)
    tag = out["id"].map(agreed["human_source"]).fillna("").to_numpy(dtype=object)
    wanted = np.array([ACTION_OF.get(v, uncertain) for v in verdict], dtype=object)
    before = out["action"].to_numpy(dtype=object)
    out["review"] = np.where(hit, [f"{v} {s:.0f}/{n:.0f}" if h else ""
                                   for v, s, n, h in zip(verdict, support, votes, hit,
                                                         strict=True)], "")
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
    stats = {
        "reviewed": len(reviews), "with_consensus": int(hit.sum()),
        "no_consensus": int(len(reviews) - hit.sum()),
        "consensus": {v: int((verdict[hit] == v).sum())
                      for v in ("chosen", "rejected", "both-good", "both-bad", "uncertain")},
        "actions": {a: int((wanted[hit] == a).sum()) for a in ("keep", "flip", "remove")},
        "changed_from_method": int((before[hit] != wanted[hit]).sum()),
        "uncertain": uncertain,
    }
    return out, stats
