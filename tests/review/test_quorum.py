"""A review consensus needs a quorum (issue 32, item 1): with three reviewers per pair one
vote decides nothing, in `review export` or in `clean --review`; two of three do."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from preflab.cli import app
from preflab.review import store
from preflab.review.project import init_review

runner = CliRunner()


def vote_all(db, name: str, verdict: str) -> None:
    """`name` judges every pair of theirs as `verdict` (chosen or rejected), through the
    store's Python API, as a script would."""
    with store.opened(db) as con:
        for q in store.queue(con, name):
            order = store.assignment(con, name, q["pair_id"])["shown_order"]
            choice = "A" if (verdict == "chosen") == (order == "CR") else "B"
            store.record_vote(con, name, store.Vote(q["pair_id"], choice, "mis-label", "",
                                                    "test", f"{q['pair_id']}-{name}"))


def export(db, out, *extra: str) -> tuple[str, pd.DataFrame]:
    result = runner.invoke(app, ["review", "export", str(db), "--out", str(out), "--overwrite",
                                 *extra])
    assert result.exit_code == 0, result.output
    return result.output, pd.read_parquet(out / "reviews.parquet")


def clean(data, audit, out, *extra: str) -> tuple[str, pd.DataFrame]:
    result = runner.invoke(app, ["clean", str(data), "--audit", str(audit), "--method", "sac",
                                 "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return result.output, pd.read_parquet(out / "manifest.parquet").set_index("id")


def test_quorum_is_a_strict_majority_of_the_assigned() -> None:
    from preflab.data.verdicts import decide, quorum

    assert [quorum(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]
    assert quorum(3, min_votes=1) == 1 and quorum(2, min_votes=3) == 3
    assert decide(["rejected"], 3) == ("", 1, 1)
    assert decide(["rejected", "rejected"], 3) == ("rejected", 2, 0)
    assert decide(["rejected", "chosen"], 3) == ("", 1, 0)  # quorum, no majority
    assert decide(["rejected"], 3, min_votes=1) == ("rejected", 1, 0)
    with pytest.raises(ValueError, match="--min-votes"):
        quorum(3, min_votes=0)


def test_one_vote_of_three_is_no_consensus_and_clean_waits(hh_data, tmp_path) -> None:
    data, audit = hh_data
    db = tmp_path / "r.sqlite"
    init_review(data, audit, db, sample=4, per_pair=3, reviewers=["ann", "bob", "cy"])
    vote_all(db, "ann", "rejected")  # one of three assigned reviewers has voted
    output, reviews = export(db, tmp_path / "export")
    assert "0 pairs with a consensus; 4 below their quorum (4 votes missing" in output
    assert "pairs below quorum" in output
    assert (reviews["consensus"] == "").all() and (reviews["n_votes"] == 1).all()
    assert (reviews["quorum"] == 2).all() and (reviews["votes_missing"] == 1).all()
    summary = json.loads((tmp_path / "export" / "summary.json").read_text())
    assert summary["consensus"]["below_quorum"] == 4 and summary["consensus"]["rejected"] == 0
    # clean with the review: a warning with the counts, and nothing done because of it
    _, plain = clean(data, audit, tmp_path / "plain")
    output, manifest = clean(data, audit, tmp_path / "clean", "--review",
                             str(tmp_path / "export"))
    assert "the review is incomplete: 4 of 4 reviewed pairs are below their quorum (4 " \
           "votes missing)" in " ".join(output.split())
    assert (manifest["action"] == plain["action"]).all()
    assert (manifest["reason"] != "human review").all()
    ids = list(reviews["pair_id"])
    assert set(manifest.loc[ids, "review"]) == {"below quorum: 1 of 2 votes"}
    assert json.loads((tmp_path / "clean" / "summary.json").read_text())["human_review"][
        "below_quorum"] == 4
    # the quorum can be lowered explicitly, the same way in export and clean
    _, reviews = export(db, tmp_path / "export-1", "--min-votes", "1")
    assert (reviews["consensus"] == "rejected").all() and (reviews["votes_missing"] == 0).all()
    _, manifest = clean(data, audit, tmp_path / "clean-1", "--review",
                        str(tmp_path / "export"), "--min-votes", "1")
    assert (manifest.loc[ids, "action"] == "flip").all()
    # two of three: the consensus appears and clean follows it
    vote_all(db, "bob", "rejected")
    output, reviews = export(db, tmp_path / "export")
    assert "4 pairs with a consensus; 0 below their quorum" in output
    assert (reviews["consensus"] == "rejected").all() and (reviews["votes_missing"] == 0).all()
    output, manifest = clean(data, audit, tmp_path / "clean", "--review",
                             str(tmp_path / "export"))
    assert "incomplete" not in output
    assert (manifest.loc[ids, "action"] == "flip").all()
    assert set(manifest.loc[ids, "review"]) == {"rejected 2/2"}
    # a stricter quorum than the default leaves them again
    _, manifest = clean(data, audit, tmp_path / "clean-3", "--review",
                        str(tmp_path / "export"), "--min-votes", "3")
    assert set(manifest.loc[ids, "review"]) == {"below quorum: 2 of 3 votes"}


def test_clean_takes_the_quorum_the_export_was_made_with(hh_data, tmp_path) -> None:
    data, audit = hh_data
    db = tmp_path / "r.sqlite"
    init_review(data, audit, db, sample=4, per_pair=3, reviewers=["ann", "bob", "cy"])
    vote_all(db, "ann", "rejected")
    _, reviews = export(db, tmp_path / "export-1", "--min-votes", "1")
    ids = list(reviews["pair_id"])
    assert (reviews["consensus"] == "rejected").all()
    # no --min-votes: the export's quorum, said; clean decides as the export did
    output, manifest = clean(data, audit, tmp_path / "c1", "--review",
                             str(tmp_path / "export-1"))
    said = " ".join(output.split())
    assert "quorum: 1 vote (the export's --min-votes)" in said, said
    assert (manifest.loc[ids, "action"] == "flip").all()
    assert set(manifest.loc[ids, "review"]) == {"rejected 1/1"}
    human = json.loads((tmp_path / "c1" / "summary.json").read_text())["human_review"]
    assert human["min_votes"] == 1 and human["export_min_votes"] == 1
    # another quorum than the export's: used, with a warning naming both
    output, manifest = clean(data, audit, tmp_path / "c2", "--review",
                             str(tmp_path / "export-1"), "--min-votes", "2")
    said = " ".join(output.split())
    assert "--min-votes 2, but the review export" in said and "quorum 1 vote" in said, said
    assert "quorum: 2 votes (--min-votes)" in said
    assert set(manifest.loc[ids, "review"]) == {"below quorum: 1 of 2 votes"}
    # an export with the default quorum, cleaned with the default: no warning
    export(db, tmp_path / "export-d")
    output, _ = clean(data, audit, tmp_path / "c3", "--review", str(tmp_path / "export-d"))
    said = " ".join(output.split())
    assert "but the review export" not in said
    assert "quorum: a strict majority of the reviewers assigned to the pair (the export's)" \
        in said, said
