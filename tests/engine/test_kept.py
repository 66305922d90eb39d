"""A member's scorer kept from one chunk to the next (:class:`KeptScorers`) loads once and
scores a later chunk exactly as a scorer loaded for it alone does, its count of
shortened pairs included."""

from __future__ import annotations

import numpy as np
import pytest

from preflab.committee.members import member_loads, score_member
from preflab.committee.spec import load_committee
from preflab.data.demo import demo_pairs
from preflab.engine import Engine, EngineOptions
from preflab.engine.kept import KeptScorers


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFLAB_CACHE", str(tmp_path / "cache"))


def engine() -> Engine:
    return Engine(EngineOptions(cache_path=":memory:", progress=False))


def test_a_kept_scorer_loads_once_and_scores_as_a_fresh_one() -> None:
    members = load_committee("tiny").members
    pairs = demo_pairs(n=12, seed=3)
    first, second = pairs[:6], pairs[6:]
    with KeptScorers() as kept:
        for spec in members:
            score_member(spec, first, engine(), kept)
            again = score_member(spec, second, engine(), kept)
            fresh = score_member(spec, second, engine())
            np.testing.assert_array_equal(again.margin, fresh.margin, err_msg=spec.name)
            np.testing.assert_array_equal(again.p_chosen, fresh.p_chosen, err_msg=spec.name)
            assert again.info == fresh.info, spec.name
            assert member_loads(spec, kept) == 1, spec.name
        # one load per model: tiny-embed and tiny-crossfit read one encoder
        assert sum(kept.loads.values()) == 4 and kept.scorer is not None
    assert kept.scorer is None  # released on exit
