"""Read preference data in any supported format into an Arrow-backed dataset.

The format is detected from the first readable record. Records are parsed one at
a time (:class:`~preflab.data.stream.PairStream`) and gathered into Arrow record
batches, so a large file never exists as Python objects all at once. Every position
of the input ends up either as a pair or as a reject with its reason:
``n_pairs + len(rejects) == n_records``. Stages that need not hold every pair read a
:class:`~preflab.data.stream.PairStream` instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from preflab.data.pair import PAIR_SCHEMA, PreferencePair
from preflab.data.parse import OnError, Reject, reject_reasons
from preflab.data.stream import PairStream

__all__ = ["OnError", "ReadResult", "Reject", "iter_pairs", "load_pairs", "pairs_dataset",
           "read_pairs"]


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
        return reject_reasons(self.rejects)


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
    stream = PairStream(path, format, on_error, rejects_path, subset, split,
                        chunk=batch_size, allow_empty=allow_empty)
    table = pa.Table.from_batches(list(stream.batches()), schema=PAIR_SCHEMA)
    return ReadResult(pairs=pairs_dataset(table), source=stream.source, format=stream.format,
                      unit=stream.unit, n_records=stream.n_records, rejects=stream.rejects)


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
