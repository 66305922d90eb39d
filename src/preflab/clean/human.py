"""People's judgements over a cleaning method's decisions (``preflab clean --review``).

Reads ``reviews.parquet`` from ``preflab review export`` and decides each pair's
consensus again from its verdict counts: a pair's verdict counts only once it has its
quorum and more than half of its latest votes agree. The quorum is the one the export
was made with (its summary.json's ``min_votes``: N votes, or null for a strict
majority of the reviewers assigned to the pair, 2 of 3) unless ``min_votes`` sets
another (:func:`review_quorum`). Where people reached a consensus it overrides the
method: ``rejected`` (people prefer the rejected reply) flips, ``both-bad`` removes,
``chosen`` and ``both-good`` keep, ``uncertain`` keeps or removes (`uncertain`). The
reason becomes ``human review``; the ``review`` column says what people decided and
with what support (e.g. ``rejected 2/3``), or why nothing was done (``below quorum:
1 of 2 votes``, ``no majority: 1/3``). Those pairs, and the pairs nobody reviewed,
keep the method's decision. Pure functions over tables, besides the readers of the
export's files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preflab.review.agreement import VERDICTS, decide, quorum, quorum_words

REASON = "human review"
UNCERTAIN = ("keep", "remove")
ACTION_OF = {"chosen": "keep", "rejected": "flip", "both-good": "keep", "both-bad": "remove"}
COUNTS = {v: f"n_{v.replace('-', '_')}" for v in VERDICTS}
NEEDED = ("pair_id", "assigned", "n_votes", *COUNTS.values(), "human_source")


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
    counted = reviews[list(COUNTS.values())].sum(axis=1)
    bad = np.flatnonzero(counted.to_numpy() != reviews["n_votes"].to_numpy())
    if len(bad):
        raise ValueError(f"{path}: row {bad[0] + 1} (pair {reviews['pair_id'].iloc[bad[0]]}): "
                         "field 'n_votes' is not the sum of the verdict counts")
    return reviews


def export_min_votes(folder: str | Path) -> tuple[bool, int | None]:
    """(recorded, min_votes): the quorum the export in `folder` was made with, from its
    summary.json (None: a strict majority of the reviewers assigned); (False, None)
    when it does not record one."""
    path = Path(folder) / "summary.json"
    if not path.is_file():
        return False, None
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ValueError(f"{path}: not a review export summary ({e})") from None
    if not isinstance(summary, dict) or "min_votes" not in summary:
        return False, None
    value = summary["min_votes"]
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 1):
        raise ValueError(f"{path}: field 'min_votes' must be null or a positive integer, "
                         f"got {value!r}")
    return True, value


def review_quorum(folder: str | Path, min_votes: int | None = None
                  ) -> tuple[int | None, str, str | None]:
    """(min_votes to decide with, the quorum in words with where it comes from, a
    warning or None) for the export in `folder`: `min_votes` when given (warned
    about where the export used another), else the export's own."""
    recorded, exported = export_min_votes(folder)
    if min_votes is not None:
        quorum(1, min_votes)
        warning = None
        if recorded and exported != min_votes:
            warning = (f"--min-votes {min_votes}, but the review export {folder} was made "
                       f"with quorum {quorum_words(exported)}: clean decides with "
                       f"{quorum_words(min_votes)}, so its consensus can differ from the "
                       "export's reviews.parquet and report")
        return min_votes, f"quorum: {quorum_words(min_votes)} (--min-votes)", warning
    if recorded:
        where = "the export's --min-votes" if exported is not None else "the export's"
        return exported, f"quorum: {quorum_words(exported)} ({where})", None
    return None, (f"quorum: {quorum_words(None)} (the default; {folder} does not record "
                  "the export's)"), None


def decide_pairs(reviews: pd.DataFrame, min_votes: int | None = None) -> pd.DataFrame:
    """Per reviewed pair: ``consensus`` ('' below the quorum or without a majority),
    ``support``, ``quorum``, ``votes_missing`` and ``review`` (the verdict and its
    support, or why there is none)."""
    quorum(1, min_votes)
    rows = []
    for r in reviews.itertuples(index=False):
        verdicts = [v for v, col in COUNTS.items() for _ in range(int(getattr(r, col)))]
        top, n, missing = decide(verdicts, int(r.assigned), min_votes)
        need = quorum(int(r.assigned), min_votes)
        if top:
            note = f"{top} {n}/{len(verdicts)}"
        elif missing:
            note = f"below quorum: {len(verdicts)} of {need} votes"
        elif verdicts:
            note = f"no majority: {n}/{len(verdicts)}"
        else:
            note = ""
        rows.append({"pair_id": r.pair_id, "consensus": top, "support": n,
                     "n_votes": len(verdicts), "quorum": need, "votes_missing": missing,
                     "review": note, "human_source": r.human_source})
    return pd.DataFrame(rows, columns=["pair_id", "consensus", "support", "n_votes", "quorum",
                                       "votes_missing", "review", "human_source"])


def apply_review(table: pd.DataFrame, reviews: pd.DataFrame, uncertain: str = "keep",
                 where: str = "the review export", min_votes: int | None = None
                 ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The decisions with people's consensus in force, and what it changed.

    Adds ``review`` (people's verdict and support, or why it is not used; '' for pairs
    nobody reviewed) and ``review_support`` (the fraction of votes behind a consensus,
    NaN elsewhere) to every row. Only pairs that reached their quorum (see
    :func:`decide_pairs`) change."""
    if uncertain not in UNCERTAIN:
        raise ValueError(f"--uncertain must be keep or remove, got {uncertain!r}")
    ids = set(table["id"])
    unknown = [i for i in reviews["pair_id"] if i not in ids]
    if unknown:
        raise ValueError(f"{where}: {len(unknown)} reviewed pairs are not in the data (first: "
                         f"{unknown[0]}): the review is of other data")
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
