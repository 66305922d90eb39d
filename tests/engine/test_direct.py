"""Direct 1-10 scoring: label probabilities, the two-token "10", the rescaled score."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from preflab.engine import Engine, EngineOptions
from preflab.engine.direct import DirectScorer, direct_unit, expected_score, rescale


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFLAB_CACHE", str(tmp_path / "cache"))


CTX = (("user", "How do I bake bread?"),)


def test_expected_score_and_rescale() -> None:
    logp = np.log(np.eye(10)[[0, 9, 4]] * 0.999 + 0.0001)
    np.testing.assert_allclose(rescale(expected_score(logp)), [-1, 1, -1 / 9], atol=0.01)
    uniform = np.zeros(10)
    assert rescale(expected_score(uniform)) == pytest.approx(0.0)


def test_direct_scores_match_a_plain_forward() -> None:
    """Each label read from the full distribution; P("10") = P("1") P("0" | "1")."""
    scorer = DirectScorer("tiny-llama")
    assert scorer.ten is None  # the tiny tokenizer splits "10"
    units = [direct_unit(CTX, "Knead and bake."), direct_unit(CTX, "No.")]
    values = np.stack(Engine(EngineOptions(cache_path=":memory:", progress=False))
                      .run(scorer, units))
    ids = scorer.prompt_ids(*units[0].payload)
    one = scorer.tokenizer(scorer.ending + "1", add_special_tokens=False)["input_ids"][-1]
    with torch.no_grad():
        first = torch.log_softmax(scorer.model(input_ids=torch.tensor([ids])).logits[0, -1], -1)
        after = torch.log_softmax(
            scorer.model(input_ids=torch.tensor([[*ids, one]])).logits[0, -1], -1)
    total = [torch.logsumexp(first[list(v)], 0).item() for v in scorer.digit_ids]
    p_zero = torch.logsumexp(after[list(scorer.zero_ids[0])], 0).exp().item()
    expected = [total[0] + np.log(1 - p_zero), *total[1:], total[0] + np.log(p_zero)]
    np.testing.assert_allclose(values[0], expected, atol=1e-4)
    assert not np.allclose(values[0], values[1])
