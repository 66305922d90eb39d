from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from preflab.audit.stats import CHANCE_Z, fleiss_kappa, member_diagnostics, summarize
from preflab.audit.table import agreement_bin, audit_table, committee_probability
from preflab.committee.crossfit import crossfit_linear_rewards


def test_bins() -> None:
    v = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8])
    assert list(agreement_bin(v, 8)) == ["none", "low", "low", "mixed", "mixed", "mixed",
                                         "high", "high", "unanimous"]


def test_fleiss_kappa_extremes() -> None:
    assert fleiss_kappa(np.array([[1, 1, 1], [0, 0, 0]] * 5)) == 1.0
    rng = np.random.default_rng(0)
    assert abs(fleiss_kappa(rng.integers(0, 2, size=(4000, 5)))) < 0.05


def test_stacking_trusts_the_informative_member() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    flipped = rng.random(n) < 0.25
    truth = np.where(flipped, -1.0, 1.0)
    good = truth * 2 + rng.normal(0, 1.5, n)
    noise = rng.normal(0, 20, n)  # a large-scale useless member
    margins = np.stack([good, noise], axis=1)
    from sklearn.metrics import roc_auc_score

    stacked, info = committee_probability(margins, "selected")
    naive_mean, _ = committee_probability(margins, "mean", member_p=1 / (1 + np.exp(-margins)))
    assert info["selected_groups"] == [0]  # the noise member stays out
    auc = lambda p: roc_auc_score(flipped, 1 - p)  # noqa: E731
    assert auc(stacked) >= roc_auc_score(flipped, -good) - 0.01
    assert auc(stacked) > auc(naive_mean)


def test_selection_skips_a_redundant_copy_and_chance_members() -> None:
    rng = np.random.default_rng(2)
    n = 1500
    truth = np.where(rng.random(n) < 0.25, -1.0, 1.0)
    good = truth + rng.normal(0, 1.0, n)
    copy = good + rng.normal(0, 0.05, n)
    other = truth + rng.normal(0, 1.5, n)  # independent and informative: joins
    chance = [rng.normal(0, 1, n) for _ in range(3)]
    margins = np.stack([good, copy, other, *chance], axis=1)
    _, info = committee_probability(margins, "selected")
    assert info["merged"] == [[0, 1]]  # the copy counts as one with the original
    assert sorted(info["selected_groups"]) == [0, 1]  # good (with its copy) and other
    w = info["member_weights"]
    assert w[0] == w[1] > 0 and w[2] > 0 and w[3:] == [0, 0, 0]


def test_factor_and_latent_weights_ignore_leaning_and_chance_members() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    n = 2000
    flipped = rng.random(n) < 0.25
    truth = np.where(flipped, -1.0, 1.0)
    good = [truth + rng.normal(0, s, n) for s in (0.8, 1.0, 1.2)]
    lean = 0.5 + rng.normal(0, 1, n)  # positive whatever the pair: "agrees" with labels
    chance = rng.normal(0, 1, n)
    margins = np.stack([*good, lean, chance], axis=1)
    for method in ("factor", "latent"):
        p, info = committee_probability(margins, method)
        w = info["member_weights"]
        assert min(w[:3]) > 5 * max(abs(w[3]), abs(w[4]))
        best = max(roc_auc_score(flipped, -g) for g in good)
        assert roc_auc_score(flipped, 1 - p) >= best


def test_crossfit_never_scores_its_training_pairs() -> None:
    rng = np.random.default_rng(1)
    n, d = 400, 5
    w = rng.normal(size=d)
    fc, fr = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    swap = (fc - fr) @ w < 0
    fc[swap], fr[swap] = fr[swap].copy(), fc[swap].copy()
    r_c, r_r = crossfit_linear_rewards(fc, fr, folds=4)
    assert np.mean(r_c > r_r) > 0.9


