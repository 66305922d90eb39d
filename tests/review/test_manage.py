"""Managing a review project (issue 32, items 5 and 6): `review init` never chooses pairs
again for an existing project; add-reviewers adds no pair; add-pairs takes the selection
options; tokens --reissue gives a working link and the old one is refused; status shows
reviewers and pairs; progress counts pairs, not edits."""

from __future__ import annotations

import json
import re

import pandas as pd
import requests
from typer.testing import CliRunner

from preflab.cli import app
from preflab.review import store
from preflab.review.project import init_review
from preflab.review.server import make_server

runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, ["review", *args])
    assert result.exit_code == 0, result.output
    return result.output


def counts(db) -> tuple[int, int]:
    with store.opened(db) as con:
        return (con.execute("SELECT COUNT(*) FROM pairs").fetchone()[0],
                con.execute("SELECT COUNT(*) FROM assignments").fetchone()[0])


def test_init_refuses_an_existing_project_and_add_reviewers_adds_no_pair(hh_data,
                                                                        tmp_path) -> None:
    data, audit = hh_data
    db = tmp_path / "r.sqlite"
    invoke("init", str(data), "--audit", str(audit), "--db", str(db), "--sample", "8",
           "--per-pair", "2", "--reviewers", "alice,bob")
    assert counts(db) == (8, 16)
    # init again to add dave: refused, pointing to add-reviewers; nothing chosen again
    again = runner.invoke(app, ["review", "init", str(data), "--audit", str(audit), "--db",
                                str(db), "--reviewers", "alice,dave"])
    assert again.exit_code == 2 and "review add-reviewers" in again.output
    assert "add-pairs" in again.output and counts(db) == (8, 16)
    # every pair has its 2 reviewers: dave gets none by default, and is told why
    out = invoke("add-reviewers", str(db), "--reviewers", "dave")
    assert counts(db) == (8, 16) and "dave 0" in out and "--per-pair 3" in out
    assert out.count("/?token=") == 1
    # --per-pair 3: each pair gets a third reviewer, dave (the least loaded); no new pair
    out = invoke("add-reviewers", str(db), "--reviewers", "erin", "--per-pair", "3")
    assert counts(db) == (8, 24)
    assert ("8 pairs (0 new), 4 reviewers, 24 assignments (8 new), 3 reviewers per pair"
            in " ".join(out.split())), out
    with store.opened(db) as con:
        per = {r[0]: r[1] for r in con.execute(
            "SELECT reviewer, COUNT(*) FROM assignments GROUP BY reviewer")}
        assert store.per_pair(con) == 3
    assert per["alice"] == per["bob"] == 8 and per["dave"] + per["erin"] == 8
    assert min(per["dave"], per["erin"]) >= 3  # shared between the two with fewest
    bad = runner.invoke(app, ["review", "add-reviewers", str(db), "--reviewers", "bob"])
    assert bad.exit_code == 2 and "already in the project" in bad.output
    # add-pairs takes init's selection options and the project's per-pair
    out = invoke("add-pairs", str(data), "--audit", str(audit), "--db", str(db), "--sample",
                 "4", "--strata", "bin", "--seed", "1")
    assert "12 pairs (4 new)" in out and counts(db) == (12, 36)


def test_reissued_token_works_and_the_old_one_is_refused(hh_data, tmp_path) -> None:
    data, audit = hh_data
    db = tmp_path / "r.sqlite"
    old = init_review(data, audit, db, sample=3, per_pair=1, reviewers=["ann"])["tokens"]["ann"]
    out = invoke("tokens", str(db), "--reissue", "ann")
    new = re.search(r"/\?token=(\S+)", out).group(1)
    assert new != old
    server = make_server(db, port=0).start()
    try:
        assert requests.get(f"{server.url}/?token={old}", timeout=10).status_code == 401
        assert requests.get(f"{server.url}/api/state", timeout=10, headers={
            "Authorization": f"Bearer {old}"}).status_code == 401
        s = requests.Session()
        page = s.get(f"{server.url}/?token={new}", timeout=10)
        assert page.status_code == 200 and "preflab review: ann" in page.text
        assert s.get(f"{server.url}/api/state", timeout=10).json()["reviewer"] == "ann"
    finally:
        server.shutdown()
    bad = runner.invoke(app, ["review", "tokens", str(db), "--reissue", "zed"])
    assert bad.exit_code == 2 and "no reviewer 'zed'" in bad.output


