"""Lookalikes of the `gold` committee's reward models: tiny random models of the same
classes and heads, saved with a chat template and a pad-token situation like the real
ones, scored by preflab's `seq-rm` member (prefix sharing where it applies, batches)
and by each model card's reference snippet, written plainly here.

- skywork-llama3.1-8b, grm-llama3.2-3b: LlamaForSequenceClassification with its own
  pad token, logits[0][0] -> ``llama-pad``
- fsfairx-llama3-8b: Llama with no pad token, every turn ending in eos (one sequence
  at a time, as the card's pipeline) -> ``llama-nopad``
- skywork-gemma2-27b: Gemma2ForSequenceClassification, <bos> in the template, <pad>
  -> ``gemma2``
- armorm-llama3-8b, qrm-llama3.1-8b: remote code, ``.score`` (gated on the prompt's
  end) -> ``remote-score``; a multi-objective output read by index ->
  ``remote-rewards-index``
- inf-orm-llama3.1-70b: a class the card defines (MLP head), logits[0][0] ->
  ``card-inf-orm``
- ldl-reward-gemma2-27b: a class the card defines on Gemma-2, ``.score`` -> ``card-ldl``
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from transformers import Gemma2Model, Gemma2PreTrainedModel
from transformers.utils import ModelOutput

from preflab.committee.members import score_member
from preflab.committee.spec import parse_committee
from preflab.data.pair import PreferencePair
from preflab.engine import Engine, EngineOptions

LLAMA3 = ("{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}"
          "<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>{% endfor %}"
          "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n"
          "{% endif %}")
GEMMA = ("{{ bos_token }}{% for m in messages %}{% set role = 'model' if m['role'] == "
         "'assistant' else m['role'] %}<start_of_turn>{{ role }}\n{{ m['content'] }}"
         "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n"
         "{% endif %}")
CORPUS = ["How do I bake bread? Mix flour, water, salt and yeast, then bake it hot.",
          "I can't help with that. Sure, here is how you do it, step by step.",
          "The quick brown fox jumps over the lazy dog 0 1 2 3 4 5 6 7 8 9."]
MAX_LENGTH = 80


def tokenizer(specials: list[str], template: str, bos: str, eos: str, pad: str | None) -> Any:
    """A byte-level BPE tokenizer with these special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos,
                                   **({"pad_token": pad} if pad else {}))
    fast.chat_template = template
    return fast


def small(config_cls: Any, tok: Any, pad_id: int | None, **extra: Any) -> Any:
    common = {"vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "max_position_embeddings": 512, "bos_token_id": tok.bos_token_id,
              "eos_token_id": tok.eos_token_id, "pad_token_id": pad_id, "num_labels": 1}
    return config_cls(**{**common, **extra})


@dataclass
class GatedOutput(ModelOutput):
    """An ArmoRM/LDL-style output: per-objective rewards and the gated score."""

    rewards: torch.Tensor | None = None
    score: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class LDLLike(Gemma2PreTrainedModel):
    """A class a card defines (as LDL-Reward's): Gemma-2 backbone, an MLP reward head of
    several objectives and a gate on the same token, read before the first pad."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.model = Gemma2Model(config)
        self.regression_layer = nn.Sequential(nn.Linear(config.hidden_size, 16), nn.LeakyReLU(),
                                              nn.Linear(16, 5))
        self.gating_layer = nn.Linear(config.hidden_size, 5)
        self.post_init()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                **kwargs: Any) -> GatedOutput:
        hidden = self.model(input_ids, attention_mask=attention_mask)[0]
        first = torch.eq(input_ids, self.config.pad_token_id).int().argmax(-1) - 1
        last = first % input_ids.shape[-1]
        h = hidden[torch.arange(input_ids.shape[0]), last]
        rewards = self.regression_layer(h)
        score = (torch.softmax(self.gating_layer(h), dim=-1) * rewards).sum(-1)
        return GatedOutput(rewards=rewards, score=score, logits=score)


REMOTE_CODE = '''
import torch
from dataclasses import dataclass
from torch import nn
from transformers import LlamaModel, LlamaPreTrainedModel
from transformers.utils import ModelOutput


@dataclass
class GatedOutput(ModelOutput):
    rewards: torch.Tensor = None
    score: torch.Tensor = None
    logits: torch.Tensor = None


class GatedRM(LlamaPreTrainedModel):
    """ArmoRM-like: objective rewards at the last token before padding, mixed by a gate
    read at the prompt's last header token."""

    def __init__(self, config):
        super().__init__(config)
        self.model = LlamaModel(config)
        self.regression_layer = nn.Linear(config.hidden_size, 4, bias=False)
        self.gating = nn.Linear(config.hidden_size, 4)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        hidden = self.model(input_ids, attention_mask=attention_mask)[0]
        rows = torch.arange(input_ids.shape[0])
        last = (torch.eq(input_ids, self.config.pad_token_id).int().argmax(-1) - 1) \\
            % input_ids.shape[-1]
        header = torch.tensor([max(i for i, t in enumerate(ids.tolist())
                                   if t == self.config.header_token_id) for ids in input_ids])
        rewards = self.regression_layer(hidden[rows, last])
        gate = torch.softmax(self.gating(hidden[rows, header]), dim=-1)
        score = (gate * rewards).sum(-1)
        return GatedOutput(rewards=rewards, score=score, logits=score)
