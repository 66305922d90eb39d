from __future__ import annotations

import random

import pytest
import torch

from preflab.models.forward import (
    last_hidden_states,
    last_hidden_states_unshared,
    split_shared_prefix,
)
from preflab.models.tiny import tiny_causal_lm


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
@pytest.mark.parametrize("shared_head", [0, 12])
def test_prefix_sharing_equals_separate_forwards(tiny_tok, kind: str, shared_head: int) -> None:
    """Groups with and without a common start (a system prompt) match plain forwards."""
    model = tiny_causal_lm(tiny_tok, kind)
    rng = random.Random(0)
    head = [rng.randrange(10, 390) for _ in range(shared_head)]
    groups, flat = [], []
    for _ in range(6):
        prefix = head + [rng.randrange(10, 390) for _ in range(rng.randrange(1, 30))]
        suffixes = [[rng.randrange(10, 390) for _ in range(rng.randrange(1, 12))]
                    for _ in range(rng.choice([1, 2, 3]))]
        groups.append((prefix, suffixes))
        flat += [prefix + s for s in suffixes]
    shared = last_hidden_states(model.base_model, groups, tiny_tok.pad_token_id)
    separate = last_hidden_states_unshared(model.base_model, flat, tiny_tok.pad_token_id)
    assert not torch.isnan(shared).any()
    torch.testing.assert_close(shared, separate, atol=1e-5, rtol=1e-4)


def test_split_shared_prefix_keeps_a_token_per_suffix() -> None:
    prefix, suffixes = split_shared_prefix([[1, 2, 3], [1, 2, 3, 4]])
    assert prefix == [1, 2] and suffixes == [[3], [3, 4]]
    prefix, suffixes = split_shared_prefix([[1, 2, 9], [1, 2, 8]], hint=[1])
    assert prefix == [1] and suffixes == [[2, 9], [2, 8]]
