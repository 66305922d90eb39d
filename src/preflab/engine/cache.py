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
from collections.abc import Iterable, Sequence
from pathlib import Path

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

    def get_truncated(self, fp: str, keys: Sequence[str]) -> dict[str, bool]:
        """Whether each of `keys` was truncated, for those recorded."""
        found: dict[str, bool] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start:start + 500])
            marks = ",".join("?" * len(chunk))
            found.update((k, bool(v)) for k, v in self._db.execute(
                f"SELECT key, value FROM truncated WHERE fp = ? AND key IN ({marks})",
                [fp, *chunk]))
        return found

    def put_truncated(self, fp: str, items: Iterable[tuple[str, bool]]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO truncated (fp, key, value) VALUES (?, ?, ?)",
                             [(fp, key, int(cut)) for key, cut in items])
        self._db.commit()

    def get_texts(self, fp: str, keys: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start:start + 500])
            marks = ",".join("?" * len(chunk))
            found.update(self._db.execute(
                f"SELECT key, value FROM texts WHERE fp = ? AND key IN ({marks})", [fp, *chunk]))
        return found

    def put_texts(self, fp: str, items: Iterable[tuple[str, str]]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO texts (fp, key, value) VALUES (?, ?, ?)",
                             [(fp, key, text) for key, text in items])
        self._db.commit()

    def get_many(self, fp: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start:start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, value FROM scores WHERE fp = ? AND key IN ({marks})", [fp, *chunk])
            for key, blob in rows:
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, fp: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO scores (fp, key, value) VALUES (?, ?, ?)",
            [(fp, key, np.asarray(v, dtype=np.float32).tobytes()) for key, v in items])
        self._db.commit()

    def count(self, fp: str | None = None) -> int:
        if fp is None:
            return self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM scores WHERE fp = ?", [fp]).fetchone()[0]

    def close(self) -> None:
        self._db.close()
