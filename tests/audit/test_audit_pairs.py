from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from preflab.audit.audit_pairs import audit
from preflab.committee.spec import PRESETS_DIR
from preflab.data.demo import demo
from preflab.engine import EngineOptions
from tests.helpers import GATE_ENV, wait_until

ROOT = Path(__file__).resolve().parents[2]  # `tests.helpers` imports from here


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


def held_committee(path: Path) -> Path:
    """The tiny committee with a python member second that waits for a gate file
    (:func:`tests.helpers.gated_length_reward`): a run stops there, its first member
    scored and cached, for as long as the gate is shut."""
    head, first, *others = (PRESETS_DIR / "tiny.toml").read_text().split("[[member]]")
    held = '\nname = "held"\nkind = "python"\nfunction = "tests.helpers:gated_length_reward"\n\n'
    path.write_text("[[member]]".join([head, first, held, *others]))
    return path


def test_killed_audit_resumes_from_cache_with_equal_result(tmp_path, demo_file,
                                                           monkeypatch) -> None:
    """An audit killed part-way (SIGKILL) keeps what its cache committed; a rerun takes it
    from there and gives the table of a fresh run. No race: the killed run is held at its
    second member, which waits for a gate file the test opens only after the kill."""
    gate, committee = tmp_path / "gate", held_committee(tmp_path / "held.toml")
    waiting = gate.with_name("gate.waiting")
    cache, log = tmp_path / "scores.sqlite", tmp_path / "audit.log"
    cmd = [sys.executable, "-m", "preflab", "audit", str(demo_file), "--committee",
           str(committee), "--out", str(tmp_path / "killed"), "--cache", str(cache),
           "--max-tokens", "48"]
    env = {**os.environ, "PREFLAB_CACHE": str(tmp_path / "cache"), GATE_ENV: str(gate)}
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    try:
        assert wait_until(lambda: waiting.exists() or proc.poll() is not None, 600)
        assert proc.poll() is None, log.read_text()[-2000:]  # held at its second member
        with sqlite3.connect(cache) as db:
            rows = db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
    finally:
        proc.kill()
        proc.wait()
    assert rows > 0 and not (tmp_path / "killed" / "summary.json").exists()

    gate.touch()
    monkeypatch.setenv(GATE_ENV, str(gate))
    resumed = audit(demo_file, committee=committee, out=tmp_path / "resumed",
                    engine_options=EngineOptions(cache_path=cache, progress=False))
    runs = resumed["member_runs"]
    assert (runs["tiny-causal-rm"]["cached"], runs["tiny-causal-rm"]["computed"]) == (rows, 0)
    assert runs["held"]["cached"] == 0 and runs["held"]["computed"] > 0
    fresh = audit(demo_file, committee=committee, out=tmp_path / "fresh",
                  engine_options=EngineOptions(cache_path=tmp_path / "fresh.sqlite",
                                               progress=False))
    a = pd.read_parquet(tmp_path / "resumed" / "audit.parquet")
    b = pd.read_parquet(tmp_path / "fresh" / "audit.parquet")
    margins = [c for c in a.columns if c.startswith("margin.")]
    assert "margin.held" in margins
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
