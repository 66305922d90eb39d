"""The committee's votes and bins count the committee its probability uses: members that
negate or copy each other vote once, a member turned round votes turned round, and a
missing score is a null vote (issue 32, item 2 and the null votes of item 3)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from preflab.audit.combine import METHODS
from preflab.audit.stats import summarize
from preflab.audit.table import Combination, audit_table
from preflab.audit.view import AuditView


def table_of(margins: np.ndarray, names: list[str], combine: str = "stacked"
             ) -> tuple[pd.DataFrame, dict]:
    n = len(margins)
    nan = np.full(margins.shape, np.nan)
    return audit_table([f"p{i}" for i in range(n)], [None] * n, names, margins,
                       1 / (1 + np.exp(-margins)), nan, nan,
                       combination=Combination(combine))


def informative(n: int, seed: int) -> np.ndarray:
    """Margins that agree with the labels on about 75-80% of pairs, independently."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.8, 1.0, size=n)


def test_members_that_negate_each_other_vote_once() -> None:
    """`fit` and `cosine` negate each other (crossfit-fit and minilm-cosine correlate -0.99
    on HH): raw, they vote opposite on every pair, so none and unanimous never occur."""
    n = 400
    fit, other = informative(n, 0), informative(n, 1)
    cosine = -3 * fit
    table, info = table_of(np.stack([fit, cosine, other], axis=1), ["fit", "cosine", "other"])
    assert [c for c in table if c.startswith("voter.")] == ["voter.fit+cosine", "voter.other"]
    assert info["orientation"] == {"fit": 1, "cosine": -1, "other": 1}
    assert info["voters"]["fit+cosine"]["members"] == {"fit": 1, "cosine": -1}
    assert (table["members"] == 2).all()
    expected = (fit > 0).astype(int) + (other > 0).astype(int)
    assert np.array_equal(table["votes"], expected)
    assert set(table["bin"]) == {"none", "mixed", "unanimous"}
    assert ((table["bin"] == "unanimous") == (expected == 2)).all()
    # each member's own vote stays as declared
    assert np.array_equal(table["vote.cosine"].astype(int), (cosine > 0).astype(int))
    assert all(w >= 0 for w in info["weights"].values())
    summary = summarize(table)
    assert summary["voters"] == ["fit+cosine", "other"]
    assert summary["fleiss_kappa"] > -0.05  # the two voters are independent, not opposed


@pytest.mark.parametrize("method", METHODS)
def test_a_reversed_member_votes_turned_round_whatever_the_combination(method: str) -> None:
    n = 400
    good, backwards = informative(n, 3), -informative(n, 4)  # declared the wrong way
    table, info = table_of(np.stack([good, backwards], axis=1), ["good", "backwards"], method)
    assert info["orientation"] == {"good": 1, "backwards": -1}
    assert np.array_equal(table["votes"], (good > 0).astype(int) + (backwards < 0).astype(int))
    assert table["bin"].isin(["none", "unanimous"]).mean() > 0.5
    if method in ("stacked", "selected", "mean"):
        assert all(w >= 0 for w in info["weights"].values())


def test_a_missing_score_is_a_null_vote_not_zero() -> None:
    n = 60
    a, b = informative(n, 5), informative(n, 6)
    b[:5] = np.nan
    table, _ = table_of(np.stack([a, b], axis=1), ["a", "b"])
    assert table["vote.b"].isna().sum() == 5 and table["vote.b"][5:].notna().all()
    assert table["voter.b"].isna().sum() == 5
    assert (table["members"][:5] == 1).all() and (table["missing_votes"][:5] == 1).all()
    # a null vote counts for neither side: agreement is of the voters that voted
    assert np.allclose(table["agreement"][:5], (a[:5] > 0).astype(float))
    summary = summarize(table)
    assert summary["member_agreement_with_labels"]["b"] == pytest.approx(
        float((b[5:] > 0).mean()), abs=1e-4)


def test_cleaning_reads_oriented_margins_and_nullable_votes() -> None:
    """Cleaning rules on such an audit: margins of a member turned round are turned round
    for them too (a reward gap is not cancelled by a member's negation), and null votes
    do not break them."""
    from preflab.clean.methods import run_method

    n = 80
    fit = informative(n, 7)
    cosine = -3 * fit + np.random.default_rng(8).normal(0, 0.1, n)
    margins = np.stack([fit, cosine, informative(n, 9)], axis=1)
    margins[:4, 2] = np.nan
    table, info = table_of(margins, ["fit", "cosine", "other"])
    table["source"], table["source_signal"] = "", ""
    view = AuditView(table, {"fit": "crossfit", "cosine": "embed-rm", "other": "seq-rm"},
                     orientation=info["orientation"])
    z = view.scaled_margins()
    assert np.corrcoef(z[:, 0], z[:, 1])[0, 1] > 0.99
    for name in ("vote-maj", "vote-all", "reward-gap", "sac", "confident-learning"):
        decided = run_method(view, name, {})
        assert len(decided) == n
    maj = run_method(view, "vote-maj", {})
    assert (maj.loc[maj["action"] != "keep", "reason"].str.match(r"0/[12] ")).all()


@pytest.mark.parametrize("method", METHODS)
def test_one_reversed_member_probability_follows_its_votes(method: str) -> None:
    """Review finding 1: with one member (a single voter) every method falls back to the
    mean of scaled margins, which ignored the orientation the votes use: the voter voted 1
    on nearly every pair while P(chosen) said the opposite and the weight was -1."""
    n = 40
    backwards = -informative(n, 11)
    table, info = table_of(backwards[:, None], ["a"], method)
    assert info["orientation"] == {"a": -1}
    agree = table["voter.a"].astype(int).to_numpy() == 1
    assert agree.mean() > 0.75
    p = table["p_chosen"].to_numpy()
    assert np.corrcoef(p, -backwards)[0, 1] > 0.9  # P(chosen) rises with the counted margin
    if method != "latent":  # latent's offset b_k moves its 0.5 away from a margin of 0
        assert ((p > 0.5) == agree).all()
    assert info["weights"]["a"] == pytest.approx(1.0)


@pytest.mark.parametrize("method", METHODS)
def test_under_twenty_pairs_the_fallback_turns_a_reversed_member_round(method: str) -> None:
    """Review finding 1: under 20 pairs (the fallback) two members, one declared the wrong
    way round: the probability leans with the voters, and no weight is below 0."""
    rng = np.random.default_rng(12)
    n = 19
    good = np.where(np.arange(n) < 15, 1.0, -1.0) * rng.uniform(0.5, 2, n)
    backwards = np.where(np.arange(n) == n - 1, 1.0, -1.0) * rng.uniform(0.5, 2, n)
    table, info = table_of(np.stack([good, backwards], axis=1), ["good", "backwards"], method)
    assert info["orientation"] == {"good": 1, "backwards": -1}
    both = (table["votes"] == 2).to_numpy()
    neither = (table["votes"] == 0).to_numpy()
    assert both.any() and neither.any()
    p = table["p_chosen"].to_numpy()
    assert (p[both] > 0.5).all() and (p[neither] < 0.5).all()
    assert all(w >= 0 for w in info["weights"].values())
