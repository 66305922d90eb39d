"""Pairs on disk for a stage that streams: read once into a Parquet file in row groups,
then read back a chunk at a time, so no step holds every pair as Python objects.

What a stage needs of every pair at once is small and kept in memory as arrays: ids,
subsets, injected-flip flags and 64-bit hashes of the keys that tie pairs into groups
(copies, one prompt, a shared reply: :func:`preflab.data.groups.hashed_groups`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from preflab.data import stream
from preflab.data.groups import hashed_groups, pair_keys
from preflab.data.pair import PAIR_SCHEMA, PreferencePair
from preflab.data.parse import OnError, Reject
from preflab.data.stream import PairStream


@dataclass
class PairSpill:
    """Pairs spilled to `path` (Parquet, :data:`PAIR_SCHEMA`), and per pair what a
    stage needs of all of them at once (`id_chunks`, `subsets`, `flipped`, `keys`:
    :func:`~preflab.data.groups.pair_keys` per chunk). `keep` masks pairs out (those a
    member failed on) without rewriting the file."""

    path: Path
    id_chunks: list[pa.Array] = field(default_factory=list)
    subsets: list[str | None] = field(default_factory=list)
    flipped: list[Any] = field(default_factory=list)
    keys: list[np.ndarray] = field(default_factory=list)
    n_records: int = 0
    rejects: list[Reject] = field(default_factory=list)
    oversized: int = 0
    format: str | None = None
    keep: np.ndarray | None = None
    n_read: int = 0  # pairs in the file, masked or not

    def __len__(self) -> int:
        return self.n_read if self.keep is None else int(self.keep.sum())

    def _kept(self, values: list[Any]) -> list[Any]:
        return values if self.keep is None else [v for v, k in zip(values, self.keep,
                                                                    strict=True) if k]

    def id_array(self) -> pa.ChunkedArray:
        """Every pair's id, masked or not, as Arrow strings."""
        return pa.chunked_array(self.id_chunks, type=pa.string())

    def pair_ids(self) -> list[str]:
        return self._kept(self.id_array().to_pylist())

    def pair_subsets(self) -> list[str | None]:
        return self._kept(self.subsets)

    def pair_flipped(self) -> list[Any]:
        return self._kept(self.flipped)

    def groups(self) -> np.ndarray:
        """:func:`~preflab.data.groups.pair_groups` of the kept pairs."""
        keys = np.concatenate(self.keys) if self.keys else np.zeros((0, 4), dtype=np.int64)
        return hashed_groups(keys if self.keep is None else keys[self.keep])

    def id_keys(self) -> np.ndarray:
        """64-bit hashes of the kept pairs' ids (equal ids, equal hashes)."""
        keys = np.concatenate(self.keys) if self.keys else np.zeros((0, 4), dtype=np.int64)
        return (keys if self.keep is None else keys[self.keep])[:, 0].copy()

    def without(self, ids: set[str]) -> PairSpill:
        """The same spill with the pairs of `ids` masked out."""
        drop = pc.is_in(self.id_array(), value_set=pa.array(sorted(ids), type=pa.string()))
        keep = ~np.asarray(drop.to_numpy(zero_copy_only=False), dtype=bool)
        if self.keep is not None:
            keep &= self.keep
        return PairSpill(self.path, self.id_chunks, self.subsets, self.flipped, self.keys,
                         self.n_records, self.rejects, self.oversized, self.format, keep,
                         self.n_read)

    def chunks(self, size: int | None = None) -> Iterator[list[PreferencePair]]:
        """The kept pairs, in order, `size` (default :data:`~preflab.data.stream.CHUNK`)
        at a time."""
        start = 0
        size = size or stream.CHUNK
        for batch in pq.ParquetFile(self.path).iter_batches(batch_size=size):
            rows = batch.to_pylist()
            keep = (self.keep[start:start + len(rows)] if self.keep is not None
                    else [True] * len(rows))
            start += len(rows)
            pairs = [PreferencePair.from_row(r) for r, k in zip(rows, keep, strict=True) if k]
            del rows, batch
            if pairs:
                yield pairs
        pa.default_memory_pool().release_unused()

    def fetch(self, ids: set[str]) -> dict[str, PreferencePair]:
        """The pairs of `ids`: each row group's ids are read, and only a row group that
        holds one of them is read whole (only its matching rows become objects)."""
        wanted = pa.array(sorted(ids), type=pa.string())
        found: dict[str, PreferencePair] = {}
        file = pq.ParquetFile(self.path)
        for group in range(file.num_row_groups):
            if not pc.any(pc.is_in(file.read_row_group(group, columns=["id"]).column(0),
                                   value_set=wanted)).as_py():
                continue
            rows = file.read_row_group(group)
            for row in rows.filter(pc.is_in(rows.column("id"), value_set=wanted)).to_pylist():
                found.setdefault(row["id"], PreferencePair.from_row(row))
        pa.default_memory_pool().release_unused()
        return found


def spill_pairs(data: str | Path, path: Path, on_error: OnError = "fail",
                rejects: str | Path | None = None, limit: int | None = None,
                count_oversized: Callable[[list[PreferencePair]], int] | None = None,
                chunk: int | None = None, index: bool = True) -> PairSpill:
    """Read `data` (any format preflab reads, as :func:`preflab.data.read.read_pairs`
    does: same parsing, rejects and errors) into a spill file at `path`, `chunk`
    pairs at a time; stop after `limit` pairs. `count_oversized` counts the texts of a
    chunk that every member will truncate. Without `index` only the group keys are
    kept in memory (no ids, subsets or flip flags: what ``split`` needs)."""
    source = PairStream(data, on_error=on_error, rejects_path=rejects, limit=limit,
                        chunk=chunk)
    spill = PairSpill(path)
    with pq.ParquetWriter(path, PAIR_SCHEMA) as writer:
        for pairs in source:
            writer.write_batch(pa.RecordBatch.from_pylist([p.to_row() for p in pairs],
                                                          schema=PAIR_SCHEMA))
            spill.n_read += len(pairs)
            spill.keys.append(pair_keys(pairs))
            if count_oversized is not None:
                spill.oversized += count_oversized(pairs)
            if not index:
                continue
            spill.id_chunks.append(pa.array([p.id for p in pairs], type=pa.string()))
            spill.subsets.extend(sys.intern(p.subset) if p.subset else p.subset for p in pairs)
            spill.flipped.extend(p.meta.get("flipped") for p in pairs)
    spill.n_records, spill.rejects, spill.format = source.n_records, source.rejects, source.format
    return spill
