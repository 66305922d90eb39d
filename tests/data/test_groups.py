"""Groups of pairs that must stay together: the hashed, array version the streaming
stages use equals the one over Python objects, links included that only a reply
shared across roles makes."""

from __future__ import annotations

import numpy as np

from preflab.data.demo import demo_pairs
from preflab.data.groups import hashed_groups, pair_groups, pair_keys
from preflab.data.pair import PreferencePair


def pair(prompt: str, chosen: str, rejected: str) -> PreferencePair:
    return PreferencePair(prompt=[{"role": "user", "content": prompt}], chosen=chosen,
                          rejected=rejected)


def test_a_reply_chosen_in_one_pair_and_rejected_in_another_links_them() -> None:
    pairs = [pair("a", "x", "y"), pair("b", "z", "X "), pair("c", "u", "v"),
             pair("A", "w", "t"), *(pair(f"p{i}", f"c{i}", f"r{i}") for i in range(200))]
    expected = pair_groups(pairs)
    assert list(expected[:4]) == [0, 0, 1, 0]  # x ~ "X ", a ~ "A"
    np.testing.assert_array_equal(hashed_groups(pair_keys(pairs)), expected)


def test_hashed_groups_equal_pair_groups_on_demo_data() -> None:
    pairs = demo_pairs(3000, flip_rate=0.1, seed=2)
    expected = pair_groups(pairs)
    assert expected.max() + 1 < len(pairs)  # the demo data shares prompts and replies
    np.testing.assert_array_equal(hashed_groups(pair_keys(pairs)), expected)
    assert len(hashed_groups(pair_keys([]))) == 0
