from __future__ import annotations

import numpy as np

from preflab.committee.crossfit import crossfit_linear_rewards, fold_ids
from preflab.data.groups import group_ids, pair_groups, prompt_key, repeat_counts
from preflab.data.pair import PreferencePair


def test_folds_keep_groups_together_and_match_the_plain_assignment_without_groups() -> None:
    groups = np.array([0, 1, 1, 2, 3, 3, 3, 4, 5, 6, 6, 7])
    assign = fold_ids(len(groups), 3, seed=0, groups=groups)
    for g in np.unique(groups):
        assert len(set(assign[groups == g])) == 1
    assert set(assign) == {0, 1, 2}
    plain = np.random.default_rng(4).permutation(np.arange(10) % 5)
    assert (fold_ids(10, 5, 4) == plain).all()


def test_pairs_group_by_id_and_by_normalised_prompt() -> None:
    def pair(prompt: str, chosen: str, rejected: str) -> PreferencePair:
        return PreferencePair([{"role": "user", "content": prompt}], chosen, rejected)

    pairs = [pair("Hi  there", "a", "b"), pair("hi there", "c", "d"), pair("other", "e", "f"),
             pair("Hi  there", "a", "b"), pair("third", "x", "y"), pair("fourth", "F", "z")]
    groups = pair_groups(pairs)
    assert list(groups) == [0, 0, 1, 0, 2, 1]  # the last shares reply "f" with the third
    assert prompt_key([{"role": "user", "content": "A\n b"}]) == prompt_key([("user", "a b")])
    assert repeat_counts(groups, [p.id for p in pairs]) == {
        "duplicate_pairs": 1, "pairs_in_shared_groups": 5, "shared_groups": 2}
    assert list(group_ids(["a", "b", "a"], ["p", "q", "r"])) == [0, 1, 0]
    assert list(group_ids(["a", "b", "c"], ["p", "q", "r"], [("x",), ("y",), ("x",)])) == [
        0, 1, 0]


def test_a_reply_most_pairs_hold_links_nothing() -> None:
    """A generic reply ("Hi!") held by more than max(2, 1% of pairs) pairs would chain
    the data into one group; it links nothing, while a reply two pairs share does."""
    n = 10
    ids, prompts = [str(i) for i in range(n)], [f"p{i}" for i in range(n)]
    replies = [("hi", f"r{i}") for i in range(n)]
    replies[3] = ("hi", "r1")  # pair 3 reuses pair 1's rejected reply
    assert list(group_ids(ids, prompts, replies)) == [0, 1, 2, 1, 3, 4, 5, 6, 7, 8]


def _agreement_on_copies(groups: np.ndarray | None) -> tuple[float, float]:
    """A crossfit model's agreement with random labels on copied vs unique pairs.

    Features are random and the labels carry no signal, so an honest out-of-fold
    scorer agrees with ~50% of labels everywhere; a scorer trained on a copy of the
    pair it scores memorises it (more features than training pairs per fold).
    """
    rng = np.random.default_rng(0)
    n_unique, dim = 600, 900
    feats = rng.normal(size=(n_unique, dim))
    copies = np.repeat(np.arange(150), 3)  # 150 pairs appear 3 more times each
    rows = np.concatenate([np.arange(n_unique), copies])
    fc, fr = feats[rows], -feats[rows]
    r_c, r_r = crossfit_linear_rewards(fc, fr, folds=5, seed=0, groups=groups, C=10.0)
    agree = r_c > r_r
    copied = np.isin(rows, copies)
    return float(agree[copied].mean()), float(agree[~copied].mean())


def test_crossfit_cannot_leak_through_copies() -> None:
    rng = np.random.default_rng(0)
    rows = np.concatenate([np.arange(600), np.repeat(np.arange(150), 3)])
    leaky_copied, leaky_unique = _agreement_on_copies(None)
    assert leaky_copied > 0.9 > 0.6 > leaky_unique  # ungrouped folds leak (the test can fail)
    groups = group_ids([str(r) for r in rows], [str(rng.random()) for _ in rows])
    copied, unique = _agreement_on_copies(groups)
    # within sampling error: 600 pair groups of which 150 copied, each ~ Binomial(., 0.5)
    assert abs(copied - unique) < 3 * np.sqrt(0.25 / 150 + 0.25 / 450)
    assert abs(copied - 0.5) < 0.15 and abs(unique - 0.5) < 0.1
