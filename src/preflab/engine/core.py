"""The engine loop: deduplicate, consult the cache, batch by length, run, store."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, TextIO

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

from preflab.data.messages import as_messages
from preflab.engine.cache import ScoreCache
from preflab.engine.executor import (
    BatchFailure,
    Executor,
    ExecutorOptions,
    LocalExecutor,
    describe,
)
from preflab.engine.units import Unit
from preflab.models.batching import plan_batches
from preflab.models.chat import plain_context

PROGRESS_SECONDS = 30.0  # between plain progress lines when stderr is not a terminal
# Counters a scorer keeps of what it encoded; left untouched when the engine encodes a
# cached unit again only to learn whether it was truncated.
SCORER_COUNTERS = ("truncated", "context_truncated", "prompt_tokens")
CHARS_PER_TOKEN = 4  # a text this many characters per token over a limit surely exceeds it


class RateColumn(ProgressColumn):
    """Units per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f}/s" if speed else "-/s")


def progress_seconds() -> float:
    """Seconds between plain progress lines: $PREFLAB_PROGRESS_SECONDS, else 30."""
    try:
        seconds = float(os.environ.get("PREFLAB_PROGRESS_SECONDS", PROGRESS_SECONDS))
    except ValueError:
        return PROGRESS_SECONDS
    return seconds if seconds > 0 else PROGRESS_SECONDS


def _clock(seconds: float | None) -> str:
    return "-" if seconds is None else str(timedelta(seconds=round(seconds)))


def progress_line(task: Task) -> str:
    """One plain line of a task's progress: done/total, rate and ETA (or time taken)."""
    done, total, elapsed = int(task.completed), task.total, task.elapsed or 0.0
    rate = task.finished_speed or task.speed or (done / elapsed if elapsed else None)
    of = f"{done}/{int(total)} ({done / total:.0%})" if total else f"{done}"
    speed = f"{rate:.1f}/s" if rate else "-/s"
    if task.finished:  # a rate over less than a second (cache hits) means nothing
        return f"{task.description}: {of} done in {_clock(elapsed)}" + (
            f", {speed}" if elapsed >= 1 else "")
    eta = (total - done) / rate if total and rate else None
    return f"{task.description}: {of}, {speed}, elapsed {_clock(elapsed)}, ETA {_clock(eta)}"


class LogProgress(Progress):
    """Progress for a log file or a pipe, where a live bar would show only at the end:
    one plain line per unfinished task every `every` seconds, and one per task when
    the display stops. Written to `stream` (default: ``sys.stderr`` at the time)."""

    def __init__(self, every: float = PROGRESS_SECONDS, stream: TextIO | None = None) -> None:
        super().__init__(disable=True)
        self.every = every
        self.stream = stream
        self._halt = threading.Event()
        self._ticker: threading.Thread | None = None

    def _write(self, tasks: Iterable[Task]) -> None:
        stream = self.stream or sys.stderr
        for task in tasks:
            stream.write(progress_line(task) + "\n")
        stream.flush()

    def _tick(self) -> None:
        while not self._halt.wait(self.every):
            self._write(t for t in self.tasks if not t.finished)

    def start(self) -> None:
        if self._ticker is None:
            self._halt.clear()
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()

    def stop(self) -> None:
        if self._ticker is not None:
            self._halt.set()
            self._ticker.join()
            self._ticker = None
            self._write(self.tasks)


def oversized(texts: Iterable[str], max_tokens: int | None) -> int:
    """How many `texts` are longer than :data:`CHARS_PER_TOKEN` characters per token of
    `max_tokens`, so surely over it: a cheap count, no tokenizer."""
    if max_tokens is None:
        return 0
    return sum(len(t) > CHARS_PER_TOKEN * max_tokens for t in texts)


def pair_texts(pairs: Iterable[Any]) -> Iterable[str]:
    """Every prompt (as a model reads it) and reply of preference pairs."""
    for p in pairs:
        yield plain_context(as_messages(p.prompt))
        yield p.chosen
        yield p.rejected


