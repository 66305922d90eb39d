"""Reward-model training with the prompt run once per pair (decoder bases)."""

from dataclasses import replace

import pytest
import torch

from preflab.models.prefix_rewards import shared_prefix_rewards
from preflab.models.reward_base import load_base, prepare_trainable
from preflab.train.config import RewardConfig
from preflab.train.rm_data import PairCollator, build_examples
from tests.train.helpers import short_pairs


@pytest.mark.parametrize(("base", "lora"), [("tiny-llama", True), ("tiny-gpt2", False)])
def test_shared_prompt_gives_the_rewards_and_gradients_of_whole_rows(base, lora):
    config = RewardConfig(base=base, lora=lora, lora_dropout=0.0, max_length=256)
    model, tokenizer, encoder = load_base(config)
    model = prepare_trainable(model, config).eval()  # no dropout: both paths comparable
    pairs = short_pairs(6)
    # a rejected reply after another context: only the tokens both share are shared
    pairs[1] = replace(pairs[1], rejected_prompt=[{"role": "user", "content": "Hi there."}])
    examples, _ = build_examples(pairs, tokenizer, encoder, 256)
    pad = tokenizer.pad_token_id
    shared = PairCollator(pad, share_prefix=True)(examples)
    whole = PairCollator(pad)(examples)
    assert "prefix_ids" in shared and "input_ids" in whole
    # the prompt runs once: fewer tokens than the whole rows
    assert int(shared["prefix_mask"].sum() + shared["cont_mask"].sum()) < int(
        whole["attention_mask"].sum())

    def grads(rewards: torch.Tensor) -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        (rewards * torch.arange(1, len(rewards) + 1)).sum().backward()
        return [p.grad.clone() for p in model.parameters() if p.requires_grad]

    r_shared = shared_prefix_rewards(model, shared)  # chosen, rejected, chosen, ...
    g_shared = grads(r_shared)
    r_whole = model(input_ids=whole["input_ids"], attention_mask=whole["attention_mask"]
                    ).logits[:, 0]
    n = len(examples)
    r_whole = torch.stack([r_whole[:n], r_whole[n:]], 1).reshape(-1)
    g_whole = grads(r_whole)
    assert torch.allclose(r_shared, r_whole, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-4)
               for a, b in zip(g_shared, g_whole, strict=True))
    assert any(g.abs().sum() > 0 for g in g_shared)
