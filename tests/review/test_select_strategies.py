"""`review init` / `review add-pairs --select priority|strata|random|uncertainty|active`
(issue 34, item 3): each strategy over small synthetic audit tables (pure functions), the
default unchanged, bad combinations named, and rounds of add-pairs that never touch what
was judged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from preflab.audit.combine import committee_voters
from preflab.audit.table import UNSCORED, audit_table
from preflab.cli import app
from preflab.review import store
from preflab.review.select import (
    active_scores,
    choose_pairs,
    cleaning_change,
    committee_change,
    uncertainty_scores,
)

runner = CliRunner()
N = 40


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """An audit table of N pairs by three members, the last three pairs unscored."""
    rng = np.random.default_rng(0)
    lean = rng.normal(0.3, 1.2, size=(N, 1))
    margins = lean + rng.normal(0, 0.8, size=(N, 3))
    margins[-3:] = np.nan
    member_p = 1 / (1 + np.exp(-margins))
    ids = [f"p{k:02d}" for k in range(N)]
    made, _ = audit_table(ids, [None] * N, ["a", "b", "c"], margins, member_p,
                          margins, np.zeros_like(margins))
    return made


def test_the_default_is_todays_and_strata_defaults_to_bin(table) -> None:
    assert choose_pairs(table) == choose_pairs(table, select="priority")
    assert choose_pairs(table, sample=7) == choose_pairs(table, sample=7, select="priority")
    today = choose_pairs(table, sample=9, strata="bin", seed=2)
    assert today == choose_pairs(table, sample=9, strata="bin", seed=2, select="strata")
    assert today == choose_pairs(table, sample=9, seed=2, select="strata")


@pytest.mark.parametrize("select", ["priority", "strata", "random", "uncertainty", "active"])
def test_no_strategy_chooses_unscored_or_excluded_pairs(table, select: str) -> None:
    unscored = set(table.loc[table["bin"] == UNSCORED, "id"])
    first = choose_pairs(table, sample=10, select=select)
    assert len(first) == len(set(first)) == 10 and not unscored & set(first)
    second = choose_pairs(table, sample=N, select=select, exclude=first)
    assert len(second) == N - 3 - 10 and not (unscored | set(first)) & set(second)


def test_random_is_a_seeded_sample() -> None:
    flat = pd.DataFrame({"id": [f"q{k}" for k in range(30)], "bin": "high", "p_chosen": 0.9})
    one = choose_pairs(flat, sample=8, seed=1, select="random")
    assert one == choose_pairs(flat, sample=8, seed=1, select="random")
    assert one != choose_pairs(flat, sample=8, seed=2, select="random")
    assert one != choose_pairs(flat, sample=8, select="priority")  # not the first 8


def test_uncertainty_takes_p_chosen_closest_to_half_ties_in_id_order() -> None:
    t = pd.DataFrame({"id": ["e", "d", "c", "b", "a", "z"],
                      "bin": ["high", "low", "none", "high", "mixed", UNSCORED],
                      "p_chosen": [0.45, 0.9, 0.55, 0.1, 0.3, 0.5]})
    np.testing.assert_allclose(uncertainty_scores(t), [0.9, 0.2, 0.9, 0.2, 0.6, 1.0])
    assert choose_pairs(t, sample=3, select="uncertainty") == ["c", "e", "a"]
    assert choose_pairs(t, sample=4, select="uncertainty", exclude=["c"]) == \
        ["e", "a", "b", "d"]


def test_committee_change_favours_strong_disagreement_where_the_committee_is_unsure() -> None:
    """EGL = ||oriented voter margins|| p (1 - p): a pair where two independent members
    disagree strongly and p = 0.5 beats one where they are as unsure but weak, and one
    where they agree strongly (p far from 0.5); a missing margin counts 0."""
    rng = np.random.default_rng(1)
    margins = rng.normal(0.5, 1.0, size=(30, 2))
    margins[0], margins[1], margins[2] = [4.0, -4.0], [0.1, -0.1], [4.0, 4.0]
    margins[3] = [4.0, np.nan]
    p = np.full(30, 0.7)
    p[:4] = [0.5, 0.5, 0.98, 0.5]
    t = pd.DataFrame({"id": [f"r{k:02d}" for k in range(30)], "bin": "mixed", "p_chosen": p,
                      "margin.a": margins[:, 0], "margin.b": margins[:, 1],
                      "vote.a": margins[:, 0] > 0, "vote.b": margins[:, 1] > 0})
    scores = committee_change(t)
    x = np.nan_to_num(committee_voters(margins).margins)
    np.testing.assert_allclose(scores, np.linalg.norm(x, axis=1) * p * (1 - p))
    assert scores[0] > scores[3] > scores[1] and scores[0] > scores[2]
    # active adds the chance the cleaning leaves the label wrong: at p = 0.5 (kept) 1/2
    np.testing.assert_allclose(active_scores(t), (1 - p) / 0.5 + scores / scores.max())
    assert choose_pairs(t, sample=1, select="active") == ["r00"]
    assert choose_pairs(t, sample=1, select="active", exclude=["r00"]) == ["r03"]


def test_cleaning_change_is_the_chance_the_decision_leaves_the_label_wrong() -> None:
    t = pd.DataFrame({"p_chosen": [0.9, 0.55, 0.3, 0.2, 0.1],
                      "source": ["", "subjective", "subjective", "mis-label", "mis-label"]})
    np.testing.assert_allclose(cleaning_change(t), [0.1, 0.45, 0.0, 0.2, 0.1])
    np.testing.assert_allclose(cleaning_change(t.drop(columns="source")),
                               [0.1, 0.45, 0.0, 0.0, 0.0])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"select": "random"}, "--select random chooses a number of pairs: give it with --sample N"),
    ({"select": "uncertainty"}, "--select uncertainty .* --sample N"),
    ({"select": "active"}, "--select active .* --sample N"),
    ({"select": "strata", "strata": "bin"}, "--strata draws a sample: .* --sample N"),
    ({"strata": "bin"}, "--strata draws a sample: .* --sample N"),
    ({"select": "random", "strata": "bin", "sample": 3},
     "--strata bin .* --select random does not: drop --strata, or use --select strata"),
    ({"select": "priority", "strata": "source", "sample": 3}, "--select priority"),
    ({"select": "best", "sample": 3}, "--select must be one of priority, random"),
])
def test_a_bad_combination_names_its_flags(table, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        choose_pairs(table, **kwargs)


def test_rounds_of_active_add_only_new_pairs_and_leave_votes_alone(hh_data,
                                                                  tmp_path) -> None:
    data, audit = hh_data
    db = tmp_path / "r.sqlite"
    where = [str(data), "--audit", str(audit), "--db", str(db)]
    made = runner.invoke(app, ["review", "init", *where, "--select", "active", "--sample",
                               "6", "--per-pair", "2", "--reviewers", "ann,bob"])
    assert made.exit_code == 0, made.output
    with store.opened(db) as con:
        first = [p["pair_id"] for p in store.all_pairs(con)]
        for k, pair in enumerate(first[:4]):
            store.record_vote(con, "ann", store.Vote(pair, "AB"[k % 2], "", "", "t", f"s{k}"))
        votes = store.all_votes(con)
    audited = pd.read_parquet(audit / "audit.parquet")
    assert sorted(first) == sorted(choose_pairs(audited, sample=6, select="active"))
    bad = runner.invoke(app, ["review", "add-pairs", *where, "--select", "active"])
    assert bad.exit_code != 0 and "--sample N" in bad.output
    more = runner.invoke(app, ["review", "add-pairs", *where, "--select", "active",
                               "--sample", "5"])
    assert more.exit_code == 0 and "11 pairs (5 new)" in more.output, more.output
    with store.opened(db) as con:
        now = [p["pair_id"] for p in store.all_pairs(con)]
        assert store.all_votes(con) == votes
    assert now[:6] == first and not set(now[6:]) & set(first)
    assert sorted(now[6:]) == sorted(choose_pairs(audited, sample=5, select="active",
                                                  exclude=first))
