"""Harmless rate: the statistics, the judge's two wordings, eval-policy and labelled pairs."""

import json

import numpy as np
import pytest

from preflab.data.write import write_pairs
from preflab.engine.judge import JudgeScorer, judge_unit, p_first
from preflab.eval.config import HarmlessEvalConfig
from preflab.eval.harmless import (
    HarmlessJudge,
    eval_harmless,
    harmless_prompts,
    harmless_stats,
    load_harmless_template,
    pair_agreement,
)
from preflab.eval.policy import eval_policy
from tests.train.helpers import short_pairs


def test_harmless_stats_rate_mean_and_intervals() -> None:
    both = np.array([[0.9, 0.7], [0.2, 0.4], [0.6, 0.4], [0.8, 0.9]])  # means .8 .3 .5 .85
    s = harmless_stats(both, seed=0, n_boot=500)
    assert s["n"] == 4
    assert s["harmless_rate"] == pytest.approx((1 + 0 + 0.5 + 1) / 4)  # 0.5 counts half
    assert s["mean_p_harmless"] == pytest.approx(np.mean([0.8, 0.3, 0.5, 0.85]), abs=1e-4)
    assert s["mean_p_by_wording"] == pytest.approx([0.625, 0.6])
    assert s["digit_agreement"] == pytest.approx(0.75)  # row 3: 0.6 vs 0.4 disagree
    lo, hi = s["harmless_rate_ci95"]
    assert 0 <= lo <= s["harmless_rate"] <= hi <= 1 and hi > lo
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 400)
    big = harmless_stats(p, seed=1, n_boot=1000)
    lo, hi = big["mean_p_harmless_ci95"]
    # a mean of uniforms: sd 1/sqrt(12); the interval is about +-1.96 sd / sqrt(n)
    assert hi - lo == pytest.approx(2 * 1.96 / np.sqrt(12 * 400), rel=0.2)
    assert "digit_agreement" not in big
    with pytest.raises(ValueError, match="no replies"):
        harmless_stats(np.zeros(0))


def test_pair_agreement() -> None:
    chosen = np.array([0.9, 0.2, 0.5, 0.7])
    rejected = np.array([0.1, 0.6, 0.5, 0.3])
    s = pair_agreement(chosen, rejected, n_boot=300)
    assert s["agreement"] == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert s["mean_p_diff"] == pytest.approx(np.mean(chosen - rejected))
    assert s["agreement_ci95"][0] <= s["agreement"] <= s["agreement_ci95"][1]
    with pytest.raises(ValueError, match="same number"):
        pair_agreement(chosen, rejected[:2])


def test_two_wordings_and_template_checks(tmp_path) -> None:
    one, two = harmless_prompts()
    assert "answer 1 if the reply is harmless or 2" in one.head
    assert "answer 2 if the reply is harmless or 1" in two.head
    assert "Reply: R" in one.sample((("user", "Q"),), "R", "")
    bad = tmp_path / "t.toml"
    bad.write_text('sample = "Conversation: {conversation}"\n')
    with pytest.raises(ValueError, match=r"lacks the placeholder \{response\}"):
        load_harmless_template(bad)
    bad.write_text('shots = 2\n')
    with pytest.raises(ValueError, match=r"t\.toml: unknown template keys \['shots'\]"):
        load_harmless_template(bad)
    bad.write_text('base = "Is it fine? Answer 1 or 2."\n')
    with pytest.raises(ValueError, match="must name the answers"):
        load_harmless_template(bad)


def test_judge_averages_the_two_wordings(tmp_path) -> None:
    contexts = [(("user", "How do I bake bread?"),), (("user", "How do I pick a lock?"),)]
    replies = ["Mix flour, water and yeast, then bake.", "I can't help with that."]
    judge = HarmlessJudge("tiny-llama", threads=1)
    p = judge(contexts, replies)
    assert p.shape == (2, 2) and np.all((p > 0) & (p < 1))
    # each column is the plain judge's P(label) for the wording's "harmless" digit
    for j, prompt in enumerate(harmless_prompts()):
        scorer = JudgeScorer("tiny-llama", prompt=prompt, keep_task=True)
        units = [judge_unit(c, r, "") for c, r in zip(contexts, replies, strict=True)]
        logp = np.stack([scorer.run([scorer.encode([u])])[0] for u in units])
        expected = p_first(logp) if j == 0 else 1 - p_first(logp)
        np.testing.assert_allclose(p[:, j], expected, atol=1e-4)


def test_eval_policy_and_labelled_pairs(tmp_path) -> None:
    pairs = short_pairs(6)
    write_pairs(pairs, tmp_path / "pairs.jsonl")
    s = eval_policy("tiny-llama", tmp_path / "pairs.jsonl", out=tmp_path / "ev",
                    harmless_judge="tiny-llama", temperatures=[0.7, 1.0], max_new_tokens=6,
                    limit=4, threads=1)
    assert set(s["harmless"]) == {"0.7", "1.0"} and "reward" not in s
    for h in s["harmless"].values():
        assert h["n"] == 4 and 0 <= h["harmless_rate"] <= 1
    rows = [json.loads(x) for x in (tmp_path / "ev" / "harmless.jsonl").read_text()
            .splitlines()]
    assert len(rows) == 8
    at = [r["p_harmless"] for r in rows if r["temperature"] == 1.0]
    assert s["harmless"]["1.0"]["mean_p_harmless"] == pytest.approx(np.mean(at), abs=1e-4)
    assert (tmp_path / "ev" / "generations_t0.7.jsonl").exists()
    h = eval_harmless(tmp_path / "pairs.jsonl", tmp_path / "eh",
                      HarmlessEvalConfig(judge="tiny-llama", limit=5, threads=1))
    assert h["n_pairs"] == 5 and h["chosen"]["n"] == 5 and h["rejected"]["n"] == 5
    rated = [json.loads(x) for x in (tmp_path / "eh" / "ratings.jsonl").read_text()
             .splitlines()]
    agree = np.mean([(r["p_harmless_chosen"] > r["p_harmless_rejected"])
                     + 0.5 * (r["p_harmless_chosen"] == r["p_harmless_rejected"])
                     for r in rated])
    assert h["agreement"] == pytest.approx(agree)
    report = (tmp_path / "eh" / "report.md").read_text()
    assert "| chosen | 5 |" in report and f"{h['agreement']:.3f}" in report
    with pytest.raises(ValueError, match="give --prompts"):
        eval_policy("tiny-llama", None, out=tmp_path / "x", harmless_judge="tiny-llama")
