from __future__ import annotations

import json

from preflab.data.inspect import inspect, length_summary
from preflab.models.offline import load_tokenizer


def test_length_summary() -> None:
    s = length_summary(list(range(1, 101)))
    assert s["p50"] == 50.5 and s["max"] == 100 and s["mean"] == 50.5


def test_real_hh_report(hh_path) -> None:
    report = inspect(hh_path)
    assert report["n_pairs"] == 2312 and report["n_rejected"] == 0
    assert report["prefix_mismatch"] == 5 and report["empty_reply"] == 4
    assert report["duplicate_ids"] == 0 and report["subsets"] == {"harmless-base": 2312}
    assert report["prompt_turns"]["p50"] == 3


def test_problems_are_counted(tmp_path) -> None:
    good = {"prompt": "x", "chosen": "a", "rejected": "b"}
    lines = [good, good, {"prompt": "x", "chosen": "c", "rejected": "c"}, {"prompt": "y"}]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    report = inspect(path)
    assert report["n_pairs"] == 2 and report["n_rejected"] == 2
    assert report["duplicate_ids"] == 1 and report["identical_pairs"] == 1


def test_token_lengths_with_a_real_tokenizer(tmp_path, tiny_tok) -> None:
    tiny_tok.save_pretrained(tmp_path / "tok")
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"prompt": "hello there", "chosen": "a b c", "rejected": "no"}))
    report = inspect(path, tokenizer=load_tokenizer(str(tmp_path / "tok")),
                     tokenizer_name=str(tmp_path / "tok"))
    n = len(tiny_tok("a b c", add_special_tokens=False)["input_ids"])
    assert report["chosen_tokens"]["max"] == n and report["tokenizer"].endswith("tok")


def test_max_tokens_counts_long_prompts_and_replies(tmp_path) -> None:
    from types import SimpleNamespace

    from preflab.data.inspect import default_max_tokens

    rows = [{"prompt": "one two three", "chosen": "a b c d e", "rejected": "no"},
            {"prompt": "x", "chosen": "a", "rejected": "b c d e f g"}]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = inspect(path, max_tokens=3)  # words: the prompt renders as "Human: ..."
    assert report["max_tokens"] == 3
    assert report["over_max_tokens"] == {"prompt": 1, "chosen": 1, "rejected": 1}
    assert inspect(path)["over_max_tokens"] is None  # words have no model limit
    assert default_max_tokens(SimpleNamespace(model_max_length=8192)) == 8192
    assert default_max_tokens(SimpleNamespace(model_max_length=int(1e30))) is None
    assert default_max_tokens(None) is None


def test_copies_and_repeated_prompts_are_counted(tmp_path) -> None:
    lines = [{"prompt": "Hi  there", "chosen": "a", "rejected": "b"},
             {"prompt": "hi there", "chosen": "c", "rejected": "d"},
             {"prompt": "Hi  there", "chosen": "a", "rejected": "b"},
             {"prompt": "other", "chosen": "a", "rejected": "b"}]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    report = inspect(path)
    assert report["duplicate_ids"] == 1
    assert report["repeated_prompts"] == 1 and report["pairs_with_a_repeated_prompt"] == 3
