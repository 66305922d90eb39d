"""A streaming audit loads each member's model once, not once per chunk (issue 36): the
summary counts the loads (``member_runs.NAME.loads``), and the table of an audit in
16-pair chunks equals that of one chunk."""

from __future__ import annotations

import pandas as pd

from preflab.audit.audit_pairs import audit
from preflab.data.demo import demo
from preflab.engine import EngineOptions


def test_chunked_audit_loads_each_member_once(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PREFLAB_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "demo.jsonl"
    demo(data, n=60, flip_rate=0.25, seed=2)
    options = EngineOptions(cache_path=tmp_path / "scores.sqlite", progress=False)
    chunked = audit(data, committee="tiny", out=tmp_path / "chunked", chunk=16,
                    engine_options=options)
    whole = audit(data, committee="tiny", out=tmp_path / "whole", engine_options=options)
    for summary in (chunked, whole):
        assert {name: run["loads"] for name, run in summary["member_runs"].items()} == {
            "tiny-causal-rm": 1, "tiny-judge": 1, "tiny-embed": 1, "tiny-crossfit": 1,
            "tiny-ifd": 1}
    assert chunked["member_runs"]["tiny-judge"]["computed"] == 120  # 4 chunks, computed
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "chunked" / "audit.parquet"),
                                  pd.read_parquet(tmp_path / "whole" / "audit.parquet"),
                                  check_exact=False, rtol=1e-12, atol=1e-12)
