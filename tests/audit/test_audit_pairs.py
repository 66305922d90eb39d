from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from preflab.audit.audit_pairs import audit
from preflab.data.demo import demo
from preflab.engine import EngineOptions


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "demo.jsonl"
    demo(path, n=60, flip_rate=0.25, seed=0)
    return path


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFLAB_CACHE", str(tmp_path / "cache"))


def test_tiny_audit_writes_table_summary_report(tmp_path, demo_file) -> None:
    summary = audit(demo_file, committee="tiny", out=tmp_path / "a",
                    engine_options=EngineOptions(progress=False))
    for key in ("n_pairs", "members", "bins", "low_or_no_agreement_fraction",
                "member_agreement_with_labels", "fleiss_kappa", "seconds", "pairs_per_s",
                "flip_detection_auc"):
        assert key in summary, key
    assert summary["n_pairs"] == 60 and len(summary["members"]) == 4
    table = pd.read_parquet(tmp_path / "a" / "audit.parquet")
    assert len(table) == 60 and table["flipped"].sum() == 15
    for column in ("id", "subset", "votes", "members", "agreement", "bin", "p_chosen",
                   "spread", "margin.tiny-judge", "vote.tiny-judge"):
        assert column in table
    # the ifd member is a signal: scored, but no vote and no weight
    assert "margin.tiny-ifd" in table and "vote.tiny-ifd" not in table
    assert summary["signals"] == ["tiny-ifd"] and "tiny-ifd" not in summary["members"]
    # every flagged pair has a best-guess source, every other pair none
    flagged = (table["agreement"] <= 0.5) | (table["p_chosen"] < 0.5)
    assert ((table["source"] != "") == flagged).all()
    assert sum(summary["sources"].values()) == flagged.sum()
    html = (tmp_path / "a" / "report.html").read_text()
    assert "data:image/png;base64," in html and "http" not in html.split("<pre>")[0].lower()
    assert "Why flagged pairs may be unreliable" in html


def test_python_member_and_limit(tmp_path, demo_file) -> None:
    committee = tmp_path / "c.toml"
    committee.write_text('[[member]]\nname = "length"\nkind = "python"\n'
                         'function = "tests.helpers:length_reward"\n')
    summary = audit(demo_file, committee=committee, out=tmp_path / "p", limit=10,
                    engine_options=EngineOptions(progress=False))
    table = pd.read_parquet(tmp_path / "p" / "audit.parquet")
    assert summary["n_pairs"] == 10
    assert (table["vote.length"] == (table["margin.length"] > 0)).all()


def test_killed_audit_resumes_from_cache_with_equal_result(tmp_path, demo_file) -> None:
    cache = tmp_path / "scores.sqlite"
    cmd = [sys.executable, "-m", "preflab", "audit", str(demo_file), "--committee", "tiny",
           "--out", str(tmp_path / "killed"), "--cache", str(cache), "--max-tokens", "48"]
    env = {**os.environ, "PREFLAB_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    rows = 0
    while time.time() < deadline and proc.poll() is None:
        if cache.exists():
            try:
                with sqlite3.connect(cache) as db:
                    rows = db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
            except sqlite3.OperationalError:
                rows = 0
            if rows >= 40:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the audit finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert rows >= 40 and not (tmp_path / "killed" / "summary.json").exists()

    resumed = audit(demo_file, committee="tiny", out=tmp_path / "resumed",
                    engine_options=EngineOptions(cache_path=cache, progress=False))
    cached = sum(r["cached"] for r in resumed["member_runs"].values())
    assert cached >= 40
    fresh = audit(demo_file, committee="tiny", out=tmp_path / "fresh",
                  engine_options=EngineOptions(cache_path=tmp_path / "fresh.sqlite",
                                               progress=False))
    a = pd.read_parquet(tmp_path / "resumed" / "audit.parquet")
    b = pd.read_parquet(tmp_path / "fresh" / "audit.parquet")
    margins = [c for c in a.columns if c.startswith("margin.")]
    np.testing.assert_allclose(a[margins].to_numpy(), b[margins].to_numpy(), atol=1e-5)
    assert (a["votes"] == b["votes"]).all() and (a["bin"] == b["bin"]).all()
    assert fresh["bins"] == resumed["bins"]
    assert json.loads((tmp_path / "fresh" / "summary.json").read_text())["n_pairs"] == 60


def test_an_empty_reply_keeps_its_pair_and_has_no_ifd(tmp_path, demo_file) -> None:
    """As found on HH: pairs with an empty chosen reply failed the ifd member and left
    the audit. The pair stays; its IFD is undefined, so the ifd signal has no value
    there and says why."""
    rows = [json.loads(line) for line in demo_file.read_text().splitlines()[:30]]
    rows[3]["chosen"], rows[3]["flags"] = "", ["empty_reply"]  # as the HH reader marks it
    data = tmp_path / "empty.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = audit(data, committee="tiny", out=tmp_path / "a",
                    engine_options=EngineOptions(progress=False))
    assert summary["n_pairs"] == 30 and summary["n_failed"] == 0
    from preflab.data.read import iter_pairs, read_pairs

    empty_id = list(iter_pairs(read_pairs(data).pairs))[3].id
    table = pd.read_parquet(tmp_path / "a" / "audit.parquet").set_index("id")
    assert np.isnan(table.loc[empty_id, "margin.tiny-ifd"])
    assert table["margin.tiny-ifd"].notna().sum() == 29
    run = summary["member_runs"]["tiny-ifd"]
    assert run["missing"] == 1 and run["missing_ids"] == {
        empty_id: "empty reply: its IFD is undefined"}
    assert f"tiny-ifd: no score for 1 pairs (a signal: those pairs come last in the rules " \
           f"that use it; first: {empty_id})" in summary["member_warnings"]
