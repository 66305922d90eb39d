"""``pl.ReviewProject``: a human-review project from Python: create it from an audit,
record votes as a script (or read those people gave on the review page), export the
verdicts that ``pl.clean(..., review=...)`` applies."""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from preflab.api.audit import Audit
from preflab.api.notify import Notify, notifier
from preflab.data.source import PairsInput, pairs_source
from preflab.review import store
from preflab.review.config import ReviewConfig

VERDICTS = ("chosen", "rejected", "both-good", "both-bad", "uncertain")


@dataclass
class ReviewProject:
    """A review project (one SQLite file, `db`). `tokens` holds each new reviewer's
    login token: shown once, when the project or the reviewer is created."""

    db: Path
    tokens: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def create(cls, data: PairsInput, audit: Audit | str | Path, db: str | Path,
               config: ReviewConfig | str | Path | None = None, *,
               notify: Notify | None = None,
               **overrides: Any) -> ReviewProject:
        """Choose pairs of `data` from its `audit` (an :class:`Audit` or an audit folder)
        and create the project `db` (refused if it exists); `config` and `overrides`
        as ``preflab review init`` (``sample=20, reviewers=["ann", "bob", "cy"]``). Each
        warning goes to `notify` as a line of text, else to :func:`warnings.warn`."""
        from preflab.review.project import init_review

        with pairs_source(data) as source, tempfile.TemporaryDirectory() as scratch:
            folder = audit if not isinstance(audit, Audit) else (
                audit.folder or audit.save(Path(scratch) / "audit"))  # an audit in memory
            made = init_review(source, folder, db, config, notify=notifier(notify),
                               **overrides)
        return cls(Path(db), made["tokens"])

    @classmethod
    def open(cls, db: str | Path) -> ReviewProject:
        """An existing project."""
        if not Path(db).is_file():
            raise FileNotFoundError(f"{db}: no review project (create one first)")
        return cls(Path(db))

    @property
    def reviewers(self) -> list[str]:
        with store.opened(self.db) as con:
            return store.reviewer_names(con)

    def queue(self, reviewer: str) -> list[str]:
        """The ids of the pairs `reviewer` has still to judge, in their order."""
        with store.opened(self.db) as con:
            return [q["pair_id"] for q in store.queue(con, reviewer)]

    def pairs(self) -> pd.DataFrame:
        """The project's pairs with what the audit said of each."""
        with store.opened(self.db) as con:
            return pd.DataFrame(store.all_pairs(con))

    def vote(self, reviewer: str, pair_id: str, verdict: str, note: str = "") -> None:
        """Record `reviewer`'s verdict on a pair of theirs: ``chosen`` or ``rejected``
        (which reply is better), ``both-good``, ``both-bad`` or ``uncertain``. A later
        vote on the same pair replaces it in the export, as on the review page."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}; got {verdict!r}")
        with store.opened(self.db) as con:
            row = store.assignment(con, reviewer, pair_id)
            if row is None:
                raise KeyError(f"pair {pair_id} is not assigned to {reviewer}")
            choice = verdict
            if verdict in ("chosen", "rejected"):  # the page shows the replies as A and B
                choice = "A" if (verdict == "chosen") == (row["shown_order"] == "CR") else "B"
            store.record_vote(con, reviewer, store.Vote(pair_id, choice, "", note, "python",
                                                        uuid.uuid4().hex))

    def status(self, min_votes: int | None = None) -> dict[str, Any]:
        """Reviewers' progress and the pairs against their quorum."""
        from preflab.review.project import review_status

        return review_status(self.db, min_votes)

    def export(self, out: str | Path, *, overwrite: bool = False,
               min_votes: int | None = None) -> Path:
        """Write the verdicts as ``preflab review export`` does (reviews.parquet, the
        consensus per pair under the quorum, agreement, report) and return the folder,
        which ``pl.clean(data, audit, review=folder)`` applies."""
        from preflab.review.export import export_review

        export_review(self.db, out, overwrite, min_votes)
        return Path(out)
