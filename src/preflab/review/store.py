"""The review project's storage: one SQLite file in WAL mode.

Tables: ``meta`` (schema version, seed, the CSRF secret), ``pairs`` (each pair under
review, its texts and what the committee said), ``reviewers`` (name and the SHA-256 of
the access token; the token itself is never stored), ``assignments`` (which reviewer
judges which pair, and the order the two replies are shown in: ``CR`` = chosen as A,
``RC`` = rejected as A) and ``votes``: append-only, one row per submission (triggers
refuse UPDATE and DELETE). An edit is a new row; the latest row of a (pair, reviewer)
counts. Each submission carries a client-made id (``submission``, UNIQUE), so a retried
request never makes a second row. ``seen`` keeps when each reviewer last opened the page.
``meta`` also keeps ``per_pair``, the reviewers each pair is meant to have.

Every write is one ``BEGIN IMMEDIATE`` transaction on its own connection with a busy
timeout, so concurrent servers, threads and commands queue rather than fail;
``synchronous=FULL`` makes a committed vote survive a crash of the process or machine.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1"
CHOICES = ("A", "B", "both-good", "both-bad", "uncertain")
ORDERS = ("CR", "RC")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
BUSY_MS = 30_000

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pairs (
    pair_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL UNIQUE,
    pair_json TEXT NOT NULL,
    bin TEXT NOT NULL,
    source TEXT NOT NULL,
    committee_json TEXT NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reviewers (
    name TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS assignments (
    pair_id TEXT NOT NULL REFERENCES pairs(pair_id),
    reviewer TEXT NOT NULL REFERENCES reviewers(name),
    shown_order TEXT NOT NULL CHECK (shown_order IN ('CR', 'RC')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (pair_id, reviewer)
);
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    submission TEXT NOT NULL UNIQUE,
    pair_id TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    shown_order TEXT NOT NULL CHECK (shown_order IN ('CR', 'RC')),
    choice TEXT NOT NULL CHECK (choice IN ({", ".join(f"'{c}'" for c in CHOICES)})),
    source_tag TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    page_version TEXT NOT NULL,
    FOREIGN KEY (pair_id, reviewer) REFERENCES assignments(pair_id, reviewer)
);
CREATE TABLE IF NOT EXISTS seen (
    reviewer TEXT PRIMARY KEY REFERENCES reviewers(name),
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS votes_by_reviewer ON votes (reviewer, pair_id, id);
CREATE TRIGGER IF NOT EXISTS votes_append_only_update BEFORE UPDATE ON votes
BEGIN SELECT RAISE(ABORT, 'votes are append-only: submit a new vote instead'); END;
CREATE TRIGGER IF NOT EXISTS votes_append_only_delete BEFORE DELETE ON votes
BEGIN SELECT RAISE(ABORT, 'votes are append-only: nothing is deleted'); END;
CREATE TRIGGER IF NOT EXISTS assignments_kept BEFORE DELETE ON assignments
BEGIN SELECT RAISE(ABORT, 'assignments are never removed'); END;
"""


