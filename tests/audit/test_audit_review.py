"""`preflab audit --review EXPORT`: a real tiny audit taught by a real review project's
export, and measured against its people."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from preflab.cli import app
from preflab.data.demo import demo
from preflab.data.read import iter_pairs, read_pairs
from preflab.review import store
from preflab.review.export import export_review
from preflab.review.project import init_review

runner = CliRunner()


def answer(verdict: str, order: str) -> str:
    """The choice (A or B as shown) that says `verdict` about the label."""
    return "A" if (verdict == "chosen") == (order == "CR") else "B"


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory):
    """Demo pairs (25% flipped, recorded), their tiny audit, and a review export of 12
    pairs where three reviewers side with the truth (a flipped pair's rejected reply)."""
    root = tmp_path_factory.mktemp("taught")
    mp = pytest.MonkeyPatch()
    mp.setenv("PREFLAB_CACHE", str(root / "cache"))
    data = root / "demo.jsonl"
    demo(data, n=40, flip_rate=0.25, seed=0)
    plain = runner.invoke(app, ["audit", str(data), "--committee", "tiny",
                                "--out", str(root / "plain")])
    assert plain.exit_code == 0, plain.output
    flipped = {p.id: p.meta["flipped"] for p in iter_pairs(read_pairs(data).pairs)}
    db = root / "r.sqlite"
    init_review(data, root / "plain", db, sample=12, strata="bin", per_pair=3,
                reviewers=["a", "b", "c"])
    with store.opened(db) as con:
        for p in store.all_pairs(con):
            verdict = "rejected" if flipped[p["pair_id"]] else "chosen"
            for name in ("a", "b", "c"):
                order = store.assignment(con, name, p["pair_id"])["shown_order"]
                store.record_vote(con, name, store.Vote(p["pair_id"], answer(verdict, order),
                                                        "", "", "test", f"{p['pair_id']}{name}"))
    export_review(db, root / "export")
    yield data, root, flipped
    mp.undo()


def test_audit_review_fits_on_people_and_measures_members_against_them(reviewed) -> None:
    data, root, flipped = reviewed
    out = root / "taught"
    result = runner.invoke(app, ["audit", str(data), "--committee", "tiny", "--review",
                                 str(root / "export"), "--review-min-pairs", "5",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    combined = summary["committee_probability"]
    assert (combined["fitted_on"], combined["n_decided"]) == ("people", 12)
    assert set(combined["weight_intervals"]) == set(combined["weights"])
    people = summary["people"]
    assert (people["n_reviewed"], people["n_decided"]) == (12, 12)
    reversed_ = sum(flipped[i] for i in pd.read_parquet(root / "export" / "reviews.parquet")
                    ["pair_id"])
    assert people["label"]["with_people"] == pytest.approx(1 - reversed_ / 12, abs=1e-4)
    assert summary["review"]["export"] == str(root / "export")
    assert "Against people" in (out / "report.html").read_text()
    assert "against people" in result.output.lower()
    assert (out / "config.toml").read_text().count("review") >= 1


def test_audit_review_refuses_what_it_cannot_fit_before_any_model_loads(reviewed) -> None:
    data, root, _ = reviewed
    latent = runner.invoke(app, ["audit", str(data), "--committee", "tiny", "--combine",
                                 "latent", "--review", str(root / "export"),
                                 "--out", str(root / "latent")])
    assert latent.exit_code != 0
    assert "--combine must be one of stacked, stacked-free" in latent.output
    assert not (root / "latent").exists()
    missing = runner.invoke(app, ["audit", str(data), "--committee", "tiny", "--review",
                                  str(root / "nowhere"), "--out", str(root / "missing")])
    assert missing.exit_code != 0 and "no reviews.parquet" in missing.output
    other = root / "other.jsonl"
    demo(other, n=30, flip_rate=0.0, seed=5)
    wrong = runner.invoke(app, ["audit", str(other), "--committee", "tiny", "--review",
                                str(root / "export"), "--out", str(root / "wrong")])
    assert wrong.exit_code != 0 and "reviewed pairs are not in the data" in wrong.output
    assert not (root / "wrong").exists()
