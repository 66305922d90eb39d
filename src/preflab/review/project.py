"""``preflab review init | add-pairs | add-reviewers | tokens | status``: create a review
project, add to it without choosing again what is there, replace a lost token, and
see where it stands."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from preflab.audit.stats import voter_names
from preflab.audit.view import AuditView
from preflab.data import stream
from preflab.data.pair import PreferencePair
from preflab.data.verdicts import quorum
from preflab.review import store
from preflab.review.config import ReviewConfig, config_path
from preflab.review.export import review_tables
from preflab.review.select import choose_pairs
from preflab.settings import config_toml, resolve_config

Notify = Callable[[str], None]


def _number(x: Any) -> float | None:
    x = float(x)
    return None if math.isnan(x) else round(x, 6)


def _vote(x: Any) -> int | None:
    """A member's vote, None where it has no score."""
    return None if pd.isna(x) else int(x)


def _combined(audit: str | Path) -> dict[str, Any]:
    """The audit summary's ``committee_probability`` (folder `audit`); {} unknown."""
    path = Path(audit) / "summary.json"
    try:
        combined = json.loads(path.read_text(encoding="utf-8")).get("committee_probability")
    except (OSError, ValueError, AttributeError):
        return {}
    return combined if isinstance(combined, dict) else {}


def combination_of(audit: str | Path) -> str:
    """How the audit in folder `audit` combined its members (its summary), '' unknown."""
    return str(_combined(audit).get("method") or "")


SELECTION_COLUMNS = ("id", "bin", "source", "p_chosen")
SELECTION_PREFIXES = ("margin.", "vote.", "voter.")


def selection_view(audit: str | Path, select: str | None) -> AuditView:
    """The audit as choosing pairs needs it: the columns the selection reads (ids, bins,
    sources, the committee's probability, members' margins and votes), not the whole
    table; ``active`` reruns the cleaning rules, which read every column."""
    if select == "active":
        return AuditView.load(audit)
    import pyarrow.parquet as pq

    path = Path(audit) / "audit.parquet"
    if not path.is_file():
        return AuditView.load(audit)  # says what is missing
    names = pq.ParquetFile(path).schema_arrow.names
    columns = [c for c in names if c in SELECTION_COLUMNS or c.startswith(SELECTION_PREFIXES)]
    return AuditView.load(audit, columns=columns)


def audit_rows(audit: str | Path, ids: list[str]) -> pd.DataFrame:
    """Every column of the audit's rows of `ids` (one per id), indexed by id: read from
    audit.parquet with a filter, so only those rows become a table."""
    table = pd.read_parquet(Path(audit) / "audit.parquet", filters=[("id", "in", list(ids))])
    return table.drop_duplicates("id").set_index("id")


def voters_of(audit: str | Path, view: AuditView) -> dict[str, dict[str, int]]:
    """The committee's voters as the audit counts them (``voter.NAME`` columns): per
    voter, its members and how each is counted (+1 as declared, -1 turned round), from
    the summary's ``voters``; an audit without them: one voter per member."""
    layout = _combined(audit).get("voters") or {}
    out = {}
    for v in voter_names(view.table):
        members = (layout.get(v) or {}).get("members")
        out[v] = ({str(m): int(o) for m, o in members.items()} if isinstance(members, dict)
                  else {v: int(view.orientation.get(v, 1))})
    return out