def test_status_shows_reviewers_and_pairs_against_their_quorum(hh_data, tmp_path) -> None:
    data, audit = hh_data
    db = tmp_path / "r.sqlite"
    tokens = init_review(data, audit, db, sample=2, per_pair=3,
                         reviewers=["ann", "bob", "cy"])["tokens"]
    with store.opened(db) as con:
        first = store.all_pairs(con)[0]["pair_id"]
        for name in ("ann", "bob"):
            store.record_vote(con, name, store.Vote(first, "both-good", "", "", "t",
                                                    f"s-{name}"))
    server = make_server(db, port=0).start()
    try:
        assert requests.get(f"{server.url}/?token={tokens['cy']}", timeout=10).ok
    finally:
        server.shutdown()
    out = invoke("status", str(db), "--json")
    result = json.loads(out[out.index("{"):])
    people = {r["reviewer"]: r for r in result["reviewer_status"]}
    assert {n: (r["assigned"], r["judged"]) for n, r in people.items()} == {
        "ann": (2, 1), "bob": (2, 1), "cy": (2, 0)}
    assert people["ann"]["last_seen"] and people["cy"]["last_seen"]  # a vote, a page load
    pairs = {r["pair_id"]: r for r in result["pair_status"]}
    assert (pairs[first]["votes"], pairs[first]["quorum"], pairs[first]["votes_missing"]) == (
        2, 2, 0)
    assert pairs[first]["consensus"] == "both-good"
    assert [r["votes_missing"] for p, r in pairs.items() if p != first] == [2]
    assert "1 pairs at quorum, 1 with a consensus, 2 votes missing" in " ".join(out.split())


def test_progress_counts_pairs_not_edits(hh_data, tmp_path) -> None:
    data, audit = hh_data
    db = tmp_path / "r.sqlite"
    init_review(data, audit, db, sample=3, per_pair=1, reviewers=["ann"])
    with store.opened(db) as con:
        first = store.queue(con, "ann")[0]["pair_id"]
        for k, choice in enumerate(("A", "B", "both-bad")):  # a vote and two edits
            store.record_vote(con, "ann", store.Vote(first, choice, "", "", "t", f"s-{k}"))
        progress = store.progress(con, "ann")
    assert progress["mine"] == {"done": 1, "total": 3}
    assert progress["project"]["done"] == 1 and progress["project"]["total"] == 3


def test_status_and_export_count_the_same_latest_votes(hh_data, tmp_path) -> None:
    """`review status` reads the export's table (one latest-vote rule): edits count once,
    the last one; the two agree on every pair, with and without --min-votes."""
    from preflab.review.export import export_review
    from preflab.review.project import review_status

    data, audit = hh_data
    db = tmp_path / "r.sqlite"
    init_review(data, audit, db, sample=5, per_pair=3, reviewers=["ann", "bob", "cy"])
    with store.opened(db) as con:
        pairs = [p["pair_id"] for p in store.all_pairs(con)]
        plan = {"ann": ["A", "B", "both-bad", "A"], "bob": ["B", "B", "A"], "cy": ["A"]}
        for name, choices in plan.items():
            for k, choice in enumerate(choices):
                pair = pairs[0] if k == len(choices) - 1 and name == "ann" else pairs[k]
                store.record_vote(con, name, store.Vote(pair, choice, "", "", "t",
                                                        f"{name}-{k}"))
    for min_votes in (None, 1):
        status = review_status(db, min_votes)["pair_status"]
        export_review(db, tmp_path / f"e{min_votes}", min_votes=min_votes)
        exported = pd.read_parquet(tmp_path / f"e{min_votes}" / "reviews.parquet")
        assert [(r["pair_id"], r["votes"], r["quorum"], r["votes_missing"], r["consensus"])
                for r in status] == list(zip(
                    exported["pair_id"], exported["n_votes"], exported["quorum"],
                    exported["votes_missing"], exported["consensus"], strict=True))
    assert status[0]["votes"] == 3  # ann's edit of the first pair counts once


def test_init_writes_its_settings_and_they_choose_and_assign_the_same(hh_data,
                                                                      tmp_path) -> None:
    from preflab.review.config import ReviewConfig, config_path

    data, audit = hh_data
    first = tmp_path / "a.sqlite"
    out = invoke("init", str(data), "--audit", str(audit), "--db", str(first), "--sample", "6",
                 "--strata", "bin", "--per-pair", "2", "--seed", "3", "--reviewers",
                 "ann,bob,cy")
    settings = config_path(first)
    assert settings.name == "a.sqlite.config.toml" and str(settings) in " ".join(out.split())
    assert ReviewConfig.from_file(settings) == ReviewConfig(
        sample=6, strata="bin", per_pair=2, seed=3, reviewers=["ann", "bob", "cy"])
    second = tmp_path / "b.sqlite"
    invoke("init", str(data), "--audit", str(audit), "--db", str(second), "--config",
           str(settings))

    def assigned(db) -> list[tuple]:
        with store.opened(db) as con:
            return [tuple(r) for r in con.execute(
                "SELECT pair_id, reviewer, shown_order FROM assignments ORDER BY pair_id, "
                "reviewer")]

    assert assigned(second) == assigned(first) and len(assigned(first)) == 12
    # add-pairs takes the same selection settings (a file's reviewers are not its business)
    invoke("add-pairs", str(data), "--audit", str(audit), "--db", str(second), "--config",
           str(settings), "--seed", "4")
    assert counts(second) == (12, 24)