def now() -> str:
    """The time in UTC, ISO 8601 with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def token_hash(token: str) -> str:
    """What the database keeps of a token (tokens are 256 random bits: no slow hash)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def connect(path: str | Path, create: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (writes use :func:`transaction`), WAL, a busy
    timeout, foreign keys on. Without `create`, a missing file is an error."""
    path = Path(path)
    if not create and not path.is_file():
        raise FileNotFoundError(f"{path}: no review project here; create one with "
                                "`preflab review init`")
    con = sqlite3.connect(path, timeout=BUSY_MS / 1000, isolation_level=None,
                          check_same_thread=False)
    con.row_factory = sqlite3.Row
    con.execute(f"PRAGMA busy_timeout={BUSY_MS}")
    try:
        mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except sqlite3.DatabaseError as e:
        con.close()
        raise ValueError(f"{path}: not a review project ({e})") from None
    if mode.lower() != "wal":
        con.close()
        raise OSError(f"{path}: SQLite could not switch to WAL mode (got {mode}); put the "
                      "project on a local disk")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("PRAGMA foreign_keys=ON")
    return con


@contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once (``BEGIN IMMEDIATE``): committed on success,
    rolled back on any error."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


@contextmanager
def opened(path: str | Path, create: bool = False) -> Iterator[sqlite3.Connection]:
    """A connection that is closed afterwards."""
    con = connect(path, create)
    try:
        yield con
    finally:
        con.close()


def create_schema(con: sqlite3.Connection, seed: int, per_pair: int | None = None) -> None:
    """The tables (idempotent) and, for a new project, its seed, CSRF secret and the
    reviewers per pair."""
    con.executescript(SCHEMA)
    with transaction(con):
        for key, value in (("schema_version", SCHEMA_VERSION), ("seed", str(seed)),
                           ("secret", secrets.token_hex(32)), ("created_at", now()),
                           *((("per_pair", str(per_pair)),) if per_pair else ())):
            con.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))


def upgrade(con: sqlite3.Connection) -> None:
    """Add the tables a project made by an earlier preflab lacks (idempotent)."""
    con.executescript(SCHEMA)


def per_pair(con: sqlite3.Connection) -> int:
    """The reviewers each pair is meant to have: as recorded, else (a project made
    before it was recorded) the most any pair has."""
    value = meta(con).get("per_pair")
    if value is not None:
        return int(value)
    row = con.execute("SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM assignments "
                      "GROUP BY pair_id)").fetchone()
    return int(row[0] or 1)


def set_per_pair(con: sqlite3.Connection, value: int) -> None:
    with transaction(con):
        con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('per_pair', ?)",
                    (str(value),))


def meta(con: sqlite3.Connection) -> dict[str, str]:
    return {r["key"]: r["value"] for r in con.execute("SELECT key, value FROM meta")}


def check_project(con: sqlite3.Connection, path: str | Path) -> None:
    """Fail clearly on a file that is not a review project (of this version)."""
    try:
        version = meta(con).get("schema_version")
    except sqlite3.DatabaseError as e:
        raise ValueError(f"{path}: not a review project ({e})") from None
    if version != SCHEMA_VERSION:
        raise ValueError(f"{path}: not a review project of schema {SCHEMA_VERSION} "
                         f"(schema_version {version!r})")


@dataclass(frozen=True)
class PairRow:
    """A pair to put under review: its texts and the committee's view of it."""

    pair_id: str
    pair: dict[str, Any]  # prompt, chosen, rejected, rejected_prompt, subset, p_chosen
    bin: str
    source: str
    committee: dict[str, Any]  # p_chosen, votes, members, member votes, signal


def add_pairs(con: sqlite3.Connection, rows: Sequence[PairRow]) -> int:
    """Add pairs after those already there (known ids are left as they are); how many
    were new."""
    added = 0
    with transaction(con):
        start = con.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM pairs").fetchone()[0]
        for row in rows:
            cur = con.execute(
                "INSERT OR IGNORE INTO pairs (pair_id, position, pair_json, bin, source, "
                "committee_json, added_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (row.pair_id, start + added, json.dumps(row.pair, ensure_ascii=False),
                 row.bin, row.source, json.dumps(row.committee, ensure_ascii=False), now()))
            added += cur.rowcount
    return added


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ValueError(f"reviewer name {name!r}: use 1-40 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return name


def add_reviewers(con: sqlite3.Connection, names: Iterable[str]) -> dict[str, str]:
    """Create the reviewers not yet in the project: {name: access token} of the new
    ones (the only time a token is seen; existing reviewers keep theirs)."""
    tokens: dict[str, str] = {}
    with transaction(con):
        known = {r[0] for r in con.execute("SELECT name FROM reviewers")}
        for name in names:
            check_name(name)
            if name in known or name in tokens:
                continue
            token = secrets.token_urlsafe(32)
            con.execute("INSERT INTO reviewers (name, token_hash, created_at) VALUES (?, ?, ?)",
                        (name, token_hash(token), now()))
            tokens[name] = token
    return tokens


def reissue_token(con: sqlite3.Connection, name: str) -> str:
    """A new access token for reviewer `name` (returned once); the old one stops
    working at once. KeyError for an unknown reviewer."""
    token = secrets.token_urlsafe(32)
    with transaction(con):
        cur = con.execute("UPDATE reviewers SET token_hash = ? WHERE name = ?",
                          (token_hash(token), name))
        if cur.rowcount != 1:
            known = ", ".join(r[0] for r in con.execute("SELECT name FROM reviewers "
                                                        "ORDER BY name"))
            raise KeyError(f"no reviewer {name!r} in this project (it has: {known})")
    return token


def mark_seen(con: sqlite3.Connection, reviewer: str) -> None:
    """Record that `reviewer` opened the page now."""
    with transaction(con):
        con.execute("INSERT INTO seen (reviewer, at) VALUES (?, ?) ON CONFLICT (reviewer) "
                    "DO UPDATE SET at = excluded.at", (reviewer, now()))


def shown_order(seed: str, pair_id: str, reviewer: str) -> str:
    """The order the replies are shown to `reviewer`: random per (pair, reviewer) and
    reproducible from the project's seed."""
    digest = hashlib.sha256(f"{seed}\0{pair_id}\0{reviewer}".encode()).digest()
    return ORDERS[digest[0] & 1]


def assign(con: sqlite3.Connection, per_pair: int) -> int:
    """Give every pair up to `per_pair` reviewers (the least loaded first, ties broken by
    the seed; a pair's reviewers are all different); existing assignments never change.
    How many were made."""
    made = 0
    with transaction(con):
        seed = meta(con)["seed"]
        reviewers = [r[0] for r in con.execute("SELECT name FROM reviewers ORDER BY name")]
        load = {name: 0 for name in reviewers}
        for r in con.execute("SELECT reviewer, COUNT(*) FROM assignments GROUP BY reviewer"):
            load[r[0]] = r[1]
        have: dict[str, set[str]] = {}
        for r in con.execute("SELECT pair_id, reviewer FROM assignments"):
            have.setdefault(r[0], set()).add(r[1])
        for (pair_id,) in con.execute("SELECT pair_id FROM pairs ORDER BY position").fetchall():
            mine = have.get(pair_id, set())
            free = [n for n in reviewers if n not in mine]
            free.sort(key=lambda n: (load[n], hashlib.sha256(
                f"{seed}\0{pair_id}\0{n}".encode()).hexdigest()))
            for name in free[:max(0, per_pair - len(mine))]:
                con.execute("INSERT INTO assignments (pair_id, reviewer, shown_order, "
                            "created_at) VALUES (?, ?, ?, ?)",
                            (pair_id, name, shown_order(seed, pair_id, name), now()))
                load[name] += 1
                made += 1
    return made


def reviewer_for(con: sqlite3.Connection, token: str | None) -> str | None:
    """The reviewer whose token this is, or None."""
    if not token or len(token) > 200:
        return None
    row = con.execute("SELECT name FROM reviewers WHERE token_hash = ?",
                      (token_hash(token),)).fetchone()
    return row[0] if row else None


def queue(con: sqlite3.Connection, reviewer: str) -> list[dict[str, Any]]:
    """The reviewer's pairs in project order: id and their latest choice (or None)."""
    rows = con.execute(
        "SELECT a.pair_id, (SELECT v.choice FROM votes v WHERE v.pair_id = a.pair_id AND "
        "v.reviewer = a.reviewer ORDER BY v.id DESC LIMIT 1) AS choice FROM assignments a "
        "JOIN pairs p ON p.pair_id = a.pair_id WHERE a.reviewer = ? ORDER BY p.position",
        (reviewer,))
    return [{"pair_id": r[0], "choice": r[1]} for r in rows]


def progress(con: sqlite3.Connection, reviewer: str) -> dict[str, Any]:
    """The reviewer's judged/assigned pairs, and the project's judged assignments and
    pairs with all their judgements in. Pairs, not vote rows: an edit counts once."""
    mine_total, mine_done = con.execute(
        "SELECT COUNT(DISTINCT a.pair_id), COUNT(DISTINCT v.pair_id) FROM assignments a "
        "LEFT JOIN votes v ON v.pair_id = a.pair_id AND v.reviewer = a.reviewer "
        "WHERE a.reviewer = ?", (reviewer,)).fetchone()
    total = con.execute("SELECT COUNT(*) FROM assignments").fetchone()[0]
    done = con.execute("SELECT COUNT(*) FROM (SELECT DISTINCT pair_id, reviewer FROM votes)"
                       ).fetchone()[0]
    pairs = con.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
    complete = con.execute(
        "SELECT COUNT(*) FROM (SELECT a.pair_id FROM assignments a LEFT JOIN (SELECT DISTINCT "
        "pair_id, reviewer FROM votes) v ON v.pair_id = a.pair_id AND v.reviewer = a.reviewer "
        "GROUP BY a.pair_id HAVING COUNT(v.reviewer) = COUNT(*))").fetchone()[0]
    return {"mine": {"done": mine_done, "total": mine_total},
            "project": {"done": done, "total": total, "pairs": pairs,
                        "pairs_complete": complete}}


def assignment(con: sqlite3.Connection, reviewer: str, pair_id: str) -> sqlite3.Row | None:
    """The pair as assigned to `reviewer` (with its shown order), or None if it is not
    theirs."""
    return con.execute(
        "SELECT p.pair_id, p.position, p.pair_json, p.bin, p.source, p.committee_json, "
        "a.shown_order FROM assignments a JOIN pairs p ON p.pair_id = a.pair_id "
        "WHERE a.reviewer = ? AND a.pair_id = ?", (reviewer, pair_id)).fetchone()


def latest_vote(con: sqlite3.Connection, reviewer: str, pair_id: str) -> dict[str, Any] | None:
    row = con.execute(
        "SELECT id, choice, source_tag, note, created_at FROM votes WHERE reviewer = ? AND "
        "pair_id = ? ORDER BY id DESC LIMIT 1", (reviewer, pair_id)).fetchone()
    return dict(row) if row else None


@dataclass(frozen=True)
class Vote:
    """One submission as the server received it."""

    pair_id: str
    choice: str
    source_tag: str
    note: str
    page_version: str
    submission: str


def record_vote(con: sqlite3.Connection, reviewer: str, vote: Vote) -> tuple[int, bool]:
    """Append `vote` as a new row: (its id, True), or for a submission id seen before
    from this reviewer, (the existing row's id, False). KeyError: the pair is not
    assigned to `reviewer`; PermissionError: the submission id is another reviewer's."""
    with transaction(con):
        row = con.execute("SELECT id, reviewer FROM votes WHERE submission = ?",
                          (vote.submission,)).fetchone()
        if row is not None:
            if row["reviewer"] != reviewer:
                raise PermissionError("this submission id belongs to another reviewer")
            return int(row["id"]), False
        found = con.execute("SELECT shown_order FROM assignments WHERE reviewer = ? AND "
                            "pair_id = ?", (reviewer, vote.pair_id)).fetchone()
        if found is None:
            raise KeyError(f"pair {vote.pair_id} is not assigned to {reviewer}")
        cur = con.execute(
            "INSERT INTO votes (submission, pair_id, reviewer, shown_order, choice, source_tag,"
            " note, created_at, page_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (vote.submission, vote.pair_id, reviewer, found["shown_order"], vote.choice,
             vote.source_tag, vote.note, now(), vote.page_version))
        return int(cur.lastrowid or 0), True


