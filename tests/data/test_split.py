"""Seeded splits keep every prompt on one side."""

from __future__ import annotations

import numpy as np
import pytest

from preflab import PreferencePair
from preflab.data.split import split_pairs


def pairs_with_prompts(prompt_numbers: list[int]) -> list[PreferencePair]:
    return [PreferencePair([{"role": "user", "content": f"question {k}"}], f"good {i}",
                           f"bad {i}") for i, k in enumerate(prompt_numbers)]


def test_distinct_prompts_give_a_plain_seeded_split() -> None:
    pairs = pairs_with_prompts(list(range(40)))
    train, test = split_pairs(pairs, 0.25, seed=7)
    held = set(np.random.default_rng(7).permutation(40)[:10].tolist())
    assert [p.id for p in test] == [pairs[i].id for i in sorted(held)]
    assert [p.id for p in train] == [p.id for i, p in enumerate(pairs) if i not in held]


def test_a_prompt_never_sits_on_both_sides() -> None:
    rng = np.random.default_rng(0)
    numbers = rng.integers(0, 30, 120).tolist()
    pairs = pairs_with_prompts(numbers)
    largest = max(numbers.count(k) for k in set(numbers))
    for seed in range(5):
        train, test = split_pairs(pairs, 0.2, seed)
        assert len(train) + len(test) == 120
        assert {p.prompt[0]["content"] for p in train}.isdisjoint(
            {p.prompt[0]["content"] for p in test})
        assert 24 <= len(test) < 24 + largest  # ends at the first prompt reaching 20%


def test_smaller_held_out_part_is_inside_the_larger_one() -> None:
    pairs = pairs_with_prompts(np.random.default_rng(1).integers(0, 50, 200).tolist())
    small = {p.id for p in split_pairs(pairs, 0.2, 0)[1]}
    large = {p.id for p in split_pairs(pairs, 0.5, 0)[1]}
    assert small < large


def test_one_shared_prompt_cannot_be_split() -> None:
    with pytest.raises(ValueError, match="share 1 prompt"):
        split_pairs(pairs_with_prompts([0] * 10), 0.5)
