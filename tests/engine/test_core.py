from __future__ import annotations

import io
import re
import sys

import numpy as np

from preflab.data.pair import PreferencePair
from preflab.engine import Engine, EngineOptions
from preflab.engine.core import LogProgress, oversized, pair_texts, progress_seconds
from preflab.engine.python import PythonScorer
from preflab.engine.units import reply_unit
from tests.helpers import length_reward, wait_until

CTX = (("user", "hi"),)


class CountingScorer(PythonScorer):
    def __init__(self) -> None:
        super().__init__(length_reward, "len")
        self.seen = 0

    def run(self, items):
        self.seen += sum(len(i) for i in items)
        return super().run(items)


def test_dedup_cache_and_alignment(tmp_path) -> None:
    units = [reply_unit(CTX, t) for t in ["a", "bb", "a", "ccc", "bb"]]
    engine = Engine(EngineOptions(cache_path=tmp_path / "c.sqlite", progress=False))
    scorer = CountingScorer()
    values = engine.run(scorer, units)
    assert [float(v[0]) for v in values] == [1, 2, 1, 3, 2]
    assert scorer.seen == 3 and engine.last_stats.unique == 3
    again = Engine(EngineOptions(cache_path=tmp_path / "c.sqlite", progress=False))
    scorer2 = CountingScorer()
    values2 = again.run(scorer2, [*units, reply_unit(CTX, "dddd")])
    assert scorer2.seen == 1 and again.last_stats.cached == 3
    np.testing.assert_array_equal(np.concatenate(values2[:5]), np.concatenate(values))


def test_a_log_gets_plain_progress_lines(monkeypatch) -> None:
    """Redirected to a log, a live bar showed only at the end (an 18-minute label run
    printed nothing until it was done): a plain line every few seconds instead."""
    stream = io.StringIO()
    progress = LogProgress(every=0.05, stream=stream)
    ticks = lambda: stream.getvalue().count("units: 4/10")  # noqa: E731
    with progress:
        task = progress.add_task("units", total=10)
        progress.advance(task, 4)
        assert wait_until(lambda: ticks() >= 1)  # a line while the task runs
        done = progress.add_task("cached", total=3)
        progress.advance(done, 3)
        seen = ticks()
        assert wait_until(lambda: ticks() >= seen + 2)  # a whole tick after it finished
    lines = stream.getvalue().splitlines()
    clock = r"\d+:\d\d:\d\d"
    assert any(re.fullmatch(rf"units: 4/10 \(40%\), [\d.]+/s, elapsed {clock}, ETA {clock}",
                            line) for line in lines), lines
    assert re.fullmatch(rf"cached: 3/3 \(100%\) done in {clock}(, [\d.]+/s)?", lines[-1])
    assert lines[-2].startswith("units: 4/10 (40%)") and "done" not in lines[-2]
    # finished: said once, at the end, never by a tick
    assert not any(line.startswith("cached: 3/3") for line in lines[:-1])

    monkeypatch.setenv("PREFLAB_PROGRESS_SECONDS", "0.2")
    assert progress_seconds() == 0.2
    for bad in ("soon", "0", "-1"):
        monkeypatch.setenv("PREFLAB_PROGRESS_SECONDS", bad)
        assert progress_seconds() == 30
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal
    assert isinstance(Engine(EngineOptions(cache_path=":memory:")).progress(), LogProgress)
    quiet = Engine(EngineOptions(cache_path=":memory:", progress=False)).progress()
    assert not isinstance(quiet, LogProgress) and quiet.disable


def test_texts_over_every_context_are_counted_by_characters() -> None:
    """As found: a 5 MB reply went in with no warning."""
    huge = PreferencePair(prompt=[{"role": "user", "content": "Say hi"}],
                          chosen="x" * 5_000_000, rejected="No.")
    long_prompt = PreferencePair(prompt=[{"role": "user", "content": "y" * 9000}],
                                 chosen="Hi", rejected="No.")
    assert oversized(pair_texts([huge, long_prompt]), 2048) == 2
    assert oversized(pair_texts([huge]), 2_000_000) == 0
    assert oversized(pair_texts([huge]), None) == 0
