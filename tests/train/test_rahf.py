"""SCIT, HIR and RAHF step 2: real training of tiny in-process models on real demo pairs."""

import json
from pathlib import Path

import pytest
import torch

from preflab.data.instructions import BAD, GOOD, instructed_pair
from preflab.data.write import write_pairs
from preflab.models.causal_lm import load_policy
from preflab.models.examples import build_policy_examples
from preflab.models.hidden import collate_rows, reply_hidden
from preflab.models.logps import collate_policy, reply_logps
from preflab.train.rahf import RAHFConfig, train_rahf
from preflab.train.recipe import PolicyConfig
from preflab.train.scit import hir_pairs, train_hir, train_scit
from tests.train.helpers import short_pairs

FAST = dict(policy="tiny-llama", max_length=256, batch_size=8, threads=1, save_steps=1000)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rahf") / "pairs.jsonl"
    write_pairs(short_pairs(16), path)
    return path


def mean_logps(model_path, pairs, instruction):
    model, tok = load_policy(str(model_path), PolicyConfig(), trainable=False)
    examples, _ = build_policy_examples([instructed_pair(p, instruction) for p in pairs],
                                        tok, 256)
    with torch.no_grad():
        sums, n = reply_logps(model.eval(), collate_policy(examples, tok.pad_token_id))
    return (sums / n).view(-1, 2)  # per-token log-probs of (chosen, rejected)


def test_scit_teaches_which_reply_goes_with_which_instruction(data, tmp_path):
    s = train_scit(data, tmp_path / "scit", PolicyConfig(epochs=12, learning_rate=1e-2,
                                                         **FAST))
    assert s["stage"] == "scit" and s["steps"] == 24
    pairs = short_pairs(16)
    good, bad = mean_logps(tmp_path / "scit", pairs, GOOD), mean_logps(tmp_path / "scit",
                                                                       pairs, BAD)
    # the chosen reply is likelier after the good instruction than after the bad one,
    # relative to the rejected reply
    assert ((good[:, 0] - bad[:, 0]) - (good[:, 1] - bad[:, 1]) > 0).float().mean() > 0.8
    first, last = s["log"][0], s["log"][-1]
    assert last["contrast"] < first["contrast"] and last["ce"] < first["ce"]


def test_hir_pairs_relabel_each_reply_with_its_instruction():
    pairs = short_pairs(3)
    got = hir_pairs(pairs)
    assert len(got) == 6
    assert got[0].chosen == pairs[0].chosen and got[0].prompt[-1]["content"].startswith(GOOD)
    assert got[1].chosen == pairs[0].rejected and got[1].prompt[-1]["content"].startswith(BAD)


def test_hir_trains_on_both_replies(data, tmp_path):
    s = train_hir(data, tmp_path / "hir", PolicyConfig(epochs=1, learning_rate=1e-3, **FAST))
    saved = json.loads((tmp_path / "hir" / "preflab-train.json").read_text())
    assert s["tokens"]["n_pairs"] == 32 and saved["stage"] == "hir"
    assert saved["inference_instruction"] == "good"


@pytest.mark.parametrize("variant", ["scit", "dual"])
def test_rahf_moves_the_hidden_states_toward_the_target(data, tmp_path, variant):
    config = RAHFConfig(variant=variant, base="tiny-llama", max_length=256, batch_size=8,
                        epochs=8, learning_rate=1e-2, step1_learning_rate=3e-3,
                        step1_epochs=3, save_steps=1000, lora_targets=["q_proj", "v_proj",
                                                                       "o_proj", "down_proj"])
    s = train_rahf(data, tmp_path / variant, config)
    assert s["rahf"]["layers"] == [1]
    ratios = [h["distance_ratio"] for h in s["log"]]
    assert ratios[0] == pytest.approx(1.0, abs=1e-4)  # zero adapters: the base's states
    assert ratios[-1] < 0.8
    # the saved (merged) model's layer-1 states on the plain input moved toward the goal
    step1 = s["step1_models"]
    base, tok = load_policy("tiny-llama", PolicyConfig(), trainable=False)
    tuned, _ = load_policy(str(tmp_path / variant), PolicyConfig(), trainable=False)
    pairs = short_pairs(16)
    plain, _ = build_policy_examples(pairs, tok, 256, with_rejected=False)
    batch = collate_rows(plain, tok.pad_token_id)
    with torch.no_grad():
        h0, h1 = reply_hidden(base.eval(), batch, [1])[0], reply_hidden(tuned.eval(), batch,
                                                                         [1])[0]
        if variant == "dual":
            good_m, _ = load_policy(step1[0], PolicyConfig(), trainable=False)
            bad_m, _ = load_policy(step1[1], PolicyConfig(), trainable=False)
            v = reply_hidden(good_m.eval(), batch, [1])[0] - reply_hidden(bad_m.eval(),
                                                                           batch, [1])[0]
        else:
            m, _ = load_policy(step1[0], PolicyConfig(), trainable=False)
            sides = [build_policy_examples([instructed_pair(p, t) for p in pairs], tok, 256,
                                           with_rejected=False)[0] for t in (GOOD, BAD)]
            v = (reply_hidden(m.eval(), collate_rows(sides[0], tok.pad_token_id), [1])[0]
                 - reply_hidden(m, collate_rows(sides[1], tok.pad_token_id), [1])[0])
    target = h0 + 5.0 * v
    assert (h1 - target).norm(dim=-1).mean() < 0.8 * (h0 - target).norm(dim=-1).mean()
    # a rerun reuses the step-1 models; other step-1 settings are refused
    first = Path(step1[0]) / "preflab-train.json"
    stamp = first.stat().st_mtime_ns
    (tmp_path / variant / "preflab-train.json").unlink()
    again = train_rahf(data, tmp_path / variant, config)
    assert first.stat().st_mtime_ns == stamp and again["step1_models"] == step1
    with pytest.raises(ValueError, match="other data or with other settings"):
        train_rahf(data, tmp_path / variant, RAHFConfig(**{**config.__dict__,
                                                            "step1_learning_rate": 1e-3}))


def test_rahf_refuses_an_unknown_variant_and_bad_layers(data, tmp_path):
    with pytest.raises(ValueError, match="variant"):
        RAHFConfig(variant="triple")
    config = RAHFConfig(base="tiny-llama", layers=[5], scit_model="tiny-llama",
                        max_length=256)
    with pytest.raises(ValueError, match=r"layers must be in 1\.\.1"):
        train_rahf(data, tmp_path / "x", config)
