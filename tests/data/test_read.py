from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from preflab import PairError, read_pairs
from preflab.errors import FormatError

GOOD = {"prompt": "Say hi", "chosen": "Hi!", "rejected": "No."}
# One bad line of each kind, with the field and reason the error must name.
BAD_LINES = [
    (b'{"prompt": "x", "chosen": "a", "rejected": ', None, "malformed JSON"),
    (json.dumps({"prompt": "x", "chosen": "a"}).encode(), "rejected", "missing"),
    (json.dumps({"prompt": "x", "chosen": 5, "rejected": "b"}).encode(), "chosen",
     "must be a string or a message list, got int"),
    (json.dumps({"prompt": "x", "chosen": "a", "rejected": [{"role": "assistant",
                                                              "content": "b"}]}).encode(),
     "rejected", "must both be strings or both message lists"),
    (json.dumps({"prompt": "x", "chosen": "", "rejected": "b"}).encode(), "chosen",
     "reply is empty"),
    (json.dumps({"prompt": "x", "chosen": "same", "rejected": "same"}).encode(), "rejected",
     "identical"),
    (b'{"prompt": "x", "chosen": "caf\xe9", "rejected": "b"}', None, "undecodable bytes"),
    (json.dumps({"question": "x", "answer": "y"}).encode(), None, "unknown format"),
    (json.dumps({"prompt": "x", "chosen": "a", "rejected": "b", "p_chosen": 2}).encode(),
     "p_chosen", "must be a number in [0, 1]"),
    (b"", None, "blank line"),
]


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize(("line", "field", "reason"), BAD_LINES)
def test_fail_names_file_line_and_field(tmp_path, line: bytes, field: str | None,
                                        reason: str) -> None:
    path = write_lines(tmp_path / "data.jsonl", [json.dumps(GOOD).encode()] * 2 + [line])
    with pytest.raises(PairError) as e:
        read_pairs(path)
    assert (e.value.source, e.value.line, e.value.field) == (str(path), 3, field)
    assert reason in e.value.reason
    assert f"{path}, line 3" in str(e.value)


def test_skip_writes_every_reject_and_loses_nothing(tmp_path) -> None:
    lines = []
    for i, (bad, _, _) in enumerate(BAD_LINES):
        lines.append(json.dumps({**GOOD, "chosen": f"Hi {i}!"}).encode())
        lines.append(bad)
    path = write_lines(tmp_path / "data.jsonl", lines)
    rejects = tmp_path / "rejects.jsonl"
    result = read_pairs(path, on_error="skip", rejects_path=rejects)
    written = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert result.n_pairs == len(BAD_LINES)
    assert len(written) == len(result.rejects) == len(BAD_LINES)
    assert result.n_pairs + len(written) == len(lines) == result.n_records
    assert [r["position"] for r in written] == list(range(2, 2 * len(BAD_LINES) + 1, 2))
    for record, (_, field, reason) in zip(written, BAD_LINES, strict=True):
        assert record["field"] == field and reason in record["reason"]


def test_mixed_formats_in_one_file_are_rejected(tmp_path) -> None:
    hh = {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: a\n\nAssistant: c"}
    native = {"prompt": [{"role": "user", "content": "a"}], "chosen": "b", "rejected": "c"}
    path = write_lines(tmp_path / "d.jsonl", [json.dumps(hh).encode(), json.dumps(native).encode()])
    with pytest.raises(PairError, match="preflab format but the source started in hh"):
        read_pairs(path)


def test_other_containers(tmp_path) -> None:
    import pandas as pd
    from datasets import Dataset

    rows = [{**GOOD, "chosen": f"Hi {i}"} for i in range(5)]
    expected = read_pairs(write_lines(tmp_path / "a.jsonl",
                                      [json.dumps(r).encode() for r in rows])).pairs["id"]
    pd.DataFrame(rows).to_parquet(tmp_path / "a.parquet")
    pd.DataFrame(rows).to_csv(tmp_path / "a.csv", index=False)
    (tmp_path / "a.json").write_text(json.dumps(rows))
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "disk"))
    for name in ("a.parquet", "a.csv", "a.json", "b.jsonl.gz", "disk"):
        result = read_pairs(tmp_path / name)
        assert result.pairs["id"] == expected, name


def test_csv_bad_row_is_located(tmp_path) -> None:
    path = tmp_path / "a.csv"
    path.write_text('prompt,chosen,rejected\nx,a,b\nx,same,same\n')
    with pytest.raises(PairError) as e:
        read_pairs(path)
    assert (e.value.unit, e.value.line, e.value.field) == ("row", 2, "rejected")


def test_unknown_file_type(tmp_path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("hello")
    with pytest.raises(FormatError, match="unknown file type"):
        read_pairs(path)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(
                               st.sampled_from(["prompt", "chosen", "rejected", "x"]), c,
                               max_size=4), max_leaves=8)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(json_values.map(lambda v: json.dumps(v).encode()),
                          st.binary(max_size=20).map(lambda b: b.replace(b"\n", b""))),
                min_size=1, max_size=12))
def test_every_line_is_a_pair_or_a_reject(tmp_path, lines: list[bytes]) -> None:
    path = write_lines(tmp_path / "fuzz.jsonl", lines)
    result = read_pairs(path, on_error="skip")
    assert result.n_pairs + len(result.rejects) == result.n_records == len(lines)
