"""Truncated and corrupt files: every pair before the damage is kept, the damage is
named with its file and position, and pairs + rejects account for what was readable."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from preflab import PairError, read_pairs, write_pairs
from preflab.errors import SourceError

DAMAGE = "file truncated or corrupt here; the rest is unreadable"


def whole_lines(compressed: bytes) -> int:
    """Lines that decompress completely from a (possibly truncated) gzip stream."""
    return zlib.decompressobj(wbits=31).decompress(compressed).count(b"\n")


@pytest.fixture(scope="module")
def truncated_hh(hh_path: Path, tmp_path_factory) -> tuple[Path, int]:
    """A real copy of the HH file cut in half, and how many whole lines survive."""
    data = hh_path.read_bytes()
    path = tmp_path_factory.mktemp("cut") / hh_path.name
    path.write_bytes(data[: len(data) // 2])
    return path, whole_lines(data[: len(data) // 2])


def test_truncated_gzip_keeps_every_pair_before_the_damage(truncated_hh, hh_result) -> None:
    path, n = truncated_hh
    rejects = path.with_name("rejects.jsonl")
    result = read_pairs(path, on_error="skip", rejects_path=rejects)
    assert 1000 < n < 2312
    assert result.n_pairs == n and result.n_records == n + 1
    assert result.pairs["id"] == hh_result.pairs["id"][:n]
    assert result.pairs["subset"][0] == "harmless-base"
    (reject,) = result.rejects
    assert (reject.position, reject.unit) == (n + 1, "line")
    assert reject.reason.startswith(DAMAGE) and "end-of-stream" in reject.reason
    assert reject.raw  # the partial line that was cut
    written = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert [w["position"] for w in written] == [n + 1]


def test_truncated_gzip_fails_naming_file_and_line(truncated_hh) -> None:
    path, n = truncated_hh
    with pytest.raises(PairError) as e:
        read_pairs(path)
    assert (e.value.source, e.value.line) == (str(path), n + 1)
    assert str(e.value).startswith(f"{path}, line {n + 1}: {DAMAGE}")
    assert "\n" not in str(e.value)


def test_corrupt_gzip_keeps_the_pairs_before_it(hh_path: Path, hh_result, tmp_path) -> None:
    data = bytearray(hh_path.read_bytes())
    middle = len(data) // 2
    data[middle: middle + 64] = bytes(64)
    path = tmp_path / hh_path.name
    path.write_bytes(bytes(data))
    result = read_pairs(path, on_error="skip")
    assert result.n_pairs + len(result.rejects) == result.n_records
    assert result.rejects[-1].reason.startswith(DAMAGE)
    assert result.n_pairs > 1000
    assert result.pairs["id"] == hh_result.pairs["id"][: result.n_pairs]


def test_not_gzip_at_all_is_one_problem_at_line_1(tmp_path) -> None:
    path = tmp_path / "d.jsonl.gz"
    path.write_bytes(b'{"prompt": "x", "chosen": "a", "rejected": "b"}\n')
    result = read_pairs(path, on_error="skip")
    assert (result.n_records, result.n_pairs, result.rejects[0].position) == (1, 0, 1)
    assert "Not a gzipped file" in result.rejects[0].reason


def test_truncated_json_array_and_csv(tmp_path) -> None:
    rows = [{"prompt": "p", "chosen": f"a{i}", "rejected": "b"} for i in range(400)]
    array = gzip.compress(json.dumps(rows).encode())
    (tmp_path / "d.json.gz").write_bytes(array[: len(array) // 2])
    with pytest.raises(SourceError, match=r"d\.json\.gz: truncated or corrupt"):
        read_pairs(tmp_path / "d.json.gz")
    text = "prompt,chosen,rejected\n" + "".join(f"p,a{i},b\n" for i in range(400))
    packed = gzip.compress(text.encode())
    (tmp_path / "d.csv.gz").write_bytes(packed[: len(packed) // 2])
    result = read_pairs(tmp_path / "d.csv.gz", on_error="skip")
    n = whole_lines(packed[: len(packed) // 2]) - 1  # the header is not a row
    assert result.n_pairs >= n - 1 and result.n_records == result.n_pairs + 1
    assert result.rejects[0].reason.startswith(DAMAGE)


@pytest.fixture(scope="module")
def hh_parquet(hh_result, tmp_path_factory) -> Path:
    """The HH pairs as Parquet in row groups of 500."""
    path = tmp_path_factory.mktemp("pq") / "hh.parquet"
    write_pairs(hh_result.pairs, path, batch_size=500)
    assert pq.ParquetFile(path).metadata.num_row_groups == 5
    return path


def test_truncated_parquet_is_one_line_naming_the_file(hh_parquet, tmp_path) -> None:
    data = hh_parquet.read_bytes()
    for cut in (0, 3, len(data) // 2, len(data) - 9):
        path = tmp_path / f"cut-{cut}.parquet"
        path.write_bytes(data[:cut])
        for on_error in ("fail", "skip"):
            with pytest.raises(SourceError) as e:
                read_pairs(path, on_error=on_error)
            assert str(e.value).startswith(f"{path}: not a readable Parquet file")
            assert "\n" not in str(e.value)


def test_corrupt_parquet_row_group_keeps_the_groups_before(hh_parquet, hh_result,
                                                           tmp_path) -> None:
    group = pq.ParquetFile(hh_parquet).metadata.row_group(2)
    chunk = next(group.column(j) for j in range(group.num_columns)
                 if group.column(j).path_in_schema == "chosen")
    data = bytearray(hh_parquet.read_bytes())
    start = chunk.data_page_offset + chunk.total_compressed_size // 3
    for k in range(start, start + 64):
        data[k] ^= 0x5A
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(bytes(data))
    result = read_pairs(path, on_error="skip")
    assert (result.n_pairs, result.n_records) == (1000, 1001)
    assert result.pairs["id"] == hh_result.pairs["id"][:1000]
    assert result.rejects[0].unit == "row" and result.rejects[0].reason.startswith(DAMAGE)
    with pytest.raises(PairError, match=rf"corrupt\.parquet, row 1001: {DAMAGE}"):
        read_pairs(path)


def test_parquet_with_wrong_types_names_field_and_type(tmp_path) -> None:
    path = tmp_path / "types.parquet"
    pq.write_table(pa.table({"prompt": ["a", "b"], "chosen": [1, 2], "rejected": [3, 4]}), path)
    with pytest.raises(PairError) as e:
        read_pairs(path)
    assert str(e.value) == (f"{path}, row 1: field 'chosen': expected a string or a list of "
                            "messages, got int64")
    jsonl = tmp_path / "types.jsonl"
    jsonl.write_text(json.dumps({"prompt": "a", "chosen": "x", "rejected": 2.5}) + "\n")
    with pytest.raises(PairError, match="field 'rejected': expected a string or a list of "
                                        "messages, got float"):
        read_pairs(jsonl)


def test_empty_input_is_an_error_only_when_asked(tmp_path) -> None:
    for name, data in (("e.jsonl", b""), ("e.jsonl.gz", gzip.compress(b""))):
        path = tmp_path / name
        path.write_bytes(data)
        assert read_pairs(path).n_records == 0
        with pytest.raises(SourceError, match=f"{name}: empty input"):
            read_pairs(path, allow_empty=False)
