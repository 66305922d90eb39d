"""Pairs a chunk at a time: a streaming reader (:class:`PairStream`) and writer
(:class:`PairWriter`) for every format preflab reads and writes.

The reader parses one record at a time, exactly as :func:`preflab.data.read.read_pairs`
does (same formats, errors and rejects: ``read_pairs`` is built on it) and hands out
lists of at most `chunk` pairs; its counts and rejects are complete once it has been
read to the end. The writer takes pairs (or lists of them) as they come and puts the
file in place whole once it is closed without an error. Memory then depends on the
chunk, not on the size of the data.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pyarrow as pa

from preflab.data.containers import iter_records, kind_of, parquet_types, unit_of
from preflab.data.hh import hh_record, subset_from_filename
from preflab.data.native import native_record
from preflab.data.pair import PAIR_SCHEMA, PreferencePair
from preflab.data.parse import OnError, RecordParser, Reject, reject_reasons
from preflab.data.trl import trl_record
from preflab.errors import FieldError, FormatError, PairError, SourceError

CHUNK = 16384  # pairs in memory at a time
WRITERS: dict[str, Callable[[PreferencePair], dict[str, Any]]] = {
    "jsonl": native_record,
    "trl": trl_record,
    "hh": hh_record,
}
TARGETS = ("jsonl", "parquet", "trl", "hh")


class PairStream:
    """The pairs of one source, read once, `chunk` at a time (``for pairs in stream``).

    After the last chunk: `n_records` (records read), `rejects` (every record that
    did not become a pair, with its reason; with ``on_error="skip"``, also written to
    `rejects_path` as JSON lines), `format` (detected or given). ``fail`` raises the
    first bad record's :class:`~preflab.errors.PairError`. `limit` stops after that
    many pairs without reading the next record. `chunk` defaults to :data:`CHUNK`.
    """

    def __init__(self, path: str | Path, format: str = "auto", on_error: OnError = "fail",
                 rejects_path: str | Path | None = None, subset: str | None = None,
                 split: str | None = None, limit: int | None = None, chunk: int | None = None,
                 allow_empty: bool = True) -> None:
        if on_error not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
        self.source, self.path, self.split = str(path), path, split
        kind = kind_of(path)
        if subset is None and kind != "hub":
            subset = subset_from_filename(Path(self.source).name)
        types = parquet_types(path) if kind == "parquet" else None
        self.parser = RecordParser(self.source, unit_of(kind), format, subset, types)
        self.on_error, self.rejects_path = on_error, rejects_path
        self.limit, self.allow_empty = limit, allow_empty
        self.chunk = chunk or CHUNK  # read at run time: tests make it small
        self.n_pairs = 0
        self.done = False

    @property
    def unit(self) -> str:
        return self.parser.unit

    @property
    def format(self) -> str | None:
        return self.parser.format

    @property
    def n_records(self) -> int:
        return self.parser.n_records

    @property
    def rejects(self) -> list[Reject]:
        return self.parser.rejects

    def reject_reasons(self) -> dict[str, int]:
        """Counts of rejects by reason (without the detail after a colon)."""
        return reject_reasons(self.rejects)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The pairs as Arrow record batches of :data:`~preflab.data.pair.PAIR_SCHEMA`."""
        for chunk in self:
            yield pa.RecordBatch.from_pylist([p.to_row() for p in chunk], schema=PAIR_SCHEMA)

    def __iter__(self) -> Iterator[list[PreferencePair]]:
        """The pairs as parsed, `chunk` at a time."""
        if self.done or self.parser.n_records:
            raise RuntimeError(f"{self.source}: a PairStream is read once")
        path = self.rejects_path
        with open(path, "w", encoding="utf-8") if path else nullcontext() as sink:
            records = iter_records(self.path, self.split)
            pairs = islice(self.parser.pairs(records, self.on_error, sink), self.limit)
            while chunk := list(islice(pairs, self.chunk)):
                self.n_pairs += len(chunk)
                yield chunk
        self.done = True
        if self.n_records == 0 and not self.allow_empty:
            raise SourceError(f"{self.source}: empty input, no records (--allow-empty "
                              "accepts it)")


def target_for(path: str | Path) -> str:
    """The default output format for a path: parquet for .parquet, else preflab JSONL."""
    return "parquet" if str(path).lower().endswith(".parquet") else "jsonl"


class PairWriter:
    """Writes pairs to `path` as they come, as ``to``: ``jsonl`` (preflab's columns),
    ``parquet``, ``trl`` (conversational, explicit prompt) or ``hh`` (transcripts); a
    path ending in ``.gz`` is gzipped (without a timestamp, so equal data gives equal
    bytes). Used as a context manager: the file appears whole when the block ends
    without an error, and not at all otherwise (it is written beside `path` and renamed
    into place; a special file such as ``/dev/stdout`` is written directly). `n` counts
    the pairs written; Parquet is written in row groups of `row_group` pairs."""

    def __init__(self, path: str | Path, to: str | None = None, row_group: int = 4096) -> None:
        self.to = to or target_for(path)
        if self.to not in TARGETS:
            raise FormatError(f"cannot write format {self.to!r}; choose one of {TARGETS}")
        self.path = Path(path)
        self.n, self.row_group = 0, row_group
        self._rows: list[dict[str, Any]] = []  # parquet rows not yet written
        self._raw: IO[bytes] | None = None
        self._text: io.TextIOWrapper | None = None
        self._parquet: Any = None

    def __enter__(self) -> PairWriter:
        missing = [d for d in (self.path.parent, *self.path.parent.parents) if not d.exists()]
        self.made = missing[::-1]  # folders made for the file, removed again if it fails
        self.path.parent.mkdir(parents=True, exist_ok=True)
        direct = self.path.exists() and not self.path.is_file()
        self.target = self.path if direct else self.path.with_name(
            f".{self.path.name}.{os.getpid()}.tmp")
        if self.to == "parquet":
            import pyarrow.parquet as pq

            self._parquet = pq.ParquetWriter(self.target, PAIR_SCHEMA)
        else:
            self._raw = open(self.target, "wb")
            sink: IO[bytes] = (gzip.GzipFile(filename="", fileobj=self._raw, mode="wb", mtime=0)
                               if self.path.name.endswith(".gz") else self._raw)
            self._text = io.TextIOWrapper(sink, encoding="utf-8", newline="\n")
        return self

    def write(self, pairs: Iterable[PreferencePair]) -> None:
        """Write `pairs` (a chunk) after those written before."""
        if self._parquet is not None:
            for pair in pairs:
                self._rows.append(pair.to_row())
                self.n += 1
                if len(self._rows) >= self.row_group:
                    self._flush()
            return
        assert self._text is not None, "use PairWriter as a context manager"
        make = WRITERS[self.to]
        for pair in pairs:
            self.n += 1
            try:
                record = make(pair)
            except FieldError as e:
                raise PairError(str(self.path), self.n, e.field, e.reason, unit="record") from None
            self._text.write(json.dumps(record, ensure_ascii=False) + "\n")

    def _flush(self) -> None:
        """Parquet: the rows waiting, as one row group."""
        if self._rows:
            self._parquet.write_table(pa.Table.from_pylist(self._rows, schema=PAIR_SCHEMA))
            self._rows = []

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if self._parquet is not None:
                if kind is None:
                    self._flush()
                self._parquet.close()
            if self._text is not None:
                self._text.close()
        finally:
            if self._raw is not None:
                self._raw.close()
        if self.target == self.path:
            return
        if kind is None:
            os.replace(self.target, self.path)
            return
        self.target.unlink(missing_ok=True)
        for folder in reversed(self.made):
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
