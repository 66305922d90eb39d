"""`preflab clean --review`: people's consensus overrides the method, and says so."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from preflab.clean.human import apply_review
from preflab.cli import app
from preflab.data.read import iter_pairs, read_pairs
from preflab.review import store
from preflab.review.export import export_review
from preflab.review.project import init_review

runner = CliRunner()
# per pair: the three reviewers' verdicts, and what clean must do (None: the method's call)
PLAN = [(["rejected", "rejected", "chosen"], "flip"),
        (["both-bad", "both-bad", "chosen"], "remove"),
        (["both-good", "both-good", "both-good"], "keep"),
        (["uncertain", "uncertain", "rejected"], "uncertain"),
        (["chosen", "rejected", "uncertain"], None),
        (["chosen", "chosen", "rejected"], "keep")]


def choice_for(verdict: str, order: str) -> str:
    if verdict not in ("chosen", "rejected"):
        return verdict
    return "A" if (verdict == "chosen") == (order == "CR") else "B"


def test_clean_follows_peoples_consensus(hh_data, hh_pairs, tmp_path) -> None:
    data, audit = hh_data
    db = tmp_path / "r.sqlite"
    init_review(data, audit, db, sample=len(PLAN), per_pair=3, reviewers=["a", "b", "c"])
    with store.opened(db) as con:
        pairs = store.all_pairs(con)
        for p, (verdicts, _) in zip(pairs, PLAN, strict=True):
            for name, verdict in zip(("a", "b", "c"), verdicts, strict=True):
                order = store.assignment(con, name, p["pair_id"])["shown_order"]
                store.record_vote(con, name, store.Vote(
                    p["pair_id"], choice_for(verdict, order),
                    "mis-label" if verdict == "rejected" else "", "", "test",
                    f"{p['pair_id']}-{name}"))
    people = export_review(db, tmp_path / "export")["reviewers"]
    # leave-one-out: a and b agree on pairs 0, 1, 2, 3, 5, where c agrees once (pair 2);
    # b and c agree only on pair 2 (both-good), as does a
    assert (people["c"]["agree_others"], people["c"]["pairs_others_agree"]) == (0.2, 5)
    assert (people["a"]["agree_others"], people["a"]["pairs_others_agree"]) == (1.0, 1)
    base = runner.invoke(app, ["clean", str(data), "--audit", str(audit), "--method", "sac",
                               "--out", str(tmp_path / "plain")])
    assert base.exit_code == 0, base.output
    result = runner.invoke(app, ["clean", str(data), "--audit", str(audit), "--method", "sac",
                                 "--review", str(tmp_path / "export"), "--uncertain", "remove",
                                 "--out", str(tmp_path / "clean")])
    assert result.exit_code == 0, result.output
    assert "human review: 5 of 6 reviewed pairs with a consensus" in result.output
    plain = pd.read_parquet(tmp_path / "plain" / "manifest.parquet").set_index("id")
    manifest = pd.read_parquet(tmp_path / "clean" / "manifest.parquet").set_index("id")
    for p, (_, want) in zip(pairs, PLAN, strict=True):
        row = manifest.loc[p["pair_id"]]
        if want is None:  # no majority: the method decides, as without --review
            assert row["action"] == plain.loc[p["pair_id"], "action"]
            assert row["review"] == "no majority: 1/3" and row["reason"] != "human review"
            continue
        assert row["action"] == ("remove" if want == "uncertain" else want)
        assert row["reason"] == "human review" and row["review"].endswith("/3")
        assert row["review_support"] in (2 / 3, 1.0)
    assert manifest.loc[pairs[0]["pair_id"], "source"] == "mis-label"
    others = manifest.index.difference([p["pair_id"] for p in pairs])
    assert (manifest.loc[others, "action"] == plain.loc[others, "action"]).all()
    summary = json.loads((tmp_path / "clean" / "summary.json").read_text())
    assert summary["human_review"]["actions"] == {"keep": 2, "flip": 1, "remove": 2}
    by_id = {q.id: q for q in hh_pairs}
    out = {q.id: q for q in iter_pairs(read_pairs(summary["output"]).pairs)}
    flipped = by_id[pairs[0]["pair_id"]]
    assert flipped.id not in out and any(q.chosen == flipped.rejected for q in out.values())
    assert pairs[1]["pair_id"] not in out and pairs[2]["pair_id"] in out
    # an export of other pairs is refused, naming the problem
    other = runner.invoke(app, ["clean", str(data), "--audit", str(audit), "--review",
                                str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")])
    assert other.exit_code == 2 and "no reviews.parquet" in other.output


def test_a_review_of_other_pairs_is_refused() -> None:
    table = pd.DataFrame({"id": ["p1", "p2"], "action": ["keep", "remove"],
                          "reason": ["", "x"], "p_new": [float("nan")] * 2})
    reviews = pd.DataFrame({"pair_id": ["p2", "p9"], "assigned": [3, 3], "n_votes": [3, 3],
                            "n_chosen": [2, 0], "n_rejected": [1, 3], "n_both_good": [0, 0],
                            "n_both_bad": [0, 0], "n_uncertain": [0, 0],
                            "human_source": ["", ""]})
    with pytest.raises(ValueError, match="1 reviewed pairs are not in the data"):
        apply_review(table, reviews)
    out, stats = apply_review(table, reviews.iloc[:1])
    assert list(out["action"]) == ["keep", "keep"] and stats["changed_from_method"] == 1
    with pytest.raises(ValueError, match="--uncertain"):
        apply_review(table, reviews.iloc[:1], uncertain="flip")
