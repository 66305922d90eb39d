"""The committee taught by people (preflab.audit.taught): weights fitted on people's
verdicts, cross-fitted so no reviewed pair's own verdict scores it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from preflab.audit.table import Combination, audit_table
from preflab.audit.taught import (
    label_weight,
    majority_error,
    people_probability,
    people_targets,
    reviewer_accuracy,
)

N = 500


def synthetic(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Margins of two members on N pairs whose labels are 40% flipped: `accurate` follows
    the truth, `follower` follows the (noisy) labels as a member trained on them can, and
    `chance` is noise. Returns (margins [N, 3], flipped mask, truth sign per pair as
    labelled: +1 where the label is right)."""
    rng = np.random.default_rng(seed)
    flipped = np.zeros(N, dtype=bool)
    flipped[rng.choice(N, int(0.4 * N), replace=False)] = True
    right = np.where(flipped, -1.0, 1.0)
    accurate = right * 1.5 + rng.normal(0, 1, N)
    follower = 0.9 + rng.normal(0, 1, N)  # agrees with the labels, not with the truth
    chance = rng.normal(0, 1, N)
    return np.stack([accurate, follower, chance], axis=1), flipped, right


def simulated_review(right: np.ndarray, n: int = 50, q: float = 0.85, seed: int = 1
                     ) -> tuple[np.ndarray, np.ndarray]:
    """People's targets on `n` random pairs: three reviewers right with probability q."""
    rng = np.random.default_rng([seed, 99])
    chosen = rng.choice(len(right), n, replace=False)
    majority_right = (rng.random((n, 3)) < q).sum(axis=1) >= 2
    targets = np.full(len(right), np.nan)
    targets[chosen] = np.where(majority_right, right[chosen], -right[chosen])
    return targets, chosen


def table_of(margins: np.ndarray, people: np.ndarray | None,
             groups: np.ndarray | None = None, resamples: int = 200
             ) -> tuple[pd.DataFrame, dict]:
    n, m = margins.shape
    names = ["accurate", "follower", "chance"][:m]
    p = 1 / (1 + np.exp(-margins))
    return audit_table([f"p{i}" for i in range(n)], [None] * n, names, margins, p,
                       margins, np.zeros_like(margins),
                       combination=Combination("stacked", 0, groups, people,
                                               resamples=resamples))


def test_review_fitted_weights_favour_the_accurate_member_where_labels_favour_another():
    margins, flipped, right = synthetic()
    targets, _ = simulated_review(right)
    _, by_labels = table_of(margins, None)
    table, by_people = table_of(margins, targets)
    w = by_people["weights"]
    assert by_people["fitted_on"] == "people" and by_people["n_decided"] == 50
    assert w["accurate"] > 0.8 and w["accurate"] > 4 * max(w["follower"], w["chance"])
    assert by_labels["weights"]["follower"] > by_labels["weights"]["accurate"]  # the noise wins
    lo, hi = by_people["weight_intervals"]["accurate"]
    assert 0 < lo <= w["accurate"] <= hi <= 1
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(flipped, 1 - table["p_chosen"]) > 0.85
    assert list(by_people["voters"]) == ["accurate", "follower", "chance"]
    counted = [v for v, info in by_people["voters"].items() if info["counted"]]
    assert "accurate" in counted
    assert [c for c in table.columns if c.startswith("voter.")] == [f"voter.{v}"
                                                                     for v in counted]


def test_a_reviewed_pairs_own_verdict_never_enters_the_weights_that_score_it():
    margins, _, right = synthetic(seed=3)
    targets, chosen = simulated_review(right, seed=4)
    groups = np.arange(N) // 2  # pairs share folds in twos, as copies would
    base, _ = table_of(margins, targets, groups, resamples=0)
    others = np.setdiff1d(np.arange(N), np.concatenate([chosen, chosen ^ 1]))
    for i in chosen[:6]:
        changed = targets.copy()
        changed[i] = -changed[i]
        again, _ = table_of(margins, changed, groups, resamples=0)
        p, q = base["p_chosen"].to_numpy(), again["p_chosen"].to_numpy()
        assert q[i] == p[i] and q[i ^ 1] == p[i ^ 1]  # nor its group mate's (copies)
        assert (q[others] != p[others]).any()  # the verdict does count for the others


def test_too_few_verdicts_leave_the_label_fitted_weights_and_say_so():
    margins, _, right = synthetic()
    targets, _ = simulated_review(right, n=10)
    table, info = table_of(margins, targets)
    plain, labelled = table_of(margins, None)
    assert info["fitted_on"] == "labels" and "10 reviewed pairs" in info["people_not_used"]
    assert np.array_equal(table["p_chosen"], plain["p_chosen"])
    assert info["weights"] == labelled["weights"]


def test_targets_come_from_a_consensus_that_names_the_better_reply():
    decided = pd.DataFrame({"pair_id": ["b", "c", "d"],
                            "consensus": ["rejected", "both-bad", "chosen"]})
    assert np.array_equal(people_targets(["a", "b", "c", "d"], decided),
                          [np.nan, -1.0, np.nan, 1.0], equal_nan=True)
    with pytest.raises(ValueError, match="the review export x: 1 reviewed pairs are not in "
                                         "the data \\(first: d\\)"):
        people_targets(["a", "b", "c"], decided, "the review export x")


def test_only_stacked_combinations_are_fitted_on_people():
    margins, _, right = synthetic()
    targets, _ = simulated_review(right)
    with pytest.raises(ValueError, match="combine must be one of stacked, stacked-free"):
        people_probability(margins, targets, "latent")


def test_labels_count_by_how_much_they_and_the_reviewers_know():
    """Reviewers right with chance q agree pairwise with chance q^2 + (1-q)^2; a label
    then weighs (1 - 2e)^2 / (1 - 2r)^2 against a verdict, r the majority's error and e
    the flip rate people's reversals imply once r is taken out."""
    rng = np.random.default_rng(0)
    n = 4000
    for q, e in ((0.7, 0.1), (0.85, 0.4)):
        right = rng.random((n, 3)) < q
        tallies = np.c_[np.maximum(right.sum(1), 3 - right.sum(1)), np.full(n, 3)].astype(float)
        r = (1 - q) ** 3 + 3 * q * (1 - q) ** 2
        assert reviewer_accuracy(tallies) == pytest.approx(q, abs=0.02)
        assert majority_error(q, tallies[:, 1]) == pytest.approx(r)
        flipped = rng.random(n) < e
        says_right = np.where(right.sum(1) >= 2, ~flipped, flipped)
        weight = label_weight(np.where(says_right, 1.0, -1.0), tallies)
        assert weight == pytest.approx((1 - 2 * e) ** 2 / (1 - 2 * r) ** 2, rel=0.25)
    assert label_weight(np.array([1.0, -1.0, np.nan])) == 0.0  # reversals at 1/2: no word
    assert label_weight(np.full(3, np.nan)) == 0.0
