import json

import pytest

from preflab.data.prompts import load_prompts, write_prompts
from preflab.data.write import write_pairs
from preflab.errors import PairError
from tests.train.helpers import short_pairs


def test_prompts_from_pairs_and_from_prompt_files(tmp_path):
    pairs = short_pairs(4)
    write_pairs(pairs + pairs[:1], tmp_path / "pairs.jsonl")  # a repeated prompt: kept once
    from_pairs = load_prompts(tmp_path / "pairs.jsonl")
    assert [p.messages[-1][1] for p in from_pairs] == [p.prompt[-1]["content"] for p in pairs]
    write_prompts(from_pairs, tmp_path / "prompts.jsonl")
    assert load_prompts(tmp_path / "prompts.jsonl") == from_pairs
    (tmp_path / "plain.jsonl").write_text(json.dumps({"prompt": "Hi there", "lang": "en"}) + "\n")
    (only,) = load_prompts(tmp_path / "plain.jsonl")
    assert only.messages == (("user", "Hi there"),) and only.meta == {"lang": "en"}


@pytest.mark.parametrize("row, field", [
    ({"prompt": ""}, "prompt"),
    ({"prompt": []}, "prompt"),
    ({"prompt": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
     "prompt"),
    ({"prompt": [{"role": "robot", "content": "a"}]}, "prompt[0].role"),
])
def test_bad_prompts_name_file_line_and_field(tmp_path, row, field):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"prompt": "fine"}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(PairError) as e:
        load_prompts(path)
    assert e.value.line == 2 and e.value.field == field and str(path) in str(e.value)
