"""Pairs on disk for an audit that streams: read once into a Parquet file in row groups,
then read back a chunk at a time, so no step holds every pair as Python objects.

What an audit needs of every pair at once is small and kept in memory: ids,
subsets, injected-flip flags and 64-bit hashes of the keys that tie pairs into groups
(copies, one prompt, a shared reply: :mod:`preflab.data.groups`). Features too large
for memory go to a :class:`RowFile` on disk, read back with plain reads (pages of a
memory map would count as resident memory once touched).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from preflab.data.containers import iter_records, kind_of, parquet_types, unit_of
from preflab.data.groups import frequent_replies, prompt_key, text_key
from preflab.data.hh import subset_from_filename
from preflab.data.pair import PAIR_SCHEMA, PreferencePair
from preflab.data.read import Reject, _RecordParser

CHUNK = 16384  # pairs in memory at a time (also the row group of the spill file)
BLOCK_BYTES = 32 * 2**20  # what a RowFile reads at a time


def key64(kind: str, key: str) -> int:
    """A 64-bit hash of a grouping key (id, prompt or reply) and its kind."""
    return int.from_bytes(hashlib.blake2b(f"{kind}\x1f{key}".encode(), digest_size=8).digest(),
                          "little", signed=True)


def first_appearance_groups(keys: np.ndarray) -> np.ndarray:
    """Groups of rows that share any key (a column of `keys`), transitively, numbered by
    first appearance: :func:`preflab.data.groups.group_ids` on hashed keys, in arrays."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    frequent = np.zeros(keys.shape, dtype=bool)
    frequent[:, 2:] = frequent_replies(keys[:, 2:])  # columns: id, prompt, replies...
    rows, cols = [], []
    for k, column in enumerate(keys.T):  # link each row to the first row holding the key
        _, first, inverse = np.unique(column, return_index=True, return_inverse=True)
        rows.append(np.arange(n))
        cols.append(np.where(frequent[:, k], np.arange(n), first[inverse]))
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, first_row = np.unique(labels, return_index=True)
    rank = np.empty(len(first_row), dtype=np.int64)
    rank[np.argsort(first_row)] = np.arange(len(first_row))
    return rank[labels]


class RowFile:
    """A 2-D float64 array on disk: rows appended in blocks, read back by slice or by
    row numbers a block at a time (enough of numpy's indexing for cross-fitting)."""

    def __init__(self, path: Path, width: int) -> None:
        self.path, self.width, self.rows = path, width, 0
        self.block = max(1, BLOCK_BYTES // (8 * width))
        path.write_bytes(b"")

    def append(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=np.float64).reshape(-1, self.width)
        with self.path.open("ab") as f:
            values.tofile(f)
        self.rows += len(values)

    def __len__(self) -> int:
        return self.rows

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.width

    def _read(self, start: int, stop: int) -> np.ndarray:
        count = (stop - start) * self.width
        return np.fromfile(self.path, dtype=np.float64, count=count,
                           offset=start * self.width * 8).reshape(-1, self.width)

    def __getitem__(self, index: slice | np.ndarray) -> np.ndarray:
        if isinstance(index, slice):
            start, stop, step = index.indices(self.rows)
            return self._read(start, stop)[::step] if stop > start else np.zeros((0, self.width))
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        out = np.empty((len(index), self.width))
        order = np.argsort(index, kind="stable")
        ordered = index[order]
        for start in range(0, self.rows, self.block):
            lo, hi = np.searchsorted(ordered, [start, start + self.block])
            if hi > lo:
                out[order[lo:hi]] = self._read(start, min(start + self.block, self.rows))[
                    ordered[lo:hi] - start]
        return out


@dataclass
class PairSpill:
    """Pairs spilled to `path` (Parquet, :data:`PAIR_SCHEMA`), and per pair what an
    audit needs of all of them at once. `keep` masks pairs out (those a member failed
    on) without rewriting the file."""

    path: Path
    ids: list[str] = field(default_factory=list)
    subsets: list[str | None] = field(default_factory=list)
    flipped: list[Any] = field(default_factory=list)
    keys: list[np.ndarray] = field(default_factory=list)  # per chunk: [pairs, 4] int64
    n_records: int = 0
    rejects: list[Reject] = field(default_factory=list)
    oversized: int = 0
    keep: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids) if self.keep is None else int(self.keep.sum())

    def _kept(self, values: list[Any]) -> list[Any]:
        return values if self.keep is None else [v for v, k in zip(values, self.keep,
                                                                    strict=True) if k]

    def pair_ids(self) -> list[str]:
        return self._kept(self.ids)

    def pair_subsets(self) -> list[str | None]:
        return self._kept(self.subsets)

    def pair_flipped(self) -> list[Any]:
        return self._kept(self.flipped)

    def groups(self) -> np.ndarray:
        """:func:`~preflab.data.groups.pair_groups` of the kept pairs."""
        keys = np.concatenate(self.keys) if self.keys else np.zeros((0, 4), dtype=np.int64)
        return first_appearance_groups(keys if self.keep is None else keys[self.keep])

    def without(self, ids: set[str]) -> PairSpill:
        """The same spill with the pairs of `ids` masked out."""
        keep = np.array([i not in ids for i in self.ids], dtype=bool)
        if self.keep is not None:
            keep &= self.keep
        return PairSpill(self.path, self.ids, self.subsets, self.flipped, self.keys,
                         self.n_records, self.rejects, self.oversized, keep)

    def chunks(self, size: int = CHUNK) -> Iterator[list[PreferencePair]]:
        """The kept pairs, in order, `size` at a time."""
        start = 0
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
        import pyarrow.compute as pc

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


