from dataclasses import replace

import pytest

from preflab.data.pair import PreferencePair
from preflab.engine.reward import reward_input
from preflab.errors import PairError
from preflab.models.chat import plain_context
from preflab.models.offline import load_tokenizer
from preflab.train.rm_data import PairCollator, RewardExample, build_examples
from tests.train.helpers import short_pairs


@pytest.fixture(scope="module")
def minilm_tok():
    return load_tokenizer("minilm-l6")


@pytest.fixture(scope="module")
def smol_tok():
    return load_tokenizer("smollm2-135m-instruct")


CONTEXT = (("user", "one two three four five six seven eight nine ten"),)


def test_encoder_input_keeps_the_latest_context(minilm_tok):
    full = reward_input(minilm_tok, True, CONTEXT, "the reply", 64)
    short = reward_input(minilm_tok, True, CONTEXT, "the reply", 10)
    assert (full.context_cut, full.reply_cut) == (0, 0)
    tokens = minilm_tok.convert_ids_to_tokens(short.ids)
    assert len(short.ids) == 10 and short.reply_cut == 0
    assert tokens == ["[CLS]", "six", "seven", "eight", "nine", "ten", "[SEP]", "the", "reply",
                      "[SEP]"]  # the oldest context went first
    assert short.context_cut == len(full.ids) - 10


def test_segment_ids_match_the_tokenizers_text_pair(minilm_tok):
    context = (("user", "is it going to rain"),)
    x = reward_input(minilm_tok, True, context, "bring an umbrella", 64)
    enc = minilm_tok(plain_context(context), "bring an umbrella")
    assert x.ids == enc["input_ids"]
    batch = PairCollator(minilm_tok.pad_token_id, minilm_tok.sep_token_id)(
        [RewardExample("x", x.ids, [*x.ids[:-2], minilm_tok.sep_token_id], 1.0, 1.0, 0.0, None)])
    assert batch["token_type_ids"][0].tolist() == enc["token_type_ids"]


def test_decoder_input_keeps_the_end_and_reports_a_cut_reply(smol_tok):
    full = reward_input(smol_tok, False, CONTEXT, "the reply", 4096)
    cut = reward_input(smol_tok, False, CONTEXT, "the reply", 12)
    assert cut.ids == full.ids[-12:] and cut.context_cut == len(full.ids) - 12
    assert cut.reply_cut == 0
    tiny = reward_input(smol_tok, False, CONTEXT, "the reply", 3)
    assert tiny.reply_cut > 0


def test_examples_and_collator(minilm_tok):
    pairs = short_pairs(4)
    examples, report = build_examples(pairs, minilm_tok, True, 128, source="demo")
    assert report.n_pairs == 4 and report.labels == "hard"
    assert all(e.p_chosen == 1.0 and e.weight == 1.0 for e in examples)
    batch = PairCollator(minilm_tok.pad_token_id)(examples[:2])
    assert batch["input_ids"].shape[0] == 4  # 2 chosen rows, then 2 rejected rows
    assert batch["input_ids"][0, :len(examples[0].chosen_ids)].tolist() == \
        examples[0].chosen_ids
    assert batch["input_ids"][2, :len(examples[0].rejected_ids)].tolist() == \
        examples[0].rejected_ids
    assert batch["attention_mask"].sum().item() == sum(
        len(e.chosen_ids) + len(e.rejected_ids) for e in examples[:2])


def test_weights_margins_and_subset_mix(minilm_tok):
    pairs = short_pairs(3)
    pairs[0] = replace(pairs[0], meta={**pairs[0].meta, "weight": 0.25, "margin": 2.0})
    pairs[2] = replace(pairs[2], subset="harmless-base")
    examples, report = build_examples(pairs, minilm_tok, True, 128, margin=0.5,
                                      subset_weights={"harmless-base": 0.5})
    assert [e.weight for e in examples] == [0.25, 1.0, 0.5]
    assert [e.margin for e in examples] == [2.0, 0.5, 0.5]
    assert report.subsets == {"chitchat-other": 2, "harmless-base": 1}
    with pytest.raises(ValueError, match="subsets not in"):
        build_examples(pairs, minilm_tok, True, 128, subset_weights={"helpful-base": 2.0})
    bad = [replace(pairs[0], meta={"weight": "heavy"})]
    with pytest.raises(PairError, match=r"pair 1: field 'meta.weight'"):
        build_examples(bad, minilm_tok, True, 128, source="data.jsonl")


def test_labels_auto_soft_and_refusals(minilm_tok):
    hard = short_pairs(3)
    soft = [replace(p, p_chosen=0.7) for p in hard]
    assert build_examples(soft, minilm_tok, True, 128)[1].labels == "soft"
    assert build_examples(hard, minilm_tok, True, 128)[1].labels == "hard"
    with pytest.raises(ValueError, match=r"every p_chosen is 1\.0"):
        build_examples(hard, minilm_tok, True, 128, labels="soft", source="x.jsonl")
    with pytest.raises(PairError, match=r"x.jsonl, pair 1: field 'p_chosen'.*--labels soft"):
        build_examples(soft, minilm_tok, True, 128, labels="hard", source="x.jsonl")


def test_soft_label_outside_unit_interval_is_refused():
    with pytest.raises(ValueError, match="p_chosen"):
        PreferencePair(prompt=[{"role": "user", "content": "hi"}], chosen="a", rejected="b",
                       p_chosen=1.2)


def test_long_replies_are_counted_and_a_pair_truncation_merges_is_refused(minilm_tok,
                                                                          smol_tok):
    pair = short_pairs(1)[0]
    long = replace(pair, chosen=" ".join(["word"] * 200))
    examples, report = build_examples([long], minilm_tok, True, 64, source="data.jsonl")
    assert report.reply_truncated == 1 and len(examples[0].chosen_ids) == 64
    # two replies that differ only after the cut read the same tokens: refused
    twins = replace(pair, chosen=" ".join(["word"] * 200) + " yes",
                    rejected=" ".join(["word"] * 200) + " no")
    with pytest.raises(PairError, match=r"data.jsonl, pair 1: field 'rejected'.*same 64 "
                                        r"tokens"):
        build_examples([twins], minilm_tok, True, 64, source="data.jsonl")
    # a decoder keeping its last 3 tokens reads only the end of the template
    same_end = replace(pair, chosen="yes indeed", rejected="no indeed")
    with pytest.raises(PairError):
        build_examples([same_end], smol_tok, False, 3)
