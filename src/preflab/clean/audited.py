"""The audit a cleaning run decides on, and the pairs it covers.

Clean reads three things of an audit: its table (as cleaning rules read it, an
:class:`AuditView`), its summary (the ``--limit`` it was made with, how many pairs
failed) and the pairs that failed (``failures.jsonl``). :class:`AuditInput` holds
them, read from a folder ``preflab audit`` wrote (:meth:`AuditInput.load`) or from an
audit in memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from preflab.audit.view import AuditView

Notify = Callable[[str], None]
FAILURES = "failures.jsonl"


def read_failures(text: str, where: str) -> dict[str, dict[str, Any]]:
    """The failed pairs of ``failures.jsonl`` (text), by id; errors name `where`:line."""
    failed: dict[str, dict[str, Any]] = {}
    for k, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            failed[str(row["id"])] = row
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{where}:{k}: not a failure record ({e})") from None
    return failed


def ids_in(ids: Sequence[str] | pa.ChunkedArray, among: set[str] | None) -> list[str]:
    """The ids of `ids` (a list or Arrow strings) that are in `among` (all: None), in
    order, as Python strings."""
    if isinstance(ids, pa.ChunkedArray):
        if among is not None:
            ids = ids.filter(pc.is_in(ids, value_set=pa.array(sorted(among), type=pa.string())))
        return ids.to_pylist()
    return [i for i in ids if among is None or i in among]


@dataclass
class AuditInput:
    """An audit as clean reads it: `view` (the table), `summary` (summary.json's
    figures; {} when unknown) and `failures` (the failed pairs by id; None: not
    listed). `name` and `listed` say where they are in messages."""

    view: AuditView
    summary: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, dict[str, Any]] | None = None
    name: str = "(in memory)"
    listed: str = FAILURES

    @classmethod
    def load(cls, folder: str | Path) -> AuditInput:
        """The audit ``preflab audit`` wrote into `folder`."""
        folder = Path(folder)
        view = AuditView.load(folder)
        path = folder / "summary.json"
        summary: Any = {}
        if path.is_file():
            try:
                summary = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as e:
                raise ValueError(f"{path}: not an audit summary ({e})") from None
            if not isinstance(summary, dict):
                raise ValueError(f"{path}: not an audit summary (a JSON object)")
        listed = folder / FAILURES
        failures = (read_failures(listed.read_text(encoding="utf-8"), str(listed))
                    if listed.is_file() else None)
        return cls(view, summary, failures, str(folder), str(listed))

    @property
    def limit(self) -> int | None:
        """The ``--limit`` the audit was made with (its summary), if any."""
        limit = self.summary.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 1):
            raise ValueError(f"{self.name}/summary.json: field 'limit' must be a positive "
                             f"integer, got {limit!r}")
        return limit

    def check_failures(self, ids: Sequence[str] | pa.ChunkedArray) -> None:
        """Fail, naming failures.jsonl, when pairs the audit left out of its table (a
        member's scorer failed on them: its summary's ``n_failed``) are among the pairs
        of `ids`: clean has no audit of them to decide on."""
        try:
            n_failed = int(self.summary.get("n_failed") or 0)
            n_read = int(self.summary.get("n_pairs") or 0) + n_failed
        except (TypeError, ValueError) as e:
            raise ValueError(f"{self.name}/summary.json: not an audit summary ({e})") from None
        if not n_failed:
            return
        failed = self.failures or {}
        present = ids_in(ids, set(failed))
        if failed and not present:
            return  # the data no longer holds them
        first = failed[present[0]] if present else None
        where = (f"listed in {self.listed}" if self.failures is not None
                 else f"its failures.jsonl ({self.listed}) is missing")
        raise ValueError(
            f"the audit {self.name}: {n_failed} of the {n_read} pairs it read failed (a "
            f"member could not score them) and are not in its table ({where}"
            + (f"; first: {first['id']}, {', '.join(first.get('members', []))}: "
               f"{'; '.join(first.get('errors', []))[:200]}" if first else "")
            + "). clean decides only on audited pairs: audit again once every member can "
              "score them (the score cache keeps the rest), or without the member that fails")

    def covered(self, ids: Sequence[str] | pa.ChunkedArray, limit: int | None = None,
                data: str | Path = "the data", notify: Notify | None = None) -> int:
        """How many of the pairs of `ids` (the data's, in order) the audit covers: the
        first `limit` (clean's ``--limit``, the audit's meaning: the first N pairs
        read), else the first N of the audit's own ``--limit``, else, when the audit's
        ids are the data's first pairs (an audit made with ``--limit`` before its
        summary recorded it), those; else all of them. `notify` hears how many pairs
        are left out."""
        view, recorded = self.view, self.limit
        n_audit = len(view.table)
        if limit is not None:
            if limit < 1:
                raise ValueError(f"--limit must be at least 1, got {limit}")
            if recorded is not None and limit != recorded:
                raise ValueError(f"--limit {limit}, but the audit {view.source} was made with "
                                 f"--limit {recorded}: give --limit {recorded} or leave it out")
            if min(limit, len(ids)) != n_audit:
                raise ValueError(f"--limit {limit}: the audit {view.source} covers {n_audit} "
                                 "pairs; clean the pairs the audit covers (--limit "
                                 f"{n_audit}, or leave it out)")
            take = limit
        elif recorded is not None:
            take = recorded
        elif len(ids) > n_audit and ids_in(ids[:n_audit], None) == list(view.table["id"]):
            take = n_audit
        else:
            return len(ids)
        if take < len(ids) and notify is not None:
            why = f"--limit {limit}" if limit is not None else (
                f"the audit's --limit {recorded}" if recorded is not None
                else "the audit covers only them")
            notify(f"cleaning the first {take} of the {len(ids)} pairs of {data} ({why}); "
                   f"the other {len(ids) - take} are not in the output")
        return min(take, len(ids))
