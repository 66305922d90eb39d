"""Real training runs on tiny in-process models and real (short) demo pairs."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy.special import expit
from transformers import AutoModelForSequenceClassification

from preflab.data.write import write_pairs
from preflab.eval.reward_model import score_pairs
from preflab.models.offline import resolve
from preflab.train.config import RewardConfig
from preflab.train.reward_model import train_rm
from tests.train.helpers import StopAt, short_pairs

FAST = dict(max_length=256, batch_size=8, threads=1, save_steps=1000)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rm") / "pairs.jsonl"
    write_pairs(short_pairs(16), path)
    return path


def test_overfits_and_scores_the_same_through_every_loader(data, tmp_path):
    out = tmp_path / "rm"
    config = RewardConfig(base="tiny-llama", epochs=25, learning_rate=3e-3, **FAST)
    summary = train_rm(data, out, config)
    stage = summary["stages"][0]
    assert stage["steps"] == 50 and stage["labels"] == "hard"
    assert stage["share_prefix"]  # a decoder: each pair's prompt ran once
    assert stage["loss_curve"][-1]["loss"] < 0.3 < stage["loss_curve"][0]["loss"]
    assert not (out / "checkpoints").exists()
    # the engine's scorer (prefix sharing over the chat template) ...
    pairs = short_pairs(16)
    table = score_pairs(out, pairs, engine_options=None, threads=1)
    assert (table["margin"] > 0).mean() == 1.0  # it learnt its training pairs
    # ... and a plain AutoModelForSequenceClassification give the same rewards
    from preflab.data.messages import as_messages
    from preflab.engine.reward import reward_input
    from preflab.models.offline import load_tokenizer

    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tok = load_tokenizer(str(out))
    ids = reward_input(tok, False, as_messages(pairs[0].prompt), pairs[0].chosen, 256).ids
    with torch.no_grad():
        r = model(input_ids=torch.tensor([ids])).logits[0, 0].item()
    assert abs(r - table["r_chosen"].iloc[0]) < 1e-4
    assert json.loads((out / "preflab-train.json").read_text())["config"]["base"] == "tiny-llama"


def test_soft_labels_are_matched_not_sharpened(tmp_path):
    path = tmp_path / "soft.jsonl"
    pairs = short_pairs(16, p_chosen=0.75)
    write_pairs(pairs, path)
    config = RewardConfig(base="tiny-llama", epochs=40, learning_rate=3e-3, **FAST)
    summary = train_rm(path, tmp_path / "rm", config)
    assert summary["stages"][0]["labels"] == "soft"
    p = expit(score_pairs(tmp_path / "rm", pairs, threads=1)["margin"].to_numpy())
    assert abs(np.median(p) - 0.75) < 0.08  # Bradley-Terry would push these towards 1


def test_interrupted_run_resumes_to_the_same_weights(data, tmp_path):
    config = RewardConfig(base="tiny-bert", epochs=2, learning_rate=1e-3,
                          **{**FAST, "save_steps": 2})
    straight = train_rm(data, tmp_path / "straight", config)
    assert not straight["stages"][0]["share_prefix"]  # an encoder keeps its path
    with pytest.raises(KeyboardInterrupt):
        train_rm(data, tmp_path / "resumed", config, callbacks=[StopAt(3)])
    assert (tmp_path / "resumed" / "checkpoints" / "checkpoint-2").is_dir()
    summary = train_rm(data, tmp_path / "resumed", config)
    assert summary["stages"][0]["resumed_from"].endswith("checkpoint-2")
    a = load_file(tmp_path / "straight" / "model.safetensors")
    b = load_file(tmp_path / "resumed" / "model.safetensors")
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5


def test_lora_merges_into_a_plain_model_and_pmp_runs_first(data, tmp_path):
    config = RewardConfig(base="tiny-llama", epochs=1, lora=True, pmp=str(data),
                          pmp_epochs=1, **FAST)
    summary = train_rm(data, tmp_path / "rm", config)
    assert [s["stage"] for s in summary["stages"]] == ["pmp", "fine-tune"]
    full = sum(p.numel() for p in AutoModelForSequenceClassification.from_pretrained(
        resolve("tiny-llama"), num_labels=1).parameters())
    assert 0 < summary["stages"][1]["trainable_parameters"] < full / 2
    weights = load_file(tmp_path / "rm" / "model.safetensors")
    assert not any("lora" in k for k in weights)  # merged: loads without peft
    assert (tmp_path / "rm" / "pmp" / "model.safetensors").exists()
    # a rerun (e.g. after an interrupted fine-tune) keeps the finished PMP stage
    pmp_weights = (tmp_path / "rm" / "pmp" / "model.safetensors").stat().st_mtime_ns
    again = train_rm(data, tmp_path / "rm", config)
    assert again["stages"][0] == summary["stages"][0]
    assert (tmp_path / "rm" / "pmp" / "model.safetensors").stat().st_mtime_ns == pmp_weights


def test_train_layers_freezes_the_rest(data, tmp_path):
    before = load_file(Path(resolve("tiny-llama")) / "model.safetensors")
    train_rm(data, tmp_path / "rm", RewardConfig(base="tiny-llama", epochs=1, train_layers=1,
                                                 learning_rate=1e-2, **FAST))
    after = load_file(tmp_path / "rm" / "model.safetensors")
    key = "model.layers.0.mlp.up_proj.weight"
    assert torch.equal(before[key], after[key])
    top = "model.layers.1.mlp.up_proj.weight"
    assert not torch.equal(before[top], after[top])


def test_a_tokenizer_without_pad_token_is_refused(data, tmp_path):
    base = tmp_path / "nopad"
    shutil.copytree(resolve("tiny-llama"), base)
    cfg = json.loads((base / "tokenizer_config.json").read_text())
    cfg.pop("pad_token", None)
    (base / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"no pad token.*--pad-token"):
        train_rm(data, tmp_path / "rm", RewardConfig(base=str(base), **FAST))
    # eos (<|im_end|>) ends no sequence of the chat template ("<|im_end|>\n"): accepted
    summary = train_rm(data, tmp_path / "rm", RewardConfig(base=str(base), pad_token="eos",
                                                          epochs=1, **FAST))
    assert summary["stages"][0]["steps"] == 2
    with pytest.raises(ValueError, match="not a token"):
        train_rm(data, tmp_path / "rm2", RewardConfig(base=str(base), pad_token="<nope>",
                                                      **FAST))
    newline = "\u010a"  # byte-level BPE's "\n", the template's last token
    with pytest.raises(ValueError, match="end with the pad token"):
        train_rm(data, tmp_path / "rm2", RewardConfig(base=str(base), pad_token=newline,
                                                      epochs=1, **FAST))