def pair_row(pair: PreferencePair, audit: dict[str, Any], members: Sequence[str],
             combination: str = "", voters: dict[str, dict[str, int]] | None = None
             ) -> store.PairRow:
    """What the project keeps of one pair: its texts and the committee's view: ``votes``
    and ``members`` count its voters (see :func:`voters_of`; default: one per member),
    ``voter_votes`` the vote each voter cast (1: for the chosen reply, 0: against,
    None: no score), ``member_votes`` each member's own vote."""
    if voters is None:
        voters = {m: {m: 1} for m in members}
    committee = {
        "p_chosen": _number(audit["p_chosen"]), "votes": int(audit["votes"]),
        "members": int(audit["members"]), "agreement": _number(audit["agreement"]),
        "voter_votes": {v: _vote(audit.get(f"voter.{v}", audit.get(f"vote.{v}")))
                        for v in voters},
        "voters": voters,
        "member_votes": {m: _vote(audit[f"vote.{m}"]) for m in members},
        "signal": str(audit.get("source_signal") or ""), "combination": combination,
    }
    body = {"prompt": pair.prompt, "chosen": pair.chosen, "rejected": pair.rejected,
            "rejected_prompt": pair.rejected_prompt, "subset": pair.subset,
            "p_chosen": pair.p_chosen}
    return store.PairRow(pair.id, body, str(audit["bin"]), str(audit.get("source") or ""),
                         committee)


def _reviewer_names(reviewers: Sequence[str]) -> list[str]:
    names = [store.check_name(n.strip()) for n in reviewers if n.strip()]
    if len(set(names)) != len(names):
        raise ValueError(f"--reviewers names a reviewer twice: {', '.join(names)}")
    return names


def pairs_by_id(data: str | Path, ids: set[str], on_error: str = "fail",
                chunk: int | None = None) -> dict[str, PreferencePair]:
    """The pairs of `data` whose ids are in `ids` (the last of copies with one id), read
    `chunk` (default :data:`~preflab.data.stream.CHUNK`) at a time: only those are
    kept."""
    by_id: dict[str, PreferencePair] = {}
    for pairs in stream.PairStream(data, on_error=on_error,  # type: ignore[arg-type]
                                    chunk=chunk or stream.CHUNK):
        by_id.update((p.id, p) for p in pairs if p.id in ids)
    return by_id


def _chosen_rows(data: str | Path, view: AuditView, audit: str | Path, config: ReviewConfig,
                 have: set[str], chunk: int | None = None) -> list[store.PairRow]:
    """The pairs the selection settings choose from the audit's table (none already in
    the project), with their texts from `data`, read `chunk` at a time."""
    table = view.table.drop_duplicates("id")  # copies of a pair are one pair to review
    ids = choose_pairs(table, config.sample, config.strata, config.seed, exclude=have,
                       select=config.select)
    if not ids:
        if have:
            return []
        if config.sample is not None:
            raise ValueError(f"{audit}: no pair that a member scored to choose")
        raise ValueError(f"{audit}: no pair in the none or low agreement bins; choose pairs "
                         "with --sample N (and --select or --strata bin|source)")
    by_id = pairs_by_id(data, set(ids), config.on_error, chunk)
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ValueError(f"{audit}: {len(missing)} chosen pairs are not in {data} (first: "
                         f"{missing[0]}): the audit is of other data")
    rows_by_id = audit_rows(audit, ids)
    how, voters = combination_of(audit), voters_of(audit, view)
    return [pair_row(by_id[i], rows_by_id.loc[i].to_dict(), view.members, how, voters)
            for i in ids]


def _counts(con: Any) -> dict[str, Any]:
    return {"pairs": con.execute("SELECT COUNT(*) FROM pairs").fetchone()[0],
            "assignments": con.execute("SELECT COUNT(*) FROM assignments").fetchone()[0],
            "reviewers": store.reviewer_names(con), "per_pair": store.per_pair(con)}


def _bins(rows: Sequence[store.PairRow]) -> dict[str, int]:
    return {b: sum(1 for r in rows if r.bin == b) for b in dict.fromkeys(r.bin for r in rows)}


def _settings(config: ReviewConfig | str | Path | None, overrides: dict[str, Any]
              ) -> ReviewConfig:
    return resolve_config(ReviewConfig, config, **overrides)


def _open_project(db: str | Path) -> Any:
    """The existing project `db`, checked and brought up to this version's tables."""
    con = store.connect(db)
    try:
        store.check_project(con, db)
        store.upgrade(con)
    except BaseException:
        con.close()
        raise
    return con


