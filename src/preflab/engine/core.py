"""The engine loop: deduplicate, consult the cache, batch by length, run, store."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from preflab.engine.cache import ScoreCache
from preflab.engine.executor import Executor, LocalExecutor
from preflab.engine.units import Unit
from preflab.models.batching import plan_batches


class RateColumn(ProgressColumn):
    """Units per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f}/s" if speed else "-/s")


class Scorer(Protocol):
    """What the engine needs from a scorer.

    `encode` turns one group of units (same `group`, hence a shared prefix) into
    an encoded item; `run` scores a batch of encoded items and returns one
    vector per unit, in the order of the items and of the units inside them.
    """

    name: str
    fingerprint: str

    def encode(self, units: list[Unit]) -> Any: ...

    def sort_key(self, item: Any) -> tuple[int, ...]: ...

    def cost(self, items: list[Any]) -> tuple[int, int]: ...

    def run(self, items: list[Any]) -> list[np.ndarray]: ...


@dataclass
class EngineOptions:
    """How the engine batches and where it caches.

    `max_tokens` caps the padded tokens of one batch and `max_waste` its padded /
    real token ratio (looser means fuller batches); `chunk` is how many unique
    units are encoded at a time, so memory stays flat as the data grows.
    """

    max_tokens: int = 4096
    max_rows: int = 256
    max_waste: float = 1.3
    chunk: int = 4096
    cache_path: str | Path | None = None  # None: $PREFLAB_CACHE/scores.sqlite
    progress: bool = True


@dataclass
class RunStats:
    """What one engine run did."""

    units: int = 0
    unique: int = 0
    cached: int = 0
    computed: int = 0
    batches: int = 0
    seconds: float = 0.0


class Engine:
    """Scores units with a scorer, through a persistent cache."""

    def __init__(self, options: EngineOptions | None = None,
                 executor: Executor | None = None) -> None:
        self.options = options or EngineOptions()
        path = self.options.cache_path
        if path is None:
            from preflab.models.offline import cache_dir

            path = cache_dir() / "scores.sqlite"
        self.cache = ScoreCache(None if str(path) == ":memory:" else path)
        self.executor = executor or LocalExecutor()
        self.last_stats = RunStats()

    def run(self, scorer: Scorer, units: Sequence[Unit], desc: str | None = None
            ) -> list[np.ndarray]:
        """One value per unit (aligned with `units`), computing only what is not cached."""
        started = time.perf_counter()
        stats = RunStats(units=len(units))
        unique: dict[str, Unit] = {}
        for u in units:
            unique.setdefault(u.key, u)
        stats.unique = len(unique)
        keys = list(unique)
        values: dict[str, np.ndarray] = {}
        with self._progress() as progress:
            task = progress.add_task(desc or scorer.name, total=len(keys))
            for start in range(0, len(keys), self.options.chunk):
                chunk = keys[start:start + self.options.chunk]
                found = self.cache.get_many(scorer.fingerprint, chunk)
                values.update(found)
                stats.cached += len(found)
                progress.advance(task, len(found))
                missing = [unique[k] for k in chunk if k not in found]
                if missing:
                    self._compute(scorer, missing, values, stats, progress, task)
        stats.seconds = time.perf_counter() - started
        self.last_stats = stats
        return [values[u.key] for u in units]

    def _compute(self, scorer: Scorer, missing: list[Unit], values: dict[str, np.ndarray],
                 stats: RunStats, progress: Progress, task: Any) -> None:
        groups: dict[str, list[Unit]] = {}
        for u in missing:
            groups.setdefault(u.group, []).append(u)
        items = [(scorer.encode(g), g) for g in groups.values()]
        plan = plan_batches(items, sort_key=lambda it: scorer.sort_key(it[0]),
                            cost=lambda its: scorer.cost([i[0] for i in its]),
                            max_tokens=self.options.max_tokens, max_rows=self.options.max_rows,
                            max_waste=self.options.max_waste)
        batches = [[items[i] for i in idx] for idx in plan]
        results = self.executor.map(lambda b: scorer.run([i[0] for i in b]), batches)
        for batch, result in zip(batches, results, strict=True):
            batch_units = [u for _, g in batch for u in g]
            if len(result) != len(batch_units):
                raise RuntimeError(f"scorer {scorer.name} returned {len(result)} values for "
                                   f"{len(batch_units)} units")
            pairs = [(u.key, np.asarray(v, dtype=np.float32).reshape(-1))
                     for u, v in zip(batch_units, result, strict=True)]
            # a value that is not finite is a failed judgement: returned, never cached,
            # so the next run asks again
            self.cache.put_many(scorer.fingerprint,
                                [(k, v) for k, v in pairs if np.isfinite(v).all()])
            values.update(pairs)
            stats.computed += len(pairs)
            stats.batches += 1
            progress.advance(task, len(pairs))

    def progress(self) -> Progress:
        """A progress display in the engine's style (off when `options.progress` is)."""
        return self._progress()

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            RateColumn(), TimeElapsedColumn(),
            TimeRemainingColumn(), console=Console(stderr=True),
            disable=not self.options.progress, transient=False,
        )
