"""Cleaning as score -> threshold -> act: each baseline's score orders pairs as documented
(higher = more suspect), and its selection rule plus the shared action give its decisions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores

from preflab.audit.view import AuditView
from preflab.clean.baselines import (
    SCORES,
    binary_labels,
    confident_learning,
    confident_learning_score,
    disagreement_score,
    ifd_gap,
    ifd_gap_score,
    judge,
    judge_score,
    loss,
    loss_score,
    random_removal,
    random_score,
    reward_gap,
    reward_gap_score,
    vote_all,
    vote_maj,
)
from preflab.clean.decisions import act
from preflab.clean.threshold import above, rule, top_count, top_fraction
from tests.clean.helpers import make_pairs, make_view


@pytest.fixture(params=[(7, 0), (40, 1), (83, 2)], ids=lambda c: f"n={c[0]}")
def view(request) -> AuditView:
    n, seed = request.param
    flipped = np.random.default_rng(seed).random(n) < 0.3
    return make_view(make_pairs(n, seed), seed, flipped)


def picks_highest(score: np.ndarray, mask: np.ndarray) -> bool:
    """Every selected pair scores at least as high as every pair left alone."""
    return not mask.any() or mask.all() or score[mask].min() >= np.nanmax(score[~mask])


def reproduce(view: AuditView, table: pd.DataFrame, mask: np.ndarray, action: str,
              score: np.ndarray | None) -> None:
    """`table` is the shared action on `mask`: same actions, scores, reasons where acted."""
    again = act(view.table["id"], mask, action, "why", "x", {}, score)
    pd.testing.assert_series_equal(table["action"], again["action"])
    pd.testing.assert_series_equal(table["score"], again["score"])
    assert ((table["reason"] != "") == mask).all()


def test_scores_are_one_float_per_row(view) -> None:
    for name, fn in SCORES.items():
        score = fn(view, count=3) if name == "random" else fn(view)
        assert isinstance(score, np.ndarray) and score.shape == (view.n,), name
        assert score.dtype == float, name


def test_vote_scores_order_by_disagreement(view) -> None:
    score = disagreement_score(view)
    votes = view.votes
    m = len(view.members)
    np.testing.assert_allclose(score, (m - votes) / m)
    assert (np.diff(score[np.argsort(votes, kind="stable")]) <= 0).all()  # more votes, lower
    for action in ("remove", "flip"):
        all_mask = above(score, 1.0, inclusive=True)
        assert (all_mask == (votes == 0)).all()
        reproduce(view, vote_all(view, action), all_mask, action, score)
        maj_mask = above(score, 0.5)
        assert (maj_mask == (view.agreement < 0.5)).all()
        reproduce(view, vote_maj(view, action), maj_mask, action, score)


def test_reward_gap_score_is_minus_the_mean_scaled_margin(view) -> None:
    score = reward_gap_score(view)
    gap = view.scaled_margins().mean(axis=1)
    assert (score == -gap).all()
    assert (np.argsort(score, kind="stable") == np.argsort(-gap, kind="stable")).all()
    for k in (0.0, 0.2, 0.5):
        mask = top_fraction(score, k)
        assert mask.sum() == round(k * view.n) and picks_highest(score, mask)
        reproduce(view, reward_gap(view, "flip", k=k), mask, "flip", score)


def test_judge_score_is_positive_where_the_judge_prefers_rejected(view) -> None:
    score = judge_score(view)
    assert ((score > 0) == (view.margin("judge") < 0)).all()
    assert (judge_score(view, member="rm") == -view.margin("rm")).all()
    mask = above(score, 0.0)
    assert picks_highest(score, mask)
    reproduce(view, judge(view), mask, "remove", score)


def test_confident_learning_score_is_cleanlab_quality_upside_down(view) -> None:
    score = confident_learning_score(view)
    labels, pred = binary_labels(view, seed=4)
    quality = get_label_quality_scores(labels, pred)  # cleanlab: lower = more suspect
    np.testing.assert_allclose(score, 1 - quality, atol=1e-6)
    assert (np.argsort(-score, kind="stable") == np.argsort(view.p, kind="stable")).all()
    for filter_by in ("prune_by_noise_rate", "both"):
        issues = rule(find_label_issues(labels, pred, filter_by=filter_by), view.n)
        for label in (0, 1):  # within an orientation, cleanlab's issues score highest
            side = labels == label
            assert picks_highest(score[side], issues[side])
        table = confident_learning(view, "flip", seed=4, filter_by=filter_by)
        reproduce(view, table, issues, "flip", score)


def test_loss_score_is_the_log_loss_of_the_label(view) -> None:
    score = loss_score(view)
    margin = view.margin("fit")
    np.testing.assert_allclose(score, -np.log(1 / (1 + np.exp(-margin))))
    assert (np.argsort(score, kind="stable") == np.argsort(-margin, kind="stable")).all()
    mask = top_fraction(score, 0.3)
    assert picks_highest(score, mask)
    reproduce(view, loss(view, k=0.3), mask, "remove", score)


def test_ifd_gap_score_is_minus_the_ifd_gap(view) -> None:
    score = ifd_gap_score(view)
    assert (score == -view.margin("ifd")).all()
    mask = top_fraction(score, 0.25)
    assert picks_highest(score, mask)
    reproduce(view, ifd_gap(view, k=0.25), mask, "remove", score)


def test_random_score_is_seeded_and_ranks_the_draw_first(view) -> None:
    count = view.n // 3
    score = random_score(view, count, seed=5)
    assert (score == random_score(view, count, seed=5)).all()
    assert not (score == random_score(view, count, seed=6)).all()
    assert ((score >= 0) & (score <= 1)).all()
    drawn = np.random.default_rng(5).choice(view.n, size=count, replace=False)
    mask = top_count(score, count)
    assert set(np.flatnonzero(mask)) == set(drawn) and picks_highest(score, mask)
    reproduce(view, random_removal(view, count=count, seed=5), mask, "remove", None)


def test_threshold_rules() -> None:
    score = np.array([0.5, np.nan, 2.0, 0.5, -1.0, 2.0])
    assert top_count(score, 3).tolist() == [True, False, True, False, False, True]
    assert top_count(score, 6).all() and not top_count(score, 0).any()
    assert top_fraction(score, 0.5).tolist() == top_count(score, 3).tolist()
    assert above(score, 0.5).tolist() == [False, False, True, False, False, True]
    assert above(score, 0.5, inclusive=True).sum() == 4  # NaN is never above
    assert rule(score > 1, n=6).sum() == 2
    with pytest.raises(ValueError, match="k must be a fraction"):
        top_fraction(score, 1.5)
    with pytest.raises(ValueError, match="cannot pick 7 of 6"):
        top_count(score, 7)
    with pytest.raises(TypeError, match="boolean mask"):
        rule(score)
    with pytest.raises(ValueError, match="covers 6 pairs"):
        rule(score > 0, n=5)


def test_act_removes_flips_and_relabels_the_selected_pairs() -> None:
    mask = np.array([True, False, True])
    removed = act(["a", "b", "c"], mask, "remove", "why", "m", {"k": 1}, np.array([3., 1, 2]))
    assert removed["action"].tolist() == ["remove", "keep", "remove"]
    assert removed["reason"].tolist() == ["why", "", "why"]
    assert removed["score"].tolist() == [3, 1, 2] and removed["params"][0] == '{"k": 1}'
    flipped = act(["a", "b", "c"], mask, "flip", ["x", "y", "z"], "m", {})
    assert flipped["reason"].tolist() == ["x", "", "z"] and flipped["score"].isna().all()
    soft = act(["a", "b", "c"], mask, "relabel", "soft", "m", {}, p_new=np.array([.2, .3, .4]))
    assert soft["action"].tolist() == ["relabel", "keep", "relabel"]
    assert soft["p_new"].tolist()[::2] == [.2, .4] and np.isnan(soft["p_new"][1])
    bad: list[tuple[str, dict[str, Any]]] = [("keep", {}), ("relabel", {}),
                                             ("flip", {"p_new": np.ones(3)})]
    for action, extra in bad:
        with pytest.raises(ValueError):
            act(["a", "b", "c"], mask, action, "", "m", {}, **extra)


SCORED: dict[str, Callable[..., pd.DataFrame]] = {
    "vote-all": vote_all, "vote-maj": vote_maj, "reward-gap": reward_gap, "judge": judge,
    "confident-learning": confident_learning, "loss": loss, "ifd-gap": ifd_gap,
}


def test_decisions_carry_the_score(view) -> None:
    for name, fn in SCORED.items():
        table = fn(view)
        np.testing.assert_array_equal(table["score"].to_numpy(), SCORES[name](view), name)