def all_votes(con: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every vote row, oldest first."""
    return [dict(r) for r in con.execute(
        "SELECT id, submission, pair_id, reviewer, shown_order, choice, source_tag, note, "
        "created_at, page_version FROM votes ORDER BY id")]


def all_pairs(con: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every pair of the project, in project order, with its assigned reviewers."""
    rows = []
    for r in con.execute("SELECT pair_id, position, pair_json, bin, source, committee_json "
                         "FROM pairs ORDER BY position"):
        d = dict(r)
        d["pair"] = json.loads(d.pop("pair_json"))
        d["committee"] = json.loads(d.pop("committee_json"))
        d["assigned"] = [x[0] for x in con.execute(
            "SELECT reviewer FROM assignments WHERE pair_id = ? ORDER BY reviewer",
            (d["pair_id"],))]
        rows.append(d)
    return rows


def reviewer_names(con: sqlite3.Connection) -> list[str]:
    return [r[0] for r in con.execute("SELECT name FROM reviewers ORDER BY name")]


def reviewer_status(con: sqlite3.Connection) -> list[dict[str, Any]]:
    """Per reviewer: pairs assigned, pairs judged, votes (edits included), when they
    last voted and last opened the page (None: never)."""
    rows = con.execute(
        "SELECT r.name, r.created_at, "
        "(SELECT COUNT(*) FROM assignments a WHERE a.reviewer = r.name), "
        "(SELECT COUNT(DISTINCT v.pair_id) FROM votes v WHERE v.reviewer = r.name), "
        "(SELECT COUNT(*) FROM votes v WHERE v.reviewer = r.name), "
        "(SELECT MAX(v.created_at) FROM votes v WHERE v.reviewer = r.name), "
        "(SELECT s.at FROM seen s WHERE s.reviewer = r.name) "
        "FROM reviewers r ORDER BY r.name").fetchall()
    out = []
    for name, created, assigned, judged, n_votes, voted, opened in rows:
        last = max((t for t in (voted, opened) if t), default=None)
        out.append({"reviewer": name, "created_at": created, "assigned": assigned,
                    "judged": judged, "open": assigned - judged, "vote_rows": n_votes,
                    "last_vote": voted, "last_seen": last})
    return out
