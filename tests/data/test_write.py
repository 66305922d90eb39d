from __future__ import annotations

import pytest

from preflab import PreferencePair, read_pairs, write_pairs
from preflab.errors import FormatError, PairError

PAIRS = [
    PreferencePair([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                   "Hello.", "Go away.", subset="s", p_chosen=0.75, meta={"k": [1]}),
    PreferencePair([{"role": "user", "content": "2+2?"}], "4", "5"),
]


@pytest.mark.parametrize("name", ["p.parquet", "p.jsonl", "p.jsonl.gz", "t.jsonl"])
def test_round_trip_keeps_every_column(tmp_path, name: str) -> None:
    to = "trl" if name.startswith("t") else None
    write_pairs(PAIRS, tmp_path / name, to=to)
    back = read_pairs(tmp_path / name).pairs
    assert [PreferencePair.from_row(r) for r in back] == PAIRS


def test_gzip_output_is_reproducible(tmp_path) -> None:
    write_pairs(PAIRS, tmp_path / "a.jsonl.gz")
    write_pairs(PAIRS, tmp_path / "b.jsonl.gz")
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()


def test_hh_cannot_hold_a_system_turn(tmp_path) -> None:
    with pytest.raises(PairError, match="HH transcripts have no 'system' turn"):
        write_pairs(PAIRS, tmp_path / "x.jsonl", to="hh")


def test_unknown_target(tmp_path) -> None:
    with pytest.raises(FormatError):
        write_pairs(PAIRS, tmp_path / "x.jsonl", to="xml")
