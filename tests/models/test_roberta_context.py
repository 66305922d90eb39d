"""RoBERTa-family encoders number their positions from ``pad_token_id + 1``: a config's
``max_position_embeddings`` of 514 reads 512 tokens. Every scorer caps its inputs at
what really fits.

As found (issue 32 review): the cap was ``max_position_embeddings`` itself, so a
RoBERTa reward model of 20 positions (pad id 3) took 20-token inputs and raised
"index out of range" in its position embeddings (seq-rm, embed, ``preflab serve``)."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from preflab.models.runtime import model_context

POSITIONS = 20


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFLAB_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def roberta(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random RoBERTa reward model of 20 positions, saved with its tokenizer."""
    from transformers import RobertaConfig, RobertaForSequenceClassification

    from preflab.models.tiny import tiny_tokenizer

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=64, num_labels=1,
                           max_position_embeddings=POSITIONS, type_vocab_size=1,
                           pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id,
                           eos_token_id=tok.sep_token_id)
    folder = tmp_path_factory.mktemp("roberta") / "rm"
    RobertaForSequenceClassification(config).eval().save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def long_pairs(hh_result: Any, n: int) -> list[Any]:
    from preflab.data.read import iter_pairs

    return list(islice(iter_pairs(hh_result.pairs), n))


def test_the_context_is_what_the_positions_hold(roberta: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(roberta).eval()
    pad = model.config.pad_token_id
    context = model_context(model)
    assert context == POSITIONS - pad - 1 == 16
    with torch.inference_mode():
        model(input_ids=torch.full((1, context), 5))  # fits
        with pytest.raises((IndexError, RuntimeError), match=r"out of (range|bounds)"):
            model(input_ids=torch.full((1, context + 1), 5))  # one more does not


def test_a_roberta_seq_rm_scores_long_pairs(roberta: Path, hh_result: Any) -> None:
    from preflab.committee.members import score_member
    from preflab.committee.spec import parse_committee
    from preflab.engine import Engine, EngineOptions
    from preflab.engine.reward import RewardScorer

    assert RewardScorer(str(roberta)).max_length == 16
    spec = parse_committee({"member": [{"name": "rb", "kind": "seq-rm",
                                        "model": str(roberta)}]}, "t").members[0]
    e = Engine(EngineOptions(cache_path=":memory:", progress=False))
    scores = score_member(spec, long_pairs(hh_result, 4), e)
    assert not e.failures and np.isfinite(scores.margin).all()
    assert scores.info["truncated"] == 4  # every HH pair is over 16 tokens


def test_a_roberta_embedder_reads_its_context(roberta: Path) -> None:
    from preflab.engine.embed import EmbedScorer, embed_unit

    scorer = EmbedScorer(str(roberta), max_length=256)
    assert scorer.max_length == 16
    item = scorer.encode([embed_unit("The quick brown fox jumps over the lazy dog. " * 10)])
    assert len(item.ids) == 16 and scorer.truncated == 1
    assert np.isfinite(scorer.run([item])[0]).all()


def test_a_served_roberta_reward_model_clips_to_what_fits(roberta: Path) -> None:
    from preflab.serve.reward import RewardModel

    served = RewardModel(str(roberta))
    assert served.context == 16
    ids, cut = served.chat([{"role": "user", "content": "How do I bake bread? " * 10},
                            {"role": "assistant", "content": "Mix flour and bake."}])
    assert len(ids) == 16 and cut > 0
    assert np.isfinite(served.logits([ids])).all()
