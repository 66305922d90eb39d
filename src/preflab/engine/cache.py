"""Scores on disk, keyed by (scorer fingerprint, text hash).

A SQLite file in WAL mode: every finished batch is committed, so an interrupted
run resumes where it stopped, and adding a committee member computes only that
member. Values are float32 vectors (a scalar is a vector of one); generated texts
(a judge's rationales) live in a table of their own, and so does whether the scorer
had to shorten a unit's input to fit its model (so a cached score still counts as
truncated).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np


class ScoreCache:
    """Persistent map (fingerprint, key) -> float32 vector."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path) if self.path else ":memory:", timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS scores (fp TEXT NOT NULL, key TEXT NOT NULL,"
                         " value BLOB NOT NULL, PRIMARY KEY (fp, key)) WITHOUT ROWID")
        self._db.execute("CREATE TABLE IF NOT EXISTS texts (fp TEXT NOT NULL, key TEXT NOT NULL,"
                         " value TEXT NOT NULL, PRIMARY KEY (fp, key)) WITHOUT ROWID")
        self._db.execute("CREATE TABLE IF NOT EXISTS truncated (fp TEXT NOT NULL, key TEXT NOT "
                         "NULL, value INTEGER NOT NULL, PRIMARY KEY (fp, key)) WITHOUT ROWID")
        self._db.commit()

    def _select(self, table: str, fp: str, keys: Sequence[str]) -> Iterator[tuple[str, Any]]:
        """(key, value) of each of `keys` recorded in `table` under `fp` (asked 500 at a
        time: SQLite's limit on a statement's variables)."""
        for start in range(0, len(keys), 500):
            chunk = list(keys[start:start + 500])
            marks = ",".join("?" * len(chunk))
            yield from self._db.execute(
                f"SELECT key, value FROM {table} WHERE fp = ? AND key IN ({marks})",
                [fp, *chunk])

    def _put(self, table: str, fp: str, items: Iterable[tuple[str, Any]]) -> None:
        """Record (key, value) items in `table` under `fp`, replacing what was there."""
        self._db.executemany(f"INSERT OR REPLACE INTO {table} (fp, key, value) VALUES (?, ?, ?)",
                             [(fp, key, value) for key, value in items])
        self._db.commit()

    def get_truncated(self, fp: str, keys: Sequence[str]) -> dict[str, bool]:
        """Whether each of `keys` was truncated, for those recorded."""
        return {k: bool(v) for k, v in self._select("truncated", fp, keys)}

    def put_truncated(self, fp: str, items: Iterable[tuple[str, bool]]) -> None:
        self._put("truncated", fp, ((key, int(cut)) for key, cut in items))

    def get_texts(self, fp: str, keys: Sequence[str]) -> dict[str, str]:
        return dict(self._select("texts", fp, keys))

    def put_texts(self, fp: str, items: Iterable[tuple[str, str]]) -> None:
        self._put("texts", fp, items)

    def get_many(self, fp: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        return {k: np.frombuffer(blob, dtype=np.float32)
                for k, blob in self._select("scores", fp, keys)}

    def put_many(self, fp: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        self._put("scores", fp, ((key, np.asarray(v, dtype=np.float32).tobytes())
                                 for key, v in items))

    def count(self, fp: str | None = None) -> int:
        if fp is None:
            return self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM scores WHERE fp = ?", [fp]).fetchone()[0]

    def close(self) -> None:
        self._db.close()
