from __future__ import annotations

import json

import pytest

from preflab import read_pairs, write_pairs
from preflab.data.trl import extract_prompt, parse_trl

Q = {"role": "user", "content": "What color is the sky?"}


def a(text: str) -> dict:
    return {"role": "assistant", "content": text}


def test_four_trl_formats_give_the_same_pair() -> None:
    explicit = parse_trl({"prompt": [Q], "chosen": [a("Blue.")], "rejected": [a("Green.")]})
    implicit = parse_trl({"chosen": [Q, a("Blue.")], "rejected": [Q, a("Green.")]})
    standard = parse_trl({"prompt": Q["content"], "chosen": "Blue.", "rejected": "Green."})
    assert explicit.id == implicit.id == standard.id
    assert explicit.prompt == [Q] and explicit.chosen == "Blue."


def test_standard_implicit_prompt() -> None:
    pair = parse_trl({"chosen": "Q: sky? A: blue", "rejected": "Q: sky? A: green"})
    assert pair.prompt[0]["content"] == "Q: sky? A:" and pair.chosen == " blue"


@pytest.mark.parametrize("example", [
    {"chosen": "The sky is blue.", "rejected": "The sky is green."},
    {"chosen": [Q, a("Blue.")], "rejected": [Q, a("Green.")]},
    {"chosen": "abc def", "rejected": "abc xyz"},
])
def test_extract_prompt_agrees_with_trl(example: dict) -> None:
    from trl.data_utils import extract_prompt as trl_extract

    ours = extract_prompt(example["chosen"], example["rejected"])
    theirs = trl_extract(dict(example))
    assert ours == (theirs["prompt"], theirs["chosen"], theirs["rejected"])


def test_conversational_completion_with_several_turns_keeps_context() -> None:
    pair = parse_trl({"prompt": [Q], "chosen": [a("Blue."), {"role": "user", "content": "sure?"},
                                                a("Yes.")], "rejected": [a("Green.")]})
    assert pair.chosen == "Yes." and len(pair.prompt) == 3
    assert pair.rejected_prompt == [Q] and "prefix_mismatch" in pair.flags


def test_trl_output_loads_in_trl_conventions(tmp_path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"prompt": "hi", "chosen": "hello", "rejected": "go away"}) + "\n")
    out = tmp_path / "trl.jsonl"
    write_pairs(read_pairs(src).pairs, out, to="trl")
    from trl.data_utils import is_conversational

    record = json.loads(out.read_text())
    assert is_conversational(record)
    assert record["prompt"] == [{"role": "user", "content": "hi"}]
    assert record["chosen"] == [a("hello")] and record["rejected"] == [a("go away")]
