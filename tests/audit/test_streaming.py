"""The audit streams: pairs spilled to disk and scored a chunk at a time give the same
table as one chunk; the spill reads as read_pairs does; the table is written in row
groups; the report fetches only the pairs it shows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from preflab.audit.audit_pairs import audit, write_table
from preflab.audit.report import report_ids
from preflab.data.demo import demo
from preflab.data.groups import pair_groups
from preflab.data.read import iter_pairs, read_pairs
from preflab.data.spill import spill_pairs
from preflab.engine import EngineOptions

COMMITTEE = """name = "stream"
[[member]]
name = "length"
kind = "python"
function = "tests.helpers:length_reward"
[[member]]
name = "embed"
kind = "embed-rm"
model = "tiny-bert"
[[member]]
name = "crossfit"
kind = "crossfit"
model = "tiny-bert"
folds = 3
"""


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "demo.jsonl"
    demo(path, n=48, flip_rate=0.25, seed=1)
    return path


def test_chunked_audit_equals_one_chunk(tmp_path, demo_file) -> None:
    committee = tmp_path / "c.toml"
    committee.write_text(COMMITTEE)
    options = EngineOptions(cache_path=tmp_path / "cache.sqlite", progress=False)
    whole = audit(demo_file, out=tmp_path / "whole", committee=committee, engine_options=options)
    small = audit(demo_file, out=tmp_path / "small", committee=committee,
                  engine_options=options, chunk=16)
    a = pd.read_parquet(tmp_path / "whole" / "audit.parquet")
    b = pd.read_parquet(tmp_path / "small" / "audit.parquet")
    assert len(a) == 48
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, atol=1e-12)
    assert small["member_runs"]["crossfit"]["cached"] > 0  # the second audit read the cache
    for key in ("bins", "committee_probability", "repeats", "sources", "flip_detection_auc"):
        assert json.dumps(whole[key]) == json.dumps(small[key]), key
    # 16-pair row groups of the spill: the report still shows its examples' texts
    html = (tmp_path / "small" / "report.html").read_text()
    shown = report_ids(b, small)
    assert shown and all(f"id {i}" in html for i in shown)


def test_spill_reads_as_read_pairs(tmp_path, demo_file) -> None:
    lines = demo_file.read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([*lines[:5], '{"prompt": "x"}', *lines[5:40]]) + "\n")
    spill = spill_pairs(bad, tmp_path / "s.parquet", on_error="skip", limit=30, chunk=7)
    expected = list(iter_pairs(read_pairs(bad, on_error="skip").pairs))[:30]
    assert spill.pair_ids() == [p.id for p in expected] and len(spill) == 30
    assert [len(c) for c in spill.chunks(7)] == [7, 7, 7, 7, 2]
    assert len(spill.rejects) == 1 and spill.rejects[0].position == 6
    np.testing.assert_array_equal(spill.groups(), pair_groups(expected))
    assert pq.ParquetFile(tmp_path / "s.parquet").num_row_groups == 5
    fewer = spill.without({expected[3].id})
    assert len(fewer) == 29 and expected[3].id not in fewer.pair_ids()
    assert sum(len(c) for c in fewer.chunks(7)) == 29
    assert set(spill.fetch({expected[0].id, expected[29].id})) == {expected[0].id,
                                                                   expected[29].id}
    with pytest.raises(ValueError, match="line 6"):
        spill_pairs(bad, tmp_path / "f.parquet")


def test_table_written_in_row_groups(tmp_path) -> None:
    table = pd.DataFrame({"id": [f"p{i}" for i in range(25)], "x": np.arange(25) / 7})
    write_table(table, tmp_path / "t.parquet", rows=10)
    assert pq.ParquetFile(tmp_path / "t.parquet").num_row_groups == 3
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "t.parquet"), table)


def test_row_file_reads_what_was_written(tmp_path, monkeypatch) -> None:
    import preflab.audit.stream as stream

    monkeypatch.setattr(stream, "BLOCK_BYTES", 3 * 8 * 4)  # 4 rows of 3 per block
    values = np.random.default_rng(0).normal(size=(11, 3))
    rows = stream.RowFile(tmp_path / "f", 3)
    rows.append(values[:6])
    rows.append(values[6:])
    assert len(rows) == 11 and rows.shape == (11, 3)
    np.testing.assert_array_equal(rows[2:9], values[2:9])
    pick = np.array([10, 0, 5, 5, 3])
    np.testing.assert_array_equal(rows[pick], values[pick])
    mask = values[:, 0] > 0
    np.testing.assert_array_equal(rows[mask], values[mask])
