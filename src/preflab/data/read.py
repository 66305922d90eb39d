"""Read preference data in any supported format into an Arrow-backed dataset.

The format is detected from the first readable record. Records are parsed one at
a time and gathered into Arrow record batches, so a large file never exists as
Python objects all at once. Every position of the input ends up either as a pair
or as a reject with its reason: ``n_pairs + len(rejects) == n_records``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import pyarrow as pa

from preflab.data.containers import iter_records, kind_of, parquet_types, unit_of
from preflab.data.hh import looks_like_hh, parse_hh, subset_from_filename
from preflab.data.native import looks_like_native, parse_native
from preflab.data.pair import PAIR_SCHEMA, PreferencePair
from preflab.data.trl import looks_like_trl, parse_trl
from preflab.errors import FieldError, FormatError, PairError, SourceError

Parser = Callable[[dict[str, Any], str | None], PreferencePair]
# Detection order matters: HH records are also TRL-shaped (chosen/rejected strings).
FORMATS: dict[str, tuple[Callable[[dict[str, Any]], bool], Parser]] = {
    "hh": (looks_like_hh, parse_hh),
    "preflab": (looks_like_native, parse_native),
    "trl": (looks_like_trl, parse_trl),
}
OnError = Literal["fail", "skip"]


def detect_format(record: dict[str, Any]) -> str | None:
    """The name of the first format whose shape the record has, or None."""
    return next((name for name, (looks, _) in FORMATS.items() if looks(record)), None)


def _unknown(record: dict[str, Any]) -> FieldError:
    keys = ", ".join(sorted(record)) or "none"
    return FieldError(None, f"unknown format: record has keys [{keys}]; expected HH transcripts "
                      "(chosen, rejected), TRL (prompt?, chosen, rejected) or preflab "
                      "(prompt as messages, chosen, rejected)")


def _wrong_type(record: dict[str, Any], types: dict[str, str]) -> FieldError | None:
    """The first of prompt/chosen/rejected whose value is neither text nor messages."""
    for name in ("prompt", "chosen", "rejected"):
        value = record.get(name)
        if value is not None and not isinstance(value, str | list):
            got = types.get(name) or type(value).__name__
            return FieldError(name, f"expected a string or a list of messages, got {got}")
    return None


@dataclass
class Reject:
    """An input position that did not become a pair, and why."""

    source: str
    position: int
    unit: str
    field: str | None
    reason: str
    raw: str

    def error(self) -> PairError:
        return PairError(self.source, self.position, self.field, self.reason, self.unit)


@dataclass
class ReadResult:
    """The pairs read from one source, and every position that was rejected."""

    pairs: Any  # datasets.Dataset with PAIR_SCHEMA columns
    source: str
    format: str | None
    unit: str
    n_records: int
    rejects: list[Reject] = field(default_factory=list)

    @property
    def n_pairs(self) -> int:
        return len(self.pairs)

    def reject_reasons(self) -> dict[str, int]:
        """Counts of rejects by reason (without the detail after a colon)."""
        counts: dict[str, int] = {}
        for r in self.rejects:
            key = r.reason.split(":")[0]
            counts[key] = counts.get(key, 0) + 1
        return counts


class _RecordParser:
    """Turns source items into pairs, detecting the format on the first readable record."""

    def __init__(self, source: str, unit: str, fmt: str, subset: str | None,
                 types: dict[str, str] | None = None) -> None:
        if fmt != "auto" and fmt not in FORMATS:
            raise FormatError(f"unknown format {fmt!r}; choose one of {sorted(FORMATS)} or auto")
        self.source, self.unit, self.auto, self.subset = source, unit, fmt == "auto", subset
        self.types = types or {}  # column types of a table source, named in type errors
        self.format: str | None = None if self.auto else fmt
        self.n_records = 0  # records read by `pairs`
        self.rejects: list[Reject] = []  # the records `pairs` skipped

    def pairs(self, records: Iterable[tuple[int, dict[str, Any] | FieldError, str]],
              on_error: OnError, sink: TextIO | None = None) -> Iterator[PreferencePair]:
        """The pairs of source items `records`, counted in `n_records`. A record that is no
        pair raises its :class:`PairError` (`on_error` ``fail``), or (``skip``) is kept in
        `rejects` and written to `sink` as a JSON line."""
        for pos, record, raw in records:
            self.n_records += 1
            out = self.parse(pos, record, raw)
            if isinstance(out, PreferencePair):
                yield out
                continue
            if on_error == "fail":
                raise out.error()
            self.rejects.append(out)
            if sink is not None:
                sink.write(json.dumps(asdict(out), ensure_ascii=False) + "\n")

    def parse(self, pos: int, record: dict[str, Any] | FieldError, raw: str
              ) -> PreferencePair | Reject:
        if isinstance(record, FieldError):
            return Reject(self.source, pos, self.unit, record.field, record.reason, raw)
        try:
            return self._parse(record)
        except FieldError as e:
            problem = e
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            problem = FieldError(None, f"unreadable record: {e}")
        raw = raw or json.dumps(record, ensure_ascii=False, default=str)
        return Reject(self.source, pos, self.unit, problem.field, problem.reason, raw)

    def _parse(self, record: dict[str, Any]) -> PreferencePair:
        shape = detect_format(record)
        if shape is None and "chosen" not in record and "rejected" not in record:
            raise _unknown(record)
        if self.format is None:
            if shape is None:
                raise _wrong_type(record, self.types) or _unknown(record)
            self.format = shape
        elif self.auto and shape not in (self.format, None) and (self.format, shape) != (
                "trl", "hh"):
            raise FieldError(None, f"record is in {shape} format but the source started in "
                             f"{self.format} format")
        pair = FORMATS[self.format][1](record, self.subset)
        if isinstance(record.get("id"), str) and record["id"] != pair.id:
            pair.meta.setdefault("source_id", record["id"])  # the user's own id, kept
        return pair


def read_pairs(path: str | Path, format: str = "auto", on_error: OnError = "fail",
               rejects_path: str | Path | None = None, subset: str | None = None,
               split: str | None = None, batch_size: int = 4096,
               allow_empty: bool = True) -> ReadResult:
    """Read preference pairs from a file, a `save_to_disk` folder or a hub dataset.

    Args:
        path: .jsonl[.gz], .json, .parquet, .csv, a datasets folder, or a hub name.
        format: ``auto`` (from content), ``hh``, ``trl`` or ``preflab``.
        on_error: ``fail`` raises :class:`PairError` at the first bad record;
            ``skip`` goes on and records every rejected position.
        rejects_path: with ``skip``, a JSONL file that receives every reject.
        subset: subset for pairs that carry none; by default an HH subset named in
            the file name (``harmless-base-test.jsonl.gz`` -> ``harmless-base``).
        split: the split to read from a folder or hub dataset with several.
        allow_empty: False raises :class:`SourceError` for a source with no records.
    """
    if on_error not in ("fail", "skip"):
        raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    source = str(path)
    kind = kind_of(path)
    if subset is None and kind != "hub":
        subset = subset_from_filename(Path(source).name)
    types = parquet_types(path) if kind == "parquet" else None
    parser = _RecordParser(source, unit_of(kind), format, subset, types)
    result = ReadResult(pairs=None, source=source, format=None, unit=parser.unit, n_records=0)
    batches: list[pa.RecordBatch] = []
    rows: list[dict[str, Any]] = []
    with open(rejects_path, "w", encoding="utf-8") if rejects_path else nullcontext() as sink:
        for pair in parser.pairs(iter_records(path, split), on_error, sink):
            rows.append(pair.to_row())
            if len(rows) >= batch_size:
                batches.append(pa.RecordBatch.from_pylist(rows, schema=PAIR_SCHEMA))
                rows = []
    if rows:
        batches.append(pa.RecordBatch.from_pylist(rows, schema=PAIR_SCHEMA))
    result.n_records, result.rejects = parser.n_records, parser.rejects
    if result.n_records == 0 and not allow_empty:
        raise SourceError(f"{source}: empty input, no records (--allow-empty accepts it)")
    result.pairs = pairs_dataset(pa.Table.from_batches(batches, schema=PAIR_SCHEMA))
    result.format = parser.format
    return result


def pairs_dataset(table: pa.Table) -> Any:
    """Wrap an Arrow table of pairs as an in-memory `datasets.Dataset`."""
    from datasets import Dataset
    from datasets.table import InMemoryTable

    return Dataset(InMemoryTable(table))


def load_pairs(path: str | Path, **kwargs: Any) -> Any:
    """Read pairs and return only the dataset (bad input raises)."""
    return read_pairs(path, **kwargs).pairs


def iter_pairs(dataset: Any, batch_size: int = 1024) -> Iterator[PreferencePair]:
    """Iterate a dataset of pairs as :class:`PreferencePair` objects, a batch at a time."""
    for batch in dataset.with_format("arrow").iter(batch_size=batch_size):
        for row in batch.to_pylist():
            yield PreferencePair.from_row(row)
