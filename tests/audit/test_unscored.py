"""A pair no member scored (review finding 7): its own bin, ``unscored``, not ``none``;
no agreement; kept out of review selection and of every cleaning rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from preflab.audit.noise_sources import tag_sources
from preflab.audit.stats import summarize
from preflab.audit.table import audit_table
from preflab.audit.view import AuditView
from preflab.clean.methods import VARIANTS, run_method
from preflab.review.select import choose_pairs

N, UNSCORED = 60, 3  # the first 3 pairs have no score from any member


def audited() -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(0)
    margins = rng.normal(0.6, 1.0, size=(N, 3))
    margins[:UNSCORED] = np.nan
    r = margins + rng.normal(0, 0.1, size=margins.shape)
    table, info = audit_table([f"p{i}" for i in range(N)], ["harmless"] * N,
                              ["a", "b", "judge"], margins, 1 / (1 + np.exp(-margins)), r,
                              r - margins)
    table["margin.ifd"] = rng.normal(0, 1, N)  # a signal, as the ifd-gap rule reads it
    tags = tag_sources(AuditView(table, orientation=info["orientation"]))
    table["source"], table["source_signal"] = tags["source"], tags["signal"]
    return table, info


def test_a_pair_no_member_scored_is_unscored_not_none() -> None:
    table, _ = audited()
    assert list(table["bin"][:UNSCORED]) == ["unscored"] * UNSCORED
    assert "unscored" not in set(table["bin"][UNSCORED:])
    assert (table["members"][:UNSCORED] == 0).all()
    assert table["agreement"][:UNSCORED].isna().all()
    assert (table["p_chosen"][:UNSCORED] == 0.5).all()  # the committee has no opinion
    assert (table["source"][:UNSCORED] == "").all()  # not flagged
    bins = summarize(table)["bins"]["overall"]
    assert bins["unscored"]["count"] == UNSCORED
    assert bins["none"]["count"] == int((table["bin"] == "none").sum())
    assert sum(b["count"] for b in bins.values()) == N


def test_review_selection_leaves_unscored_pairs_out() -> None:
    table, _ = audited()
    unscored = set(table["id"][:UNSCORED])
    assert not unscored & set(choose_pairs(table))
    assert not unscored & set(choose_pairs(table, sample=N))
    assert len(choose_pairs(table, sample=N)) == N - UNSCORED
    assert not unscored & set(choose_pairs(table, sample=N, strata="bin"))
    assert not unscored & set(choose_pairs(table, sample=N, strata="source"))


@pytest.mark.parametrize("name", list(VARIANTS))
def test_cleaning_rules_keep_unscored_pairs_and_decide_the_rest_without_them(name: str
                                                                             ) -> None:
    table, info = audited()
    kinds = {"a": "crossfit", "b": "seq-rm", "judge": "judge", "ifd": "ifd"}
    view = AuditView(table, kinds, orientation=info["orientation"])
    params = {"count": 5} if name == "random" else {}
    decided = run_method(view, name, params)
    assert list(decided["id"]) == list(table["id"])
    head = decided[:UNSCORED]
    assert (head["action"] == "keep").all()
    assert head["reason"].str.startswith("unscored: no member scored this pair").all()
    scored = AuditView(table[UNSCORED:].reset_index(drop=True), kinds,
                       orientation=info["orientation"])
    alone = run_method(scored, name, params)
    rest = decided[UNSCORED:].reset_index(drop=True)
    assert rest["action"].tolist() == alone["action"].tolist()
    assert (rest["params"] == alone["params"]).all()
