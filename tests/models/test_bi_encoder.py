"""The bi-encoder reward head: starts at the zero-shot cosine, trains, saves a folder that
loads elsewhere with remote code only."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoConfig

from preflab.data.messages import as_messages
from preflab.data.write import write_pairs
from preflab.engine.embed import EmbedScorer, embed_unit
from preflab.engine.reward import reward_input
from preflab.models.chat import plain_context
from preflab.models.offline import load_tokenizer, resolve
from preflab.models.reward_base import encoder_head, load_bi_encoder
from preflab.models.text_pair import token_types
from preflab.train.config import RewardConfig
from preflab.train.reward_model import train_rm
from tests.train.helpers import short_pairs


def _batch(tok, context, replies):
    ids = [reward_input(tok, True, context, r, 512).ids for r in replies]
    x = torch.full((len(ids), max(map(len, ids))), tok.pad_token_id)
    mask = torch.zeros_like(x)
    for i, s in enumerate(ids):
        x[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return {"input_ids": x, "attention_mask": mask,
            "token_type_ids": token_types(x, tok.sep_token_id)}


def test_untrained_bi_encoder_is_the_scaled_zero_shot_cosine():
    path = resolve("minilm-l6")
    model = load_bi_encoder(path, AutoConfig.from_pretrained(path)).eval()
    tok = load_tokenizer("minilm-l6")
    context = (("user", "do you like hiking in the hills"), ("assistant", "sometimes"),
               ("user", "where would you go"))
    replies = ["the hills up north", "no", "somewhere with a lake and a long trail to walk"]
    with torch.no_grad():  # rows of different lengths: the packing must ignore padding
        r = model(**_batch(tok, context, replies)).logits[:, 0].numpy()
    embed = EmbedScorer("minilm-l6", max_length=512)
    c = embed.run([embed.encode([embed_unit(plain_context(context), "end")])])[0]
    cos = [float(c @ embed.run([embed.encode([embed_unit(x)])])[0]) for x in replies]
    assert np.allclose(r, 10 * np.array(cos), atol=1e-4)
    assert len(set(np.round(r, 4))) == 3
    with torch.no_grad():  # half-precision weights (a GPU run) still give float32 rewards
        half = model.to(torch.bfloat16)(**_batch(tok, context, replies)).logits[:, 0]
    assert half.dtype == torch.float32 and np.allclose(half.numpy(), r, atol=0.3)


def test_auto_head_follows_the_base():
    def head(base, **kw):
        path = resolve(base)
        return encoder_head(RewardConfig(base=base, **kw), path, AutoConfig.from_pretrained(path),
                            load_tokenizer(base))

    assert head("minilm-l6") == "bi-encoder"  # sentence-transformers, mean pooling
    assert head("minilm-l6", head="cls") == "cls"
    assert head("tiny-bert") == "cls"
    # tiny-bert's tokenizer writes a text pair without separators or segment ids
    with pytest.raises(ValueError, match="segment ids"):
        head("tiny-bert", head="bi-encoder")
    with pytest.raises(ValueError, match="needs a BERT encoder"):
        head("tiny-llama", head="bi-encoder")
    with pytest.raises(ValueError, match=r"head \(--head\) must be one of auto, cls, bi-encoder"):
        head("tiny-bert", head="mean")


def test_a_cls_reward_model_is_not_a_bi_encoder_base(tmp_path):
    from transformers import AutoModelForSequenceClassification

    AutoModelForSequenceClassification.from_pretrained(
        resolve("minilm-l6"), num_labels=1).save_pretrained(tmp_path / "rm")
    load_tokenizer("minilm-l6").save_pretrained(tmp_path / "rm")
    config = AutoConfig.from_pretrained(tmp_path / "rm")
    tok = load_tokenizer(str(tmp_path / "rm"))
    base = str(tmp_path / "rm")
    assert encoder_head(RewardConfig(base=base), base, config, tok) == "cls"
    with pytest.raises(ValueError, match="already a \\[CLS\\] reward model"):
        encoder_head(RewardConfig(base=base, head="bi-encoder"), base, config, tok)


LOAD = """
import json, sys, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
path, context, reply, trust = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=trust)
tok = AutoTokenizer.from_pretrained(path)
with torch.no_grad():
    print(model.eval()(**tok(context, reply, return_tensors="pt")).logits[0, 0].item())
"""


def test_trained_bi_encoder_scores_the_same_outside_preflab(tmp_path):
    pairs = short_pairs(12)
    write_pairs(pairs, tmp_path / "pairs.jsonl")
    config = RewardConfig(base="minilm-l6", epochs=1, learning_rate=1e-4, batch_size=4,
                          max_length=128, threads=1)
    summary = train_rm(tmp_path / "pairs.jsonl", tmp_path / "rm", config)
    assert summary["stages"][-1]["steps"] == 3
    saved = json.loads((tmp_path / "rm" / "config.json").read_text())
    assert saved["model_type"] == "preflab_bi_encoder"
    assert (tmp_path / "rm" / "modeling_preflab_bi_encoder.py").exists()
    from preflab.eval.reward_model import eval_rm

    eval_rm(tmp_path / "rm", tmp_path / "pairs.jsonl", tmp_path / "ev")
    scores = pd.read_parquet(tmp_path / "ev" / "scores.parquet")
    args = [sys.executable, "-c", LOAD, str(tmp_path / "rm"),
            plain_context(as_messages(pairs[0].prompt)), pairs[0].chosen]
    # a fresh process without preflab: the folder's own code, with trust_remote_code
    r = float(subprocess.run([*args, "1"], capture_output=True, text=True, check=True
                             ).stdout.split()[-1])
    assert abs(r - scores["r_chosen"].iloc[0]) < 1e-4
    # without it, transformers refuses rather than loading a different model
    refused = subprocess.run([*args, "0"], capture_output=True, text=True)
    assert refused.returncode != 0 and "trust_remote_code" in refused.stderr


@pytest.mark.parametrize("setting", [{"lora": True}, {"train_layers": 1}])
def test_bi_encoder_trains_with_lora_or_frozen_layers(tmp_path, setting):
    write_pairs(short_pairs(8), tmp_path / "pairs.jsonl")
    config = RewardConfig(base="minilm-l6", epochs=1, batch_size=4, max_length=128,
                          threads=1, **setting)
    stage = train_rm(tmp_path / "pairs.jsonl", tmp_path / "rm", config)["stages"][-1]
    assert stage["head"] == "bi-encoder" and stage["steps"] == 2
    assert stage["learning_rate"] == (2e-4 if setting.get("lora") else 2e-5)
    # MiniLM-L6 has 22.7M parameters; one of its 6 layers is 1.8M, LoRA far less
    assert 0 < stage["trainable_parameters"] < 2_500_000
    saved = json.loads((tmp_path / "rm" / "config.json").read_text())
    assert saved["model_type"] == "preflab_bi_encoder"  # LoRA merged into a plain folder
