from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from preflab.audit.combine import (
    DEFAULT,
    METHODS,
    committee_probability,
    latent_posterior,
    merge_collinear,
)


def committee(n: int = 2000, rate: float = 0.25, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Margins of four members with known truth: member k's margin is mu_k (label
    right) or -mu_k (label flipped) plus unit noise. Returns margins, their own
    probabilities and the flip mask."""
    rng = np.random.default_rng(seed)
    flipped = rng.random(n) < rate
    s = np.where(flipped, -1.0, 1.0)
    mu = np.array([1.5, 0.8, 0.4, 0.15])
    margins = s[:, None] * mu + rng.normal(size=(n, len(mu)))
    return margins, 1 / (1 + np.exp(-margins)), flipped


def _p(margins: np.ndarray, member_p: np.ndarray, method: str) -> np.ndarray:
    return committee_probability(margins, method, member_p=member_p)[0]


@pytest.mark.parametrize("method", METHODS)
def test_copies_negation_and_rescaling_change_nothing(method: str) -> None:
    margins, member_p, _ = committee()
    base = _p(margins, member_p, method)
    copies = np.hstack([margins, margins[:, [0, 0, 0]]])
    copies_p = np.hstack([member_p, member_p[:, [0, 0, 0]]])
    negated = np.hstack([margins, -margins[:, [1]]])
    negated_p = np.hstack([member_p, 1 - member_p[:, [1]]])
    scaled = margins.copy()
    scaled[:, 2] *= 100
    for m, p in ((copies, copies_p), (negated, negated_p), (scaled, member_p)):
        assert np.abs(_p(m, p, method) - base).max() <= 0.02


@pytest.mark.parametrize("method", [DEFAULT, "latent"])
def test_pure_noise_members_cost_at_most_a_hundredth_of_auc(method: str) -> None:
    margins, member_p, flipped = committee()
    noise = np.random.default_rng(1).normal(size=(len(margins), 2)) * [1.0, 30.0]
    auc = roc_auc_score(flipped, 1 - _p(margins, member_p, method))
    noisy = np.hstack([margins, noise])
    noisy_p = np.hstack([member_p, 1 / (1 + np.exp(-noise))])
    auc_noisy = roc_auc_score(flipped, 1 - _p(noisy, noisy_p, method))
    assert auc - auc_noisy <= 0.01
    assert auc >= roc_auc_score(flipped, -margins[:, 0]) - 0.01  # as good as the best member


def test_latent_weights_follow_accuracy_and_find_the_flip_rate() -> None:
    margins, _, flipped = committee(rate=0.3)
    x, _, _ = merge_collinear(margins)
    p, info = latent_posterior(x)
    w = info["group_weights"]
    assert w[0] > w[1] > w[2] > w[3] > -0.1
    assert info["labels_right"] == pytest.approx(0.7, abs=0.03)
    assert info["group_accuracy"][0] == pytest.approx(0.5 + 0.5 * 0.866, abs=0.03)  # Phi(1.5)
    assert ((p > 0.5) != flipped).mean() > 0.85


def test_missing_margins_are_no_opinion() -> None:
    margins, member_p, _ = committee(n=400)
    margins[:50, 0] = np.nan
    member_p[:50, 0] = np.nan
    for method in METHODS:
        p = _p(margins, member_p, method)
        assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()


def test_merged_members_are_reported() -> None:
    margins, member_p, _ = committee(n=400)
    both = np.hstack([margins, -3 * margins[:, [0]]])
    _, info = committee_probability(both, member_p=np.hstack([member_p, member_p[:, [0]]]))
    assert info["merged"] == [[0, 4]]
    w = np.array(info["member_weights"])
    assert np.abs(w).sum() == pytest.approx(1.0)
    assert w[0] == pytest.approx(-w[4]) and w[0] > 0  # one member's weight, shared


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="combine must be one of"):
        committee_probability(np.zeros((10, 2)), "vote")


def test_stacked_turns_a_reversed_member_round() -> None:
    """A member declared the wrong way round (its margins negated) disagrees with the
    labels far beyond chance, so it is turned round and counts as before."""
    margins, member_p, _ = committee()
    reversed_ = margins.copy()
    reversed_[:, 0] *= -1
    base = _p(margins, member_p, "stacked")
    assert np.abs(_p(reversed_, member_p, "stacked") - base).max() <= 0.02


def test_stacked_never_weighs_a_member_against_its_own_opinion() -> None:
    """Two members that each agree with the labels, where the second only adds what
    the first says plus noise that goes against the labels (a suppressor): a free fit
    gives the second a negative weight, `stacked` gives it 0 and keeps the first."""
    rng = np.random.default_rng(0)
    first = rng.normal(size=4000)
    second = first + rng.normal(size=4000)
    a = np.stack([first, second], axis=1)
    right = rng.random(4000) < 1 / (1 + np.exp(-(2.0 * first - 0.5 * second)))
    margins = np.where(right[:, None], a, -a)
    member_p = 1 / (1 + np.exp(-margins))
    assert ((margins > 0).mean(axis=0) > 0.6).all()  # each member agrees on its own
    bounded = committee_probability(margins, "stacked", member_p=member_p)[1]
    free = committee_probability(margins, "stacked-free", member_p=member_p)[1]
    assert bounded["member_weights"][1] == pytest.approx(0, abs=1e-6)
    assert bounded["member_weights"][0] == pytest.approx(1)
    assert free["member_weights"][1] < -0.1


def test_selected_never_gives_its_first_member_a_negative_weight() -> None:
    """Review finding 1: forward selection checked the sign of the weights only from the
    second member on, so a member that disagrees with the labels (within chance, so it
    is not turned round) could be chosen first with a weight below 0."""
    rng = np.random.default_rng(8)
    n = 400
    against = rng.normal(-0.1, 1, n)  # leans against the labels (chosen minus rejected)
    margins = np.stack([against, rng.normal(0, 1, n)], axis=1)
    from preflab.audit.combine import sign_test_z

    assert -3 < sign_test_z(margins)[0] < -2  # against them, yet not turned round (z > -3)
    _, info = committee_probability(margins, "selected")
    assert min(info["member_weights"]) >= 0
    stacked = committee_probability(margins, "stacked")[1]["member_weights"]
    assert min(stacked) >= 0


def test_the_probability_uses_the_voters_it_is_given() -> None:
    """Review finding 11: the orientation is computed once (committee_voters) and passed
    in; the combination does not repeat the merge and the sign test."""
    from preflab.audit.combine import committee_voters

    margins, _, _ = committee(n=400)
    margins[:, 1] *= -1
    voters = committee_voters(margins)
    assert list(voters.member_orientation) == [1, -1, 1, 1]
    p, info = committee_probability(margins, voters=voters)
    assert np.allclose(p, committee_probability(margins)[0])
    assert "groups" not in info and "member_orientation" not in info
    assert info["member_weights"][1] <= 0  # declared direction: it counts turned round