def test_summary_fields() -> None:
    margins = np.array([[1.0, 2.0], [-1.0, 1.0], [-2.0, -1.0], [3.0, 0.5]] * 5)
    table, _ = audit_table([str(i) for i in range(20)], ["a", "b"] * 10, ["m1", "m2"], margins,
                        1 / (1 + np.exp(-margins)), margins, np.zeros_like(margins),
                        flipped=[False, True, True, False] * 5)
    summary = summarize(table)
    assert summary["bins"]["overall"]["unanimous"]["count"] == 10
    assert summary["bins"]["overall"]["none"]["count"] == 5
    assert summary["low_or_no_agreement_fraction"] == 0.25
    assert summary["member_agreement_with_labels"] == {"m1": 0.5, "m2": 0.75}
    assert set(summary["flip_detection_auc"]) == {"committee", "m1", "m2"}
    assert isinstance(table, pd.DataFrame) and set(table["bin"]) <= {
        "none", "low", "mixed", "high", "unanimous"}


def test_a_weighted_member_within_chance_is_warned_about() -> None:
    rng = np.random.default_rng(3)
    n = 400
    truth = np.where(rng.random(n) < 0.2, -1.0, 1.0)
    margins = np.stack([truth * 2 + rng.normal(0, 1.5, n), rng.normal(0, 1, n)], axis=1)
    table, _ = audit_table([str(i) for i in range(n)], ["s"] * n, ["good", "coin"], margins,
                           1 / (1 + np.exp(-margins)), margins, np.zeros_like(margins))
    rows, warnings = member_diagnostics(table, {"good": 0.9, "coin": 0.1})
    coin = rows["coin"]
    agree = int((margins[:, 1] > 0).sum())
    assert coin["sign_test_z"] == round((2 * agree - n) / np.sqrt(n), 2)
    assert abs(coin["sign_test_z"]) < CHANCE_Z < rows["good"]["sign_test_z"]
    assert warnings == [
        f"coin: agrees with the labels on {agree / n:.1%} of {n} pairs, within chance "
        f"(sign test z = {coin['sign_test_z']:+.2f}, |z| < 2); the labels give no evidence "
        "that it is accurate, so its weight (0.100) may follow their noise"]
    # a member the combination leaves out is not warned about
    assert member_diagnostics(table, {"good": 1.0, "coin": 0.0})[1] == []


def test_fleiss_kappa_counts_the_pairs_each_voter_voted_on() -> None:
    """Review finding 6: kappa took only the pairs where every voter voted, so one voter
    without a score made it NaN. Now each pair counts its own voters (pairs with two or
    more votes), and a voter that never voted is left out and named in the summary."""
    rng = np.random.default_rng(0)
    votes = rng.integers(0, 2, size=(300, 3)).astype(float)
    votes[:, 1] = votes[:, 0]  # two voters that agree throughout, one at random
    base = fleiss_kappa(votes)
    silent = np.hstack([votes, np.full((300, 1), np.nan)])
    assert fleiss_kappa(silent) == pytest.approx(base)
    votes[:100, 2] = np.nan  # a voter missing on a third of the pairs
    counts = np.stack([np.nansum(votes, axis=1), (~np.isnan(votes)).sum(axis=1)
                       - np.nansum(votes, axis=1)], axis=1)
    n_i = counts.sum(axis=1)
    p_i = (counts * (counts - 1)).sum(axis=1) / (n_i * (n_i - 1))
    p_j = counts.sum(axis=0) / n_i.sum()
    expected = (p_i.mean() - (p_j**2).sum()) / (1 - (p_j**2).sum())
    assert fleiss_kappa(votes) == pytest.approx(expected)
    assert fleiss_kappa(np.array([[1.0, np.nan], [np.nan, 0.0]])) != fleiss_kappa(
        np.array([[1.0, np.nan], [np.nan, 0.0]]))  # no pair with two votes: NaN

    n = 60
    margins = np.stack([rng.normal(0.8, 1, n), rng.normal(0.8, 1, n), np.full(n, np.nan)],
                       axis=1)
    table, _ = audit_table([str(i) for i in range(n)], ["s"] * n, ["a", "b", "mute"], margins,
                           1 / (1 + np.exp(-margins)), margins, np.zeros_like(margins))
    summary = summarize(table)
    assert np.isfinite(summary["fleiss_kappa"])
    assert summary["fleiss_kappa_left_out"] == ["mute"]
    from preflab.audit.report import kappa_line

    assert kappa_line(summary).endswith(" mute cast no vote and is left out.")
    assert "not defined" in kappa_line({"fleiss_kappa": float("nan")})
