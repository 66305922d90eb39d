"""Write pairs as preflab JSONL or Parquet, TRL conversational JSONL, or HH transcripts."""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from preflab.data.hh import hh_record
from preflab.data.native import native_record
from preflab.data.pair import PAIR_SCHEMA, PreferencePair
from preflab.data.trl import trl_record
from preflab.errors import FieldError, FormatError, PairError

WRITERS: dict[str, Callable[[PreferencePair], dict[str, Any]]] = {
    "jsonl": native_record,
    "trl": trl_record,
    "hh": hh_record,
}
TARGETS = ("jsonl", "parquet", "trl", "hh")


def target_for(path: str | Path) -> str:
    """The default output format for a path: parquet for .parquet, else preflab JSONL."""
    return "parquet" if str(path).lower().endswith(".parquet") else "jsonl"


def _rows(pairs: Any, batch_size: int) -> Iterator[dict[str, Any]]:
    if hasattr(pairs, "with_format"):  # datasets.Dataset
        for batch in pairs.with_format("arrow").iter(batch_size=batch_size):
            yield from batch.to_pylist()
    else:  # an iterable of PreferencePair
        for pair in pairs:
            yield pair.to_row()


def write_pairs(pairs: Any, path: str | Path, to: str | None = None,
                batch_size: int = 4096) -> int:
    """Write a dataset (or iterable) of pairs; returns the number written.

    ``to`` is ``jsonl`` (preflab's columns), ``parquet``, ``trl`` (conversational,
    explicit prompt) or ``hh`` (transcripts); a path ending in ``.gz`` is gzipped
    (without a timestamp, so equal data gives equal bytes). The file appears whole or
    not at all: it is written beside `path` and renamed into place (a special file such
    as ``/dev/stdout`` is written directly).
    """
    to = to or target_for(path)
    if to not in TARGETS:
        raise FormatError(f"cannot write format {to!r}; choose one of {TARGETS}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    def write(target: Path) -> int:
        return (_write_parquet(pairs, target, batch_size) if to == "parquet"
                else _write_jsonl(pairs, target, to, batch_size, path))

    if path.exists() and not path.is_file():
        return write(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        n = write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return n


def _write_jsonl(pairs: Any, tmp: Path, to: str, batch_size: int, path: Path) -> int:
    """Write records to `tmp`; `path` (the final name) decides gzip and names errors."""
    make = WRITERS[to]
    n = 0
    raw = open(tmp, "wb")  # noqa: SIM115 - closed below, possibly through gzip
    gz = path.name.endswith(".gz")
    sink = gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) if gz else raw
    try:
        with io.TextIOWrapper(sink, encoding="utf-8", newline="\n") as out:
            for row in _rows(pairs, batch_size):
                n += 1
                try:
                    record = make(PreferencePair.from_row(row))
                except FieldError as e:
                    raise PairError(str(path), n, e.field, e.reason, unit="record") from None
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        raw.close()
    return n


def _write_parquet(pairs: Any, path: Path, batch_size: int) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 0
    with pq.ParquetWriter(path, PAIR_SCHEMA) as writer:
        if hasattr(pairs, "with_format"):
            for batch in pairs.with_format("arrow").iter(batch_size=batch_size):
                writer.write_table(batch.select(PAIR_SCHEMA.names).cast(PAIR_SCHEMA))
                n += batch.num_rows
        else:
            rows = [p.to_row() for p in pairs]
            writer.write_table(pa.Table.from_pylist(rows, schema=PAIR_SCHEMA))
            n = len(rows)
    return n
