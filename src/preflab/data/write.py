"""Write pairs as preflab JSONL or Parquet, TRL conversational JSONL, or HH transcripts
(all at once; :class:`~preflab.data.stream.PairWriter` writes them as they come)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from preflab.data.pair import PreferencePair
from preflab.data.stream import TARGETS, WRITERS, PairWriter, target_for

__all__ = ["TARGETS", "WRITERS", "target_for", "write_pairs"]


def _chunks(pairs: Any, batch_size: int) -> Iterator[list[PreferencePair]]:
    if hasattr(pairs, "with_format"):  # datasets.Dataset
        for batch in pairs.with_format("arrow").iter(batch_size=batch_size):
            yield [PreferencePair.from_row(row) for row in batch.to_pylist()]
        return
    it = iter(pairs)  # an iterable of PreferencePair
    while chunk := list(islice(it, batch_size)):
        yield chunk


def write_pairs(pairs: Any, path: str | Path, to: str | None = None,
                batch_size: int = 4096) -> int:
    """Write a dataset (or iterable) of pairs; returns the number written.

    ``to`` is ``jsonl`` (preflab's columns), ``parquet``, ``trl`` (conversational,
    explicit prompt) or ``hh`` (transcripts); a path ending in ``.gz`` is gzipped
    (without a timestamp, so equal data gives equal bytes). The file appears whole or
    not at all: it is written beside `path` and renamed into place (a special file such
    as ``/dev/stdout`` is written directly). Parquet row groups hold `batch_size` pairs.
    """
    with PairWriter(path, to, row_group=batch_size) as writer:
        for chunk in _chunks(pairs, batch_size):
            writer.write(chunk)
    return writer.n
