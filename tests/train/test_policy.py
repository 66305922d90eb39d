"""SFT and DPO: real training runs of tiny in-process models on real (short) demo pairs."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from preflab.data.write import write_pairs
from preflab.models.causal_lm import load_policy
from preflab.models.examples import build_policy_examples
from preflab.models.logps import collate_policy, reply_logps
from preflab.models.offline import load_causal_lm
from preflab.train.dpo import train_dpo
from preflab.train.recipe import PolicyConfig
from preflab.train.sft import train_sft
from tests.train.helpers import StopAt, short_pairs

FAST = dict(policy="tiny-llama", max_length=256, batch_size=8, threads=1, save_steps=1000)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("policy") / "pairs.jsonl"
    write_pairs(short_pairs(16), path)
    return path


def logps(model_path, pairs) -> torch.Tensor:
    """(chosen, rejected) reply log-probs of each pair under a saved model, rows interleaved."""
    model, tok = load_policy(str(model_path), PolicyConfig(), trainable=False)
    examples, _ = build_policy_examples(pairs, tok, 256)
    with torch.no_grad():
        return reply_logps(model.eval(), collate_policy(examples, tok.pad_token_id))[0]


def test_sft_raises_the_likelihood_of_the_chosen_replies(data, tmp_path):
    summary = train_sft(data, tmp_path / "sft", PolicyConfig(epochs=4, learning_rate=3e-3,
                                                             **FAST))
    assert summary["steps"] == 8 and summary["tokens"]["n_pairs"] == 16
    pairs = short_pairs(16)
    before, after = logps("tiny-llama", pairs), logps(tmp_path / "sft", pairs)
    assert after[0::2].mean() > before[0::2].mean() + 1.0  # chosen replies: more likely
    assert load_causal_lm(tmp_path / "sft") is not None  # a standard folder


@pytest.mark.parametrize("loss", ["sigmoid", "ipo", "robust"])
def test_dpo_separates_chosen_from_rejected(data, tmp_path, loss):
    config = PolicyConfig(loss=loss, epochs=6, learning_rate=2e-3, lora=True, beta=0.5,
                          eps=0.1, **FAST)
    summary = train_dpo(data, tmp_path / "dpo", config)
    assert summary["steps"] == 12
    margins = [h["rewards/margin"] for h in summary["log"]]
    assert margins[0] == pytest.approx(0, abs=1e-5)  # LoRA starts as the reference (fp32 sums)
    assert margins[-1] > 0.3
    pairs = short_pairs(16)
    before, after = logps("tiny-llama", pairs), logps(tmp_path / "dpo", pairs)
    gain = (after - before)[0::2] - (after - before)[1::2]
    assert (gain > 0).float().mean() > 0.9
    weights = load_file(tmp_path / "dpo" / "model.safetensors")
    assert not any("lora" in k for k in weights)  # merged: loads without peft


def test_reference_log_probs_are_cached_per_pair(data, tmp_path, monkeypatch):
    from preflab.train.dpo import attach_reference

    monkeypatch.setenv("PREFLAB_CACHE", str(tmp_path / "cache"))  # start from an empty cache
    config = PolicyConfig(epochs=1, **FAST)
    model, tok = load_policy("tiny-llama", PolicyConfig(), trainable=False)
    pairs = short_pairs(16)
    half, _ = build_policy_examples(pairs[:8], tok, 256)
    first = attach_reference(half, "tiny-llama", config)  # as if a pass stopped there
    assert (first["from_cache"], first["computed"]) == (0, 8)
    examples, _ = build_policy_examples(pairs, tok, 256)
    second = attach_reference(examples, "tiny-llama", config)
    assert (second["from_cache"], second["computed"]) == (8, 8)
    with torch.no_grad():  # the values are what the reference gives
        sums = reply_logps(model.eval(), collate_policy(examples, tok.pad_token_id))[0]
    got = torch.tensor([[e.ref_chosen, e.ref_rejected] for e in examples]).flatten()
    assert torch.allclose(got, sums, atol=1e-4)
    # labels flipped (a cleaned copy of the data): the same entries, read swapped
    flipped, _ = build_policy_examples([replace(p, chosen=p.rejected, rejected=p.chosen)
                                        for p in pairs], tok, 256)
    third = attach_reference(flipped, "tiny-llama", config)
    assert third["computed"] == 0
    assert [(e.ref_chosen, e.ref_rejected) for e in flipped] == \
        [(e.ref_rejected, e.ref_chosen) for e in examples]
    # training reads the cache too
    again = train_dpo(data, tmp_path / "dpo", config)["reference"]
    assert again["computed"] == 0 and again["cache"] == str(tmp_path / "cache" /
                                                              "ref-logps.sqlite")


def test_soft_dpo_follows_each_pairs_target(tmp_path):
    # the same pairs, labelled 0.5: soft DPO has nothing to learn, sigmoid DPO would
    pairs = [replace(p, p_chosen=0.5) for p in short_pairs(16)]
    write_pairs(pairs, tmp_path / "soft.jsonl")
    config = PolicyConfig(loss="soft", epochs=4, learning_rate=2e-3, lora=True, beta=0.5,
                          **FAST)
    summary = train_dpo(tmp_path / "soft.jsonl", tmp_path / "dpo", config)
    assert abs(summary["log"][-1]["rewards/margin"]) < 0.05
    with pytest.raises(ValueError, match="--loss soft"):
        train_dpo(tmp_path / "soft.jsonl", tmp_path / "x", replace(config, loss="sigmoid"))


def test_contexts_without_a_common_start_are_refused():
    from preflab.data.pair import PreferencePair
    from preflab.errors import PairError
    from preflab.models.offline import load_tokenizer

    tok = load_tokenizer("tiny-gpt2")
    tok.chat_template = None  # plain HH-style text without a BOS token
    pair = PreferencePair(prompt=[{"role": "user", "content": "Hi"}], chosen="Hello",
                          rejected="Go", rejected_prompt=[{"role": "system", "content": "X"},
                                                          {"role": "user", "content": "Yo"}])
    with pytest.raises(PairError, match="share no first token") as e:
        build_policy_examples([pair], tok, 128, source="f.jsonl")
    assert e.value.line == 1 and e.value.field == "rejected_prompt"


def test_soft_loss_refuses_hard_labels(data, tmp_path):
    with pytest.raises(ValueError, match="soft labels"):
        train_dpo(data, tmp_path / "x", PolicyConfig(loss="soft", **FAST))
    with pytest.raises(ValueError, match=r"loss \(--loss\) must be one of sigmoid"):
        train_dpo(data, tmp_path / "x", PolicyConfig(loss="kto", **FAST))


def test_interrupted_dpo_resumes_to_the_same_weights(data, tmp_path):
    config = PolicyConfig(epochs=2, learning_rate=1e-3, lora=True,
                          **{**FAST, "save_steps": 2})
    train_dpo(data, tmp_path / "straight", config)
    with pytest.raises(KeyboardInterrupt):
        train_dpo(data, tmp_path / "resumed", config, callbacks=[StopAt(3)])
    summary = train_dpo(data, tmp_path / "resumed", config)
    assert summary["resumed_from"].endswith("checkpoint-2")
    a = load_file(tmp_path / "straight" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "model.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
