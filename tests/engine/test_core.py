from __future__ import annotations

import numpy as np

from preflab.engine import Engine, EngineOptions
from preflab.engine.python import PythonScorer
from preflab.engine.units import reply_unit
from tests.helpers import length_reward

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
