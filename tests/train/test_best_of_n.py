import json

import numpy as np
import pytest

from preflab.data.read import iter_pairs, load_pairs
from preflab.data.write import write_pairs
from preflab.eval.reward_scores import RewardFunction
from preflab.train.best_of_n import best_of_n, best_of_n_table
from tests.train.helpers import short_pairs


def test_best_of_k_table():
    r = np.array([[0.0, 2.0, 1.0, 5.0], [1.0, 0.0, 0.0, 0.0]])
    assert best_of_n_table(r) == {"best_of_1": 0.5, "best_of_2": 1.5, "best_of_4": 3.0}


def test_selected_replies_are_the_best_under_a_fresh_scoring(tmp_path):
    write_pairs(short_pairs(4), tmp_path / "pairs.jsonl")
    s = best_of_n(tmp_path / "pairs.jsonl", "tiny-llama", "tiny-bert", tmp_path / "bon", n=4,
                  max_new_tokens=8, threads=1)
    samples = [json.loads(x) for x in (tmp_path / "bon" / "samples.jsonl").open()]
    assert s["n_prompts"] == 4 and all(len(x["replies"]) == 4 for x in samples)
    selected = list(iter_pairs(load_pairs(tmp_path / "bon" / "selected.jsonl")))
    score = RewardFunction("tiny-bert", progress=False)
    from preflab.engine.units import as_messages

    fresh_best = score([as_messages(p.prompt) for p in selected], [p.chosen for p in selected])
    assert np.allclose(fresh_best, [max(x["rewards"]) for x in samples], atol=1e-4)
    assert s["best_of_4"] == pytest.approx(np.mean(fresh_best), abs=1e-3)
    # seeded: a second run samples the same replies
    best_of_n(tmp_path / "pairs.jsonl", "tiny-llama", "tiny-bert", tmp_path / "bon2", n=4,
              max_new_tokens=8, threads=1)
    assert (tmp_path / "bon2" / "samples.jsonl").read_text() == \
        (tmp_path / "bon" / "samples.jsonl").read_text()
