"""Shared-prefix reply log-probs equal a plain forward of each prompt+reply."""

from __future__ import annotations

import pytest
import torch

from preflab.data.pair import PreferencePair
from preflab.models.causal_lm import load_policy
from preflab.models.examples import build_policy_examples
from preflab.models.logps import collate_policy, reference_logps, reply_logps
from preflab.train.recipe import PolicyConfig
from tests.train.helpers import short_pairs


@torch.no_grad()
def plain_logps(model, tokenizer, prefix: list[int], ids: list[int], n: int) -> float:
    """log p(last n tokens of ids | prefix + the rest), with HF's own forward."""
    seq = torch.tensor([prefix + ids])
    logits = model(input_ids=seq).logits[0].float().log_softmax(-1)
    start = len(prefix) + len(ids) - n
    return sum(float(logits[t - 1, seq[0, t]]) for t in range(start, seq.shape[1]))


@pytest.fixture(scope="module")
def tiny():
    model, tok = load_policy("tiny-llama", PolicyConfig(policy="tiny-llama"), trainable=False)
    return model.eval(), tok


def test_shared_and_unshared_equal_a_plain_forward(tiny) -> None:
    model, tok = tiny
    pairs = short_pairs(5)
    # a pair whose rejected reply answers another context: only the common prefix is shared
    other = PreferencePair(prompt=pairs[0].prompt, chosen="Sure, here it is.",
                           rejected="No.", rejected_prompt=pairs[1].prompt)
    examples, report = build_policy_examples([*pairs, other], tok, 256)
    assert report.context_truncated == report.reply_truncated == 0
    batch = collate_policy(examples, tok.pad_token_id)
    with torch.no_grad():
        shared, n = reply_logps(model, batch, share_prefix=True)
        unshared, _ = reply_logps(model, batch, share_prefix=False)
    expected = [plain_logps(model, tok, e.prefix, ids, k) for e in examples
                for ids, k in ((e.chosen_ids, e.chosen_n), (e.rejected_ids, e.rejected_n))]
    assert torch.allclose(shared, torch.tensor(expected), atol=1e-4)
    assert torch.allclose(unshared, torch.tensor(expected), atol=1e-4)
    assert n.tolist() == [k for e in examples for k in (e.chosen_n, e.rejected_n)]
    # the rejected side of `other` carries the rest of its own context without loss
    assert len(examples[-1].rejected_ids) > examples[-1].rejected_n


def test_gradients_flow_through_the_shared_prefix(tiny) -> None:
    model, tok = tiny
    examples, _ = build_policy_examples(short_pairs(3), tok, 256)
    batch = collate_policy(examples, tok.pad_token_id)
    grads = []
    for share in (True, False):
        model.zero_grad()
        sums, _ = reply_logps(model, batch, share_prefix=share)
        sums.sum().backward()
        grads.append(model.model.layers[0].self_attn.k_proj.weight.grad.clone())
    model.zero_grad()
    assert grads[0].abs().sum() > 0
    assert torch.allclose(grads[0], grads[1], atol=1e-4, rtol=1e-3)


def test_reference_logps_keep_the_input_order(tiny) -> None:
    model, tok = tiny
    examples, _ = build_policy_examples(short_pairs(6), tok, 256)
    values = reference_logps(model, examples, tok.pad_token_id, batch_size=4, progress=False)
    batch = collate_policy(examples, tok.pad_token_id)
    with torch.no_grad():
        sums, _ = reply_logps(model, batch)
    assert torch.allclose(torch.tensor(values).flatten(), sums, atol=1e-4)