class Scorer(Protocol):
    """What the engine needs from a scorer.

    `encode` turns one group of units (same `group`, hence a shared prefix) into
    an encoded item; `run` scores a batch of encoded items and returns one
    vector per unit, in the order of the items and of the units inside them.
    A scorer that shortens inputs to fit its model has a set ``truncated_keys``
    and adds to it the key of every unit it shortened (in `encode`, or in `run` for
    what only the run learns); the engine then reports them (:attr:`Engine.truncated`)
    and keeps them beside the cached values.
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
    failed: int = 0  # units the scorer raised on (their keys in Engine.failures)
    truncated: int = 0  # units whose input the scorer shortened (keys in Engine.truncated)
    seconds: float = 0.0


def make_executor(options: ExecutorOptions | None) -> Executor:
    """The executor `options` ask for (local when None)."""
    if options is None or options.kind == "local":
        return LocalExecutor()
    from preflab.engine.ray_executor import RayExecutor

    return RayExecutor(address=options.address, actors=options.actors,
                       num_cpus=options.num_cpus, num_gpus=options.num_gpus,
                       threads=options.threads).start()


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
        self.failures: dict[str, str] = {}  # unit key -> why it failed, last run
        self.truncated: set[str] = set()  # keys of the units shortened to fit, last run

    def run(self, scorer: Scorer, units: Sequence[Unit], desc: str | None = None
            ) -> list[np.ndarray]:
        """One value per unit (aligned with `units`), computing only what is not cached.

        A unit the scorer failed on (its batch raised, or its text could not be encoded:
        see :attr:`failures`) gets a vector of NaN of the others' width; a failed batch
        of several units is retried unit by unit first, so only the culprits fail. The
        units the scorer shortened to fit its model, cached or computed, are in
        :attr:`truncated`."""
        started = time.perf_counter()
        stats = RunStats(units=len(units))
        self.failures = {}
        self.truncated = set()
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
                self._cached_truncation(scorer, [unique[k] for k in found])
                progress.advance(task, len(found))
                missing = [unique[k] for k in chunk if k not in found]
                if missing:
                    self._compute(scorer, missing, values, stats, progress, task)
        stats.seconds = time.perf_counter() - started
        stats.truncated = len(self.truncated)
        self.last_stats = stats
        if self.failures:
            width = next((len(v) for v in values.values()), None)
            if width is None:
                raise RuntimeError(f"scorer {scorer.name} failed on every unit; first error: "
                                   f"{next(iter(self.failures.values()))}")
            for key in self.failures:
                values[key] = np.full(width, np.nan, dtype=np.float32)
        return [values[u.key] for u in units]

    def _compute(self, scorer: Scorer, missing: list[Unit], values: dict[str, np.ndarray],
                 stats: RunStats, progress: Progress, task: Any) -> None:
        groups: dict[str, list[Unit]] = {}
        for u in missing:
            groups.setdefault(u.group, []).append(u)
        items = []
        for g in groups.values():
            try:
                items.append((scorer.encode(g), g))
            except Exception as e:  # a text the tokenizer rejects: those units fail alone
                self._fail(g, f"encode: {describe(e)}", stats, progress, task)
        plan = plan_batches(items, sort_key=lambda it: scorer.sort_key(it[0]),
                            cost=lambda its: scorer.cost([i[0] for i in its]),
                            max_tokens=self.options.max_tokens, max_rows=self.options.max_rows,
                            max_waste=self.options.max_waste) if items else []
        batches = [[items[i] for i in idx] for idx in plan]
        again: list[list[Any]] = []  # units of failed batches, each to be tried alone
        for rounds in range(2):
            for index, result in self.executor.run(scorer, [[i[0] for i in b] for b in batches]):
                batch = batches[index]
                units = [u for _, g in batch for u in g]
                if isinstance(result, BatchFailure):
                    if rounds == 0 and len(units) > 1:
                        again.extend([(scorer.encode([u]), [u])] for u in units)
                    else:
                        self._fail(units, result.error, stats, progress, task)
                    continue
                self._store(scorer, units, result, values, stats)
                progress.advance(task, len(units))
            if not again:
                break
            batches, again = again, []

    def _cached_truncation(self, scorer: Scorer, units: list[Unit]) -> None:
        """Add the cached `units` that were truncated to :attr:`truncated`, as the cache
        recorded it; units cached before it recorded that are encoded again (not run)
        to learn it, the scorer's counters left as they were."""
        if not units or not hasattr(scorer, "truncated_keys"):
            return
        known = self.cache.get_truncated(scorer.fingerprint, [u.key for u in units])
        unknown = [u for u in units if u.key not in known]
        if unknown:
            saved = {c: getattr(scorer, c) for c in SCORER_COUNTERS
                     if isinstance(getattr(scorer, c, None), int)}
            groups: dict[str, list[Unit]] = {}
            for u in unknown:
                groups.setdefault(u.group, []).append(u)
            for g in groups.values():
                with contextlib.suppress(Exception):  # it encoded when it was scored
                    scorer.encode(g)
            for c, v in saved.items():
                setattr(scorer, c, v)
            learned = {u.key: u.key in scorer.truncated_keys for u in unknown}
            self.cache.put_truncated(scorer.fingerprint, learned.items())
            known.update(learned)
        self.truncated.update(k for k, cut in known.items() if cut)

    def _store(self, scorer: Scorer, units: list[Unit], result: list[Any],
               values: dict[str, np.ndarray], stats: RunStats) -> None:
        """Keep one batch's values and commit the finite ones to the cache."""
        if len(result) != len(units):
            raise RuntimeError(f"scorer {scorer.name} returned {len(result)} values for "
                               f"{len(units)} units")
        pairs = [(u.key, np.asarray(v, dtype=np.float32).reshape(-1))
                 for u, v in zip(units, result, strict=True)]
        # a value that is not finite is a failed judgement: returned, never cached,
        # so the next run asks again
        self.cache.put_many(scorer.fingerprint,
                            [(k, v) for k, v in pairs if np.isfinite(v).all()])
        shortened = getattr(scorer, "truncated_keys", None)
        if shortened is not None:
            self.truncated.update(u.key for u in units if u.key in shortened)
            self.cache.put_truncated(scorer.fingerprint, [(k, k in shortened) for k, v in pairs
                                                          if np.isfinite(v).all()])
        values.update(pairs)
        stats.computed += len(pairs)
        stats.batches += 1

    def _fail(self, units: list[Unit], error: str, stats: RunStats, progress: Progress,
              task: Any) -> None:
        """Units the scorer could not score: recorded with why, never given a score."""
        for u in units:
            self.failures[u.key] = error
        stats.failed += len(units)
        progress.advance(task, len(units))

    def progress(self) -> Progress:
        """A progress display in the engine's style (off when `options.progress` is): a
        live bar on a terminal, else :class:`LogProgress` lines every
        $PREFLAB_PROGRESS_SECONDS (30) seconds."""
        return self._progress()

    def _progress(self) -> Progress:
        console = Console(stderr=True)
        if self.options.progress and not (console.is_terminal or console.is_jupyter):
            return LogProgress(progress_seconds())
        return Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            RateColumn(), TimeElapsedColumn(),
            TimeRemainingColumn(), console=console,
            disable=not self.options.progress, transient=False,
        )
