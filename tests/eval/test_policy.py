import json
import math

import pytest
import torch

from preflab.data.write import write_pairs
from preflab.eval.policy import eval_policy, perplexity
from preflab.models.examples import build_policy_examples
from preflab.models.sampler import Policy
from tests.train.helpers import short_pairs


def test_perplexity_is_the_reply_token_loss_of_a_plain_forward():
    pairs = short_pairs(5)
    policy = Policy("tiny-llama")
    got = perplexity(policy, pairs, batch_size=2)
    examples, _ = build_policy_examples(pairs, policy.tokenizer, 512, with_rejected=False)
    total, n = 0.0, 0
    with torch.no_grad():
        for e in examples:
            ids = torch.tensor([e.prefix + e.chosen_ids])
            labels = ids.clone()
            labels[0, :len(e.prefix) + len(e.chosen_ids) - e.chosen_n] = -100
            loss = policy.model(input_ids=ids, labels=labels).loss
            total += float(loss) * e.chosen_n
            n += e.chosen_n
    assert got["tokens"] == n
    assert math.isclose(got["perplexity"], math.exp(total / n), rel_tol=1e-3)


def test_eval_policy_scores_each_temperature(tmp_path):
    write_pairs(short_pairs(4), tmp_path / "pairs.jsonl")
    s = eval_policy("tiny-llama", tmp_path / "pairs.jsonl", "tiny-bert", tmp_path / "e",
                    temperatures=(0.7, 1.0), heldout=tmp_path / "pairs.jsonl",
                    max_new_tokens=8, threads=1)
    assert set(s["reward"]) == {"0.7", "1.0"} and s["n_prompts"] == 4
    rows = [json.loads(x) for x in (tmp_path / "e" / "generations.jsonl").open()]
    by_t = {t: [r for r in rows if r["temperature"] == t] for t in (0.7, 1.0)}
    assert all(len(v) == 4 for v in by_t.values())
    for t, v in by_t.items():
        assert s["reward"][str(t)]["mean"] == pytest.approx(
            sum(r["reward"] for r in v) / 4, abs=1e-4)
    assert s["perplexity"] > 1


def test_paired_difference_by_hand_and_cli_against(tmp_path):
    from preflab.eval.policy import compare_evals, paired_difference

    d = paired_difference({"a": 1.0, "b": 0.0, "c": 2.0}, {"a": 0.5, "b": 0.5, "c": 0.5,
                                                             "z": 9.0})
    assert d["n"] == 3 and d["mean_diff"] == pytest.approx((0.5 - 0.5 + 1.5) / 3, abs=1e-4)
    assert d["ci95"][0] <= d["mean_diff"] <= d["ci95"][1] and d["a_higher"] == pytest.approx(
        2 / 3, abs=1e-4)
    with pytest.raises(ValueError, match="at least 2"):
        paired_difference({"a": 1.0}, {"a": 0.0, "b": 1.0})
    write_pairs(short_pairs(4), tmp_path / "pairs.jsonl")
    for name in ("x", "y"):
        eval_policy("tiny-llama", tmp_path / "pairs.jsonl", "tiny-bert", tmp_path / name,
                    temperatures=(0.7,), max_new_tokens=6, threads=1)
    same = compare_evals(tmp_path / "x", tmp_path / "y")  # same model, seeds, prompts
    assert same["0.7"]["mean_diff"] == 0 and same["0.7"]["n"] == 4
    with pytest.raises(ValueError, match=r"no generations\.jsonl"):
        compare_evals(tmp_path / "x", tmp_path)
