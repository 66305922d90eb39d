"""Which pairs a labeling run labels, and its exemplars, chosen without holding the data:
the pairs are read once into a spill (:class:`~preflab.data.spill.PairSpill`), the
first ``limit`` and the seeded ``sample`` are chosen by position (the same draw as
:func:`~preflab.data.sample.sample_pairs`), the exemplars by position among the pairs
not labelled (:func:`~preflab.engine.label_prompt.draw_exemplars`, the draw of
:func:`~preflab.engine.label_prompt.exemplars_from_pairs`), and only the drawn pairs
are read back."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import chain, islice
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from preflab.data import stream
from preflab.data.pair import PreferencePair
from preflab.data.parse import rejects_note
from preflab.data.spill import PairSpill, spill_pairs
from preflab.engine.core import oversized, pair_texts
from preflab.engine.label_prompt import Exemplar, draw_exemplars, pair_exemplar
from preflab.label.config import LabelConfig

Notify = Callable[[str], None]


@dataclass
class Selection:
    """The pairs of a run in `spill`; `chosen`: the positions of those to label
    (ascending, so in input order); `long`: per pair, its texts over the judge's
    ``max_length`` (:func:`~preflab.engine.core.oversized`)."""

    spill: PairSpill
    chosen: np.ndarray
    long: np.ndarray
    n_rejected: int

    @property
    def n_long(self) -> int:
        """Texts of the chosen pairs over the judge's ``max_length``."""
        return int(self.long[self.chosen].sum())

    def chunks(self, size: int) -> Iterator[list[PreferencePair]]:
        """The chosen pairs, in order, `size` at a time."""
        keep = np.zeros(self.spill.n_read, dtype=bool)
        keep[self.chosen] = True
        pairs = chain.from_iterable(replace(self.spill, keep=keep).chunks(size))
        while chunk := list(islice(pairs, size)):
            yield chunk

    def exemplars(self, k: int, seed: int, invert: bool) -> list[Exemplar]:
        """`k` seeded exemplars from the pairs not chosen (by id, as
        :func:`~preflab.engine.label_prompt.exemplars_from_pairs` excludes them)."""
        if k <= 0:
            return []
        ids = self.spill.id_array()
        labelled = pc.is_in(ids, value_set=ids.take(self.chosen).combine_chunks())
        pool = np.flatnonzero(~np.asarray(labelled.to_numpy(zero_copy_only=False), dtype=bool))
        drawn = draw_exemplars(len(pool), k, seed)
        pairs = pairs_at(self.spill.path, [int(pool[i]) for i, _ in drawn])
        return [pair_exemplar(p, first, invert) for p, (_, first) in zip(pairs, drawn,
                                                                          strict=True)]


def pairs_at(path: Path, positions: Sequence[int]) -> list[PreferencePair]:
    """The pairs at `positions` of a spill file, in that order; only the row groups that
    hold one of them are read."""
    file = pq.ParquetFile(path)
    wanted = sorted(set(positions))
    found: dict[int, PreferencePair] = {}
    start = 0
    for group in range(file.num_row_groups):
        end = start + file.metadata.row_group(group).num_rows
        here = [i for i in wanted if start <= i < end]
        if here:
            rows = file.read_row_group(group).take([i - start for i in here]).to_pylist()
            found.update(zip(here, map(PreferencePair.from_row, rows), strict=True))
        start = end
    return [found[i] for i in positions]


def select_pairs(data: str | Path, config: LabelConfig, spill: Path,
                 rejects: str | Path | None = None, notify: Notify | None = None,
                 name: str | None = None, chunk: int | None = None) -> Selection:
    """Read `data` into a spill file at `spill` (`chunk` pairs at a time, default
    :data:`~preflab.data.stream.CHUNK`) and choose the pairs to label: the first
    ``limit``, then a seeded ``sample`` of them. Messages name the data `name`
    (default: the path)."""
    name = name or str(data)
    long: list[np.ndarray] = []

    def count_long(pairs: list[PreferencePair]) -> int:
        long.append(np.array([oversized(pair_texts([p]), config.max_length) for p in pairs],
                             dtype=np.int8))
        return int(long[-1].sum())

    pairs = spill_pairs(data, spill, config.on_error, rejects,  # type: ignore[arg-type]
                        count_oversized=count_long, chunk=chunk or stream.CHUNK)
    note = rejects_note(pairs.rejects, pairs.n_records, name, rejects)
    if note and notify is not None:
        notify(note)
    n = pairs.n_read
    if not n:
        raise ValueError(f"{name}: no pairs to label")
    m = n if config.limit is None else min(config.limit, n)
    chosen = np.arange(m)
    if config.sample is not None and config.sample < m:  # sample_pairs' draw
        rng = np.random.default_rng(config.seed)
        chosen = np.sort(rng.choice(m, size=config.sample, replace=False))
    if config.shots and len(chosen) == n:
        raise ValueError(f"{name}: {config.shots}-shot labeling needs exemplars that are not "
                         "labelled; label part of the pairs (--sample N or --limit N) so "
                         "they come from the rest")
    return Selection(pairs, chosen, np.concatenate(long) if long else np.zeros(0, np.int8),
                     len(pairs.rejects))
