"""The reward over-optimisation experiment on tiny models and real demo pairs."""

import csv
import itertools
import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from preflab.cli.app import app
from preflab.data.write import write_pairs
from preflab.experiment.overoptimization.run import overoptimization
from preflab.experiment.overoptimization.stats import (
    best_of_n_kl,
    best_of_n_picks,
    bootstrap_points,
)
from preflab.train.config import RewardConfig, RLConfig
from tests.experiment.helpers import rerun_from_config
from tests.train.helpers import short_pairs


def test_best_of_n_kl_is_the_analytic_bound() -> None:
    assert best_of_n_kl(1) == 0.0
    assert best_of_n_kl(2) == pytest.approx(math.log(2) - 0.5)
    assert best_of_n_kl(16) == pytest.approx(math.log(16) - 15 / 16)
    kls = [best_of_n_kl(n) for n in (1, 2, 4, 8, 16, 32, 64)]
    assert all(b > a for a, b in itertools.pairwise(kls))
    with pytest.raises(ValueError, match="n >= 1"):
        best_of_n_kl(0)


def test_best_of_n_picks_are_nested_prefixes() -> None:
    by = np.array([[0.1, 0.9, 0.5, 2.0], [3.0, 0.0, 1.0, -1.0]])
    picks = best_of_n_picks(by, [1, 2, 4])
    assert picks[1].tolist() == [0, 0] and picks[2].tolist() == [1, 0]
    assert picks[4].tolist() == [3, 0]
    with pytest.raises(ValueError, match="only 4 samples"):
        best_of_n_picks(by, [8])


def test_bootstrap_points_intervals_and_paired_gap() -> None:
    rng = np.random.default_rng(1)
    train = [rng.normal(0, 1, 200), rng.normal(1, 1, 200)]
    test = [train[0] + 0.0, train[1] - 0.5]  # the second point: a constant gap of 0.5
    rows = bootstrap_points(train, test, seed=0, n_boot=500)
    for row, x in zip(rows, train, strict=True):
        lo, hi = row["train_ci95"]
        assert lo < row["train"] < hi and row["train"] == pytest.approx(x.mean(), abs=1e-4)
        # a normal mean's interval: about +-1.96 sd / sqrt(n)
        assert hi - lo == pytest.approx(2 * 1.96 / math.sqrt(200), rel=0.25)
    assert rows[0]["gap"] == 0 and rows[0]["gap_ci95"] == [0, 0]
    assert rows[1]["gap"] == pytest.approx(0.5) and rows[1]["gap_ci95"] == pytest.approx(
        [0.5, 0.5])  # paired resamples: a constant gap has no spread
    assert bootstrap_points(train, test, seed=0, n_boot=500) == rows  # seeded
    with pytest.raises(ValueError, match="same prompts"):
        bootstrap_points([train[0]], [train[0][:10]])


def test_overoptimization_runs_and_resumes(tmp_path) -> None:
    write_pairs(short_pairs(40), tmp_path / "pairs.jsonl")
    kwargs = dict(policy="tiny-llama", n=[1, 2, 4], prompts=5, max_new_tokens=6,
                  rm=RewardConfig(base="tiny-bert", epochs=1.0, batch_size=8,
                                  save_steps=1000, threads=1),
                  rl_steps=2, rl_checkpoints=2, rl=RLConfig(batch_size=4),
                  eval_fraction=0.25, n_boot=200, threads=1)
    s = overoptimization(tmp_path / "pairs.jsonl", tmp_path / "x", **kwargs)
    assert s["train_pm_pairs"] + s["test_pm_pairs"] == 30 and s["heldout_pairs"] == 10
    bon = [r for r in s["curve"] if r["method"] == "best-of-n"]
    assert [r["n"] for r in bon] == [1, 2, 4]
    assert [r["kl"] for r in bon] == [round(best_of_n_kl(k), 4) for k in (1, 2, 4)]
    # picked by the train PM: its score never falls as N grows (nested candidates)
    assert bon[0]["train"] <= bon[1]["train"] <= bon[2]["train"]
    for r in s["curve"]:
        assert r["gap"] == pytest.approx(r["train"] - r["test"], abs=2e-4)
        assert r["train_ci95"][0] <= r["train"] <= r["train_ci95"][1]
    rl = [r for r in s["curve"] if r["method"] == "rl"]
    assert [r["step"] for r in rl] == [0, 1, 2]
    assert rl[0]["kl"] == pytest.approx(0, abs=1e-4)  # the LoRA starts as the identity
    samples = [json.loads(x) for x in (tmp_path / "x" / "bon" / "samples.jsonl")
               .read_text().splitlines()]
    assert len(samples) == 5 and all(len(r["replies"]) == 4 for r in samples)
    with open(tmp_path / "x" / "curve.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(s["curve"]) and float(rows[2]["kl"]) == bon[2]["kl"]
    assert (tmp_path / "x" / "curve.png").stat().st_size > 1000
    report = (tmp_path / "x" / "report.md").read_text()
    assert report.startswith("# Reward over-optimisation") and "| best-of-n | N=4 |" in report
    assert set(s["stage_seconds"]) >= {"pm-train", "pm-test", "bon-sample", "bon-score", "rl"}
    again = overoptimization(tmp_path / "pairs.jsonl", tmp_path / "x", **kwargs)
    assert again["stage_seconds"] == {} and again["curve"] == s["curve"]
    # the command with the run's config.toml is the same experiment: every stage is done
    rerun = rerun_from_config("overoptimization", tmp_path / "pairs.jsonl", tmp_path / "x")
    assert rerun["stage_seconds"] == {} and rerun["curve"] == s["curve"]
    with pytest.raises(ValueError, match="other settings"):
        overoptimization(tmp_path / "pairs.jsonl", tmp_path / "x", **{**kwargs, "seed": 1})


def test_cli_refuses_a_bad_n_before_any_work(tmp_path) -> None:
    write_pairs(short_pairs(4), tmp_path / "pairs.jsonl")
    result = CliRunner().invoke(app, ["experiment", "overoptimization",
                                      str(tmp_path / "pairs.jsonl"), "--n", "1,0,4",
                                      "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "every N must be at least 1" in result.output
    assert not (tmp_path / "x").exists()