def init_review(data: str | Path, audit: str | Path, db: str | Path,
                config: ReviewConfig | str | Path | None = None, *,
                notify: Notify | None = None, chunk: int | None = None,
                **overrides: Any) -> dict[str, Any]:
    """Create the review project `db` with the settings `config` (a
    :class:`ReviewConfig` or a settings file; its defaults when None, `overrides` on
    top: ``init_review(data, audit, db, sample=30, reviewers=["ann", "bob"])``): choose
    pairs from the audit of `data` (see :func:`preflab.review.select.choose_pairs`), add
    the reviewers, give each pair ``per_pair`` reviewers, and write the settings beside
    the project (:func:`preflab.review.config.config_path`). An existing project is
    refused: :func:`add_pairs` and :func:`add_reviewers` add to one without choosing
    again what is there. Returns the counts, ``config`` (the settings file) and
    ``tokens``: {reviewer: token} (their only appearance; the database keeps a hash).
    The pairs are chosen from the audit's table and only they are kept of `data`, read
    `chunk` at a time."""
    config = _settings(config, overrides)
    names = _reviewer_names(config.reviewers)
    db = Path(db)
    if db.exists():
        raise FileExistsError(
            f"{db}: a review project is already there; `review init` makes a new one and "
            f"never chooses pairs again for an existing one. Add reviewers with `preflab "
            f"review add-reviewers {db} --reviewers NAMES`, pairs with `preflab review "
            f"add-pairs DATA --audit DIR --db {db} --sample N`")
    if not names:
        raise ValueError("a new review project needs reviewers: --reviewers alice,bob,carol")
    view = selection_view(audit, config.select)
    rows = _chosen_rows(data, view, audit, config, set(), chunk)
    db.parent.mkdir(parents=True, exist_ok=True)
    per_pair = config.per_pair
    with store.opened(db, create=True) as con:
        store.create_schema(con, config.seed, per_pair)
        added = store.add_pairs(con, rows)
        tokens = store.add_reviewers(con, names)
        if per_pair > len(names) and notify is not None:
            notify(f"--per-pair {per_pair} but the project has {len(names)} reviewers: "
                   f"each pair gets {len(names)} (add-reviewers tops them up)")
        made = store.assign(con, per_pair)
        counts = _counts(con)
    settings = config_path(db)
    settings.write_text(config_toml(config, f"ReviewConfig of {db.name}: `preflab review init "
                                            "--config` this file (with another --db) chooses "
                                            "and assigns the same pairs"), encoding="utf-8")
    return {"db": str(db), "created": True, "pairs_added": added, **counts,
            "reviewers_added": sorted(tokens), "assignments_added": made,
            "bins_added": _bins(rows), "config": str(settings), "tokens": tokens}


def add_pairs(data: str | Path, audit: str | Path, db: str | Path,
              config: ReviewConfig | str | Path | None = None, *, per_pair: int | None = None,
              **overrides: Any) -> dict[str, Any]:
    """Add pairs to the existing project `db`, chosen from the audit as ``review init``
    chooses with the selection settings of `config` (``select``, ``sample``, ``strata``,
    ``seed``, ``on_error``; `overrides` on top; pairs already there, judged or not, are
    never chosen again), each given `per_pair` reviewers (default: the project's) among
    its reviewers. Nothing already there changes."""
    config = _settings(config, overrides)
    if per_pair is not None and per_pair < 1:
        raise ValueError(f"--per-pair must be at least 1, got {per_pair}")
    view = selection_view(audit, config.select)
    con = _open_project(db)
    try:
        have = {p["pair_id"] for p in store.all_pairs(con)}
        rows = _chosen_rows(data, view, audit, config, have)
        if not rows:
            raise ValueError(f"{audit}: every pair this selection chooses is already in {db}; "
                             "choose more with --sample N")
        target = per_pair if per_pair is not None else store.per_pair(con)
        if per_pair is not None:
            store.set_per_pair(con, per_pair)
        added = store.add_pairs(con, rows)
        made = store.assign(con, target)
        counts = _counts(con)
    finally:
        con.close()
    return {"db": str(db), "pairs_added": added, **counts, "assignments_added": made,
            "bins_added": _bins(rows)}


