"""Every command the other tests drive only from Python, run once through the CLI on
tiny models and real demo pairs: what a user types reaches the library."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from preflab.cli import app
from preflab.data.demo import demo
from preflab.data.write import write_pairs
from tests.train.helpers import short_pairs

runner = CliRunner()
FAST = ["--max-length", "128", "--batch-size", "8", "--threads", "1"]


def run(*args: object) -> dict:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_sft_then_dpo_then_best_of_n_and_winrate(tmp_path: Path) -> None:
    write_pairs(short_pairs(16), tmp_path / "p.jsonl")
    sft = run("sft", tmp_path / "p.jsonl", "--base", "tiny-llama", "--out", tmp_path / "sft",
              "--lora", "--epochs", "1", *FAST, "--json")
    assert sft["stage"] == "sft" and (tmp_path / "sft" / "config.toml").is_file()
    dpo = run("dpo", tmp_path / "p.jsonl", "--policy", tmp_path / "sft", "--out",
              tmp_path / "dpo", "--lora", "--epochs", "1", *FAST, "--json")
    assert dpo["stage"] == "dpo" and dpo["steps"] == 2
    bon = run("bon", tmp_path / "p.jsonl", "--policy", tmp_path / "dpo", "--reward",
              "tiny-bert", "--n", "3", "--max-new-tokens", "6", "--limit", "4", "--out",
              tmp_path / "bon", "--threads", "1", "--json")
    assert bon["n_prompts"] == 4
    rows = [json.loads(x) for x in (tmp_path / "bon" / "samples.jsonl").open()]
    assert len(rows) == 4  # one row per prompt, its 3 samples inside
    win = run("winrate", tmp_path / "dpo", tmp_path / "sft", "--prompts", tmp_path / "p.jsonl",
              "--judge", "tiny-llama", "--limit", "4", "--max-new-tokens", "6",
              "--out", tmp_path / "win", "--threads", "1", "--json")
    assert win["wins"] + win["ties"] + win["losses"] == win["n"] == 4


def test_train_rm_then_eval_rm(tmp_path: Path) -> None:
    write_pairs(short_pairs(24), tmp_path / "p.jsonl")
    write_pairs(short_pairs(12, seed=1), tmp_path / "q.jsonl")
    runner.invoke(app, ["train-rm", str(tmp_path / "p.jsonl"), "--base", "tiny-bert",
                        "--out", str(tmp_path / "rm"), "--epochs", "1"])
    s = run("eval-rm", tmp_path / "rm", tmp_path / "q.jsonl", "--out", tmp_path / "e",
            "--json")
    assert s["n_pairs"] == 12 and 0 <= s["accuracy"] <= 1
    assert (tmp_path / "e" / "report.html").is_file()


def test_experiments_run_through_the_cli(tmp_path: Path) -> None:
    demo(tmp_path / "pairs.jsonl", n=60, flip_rate=0.25, seed=0, max_turns=1)
    s = run("experiment", "clean-vs-original", tmp_path / "pairs.jsonl", "--out",
            tmp_path / "cvo", "--committee", "tiny", "--policy", "tiny-llama", "--lora",
            "--max-length", "128", "--batch-size", "8", "--judge", "tiny-llama",
            "--reward", "tiny-bert", "--eval-fraction", "0.2", "--eval-limit", "4",
            "--max-new-tokens", "6", "--threads", "1", "--json")
    assert [m["model"] for m in s["models"]] == ["original", "cleaned"]
    write_pairs(short_pairs(24), tmp_path / "short.jsonl")
    s = run("experiment", "rahf", tmp_path / "short.jsonl", "--reward", "tiny-bert",
            "--out", tmp_path / "rahf", "--policy", "tiny-llama", "--max-length", "256",
            "--methods", "sft,dpo", "--judge", "tiny-llama", "--eval-fraction", "0.25",
            "--eval-limit", "3", "--perplexity-pairs", "3", "--max-new-tokens", "6",
            "--threads", "1", "--json")
    assert sorted(r["method"] for r in s["rows"]) == ["dpo", "sft"]


def test_models_prepare_through_the_cli(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PREFLAB_CACHE", str(tmp_path / "cache"))
    s = run("models", "prepare", "tiny-llama")
    assert s["preset"] == "tiny-llama" and Path(s["path"]).exists()
    assert s["load_seconds"] >= 0