def spill_pairs(data: str | Path, path: Path, on_error: str = "fail",
                rejects: str | Path | None = None, limit: int | None = None,
                count_oversized: Callable[[list[PreferencePair]], int] | None = None,
                chunk: int = CHUNK) -> PairSpill:
    """Read `data` (any format preflab reads, as :func:`preflab.data.read.read_pairs`
    does: same parsing, rejects and errors) into a spill file at `path`, `chunk`
    pairs at a time; stop after `limit` pairs. `count_oversized` counts the texts of a
    chunk that every member will truncate."""
    if on_error not in ("fail", "skip"):
        raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    source = str(data)
    kind = kind_of(data)
    subset = subset_from_filename(Path(source).name) if kind != "hub" else None
    types = parquet_types(data) if kind == "parquet" else None
    parser = _RecordParser(source, unit_of(kind), "auto", subset, types)
    spill = PairSpill(path)
    pending: list[PreferencePair] = []

    def flush(writer: pq.ParquetWriter) -> None:
        writer.write_batch(pa.RecordBatch.from_pylist([p.to_row() for p in pending],
                                                      schema=PAIR_SCHEMA))
        for p in pending:
            spill.ids.append(p.id)
            spill.subsets.append(sys.intern(p.subset) if p.subset else p.subset)
            spill.flipped.append(p.meta.get("flipped"))
        spill.keys.append(np.array([[key64("id", p.id), key64("prompt", prompt_key(p.prompt)),
                                     key64("reply", text_key(p.chosen)),
                                     key64("reply", text_key(p.rejected))] for p in pending],
                                   dtype=np.int64))
        if count_oversized is not None:
            spill.oversized += count_oversized(pending)
        pending.clear()

    sink_cm = open(rejects, "w", encoding="utf-8") if rejects else nullcontext()  # noqa: SIM115
    with sink_cm as sink, pq.ParquetWriter(path, PAIR_SCHEMA) as writer:
        # islice stops at the limit without reading the next record
        for pair in islice(parser.pairs(iter_records(data, None), on_error, sink), limit):
            pending.append(pair)
            if len(pending) >= chunk:
                flush(writer)
        if pending:
            flush(writer)
    spill.n_records, spill.rejects = parser.n_records, parser.rejects
    return spill
