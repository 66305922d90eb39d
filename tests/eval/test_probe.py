import numpy as np
import pytest

from preflab.data.write import write_pairs
from preflab.eval.config import ProbeConfig
from preflab.eval.metrics import classification_metrics
from preflab.eval.probe import fit_probe, probe
from tests.train.helpers import short_pairs


def test_classification_metrics_by_hand():
    y = np.array([1, 1, 0, 0])
    p = np.array([0.9, 0.4, 0.6, 0.1])
    m = classification_metrics(y, p)
    assert m["accuracy"] == 0.5 and m["precision"] == 0.5 and m["recall"] == 0.5
    assert m["f1"] == 0.5 and m["auc"] == 0.75
    assert m["cross_entropy"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.4, 0.9])))
    with pytest.raises(ValueError, match="both classes"):
        classification_metrics(np.ones(3), np.ones(3) / 2)


def test_fit_probe_picks_the_separating_layer():
    rng = np.random.default_rng(0)

    def features(n):
        x = rng.standard_normal((2 * n, 2, 6))
        y = np.tile([1, 0], n)
        x[:, 1, 0] += 3 * (2 * y - 1)  # layer 7 separates, layer 3 is noise
        return x, y

    (xa, ya), (xb, yb) = features(40), features(30)
    got = fit_probe(xa, ya, xb, yb, [3, 7])
    assert got["selected_layer"] == 7
    assert got["heldout"]["accuracy"] > 0.95 and got["heldout"]["pairwise_accuracy"] > 0.95
    assert got["layers"][3]["auc"] < 0.8


def test_probe_end_to_end_on_a_tiny_model(tmp_path):
    write_pairs(short_pairs(12), tmp_path / "a.jsonl")
    write_pairs(short_pairs(8, seed=1), tmp_path / "b.jsonl")
    s = probe(tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "p",
              ProbeConfig(model="tiny-llama"))
    assert s["pairs"]["train"]["pairs"] == 12 and s["pairs"]["heldout"]["pairs"] == 8
    assert set(s["layers"]) == {1, 2} and s["selected_layer"] in (1, 2)
    assert (tmp_path / "p" / "summary.json").exists()
