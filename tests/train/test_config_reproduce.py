"""A trainer's OUT/config.toml reruns it: `--config OUT/config.toml` gives the same model."""

from __future__ import annotations

import json

from safetensors.torch import load_file
from typer.testing import CliRunner

from preflab.cli import app
from preflab.data.write import write_pairs
from preflab.settings import config_from_file
from preflab.train.config import RewardConfig, RLConfig
from tests.train.helpers import short_pairs

runner = CliRunner()


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_train_rm_config_toml_reproduces_the_model(tmp_path) -> None:
    write_pairs(short_pairs(8), tmp_path / "p.jsonl")
    run("train-rm", tmp_path / "p.jsonl", "--base", "tiny-llama", "--epochs", "1",
        "--max-length", "256", "--lr", "1e-3", "--threads", "1", "--out", tmp_path / "a")
    config = config_from_file(RewardConfig, tmp_path / "a" / "config.toml")
    assert config == RewardConfig(base="tiny-llama", epochs=1, max_length=256,
                                  learning_rate=1e-3, threads=1)
    run("train-rm", tmp_path / "p.jsonl", "--config", tmp_path / "a" / "config.toml",
        "--out", tmp_path / "b")
    assert (tmp_path / "b" / "config.toml").read_text() == \
        (tmp_path / "a" / "config.toml").read_text()
    a = load_file(tmp_path / "a" / "model.safetensors")
    b = load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_rl_reads_its_config_and_flags_override_it(tmp_path) -> None:
    write_pairs(short_pairs(4), tmp_path / "p.jsonl")
    (tmp_path / "rl.toml").write_text('policy = "tiny-llama"\nreward = "tiny-bert"\n'
                                      "steps = 5\nbatch_size = 2\nmax_new_tokens = 4\n"
                                      "threads = 1\n")
    result = run("rl", tmp_path / "p.jsonl", "--config", tmp_path / "rl.toml", "--steps", "1",
                 "--out", tmp_path / "a", "--json")
    s = json.loads(result.stdout.strip().splitlines()[-1])
    assert s["steps"] == 1 and s["config"]["max_new_tokens"] == 4
    assert config_from_file(RLConfig, tmp_path / "a" / "config.toml") == RLConfig(
        policy="tiny-llama", reward="tiny-bert", steps=1, batch_size=2, max_new_tokens=4,
        threads=1)
