"""A review export (``preflab review export``) as data: its per-pair verdict counts,
the quorum it was made with, and each pair's consensus. Pure readers and functions
over tables, used by the audit (``--review``: fit the committee on people) and by
cleaning (``--review``: people's consensus overrides the method)."""

from __future__ import annotations

import json
from collections.abc import Container, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from preflab.data.verdicts import VERDICTS, decide, quorum, quorum_words

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


def check_reviewed(reviewed: Iterable[str], ids: Container[str], where: str) -> None:
    """Refuse a review of other data: every reviewed pair id must be among `ids`."""
    unknown = [i for i in reviewed if i not in ids]
    if unknown:
        raise ValueError(f"{where}: {len(unknown)} reviewed pairs are not in the data (first: "
                         f"{unknown[0]}): the review is of other data")
