from __future__ import annotations

import json

from preflab import read_pairs
from preflab.data.demo import demo, demo_pairs


def test_demo_writes_pairs_with_recorded_flips(tmp_path) -> None:
    report = demo(tmp_path / "demo.jsonl", n=2000, flip_rate=0.25, seed=0)
    assert report["n_pairs"] == 2000 and report["n_flipped"] == 500
    pairs = read_pairs(tmp_path / "demo.jsonl").pairs
    metas = [json.loads(m) for m in pairs["meta"]]
    assert sum(m["flipped"] for m in metas) == 500 and len(set(pairs["id"])) == 2000


def test_flipped_pairs_carry_the_wrong_label() -> None:
    from preflab.data.demo import load_conversations

    conversations = load_conversations()
    for pair in demo_pairs(200, flip_rate=0.5, seed=3):
        real = conversations[pair.meta["conversation"]][pair.meta["turn"]]
        assert (pair.rejected if pair.meta["flipped"] else pair.chosen) == real
        assert pair.p_chosen == 1.0 and pair.prompt[-1]["role"] == "user"


def test_seeded_and_hard_mode() -> None:
    a = demo_pairs(50, seed=1, negatives="later")
    assert [p.id for p in a] == [p.id for p in demo_pairs(50, seed=1, negatives="later")]
    assert [p.id for p in a] != [p.id for p in demo_pairs(50, seed=2, negatives="later")]
    for p in a:
        assert p.meta["negative"]["conversation"] == p.meta["conversation"]
        assert p.meta["negative"]["turn"] > p.meta["turn"]
