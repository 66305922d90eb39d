from __future__ import annotations

import gzip
import json

import pytest

from preflab import read_pairs, write_pairs
from preflab.data.hh import parse_hh, parse_transcript
from preflab.errors import FieldError


def test_prompt_is_prefix_up_to_last_assistant_turn() -> None:
    text = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: and?\n\nAssistant: bye"
    prompt, reply = parse_transcript(text, "chosen")
    assert prompt == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                      {"role": "user", "content": "and?"}]
    assert reply == "bye"


@pytest.mark.parametrize(("text", "reason"), [
    ("Human: hi\n\nAssistant: x", "must start"),
    ("\n\nHuman: hi\n\nAssistant: x\n\nHuman: more", "does not end"),
    (42, "must be a transcript string"),
])
def test_bad_transcripts(text: object, reason: str) -> None:
    with pytest.raises(FieldError, match=reason):
        parse_transcript(text, "chosen")


def test_real_file_counts(hh_result) -> None:
    assert hh_result.format == "hh"
    assert hh_result.n_pairs == 2312 == hh_result.n_records
    flags = [tuple(f) for f in hh_result.pairs["flags"]]
    assert flags.count(("prefix_mismatch",)) == 5
    assert flags.count(("empty_reply",)) == 4
    assert set(hh_result.pairs["subset"]) == {"harmless-base"}


def test_prefix_mismatch_keeps_each_reply_with_its_own_context(hh_result) -> None:
    rows = [r for r in hh_result.pairs if "prefix_mismatch" in r["flags"]]
    assert len(rows) == 5
    for r in rows:
        assert r["rejected_prompt"] is not None and r["rejected_prompt"] != r["prompt"]
        assert r["chosen"] and r["rejected"]  # the final turns, not merged into the prompt


def test_hh_to_trl_to_hh_is_byte_identical(hh_path, tmp_path) -> None:
    trl = tmp_path / "trl.jsonl"
    back = tmp_path / "back.jsonl.gz"
    write_pairs(read_pairs(hh_path).pairs, trl, to="trl")
    via_trl = read_pairs(trl)
    assert via_trl.format == "trl"
    write_pairs(via_trl.pairs, back, to="hh")
    with gzip.open(hh_path, "rb") as a, gzip.open(back, "rb") as b:
        assert a.read() == b.read()
    assert via_trl.pairs["id"] == read_pairs(hh_path).pairs["id"]


def test_irregular_spacing_still_round_trips(tmp_path) -> None:
    record = {"chosen": "\n\nHuman:hi\n\nAssistant: a", "rejected": "\n\nHuman:hi\n\nAssistant:b"}
    pair = parse_hh(record)
    assert pair.prompt == [{"role": "user", "content": "hi"}] and pair.rejected == "b"
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(record) + "\n")
    out = tmp_path / "out.jsonl"
    write_pairs(read_pairs(src).pairs, out, to="hh")
    assert json.loads(out.read_text()) == record