def add_reviewers(db: str | Path, reviewers: Sequence[str], per_pair: int | None = None,
                  notify: Notify | None = None) -> dict[str, Any]:
    """Add reviewers to the existing project `db` without adding any pair.

    The rule: every pair is topped up to `per_pair` reviewers (default: the project's,
    as ``review init --per-pair`` set it), the least loaded reviewer first, so the new
    ones (who have no pairs yet) take the places that are free. A pair that already
    has that many keeps its reviewers; to give the new reviewers pairs that are full,
    raise `per_pair` (each pair then gets one more reviewer, and its quorum follows).
    Existing reviewers keep their tokens, assignments and votes. Returns the counts,
    ``assigned_to``: {new reviewer: pairs they got} and ``tokens``."""
    names = _reviewer_names(reviewers)
    if not names:
        raise ValueError("--reviewers: name at least one reviewer to add")
    if per_pair is not None and per_pair < 1:
        raise ValueError(f"--per-pair must be at least 1, got {per_pair}")
    con = _open_project(db)
    try:
        known = [n for n in names if n in set(store.reviewer_names(con))]
        if known:
            raise ValueError(f"{db}: {', '.join(known)} already in the project (a lost link: "
                             f"`preflab review tokens {db} --reissue NAME`)")
        if per_pair is not None:
            store.set_per_pair(con, per_pair)
        target = store.per_pair(con)
        tokens = store.add_reviewers(con, names)
        made = store.assign(con, target)
        got = {n: con.execute("SELECT COUNT(*) FROM assignments WHERE reviewer = ?",
                              (n,)).fetchone()[0] for n in names}
        counts = _counts(con)
    finally:
        con.close()
    idle = [n for n, k in got.items() if k == 0]
    if idle and notify is not None:
        notify(f"every pair already has {target} reviewers: {', '.join(idle)} got no pairs; "
               f"give --per-pair {target + 1} to add a reviewer to every pair, or add pairs "
               "with `preflab review add-pairs`")
    return {"db": str(db), "pairs_added": 0, **counts, "reviewers_added": names,
            "assignments_added": made, "assigned_to": got, "tokens": tokens}


def reissue_token(db: str | Path, name: str) -> str:
    """A new token for reviewer `name` of project `db`; their old one (and any browser
    logged in with it) is refused from now on."""
    con = _open_project(db)
    try:
        return store.reissue_token(con, name)
    finally:
        con.close()


def review_status(db: str | Path, min_votes: int | None = None) -> dict[str, Any]:
    """Where the project stands: per reviewer (assigned, judged, last seen) and per pair
    (assigned, votes, quorum, votes missing, consensus so far)."""
    quorum(1, min_votes)
    con = _open_project(db)
    try:
        people = store.reviewer_status(con)
        pairs = store.all_pairs(con)
        votes = store.all_votes(con)
        counts = _counts(con)
    finally:
        con.close()
    reviews, _ = review_tables(pairs, votes, min_votes)  # the export's own latest votes
    rows = [{"pair_id": r.pair_id, "bin": r.bin, "assigned": int(r.assigned),
             "votes": int(r.n_votes), "quorum": int(r.quorum),
             "votes_missing": int(r.votes_missing), "consensus": r.consensus}
            for r in reviews.itertuples(index=False)]
    return {"db": str(db), **counts, "reviewer_status": people, "pair_status": rows,
            "pairs_at_quorum": sum(r["votes_missing"] == 0 for r in rows),
            "pairs_with_consensus": sum(bool(r["consensus"]) for r in rows),
            "votes_missing": sum(r["votes_missing"] for r in rows)}
