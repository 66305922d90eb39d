"""Source tagging, SAC and the baselines on audits built to have a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from preflab.audit.noise_sources import SourceRules, tag_sources
from preflab.audit.table import Combination, audit_table
from preflab.audit.view import AuditView
from preflab.clean.baselines import (
    confident_learning,
    ifd_gap,
    judge,
    loss,
    random_removal,
    reward_gap,
    vote_all,
    vote_maj,
)
from preflab.clean.methods import parse_params, run_method
from preflab.clean.sac import sac
from tests.clean.helpers import make_pairs, make_view


def view_from(margins, r_c, r_r, subsets=None, kinds=None) -> AuditView:
    margins = np.asarray(margins, dtype=float)
    n, m = margins.shape
    names = [f"m{k}" for k in range(m)]
    table, _ = audit_table([f"id{i}" for i in range(n)], subsets or ["helpful"] * n, names,
                           margins, 1 / (1 + np.exp(-margins)), np.asarray(r_c, dtype=float),
                           np.asarray(r_r, dtype=float), combination=Combination("mean"))
    return AuditView(table, kinds or {k: "seq-rm" for k in names})


def test_each_source_from_its_signal() -> None:
    rng = np.random.default_rng(0)
    n = 200  # background pairs: members agree with the label, rewards mid-range
    margins = np.abs(rng.normal(2, 0.3, size=(n, 4)))
    r_c = np.full((n, 4), 0.5) + rng.normal(0, 0.01, size=(n, 4))
    r_r = r_c - margins
    # Background chosen replies score ~0.5, rejected ~-1.5: -0.5 sits mid-range.
    rows = {  # index: (margins, chosen reward, rejected reward, subset)
        0: ([-4, -4, -4, -4], -0.5, -0.5, "helpful"),        # unanimous, confident reversal
        1: ([-0.1, -0.2, 0.1, -0.1], -5, -5, "harmless-base"),  # both replies at the bottom
        2: ([-0.1, -0.2, 0.1, -0.1], -5, -5, "helpful"),
        3: ([-0.1, -0.2, 0.1, -0.1], 5, 5, "helpful"),      # both at the top
        4: ([6, -6, -0.1, -0.1], -0.5, -0.5, "helpful"),     # confident members disagree
        5: ([-0.1, 0.05, -0.05, -0.1], -0.5, -0.5, "helpful"),  # unsure, no pattern
        6: ([3, -0.1, -0.1, 0.2], -0.5, -0.5, "helpful"),   # split, but sides with the label
    }
    subsets = ["helpful"] * n
    for i, (m, c, r, s) in rows.items():
        margins[i] = m
        r_c[i] = c + np.maximum(np.array(m), 0) / 10
        r_r[i] = r + np.maximum(-np.array(m), 0) / 10
        subsets[i] = s
    tags = tag_sources(view_from(margins, r_c, r_r, subsets))
    expected = ["mis-label", "both-harmful", "both-bad", "different-thresholds",
                "different-criteria", "subjective", "subjective"]
    assert list(tags["source"][:7]) == expected
    assert list(tags["against"][:7]) == [True] * 6 + [False]
    assert not tags["flagged"][7:].any() and (tags["source"][7:] == "").all()
    assert "0/4 agree" in tags["signal"][0] and "harm subset" in tags["signal"][1]
    view = view_from(margins, r_c, r_r, subsets)
    decided = sac(view)  # the default removes the pairs the committee leans against
    assert list(decided["action"][:7]) == ["flip"] + ["remove"] * 5 + ["keep"]
    assert (decided["action"][7:] == "keep").all()
    assert "leans against" in decided["reason"][3] and "leans" not in decided["reason"][1]
    paper = sac(view, against="keep")  # the paper's rule keeps sources 2-4
    assert list(paper["action"][:7]) == ["flip", "remove", "remove"] + ["keep"] * 4
    soft = sac(view, soft=True, flip_action="remove")
    assert list(soft["action"][:7]) == ["remove"] * 6 + ["relabel"]
    soft = sac(view, soft=True, flip_action="remove", against="keep")
    assert list(soft["action"][:7]) == ["remove"] * 3 + ["relabel"] * 4
    assert soft["p_new"][3:7].between(0, 1).all() and soft["p_new"][7:].isna().all()
    with pytest.raises(ValueError, match="against must be"):
        sac(view, against="flip")


def test_sac_thresholds_are_parameters() -> None:
    pairs = make_pairs(80)
    flipped = np.arange(80) < 20
    view = make_view(pairs, 1, flipped)
    strict = sac(view, flip_p=0.05)
    loose = sac(view, flip_p=0.45, flip_agreement=0.5)
    assert (strict["action"] == "flip").sum() <= (loose["action"] == "flip").sum()
    assert json_params(loose)["flip_p"] == 0.45
    with pytest.raises(TypeError):
        sac(view, flip_q=0.1)


def json_params(table: pd.DataFrame) -> dict:
    import json

    return json.loads(table["params"].iloc[0])


def test_vote_rules_follow_the_votes() -> None:
    # the last two rows keep the first member from disagreeing with the labels beyond
    # chance (it would be turned round: audit.combine.committee_voters)
    margins = np.array([[-1, -1, -1], [-1, -1, 1], [-1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 1]]
                       * 10, dtype=float)
    nan = np.full_like(margins, np.nan)
    view = view_from(margins, nan, nan)
    assert list(vote_all(view)["action"][:4]) == ["remove", "keep", "keep", "keep"]
    assert list(vote_maj(view, "flip")["action"][:4]) == ["flip", "flip", "keep", "keep"]
    with pytest.raises(ValueError, match="action must be"):
        vote_all(view, "relabel")


def test_reward_gap_loss_and_ifd_pick_their_lowest_k() -> None:
    pairs = make_pairs(50)
    view = make_view(pairs, 3)
    gap = reward_gap(view, k=0.2)
    assert (gap["action"] == "remove").sum() == 10
    mean = view.scaled_margins().mean(axis=1)
    assert mean[gap["action"] == "remove"].max() <= mean[gap["action"] == "keep"].min()
    lo = loss(view, k=0.1)
    assert (lo["action"] == "remove").sum() == 5 and json_params(lo)["member"] == "fit"
    margin = view.margin("fit")
    assert margin[lo["action"] == "remove"].max() <= margin[lo["action"] == "keep"].min()
    ifd = ifd_gap(view, k=0.3)
    assert (ifd["action"] == "remove").sum() == 15 and json_params(ifd)["member"] == "ifd"


def test_methods_without_their_member_say_which_is_missing() -> None:
    view = make_view(make_pairs(30))
    view.kinds = {"rm": "seq-rm", "fit": "seq-rm", "judge": "seq-rm"}
    for fn, what in ((judge, "judge"), (loss, "crossfit"), (ifd_gap, "ifd")):
        with pytest.raises(ValueError, match=f"needs a member of kind {what}"):
            fn(view)
    with pytest.raises(KeyError, match="no member or signal 'nope'"):
        judge(view, member="nope")
    assert (judge(view, member="judge")["action"] == "remove").sum() == (
        view.margin("judge") < 0).sum()


def test_random_is_seeded_and_sized() -> None:
    view = make_view(make_pairs(40))
    a, b = random_removal(view, count=7, seed=1), random_removal(view, count=7, seed=1)
    assert (a["action"] == "remove").sum() == 7 and a.equals(b)
    assert not a.equals(random_removal(view, count=7, seed=2))


def test_confident_learning_finds_contradicted_labels() -> None:
    n = 200
    flipped = np.zeros(n, dtype=bool)
    flipped[:30] = True
    margins = np.where(flipped[:, None], -3.0, 3.0) + np.random.default_rng(0).normal(
        0, 1, (n, 3))
    nan = np.full_like(margins, np.nan)
    table = confident_learning(view_from(margins, nan, nan))
    found = table["action"].to_numpy() == "remove"
    assert found[:30].mean() > 0.9 and found[30:].mean() < 0.05


def test_parse_params_types_and_errors() -> None:
    assert parse_params("sac", ["flip_p=0.1", "soft=true", "flip-action=remove",
                                "against=keep"]) == {
        "flip_p": 0.1, "soft": True, "flip_action": "remove", "against": "keep"}
    assert parse_params("sac", ["flip_p=auto"]) == {"flip_p": "auto"}
    assert parse_params("random", ["count=5"]) == {"count": 5}
    assert parse_params("vote-all-flip", []) == {}
    with pytest.raises(ValueError, match="unknown parameter 'k'"):
        parse_params("vote-all", ["k=0.1"])
    with pytest.raises(ValueError, match="expected float"):
        parse_params("reward-gap", ["k=lots"])
    with pytest.raises(ValueError, match="unknown cleaning method"):
        run_method(make_view(make_pairs(10)), "magic")


def test_default_rules_are_documented() -> None:
    doc = SourceRules.__doc__ or ""
    for name in SourceRules().params():
        assert name in doc, name
