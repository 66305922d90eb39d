from __future__ import annotations

import numpy as np
import pytest
import torch

from preflab.engine import Engine, EngineOptions
from preflab.engine.judge import JudgeScorer, judge_unit, p_first
from preflab.engine.reward import RewardScorer
from preflab.engine.units import reply_unit
from preflab.models.chat import chat_ids
from preflab.models.forward import last_hidden_states_unshared


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFLAB_CACHE", str(tmp_path / "cache"))


CONTEXTS = [(("user", "How do I bake bread?"),),
            (("user", "hello"), ("assistant", "Hi!"), ("user", "What is 2 + 2?"))]
REPLIES = ["Mix flour and water.", "No.", "4", "It is four, of course, my friend."]


def engine() -> Engine:
    return Engine(EngineOptions(cache_path=":memory:", progress=False, max_tokens=64))


def test_causal_rm_engine_matches_naive_forward() -> None:
    scorer = RewardScorer("tiny-llama")
    units = [reply_unit(c, r) for c in CONTEXTS for r in REPLIES]
    values = np.concatenate(engine().run(scorer, units))
    seqs = [chat_ids(scorer.tokenizer, *u.payload) for u in units]
    with torch.inference_mode():
        hidden = last_hidden_states_unshared(scorer.backbone, seqs, scorer.tokenizer.pad_token_id)
        naive = scorer.head(hidden)[:, 0].numpy()
    np.testing.assert_allclose(values, naive, atol=1e-5)
    assert len(set(np.round(values, 6))) > 1  # a real, non-constant head


def test_encoder_reward_model_scores_text_pairs() -> None:
    scorer = RewardScorer("tiny-bert")
    assert scorer.encoder and not scorer.prefix_sharing
    values = engine().run(scorer, [reply_unit(CONTEXTS[0], r) for r in REPLIES])
    assert len(values) == 4 and all(np.isfinite(v).all() for v in values)


def test_judge_both_orders_and_label_tokens() -> None:
    scorer = JudgeScorer("tiny-llama")
    assert len(scorer.label_ids) == 2 and not set(scorer.label_ids[0]) & set(scorer.label_ids[1])
    units = [judge_unit(CONTEXTS[0], REPLIES[0], REPLIES[1]),
             judge_unit(CONTEXTS[0], REPLIES[1], REPLIES[0])]
    logp = np.stack(engine().run(scorer, units))
    assert logp.shape == (2, 2) and (logp <= 0).all()
    # each order's value equals a plain forward of that prompt
    ids = scorer.prompt_ids(*units[0].payload)
    with torch.no_grad():
        logits = scorer.model(input_ids=torch.tensor([ids])).logits[0, -1]
    full = torch.log_softmax(logits, -1)
    expected = [torch.logsumexp(full[list(v)], 0).item() for v in scorer.label_ids]
    np.testing.assert_allclose(logp[0], expected, atol=1e-5)
    p = p_first(logp)
    assert ((p > 0) & (p < 1)).all()


def test_whole_sequence_path_matches_prefix_sharing() -> None:
    """The plain forward (custom heads, remote code) gives the prefix-shared values."""
    units = [reply_unit(c, r) for c in CONTEXTS for r in REPLIES]
    shared = np.concatenate(engine().run(RewardScorer("tiny-llama"), units))
    whole_scorer = RewardScorer("tiny-llama", prefix_sharing=False)
    whole = np.concatenate(engine().run(whole_scorer, units))
    np.testing.assert_allclose(whole, shared, atol=1e-5)


def test_loglik_matches_one_sequence_at_a_time() -> None:
    from preflab.engine.loglik import LoglikScorer

    scorer = LoglikScorer("tiny-llama")
    units = [reply_unit(c, r) for c in [*CONTEXTS, ()] for r in REPLIES]
    values = np.stack(engine().run(scorer, units))
    model = scorer.model
    for unit, (total, n) in zip(units, values, strict=True):
        prompt, target = scorer._split(unit)
        ids = torch.tensor([prompt + target])
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
        expected = sum(float(logp[len(prompt) - 1 + i, t]) for i, t in enumerate(target))
        assert n == len(target) > 0
        assert abs(total - expected) < 1e-3
    # With a context, the target is exactly the reply's turn (the prompt is its prefix).
    prompt, target = scorer._split(units[0])
    assert prompt + target == chat_ids(scorer.tokenizer, *units[0].payload)


def test_judge_prefix_sharing_modes_agree_with_a_plain_forward(tmp_path) -> None:
    """The head's KV cache (once per run), once per batch and no sharing: same values as
    each prompt run whole, with exemplars and with a rationale (prompts past tiny-llama's
    512 positions: the same weights with 2048)."""
    from preflab.engine.label_prompt import Exemplar, LabelPrompt
    from preflab.models.tiny import tiny_causal_lm, tiny_tokenizer

    shots = (Exemplar(CONTEXTS[1], REPLIES[2], REPLIES[1], 1, id="e1"),
             Exemplar(CONTEXTS[0], REPLIES[1], REPLIES[0], 2, id="e2"))
    prompt = LabelPrompt.build("harmless", "detailed", shots)
    units = [judge_unit(c, a, b, rationale) for c in CONTEXTS
             for a, b in [(REPLIES[0], REPLIES[3]), (REPLIES[3], REPLIES[0]), (REPLIES[1], "x")]
             for rationale in (None, "Response 1 is rude.")]
    tok, model = tiny_tokenizer(), str(tmp_path / "tiny-llama-2k")
    tiny_causal_lm(tok, max_position_embeddings=2048).save_pretrained(model)
    tok.save_pretrained(model)
    out = {}
    for mode in ("run", "batch", "off"):
        scorer = JudgeScorer(model, prompt=prompt, share_prefix=mode)
        out[mode] = np.stack(engine().run(scorer, units))
    items = [scorer.encode([u]) for u in units]
    assert not any(i.head for i in items)  # "off"
    run_scorer = JudgeScorer(model, prompt=prompt)
    assert all(run_scorer.encode([u]).head for u in units)
    assert len(run_scorer.head_ids()) > 100  # preamble and both exemplars
    with torch.no_grad():
        naive = []
        for u in units:
            ids = scorer.prompt_ids(*u.payload)
            logits = scorer.model(input_ids=torch.tensor([ids])).logits[0, -1]
            full = torch.log_softmax(logits, -1)
            naive.append([torch.logsumexp(full[list(v)], 0).item() for v in scorer.label_ids])
    for mode, values in out.items():
        np.testing.assert_allclose(values, naive, atol=1e-5, err_msg=mode)
    assert len({round(float(v), 5) for v in out["run"][:, 0]}) > 3
    with pytest.raises(ValueError, match="share_prefix"):
        JudgeScorer("tiny-llama", share_prefix="always")


def test_loglik_of_empty_replies_alone_is_zero_tokens_not_a_crash() -> None:
    """As found on HH: four chosen replies are empty, and a batch holding only their
    reply-alone units built float index tensors (IndexError); the ifd member lost them."""
    from preflab.engine.loglik import LoglikScorer

    scorer = LoglikScorer("tiny-llama")
    empties = [reply_unit((), ""), reply_unit((), "")]
    assert [list(v) for v in scorer.run([scorer.encode([u]) for u in empties])] == [
        [0.0, 0.0], [0.0, 0.0]]
    mixed = [reply_unit((), ""), reply_unit((), REPLIES[0]), reply_unit(CONTEXTS[0], "")]
    values = np.stack(engine().run(scorer, mixed))
    assert list(values[0]) == [0.0, 0.0] and values[1, 1] > 0 and values[2, 1] > 0
