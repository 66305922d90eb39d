"""`preflab review init`: which pairs, who judges them, and adding to a project."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest
from typer.testing import CliRunner

from preflab.audit.table import BIN_NAMES
from preflab.cli import app
from preflab.review import store
from preflab.review.project import add_pairs, add_reviewers, init_review, pairs_by_id
from preflab.review.select import allocate, choose_pairs
from tests.review.helpers import write_data

runner = CliRunner()


def test_default_takes_the_no_and_low_agreement_pairs(hh_data, tmp_path) -> None:
    data, audit = hh_data
    table = pd.read_parquet(audit / "audit.parquet")
    low = table[table["bin"].isin(["none", "low"])]
    assert 0 < len(low) < len(table)
    result = init_review(data, audit, tmp_path / "r.sqlite", reviewers=["ann", "bob"],
                         per_pair=2)
    with store.opened(tmp_path / "r.sqlite") as con:
        pairs = store.all_pairs(con)
    assert [p["pair_id"] for p in pairs] == choose_pairs(table)
    assert {p["pair_id"] for p in pairs} == set(low["id"])
    bins = [p["bin"] for p in pairs]
    assert bins == sorted(bins, key=["none", "low"].index)  # none first
    assert result["assignments"] == 2 * len(pairs) and sorted(result["tokens"]) == ["ann", "bob"]


def test_stratified_sample_spreads_over_bins_and_is_seeded(hh_data) -> None:
    _, audit = hh_data
    table = pd.read_parquet(audit / "audit.parquet")
    sizes = table["bin"].value_counts()
    ids = choose_pairs(table, sample=12, strata="bin", seed=3)
    assert len(ids) == len(set(ids)) == 12
    got = table.set_index("id").loc[ids, "bin"].value_counts()
    want = allocate({b: int(sizes[b]) for b in BIN_NAMES if b in sizes}, 12)  # none first
    assert got.to_dict() == {b: n for b, n in want.items() if n}
    assert ids == choose_pairs(table, sample=12, strata="bin", seed=3)
    assert ids != choose_pairs(table, sample=12, strata="bin", seed=4)
    assert allocate({"a": 1, "b": 10, "c": 10}, 12) == {"a": 1, "b": 6, "c": 5}
    by_source = choose_pairs(table, sample=6, strata="source", seed=0)
    assert len(by_source) == 6
    with pytest.raises(ValueError, match="--sample"):
        choose_pairs(table, strata="bin")


def test_adding_pairs_and_reviewers_changes_nothing_judged(hh_data, tmp_path) -> None:
    data, audit = hh_data
    db = tmp_path / "r.sqlite"
    first = init_review(data, audit, db, sample=6, strata="bin", per_pair=2,
                        reviewers=["ann", "bob", "cy"])
    with store.opened(db) as con:
        before = [dict(r) for r in con.execute("SELECT * FROM assignments ORDER BY pair_id, "
                                               "reviewer")]
        pair = before[0]
        store.record_vote(con, pair["reviewer"], store.Vote(
            pair["pair_id"], "A", "", "", "test", "s-1"))
    # each reviewer has a token that logs in; orders are random per (pair, reviewer)
    with store.opened(db) as con:
        for name, token in first["tokens"].items():
            assert store.reviewer_for(con, token) == name
        assert store.reviewer_for(con, "not-a-token") is None
    assert {r["shown_order"] for r in before} == {"CR", "RC"}
    third = add_reviewers(db, ["dee"], per_pair=3)  # every pair gets a third reviewer
    assert third["pairs_added"] == 0 and third["pairs"] == 6
    assert sorted(third["tokens"]) == ["dee"] and third["assignments_added"] == 6
    assert third["assigned_to"]["dee"] >= 4  # the least loaded first: dee until level
    second = add_pairs(data, audit, db, sample=4, strata="bin")
    assert second["pairs_added"] == 4 and second["pairs"] == 10 and second["per_pair"] == 3
    with store.opened(db) as con:
        after = [dict(r) for r in con.execute("SELECT * FROM assignments")]
        kept = {(r["pair_id"], r["reviewer"]): r for r in after}
        for r in before:
            assert kept[(r["pair_id"], r["reviewer"])] == r
        per_pair = pd.DataFrame(after).groupby("pair_id").size()
        assert (per_pair == 3).all() and len(per_pair) == 10
        assert store.latest_vote(con, pair["reviewer"], pair["pair_id"])["choice"] == "A"
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("UPDATE votes SET choice = 'B'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("DELETE FROM votes")


def test_init_refuses_bad_input_clearly(hh_data, hh_pairs, tmp_path) -> None:
    data, audit = hh_data
    result = runner.invoke(app, ["review", "init", str(data), "--audit", str(audit), "--db",
                                 str(tmp_path / "x.sqlite")])
    assert result.exit_code == 2 and "needs reviewers" in result.output
    result = runner.invoke(app, ["review", "init", str(data), "--audit", str(audit), "--db",
                                 str(tmp_path / "x.sqlite"), "--reviewers", "ann,<b>"])
    assert result.exit_code == 2 and "reviewer name '<b>'" in result.output
    other, _ = write_data(hh_pairs[40:], tmp_path / "other")
    result = runner.invoke(app, ["review", "init", str(other), "--audit", str(audit), "--db",
                                 str(tmp_path / "x.sqlite"), "--reviewers", "ann"])
    assert result.exit_code == 2 and "the audit is of other data" in result.output
    assert not (tmp_path / "x.sqlite").exists()
    result = runner.invoke(app, ["review", "init", str(data), "--audit", str(audit), "--db",
                                 str(tmp_path / "x.sqlite"), "--reviewers", "ann,bob",
                                 "--sample", "5", "--per-pair", "3"])
    assert result.exit_code == 0, result.output
    assert "each pair gets 2" in result.output
    assert result.output.count("/?token=") == 2
    (tmp_path / "junk.sqlite").write_text("not a database")
    for command in (["export", str(tmp_path / "junk.sqlite"), "--out", str(tmp_path / "e")],
                    ["serve", str(tmp_path / "junk.sqlite"), "--port", "0"]):
        result = runner.invoke(app, ["review", *command])
        assert result.exit_code == 2 and "not a review project" in result.output


def test_init_reads_the_data_in_chunks_and_keeps_only_the_chosen(hh_data, tmp_path) -> None:
    """The pairs are chosen from the audit's table; read 7 at a time, the data gives
    the same project as read whole."""
    data, audit = hh_data

    def rows(db):
        with store.opened(db) as con:
            return ([tuple(r) for r in con.execute(
                        "SELECT pair_id, position, pair_json, bin, source, committee_json "
                        "FROM pairs ORDER BY position")],
                    [tuple(r) for r in con.execute(
                        "SELECT pair_id, reviewer, shown_order FROM assignments "
                        "ORDER BY pair_id, reviewer")])

    settings = {"sample": 12, "strata": "bin", "reviewers": ["ann", "bob"], "per_pair": 2}
    init_review(data, audit, tmp_path / "whole.sqlite", **settings)
    init_review(data, audit, tmp_path / "chunks.sqlite", chunk=7, **settings)
    whole, chunks = rows(tmp_path / "whole.sqlite"), rows(tmp_path / "chunks.sqlite")
    assert chunks == whole and len(whole[0]) == 12 and len(whole[1]) == 24
    table = pd.read_parquet(audit / "audit.parquet")
    ids = choose_pairs(table, sample=12, strata="bin")
    assert [r[0] for r in chunks[0]] == ids
    assert set(pairs_by_id(data, set(ids), chunk=7)) == set(ids)


def test_copies_of_a_pair_are_one_pair_to_review(tmp_path) -> None:
    """Exact copies share an id and an audit row: the project holds the pair once and
    the sample counts distinct pairs (it used to fail on the copies' duplicate rows)."""
    from preflab.audit.audit_pairs import audit
    from preflab.data.demo import demo_pairs
    from preflab.data.write import write_pairs
    from preflab.engine import EngineOptions
    from tests.data.test_stage_outputs import COMMITTEE

    pairs = demo_pairs(40, flip_rate=0.2, seed=1)
    data = tmp_path / "d.jsonl"
    write_pairs(pairs + pairs[:15], data)
    (tmp_path / "c.toml").write_text(COMMITTEE)
    audit(data, out=tmp_path / "aud", committee=tmp_path / "c.toml",
          engine_options=EngineOptions(cache_path=tmp_path / "c.sqlite", progress=False))
    summary = init_review(data, tmp_path / "aud", tmp_path / "r.db", sample=30,
                          reviewers=["a", "b"], per_pair=2)
    assert summary["pairs"] == 30 and summary["assignments"] == 60
