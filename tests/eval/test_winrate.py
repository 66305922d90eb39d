import json

import numpy as np
import pytest

from preflab.data.write import write_pairs
from preflab.eval.winrate import length_controlled, winrate, winrate_stats
from tests.train.helpers import short_pairs


def test_orders_that_disagree_are_ties():
    p_first = np.array([0.9, 0.8, 0.2, 0.7])
    p_second = np.array([0.7, 0.3, 0.1, 0.6])  # pair 2: orders disagree
    s = winrate_stats(p_first, p_second, np.ones(4), np.ones(4))
    assert (s["wins"], s["ties"], s["losses"]) == (2, 1, 1)
    assert s["win_rate"] == pytest.approx(2.5 / 4)
    assert s["ci95"][0] <= s["win_rate"] <= s["ci95"][1]
    assert s["order_agreement"] == 0.75


def test_a_judgement_of_exactly_one_half_is_no_win():
    s = winrate_stats(np.array([0.5, 0.5]), np.array([0.5, 0.9]), np.ones(2), np.ones(2))
    assert (s["wins"], s["ties"], s["losses"]) == (0, 2, 0) and s["win_rate"] == 0.5


def test_length_control_removes_a_pure_length_preference():
    rng = np.random.default_rng(0)
    d = rng.normal(0, 50, 400)
    len_b = np.full(400, 200.0)
    len_a = len_b + d
    p = 1 / (1 + np.exp(-3 * np.tanh(d / d.std())))  # the judge only likes length
    raw = np.mean(p > 0.5)
    assert length_controlled(p, len_a, len_b) == pytest.approx(0.5, abs=0.03)
    # and A longer on average: raw preference > 0.5, length-controlled back near 0.5
    shifted = len_a + 30
    p2 = 1 / (1 + np.exp(-3 * np.tanh((shifted - len_b) / d.std())))
    assert np.mean(p2 > 0.5) > raw
    assert length_controlled(p2, shifted, len_b) < np.mean(p2 > 0.5) - 0.1


def test_a_policy_against_itself_ties_everywhere(tmp_path):
    write_pairs(short_pairs(6), tmp_path / "pairs.jsonl")
    s = winrate("tiny-llama", "tiny-llama", tmp_path / "pairs.jsonl", "tiny-llama",
                tmp_path / "w", max_new_tokens=8, threads=1)
    # identical replies: whatever the judge prefers is a position, so every prompt ties
    assert (s["wins"], s["ties"], s["losses"]) == (0, 6, 0) and s["win_rate"] == 0.5
    # the saved generations can stand in for a policy
    again = winrate(str(tmp_path / "w" / "generations_a.jsonl"), "tiny-llama",
                    tmp_path / "pairs.jsonl", "tiny-llama", tmp_path / "w2", max_new_tokens=8,
                    threads=1)
    assert again["win_rate"] == 0.5
    rows = [json.loads(x) for x in (tmp_path / "w" / "generations_a.jsonl").open()]
    rows[0].pop("reply")
    (tmp_path / "bad.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(ValueError, match="line 1: field 'reply'"):
        winrate(str(tmp_path / "bad.jsonl"), "tiny-llama", tmp_path / "pairs.jsonl",
                "tiny-llama", tmp_path / "w3", max_new_tokens=8, threads=1)