'''


@dataclass
class Lookalike:
    name: str
    folder: Path
    options: dict[str, Any]
    read: Any  # the card's reading of one output: out -> float


def build(kind: str, root: Path) -> Lookalike:
    """Save one lookalike to `root/kind`."""
    from transformers import (
        Gemma2Config,
        Gemma2ForSequenceClassification,
        LlamaConfig,
        LlamaForSequenceClassification,
    )

    from preflab.committee.card_classes import INFORMForSequenceClassification

    folder = root / kind
    torch.manual_seed(0)
    llama_specials = ["<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>",
                      "<|end_header_id|>"]
    logits = lambda out: float(out.logits[0][0])  # noqa: E731
    if kind in ("llama-pad", "card-inf-orm", "remote-score", "remote-rewards-index"):
        tok = tokenizer([*llama_specials, "[PAD]"], LLAMA3, "<|begin_of_text|>", "<|eot_id|>",
                        "[PAD]")
        config = small(LlamaConfig, tok, tok.pad_token_id)
        options: dict[str, Any] = {}
        read = logits
        if kind == "llama-pad":
            model = LlamaForSequenceClassification(config)
        elif kind == "card-inf-orm":
            model = INFORMForSequenceClassification(config)
            options["class"] = ("preflab.committee.card_classes:"
                                "INFORMForSequenceClassification")
        else:
            config.header_token_id = tok.convert_tokens_to_ids("<|end_header_id|>")
            config.auto_map = {"AutoModelForSequenceClassification": "modeling_gated.GatedRM"}
            folder.mkdir(parents=True)
            (folder / "modeling_gated.py").write_text(REMOTE_CODE)
            namespace: dict[str, Any] = {}
            exec(compile(REMOTE_CODE, "modeling_gated.py", "exec"), namespace)
            model = namespace["GatedRM"](config)
            options["trust_remote_code"] = True
            if kind == "remote-score":
                options["reward_output"] = "score"
                read = lambda out: float(out.score[0])  # noqa: E731
            else:
                options.update(reward_output="rewards", output_index=2)
                read = lambda out: float(out.rewards[0][2])  # noqa: E731
    elif kind == "llama-nopad":  # no pad token anywhere; every turn ends in eos
        tok = tokenizer(llama_specials, LLAMA3, "<|begin_of_text|>", "<|eot_id|>", None)
        model = LlamaForSequenceClassification(small(LlamaConfig, tok, None))
        options, read = {}, logits
    elif kind in ("gemma2", "card-ldl"):
        tok = tokenizer(["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"],
                        GEMMA, "<bos>", "<eos>", "<pad>")
        config = small(Gemma2Config, tok, tok.pad_token_id, head_dim=8,
                       attn_implementation="eager", sliding_window=16)
        if kind == "gemma2":
            model = Gemma2ForSequenceClassification(config)
            options, read = {"attn_implementation": "eager"}, logits
        else:
            model = LDLLike(config)
            options = {"class": f"{__name__}:LDLLike", "reward_output": "score",
                       "attn_implementation": "eager"}
            read = lambda out: float(out.score[0])  # noqa: E731
    else:
        raise ValueError(kind)
    model.eval().save_pretrained(folder)
    tok.save_pretrained(folder)
    return Lookalike(kind, folder, options, read)


def card_reward(look: Lookalike, model: Any, tok: Any, messages: list[dict[str, str]]) -> float:
    """The card's snippet: the whole conversation through the chat template, one
    sequence, the reward read from the output (the last `MAX_LENGTH` tokens kept, as
    preflab truncates)."""
    ids = tok.apply_chat_template(messages, tokenize=True, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return look.read(model(ids[:, -MAX_LENGTH:]))


def conversation_pairs() -> list[PreferencePair]:
    """Prompts of different lengths (one shared by two pairs), a pair whose rejected
    reply answers another prompt, and a context far over `MAX_LENGTH` tokens."""
    user = lambda text: [{"role": "user", "content": text}]  # noqa: E731
    long_turns = [{"role": r, "content": f"Turn {i}: the quick brown fox jumps over the lazy "
                                         f"dog and bakes bread with flour {i}."}
                  for i, r in zip(range(12), ["user", "assistant"] * 6, strict=True)][:-1]
    return [
        PreferencePair(user("How do I bake bread?"), "Mix flour, water and yeast, then bake.",
                       "I can't help with that."),
        PreferencePair(user("How do I bake bread?"), "Sure, here is how: flour, salt.",
                       "Bake it."),
        PreferencePair([*user("The quick brown fox?"),
                        {"role": "assistant", "content": "Jumps over the lazy dog."},
                        {"role": "user", "content": "And then 1 2 3?"}], "4 5 6 7 8 9.", "No."),
        PreferencePair(user("Hi"), "Hello! Here is how you do it.", "Sure.",
                       rejected_prompt=user("How do I bake bread, step by step?")),
        PreferencePair(long_turns, "Flour, water, salt and yeast.", "I can't help."),
    ]


KINDS = ["llama-pad", "llama-nopad", "gemma2", "remote-score", "remote-rewards-index",
         "card-inf-orm", "card-ldl"]


@pytest.mark.parametrize("kind", KINDS)
def test_member_scores_as_the_model_card_does(kind: str, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from preflab.engine.reward import load_class

    look = build(kind, tmp_path)
    pairs = conversation_pairs()
    committee = parse_committee({"member": [{
        "name": kind, "kind": "seq-rm", "model": str(look.folder), "max_length": MAX_LENGTH,
        **look.options}]}, "lookalikes")
    # small batches: groups are split over several batches, replies batched together
    engine = Engine(EngineOptions(max_tokens=160, cache_path=":memory:", progress=False))
    scores = score_member(committee.members[0], pairs, engine)

    tok = AutoTokenizer.from_pretrained(look.folder)
    cls = load_class(look.options["class"]) if "class" in look.options \
        else AutoModelForSequenceClassification
    extra = {k: look.options[k] for k in ("trust_remote_code", "attn_implementation")
             if k in look.options}
    model = cls.from_pretrained(look.folder, **extra).eval()
    expected_c = [card_reward(look, model, tok, [
        *p.prompt, {"role": "assistant", "content": p.chosen}]) for p in pairs]
    expected_r = [card_reward(look, model, tok, [
        *p.rejected_context, {"role": "assistant", "content": p.rejected}]) for p in pairs]
    np.testing.assert_allclose(scores.r_chosen, expected_c, atol=1e-4, rtol=0)
    np.testing.assert_allclose(scores.r_rejected, expected_r, atol=1e-4, rtol=0)
    assert scores.info["truncated"] >= 2  # the long context's two replies were cut
    assert len({round(float(x), 6) for x in scores.r_chosen}) == len(pairs)  # not constant


def test_bad_conventions_name_what_is_wrong(tmp_path: Path) -> None:
    from preflab.engine.reward import RewardModelOptions, RewardScorer

    look = build("llama-pad", tmp_path)
    with pytest.raises(ValueError, match=r"cannot be imported .*module on the Python path"):
        RewardScorer(str(look.folder), options=RewardModelOptions("no_such_module:Model"))
    with pytest.raises(ValueError, match="pad_token '<nope>' is not in the tokenizer"):
        RewardScorer(str(look.folder), options=RewardModelOptions(pad_token="<nope>"))
    scorer = RewardScorer(str(look.folder), prefix_sharing=False,
                          options=RewardModelOptions(reward_output="score"))
    with pytest.raises(ValueError, match="has no 'score' \\(reward_output\\)"):
        scorer.outputs([[1, 2, 3]])
