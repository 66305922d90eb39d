import numpy as np
import pytest
from scipy.special import logit

from preflab.eval.metrics import (
    agreement,
    bernoulli_js,
    expected_calibration_error,
    pairwise_accuracy,
    reliability_bins,
    reward_metrics,
)


def test_accuracy_counts_ties_half():
    assert pairwise_accuracy(np.array([1.0, -1.0, 0.0, 2.0])) == pytest.approx(0.625)


def test_calibrated_predictions_have_small_ece_and_overconfident_large():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1.0, 200_000)
    right = rng.uniform(size=conf.size) < conf  # right as often as it is sure
    p = np.where(right, conf, 1 - conf)  # P(chosen better) given the human label
    assert expected_calibration_error(p) < 0.01
    # always 95% sure but right 70% of the time: ECE = 0.25
    right = rng.uniform(size=conf.size) < 0.7
    p = np.where(right, 0.95, 0.05)
    assert expected_calibration_error(p) == pytest.approx(0.25, abs=0.01)


def test_reliability_bins_cover_the_top_label_range():
    p = np.array([0.5, 0.55, 0.45, 0.99, 0.02])
    bins = reliability_bins(p, bins=5)
    assert [b["count"] for b in bins] == [3, 0, 0, 0, 2]
    assert bins[0]["accuracy"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert bins[4]["confidence"] == pytest.approx((0.99 + 0.98) / 2)
    assert bins[1]["accuracy"] is None


def test_agreement_of_two_models():
    a = np.array([1.0, -2.0, 0.5, 3.0])
    same = agreement(a, a)
    assert same["agreement"] == 1.0 and same["spearman_margin"] == 1.0
    assert same["js_divergence"] == 0.0
    opposite = agreement(a, -a)
    assert opposite["agreement"] == 0.0 and opposite["spearman_margin"] == -1.0
    assert opposite["js_divergence"] > 0.1
    assert bernoulli_js(np.array([0.0]), np.array([1.0]))[0] == pytest.approx(np.log(2), 1e-6)


def test_reward_metrics_log_loss_of_a_coin_is_log_2():
    m = reward_metrics(np.zeros(10))
    assert m["accuracy"] == 0.5 and m["log_loss"] == pytest.approx(np.log(2), abs=1e-4)
    m = reward_metrics(logit(np.full(4, 0.8)))
    assert m["accuracy"] == 1.0 and m["ece"] == pytest.approx(0.2, abs=1e-4)
