"""``preflab review init``: create a review project, or add pairs and reviewers to one."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from preflab.audit.view import AuditView
from preflab.data.pair import PreferencePair
from preflab.data.read import iter_pairs, read_pairs
from preflab.review import store
from preflab.review.select import choose_pairs

Notify = Callable[[str], None]


def _number(x: Any) -> float | None:
    x = float(x)
    return None if math.isnan(x) else round(x, 6)


def pair_row(pair: PreferencePair, audit: dict[str, Any], members: Sequence[str]) -> store.PairRow:
    """What the project keeps of one pair: its texts and the committee's view."""
    committee = {
        "p_chosen": _number(audit["p_chosen"]), "votes": int(audit["votes"]),
        "members": int(audit["members"]), "agreement": _number(audit["agreement"]),
        "member_votes": {m: int(audit[f"vote.{m}"]) for m in members},
        "signal": str(audit.get("source_signal") or ""),
    }
    body = {"prompt": pair.prompt, "chosen": pair.chosen, "rejected": pair.rejected,
            "rejected_prompt": pair.rejected_prompt, "subset": pair.subset,
            "p_chosen": pair.p_chosen}
    return store.PairRow(pair.id, body, str(audit["bin"]), str(audit.get("source") or ""),
                         committee)


def init_review(data: str | Path, audit: str | Path, db: str | Path, sample: int | None = None,
                strata: str | None = None, per_pair: int = 3,
                reviewers: Sequence[str] = (), seed: int = 0, on_error: str = "fail",
                notify: Notify | None = None) -> dict[str, Any]:
    """Create the review project `db` (or add to it): choose pairs from the audit of
    `data` (see :func:`preflab.review.select.choose_pairs`), add `reviewers`, give each
    pair `per_pair` reviewers. Pairs, reviewers, assignments and votes already in the
    project never change. Returns the counts and ``tokens``: {reviewer: token} of the
    reviewers created now (their only appearance; the database keeps a hash)."""
    if per_pair < 1:
        raise ValueError(f"--per-pair must be at least 1, got {per_pair}")
    if sample is not None and sample < 1:
        raise ValueError(f"--sample must be at least 1, got {sample}")
    names = [store.check_name(n.strip()) for n in reviewers if n.strip()]
    if len(set(names)) != len(names):
        raise ValueError(f"--reviewers names a reviewer twice: {', '.join(names)}")
    view = AuditView.load(audit)
    db = Path(db)
    new_project = not db.exists()
    if new_project and not names:
        raise ValueError("a new review project needs reviewers: --reviewers alice,bob,carol")
    if db.exists():
        with store.opened(db) as con:
            store.check_project(con, db)
            have = {p["pair_id"] for p in store.all_pairs(con)}
    else:
        have = set()
    ids = choose_pairs(view.table, sample, strata, seed, exclude=have)
    if not ids and not have:
        raise ValueError(f"{audit}: no pair in the none or low agreement bins; choose pairs "
                         "with --sample N (and --strata bin|source)")
    wanted = set(ids)
    by_id: dict[str, PreferencePair] = {}
    for pair in iter_pairs(read_pairs(data, on_error=on_error).pairs):  # type: ignore[arg-type]
        if pair.id in wanted:
            by_id[pair.id] = pair
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ValueError(f"{audit}: {len(missing)} chosen pairs are not in {data} (first: "
                         f"{missing[0]}): the audit is of other data")
    rows_by_id = view.table.set_index("id")
    rows = [pair_row(by_id[i], rows_by_id.loc[i].to_dict(), view.members) for i in ids]
    db.parent.mkdir(parents=True, exist_ok=True)
    with store.opened(db, create=True) as con:
        store.create_schema(con, seed)
        added = store.add_pairs(con, rows)
        tokens = store.add_reviewers(con, names)
        all_names = store.reviewer_names(con)
        if per_pair > len(all_names) and notify is not None:
            notify(f"--per-pair {per_pair} but the project has {len(all_names)} reviewers: "
                   f"each pair gets {len(all_names)}")
        made = store.assign(con, per_pair)
        n_pairs = con.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
        n_assign = con.execute("SELECT COUNT(*) FROM assignments").fetchone()[0]
    return {"db": str(db), "created": new_project, "pairs_added": added, "pairs": n_pairs,
            "reviewers": all_names, "reviewers_added": sorted(tokens),
            "assignments_added": made, "assignments": n_assign,
            "bins_added": {b: sum(1 for r in rows if r.bin == b)
                           for b in dict.fromkeys(r.bin for r in rows)},
            "tokens": tokens}
