"""Invariants of cleaning, over random audits (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preflab.clean.apply import apply_decisions
from preflab.clean.decisions import ACTIONS, counts
from preflab.clean.methods import VARIANTS, run_method
from tests.clean.helpers import make_pairs, make_view

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _check(pairs, table) -> None:
    cleaned, manifest = apply_decisions(pairs, table)
    c = counts(manifest)
    assert sum(c.values()) == len(pairs) == len(manifest)
    assert len(cleaned) == len(pairs) - c["remove"]
    assert list(manifest["id"]) == [p.id for p in pairs]
    out = iter(cleaned)
    for pair, row in zip(pairs, manifest.itertuples(), strict=True):
        if row.action == "remove":
            assert row.output_id == ""
            continue
        new = next(out)
        assert new.id == row.output_id
        assert new.subset == pair.subset and new.flags == pair.flags
        assert new.meta == pair.meta
        if row.action == "keep":
            assert new == pair
        elif row.action == "flip":  # exactly swapped, label reversed with the same confidence
            assert (new.chosen, new.rejected) == (pair.rejected, pair.chosen)
            assert new.prompt == pair.rejected_context
            assert new.rejected_context == pair.prompt
            assert new.p_chosen == pair.p_chosen
            assert new.swapped(p_chosen=new.p_chosen).id == pair.id
        else:  # relabel: only p_chosen changes
            assert row.action == "relabel"
            assert (new.prompt, new.chosen, new.rejected, new.rejected_prompt) == (
                pair.prompt, pair.chosen, pair.rejected, pair.rejected_prompt)
            assert new.p_chosen == pytest.approx(row.p_new)
    assert next(out, None) is None


@SETTINGS
@given(n=st.integers(5, 60), seed=st.integers(0, 10_000), soft=st.booleans(),
       rate=st.floats(0, 0.6), method=st.sampled_from(sorted(VARIANTS)))
def test_every_method_accounts_for_every_pair(n, seed, soft, rate, method) -> None:
    pairs = make_pairs(n, seed, soft)
    flipped = np.random.default_rng(seed).random(n) < rate
    view = make_view(pairs, seed, flipped)
    table = run_method(view, method)
    assert set(table["action"]) <= set(ACTIONS)
    assert (table["reason"][table["action"] != "keep"] != "").all()  # every change says why
    _check(pairs, table)


@SETTINGS
@given(n=st.integers(1, 40), seed=st.integers(0, 10_000), soft=st.booleans(),
       actions=st.data())
def test_any_decisions_apply_exactly(n, seed, soft, actions) -> None:
    from preflab.clean.decisions import decisions

    pairs = make_pairs(n, seed, soft)
    action = np.array(actions.draw(st.lists(st.sampled_from(ACTIONS), min_size=n, max_size=n)),
                      dtype=object)
    p_new = np.random.default_rng(seed).random(n)
    table = decisions([p.id for p in pairs], action, np.where(action == "keep", "", "why"),
                      "test", {}, p_new=p_new)
    _check(pairs, table)


def test_decisions_for_other_data_are_refused() -> None:
    pairs = make_pairs(10)
    table = run_method(make_view(pairs), "vote-maj")
    with pytest.raises(ValueError, match="covers 10 pairs but the data has 9"):
        apply_decisions(pairs[:9], table)
    with pytest.raises(ValueError, match="row 1 is pair"):
        apply_decisions(make_pairs(10, seed=1)[::-1], table)
