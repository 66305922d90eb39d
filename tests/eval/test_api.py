"""``pl.evaluate_reward_model``, ``pl.evaluate_policy`` and ``pl.win_rate`` on what a
notebook holds: results in memory (summary, table, config), saved only where the
command would write; each command's ``OUT/config.toml`` reruns it to the same outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from datasets import Dataset
from typer.testing import CliRunner

from preflab.api.evaluate import (
    PolicyEval,
    RewardModelEval,
    WinRate,
    evaluate_policy,
    evaluate_reward_model,
    win_rate,
)
from preflab.cli import app
from preflab.data.write import write_pairs
from preflab.errors import OutputExistsError
from preflab.eval.config import RewardEvalConfig
from tests.helpers import save_tiny_rm
from tests.train.helpers import short_pairs

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("eval-api")
    write_pairs(short_pairs(6), folder / "pairs.jsonl")
    return {"pairs": folder / "pairs.jsonl", "rm": save_tiny_rm(folder / "rm")}


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open()]


def cli(*args: object) -> None:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


def test_reward_model_eval_in_memory_saved_and_rerun(files, tmp_path) -> None:
    result = evaluate_reward_model(files["rm"], pd.DataFrame(rows(files["pairs"])), bins=5,
                                   threads=1)
    assert isinstance(result, RewardModelEval) and result.config.bins == 5
    assert len(result.table) == 6 and result.summary["n_pairs"] == 6
    assert result.summary["accuracy"] == pytest.approx(
        ((result.table["margin"] > 0) + 0.5 * (result.table["margin"] == 0)).mean())
    assert result.summary["data"] == "<DataFrame of 6 rows>"
    assert len(result.summary["reliability"]) == 5 and "<html" in result.report_html.lower()
    assert not any(tmp_path.iterdir())  # nothing written until asked
    saved = result.save(tmp_path / "ev")
    assert RewardEvalConfig.from_file(saved / "config.toml") == result.config
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="did not write"):
        result.save(tmp_path / "other")
    # the command on the same pairs gives the same table; its config.toml reruns it
    cli("eval-rm", files["rm"], files["pairs"], "--bins", 5, "--threads", 1, "--out",
        tmp_path / "a")
    cli("eval-rm", files["rm"], files["pairs"], "--config", tmp_path / "a" / "config.toml",
        "--out", tmp_path / "b")
    first = pd.read_parquet(tmp_path / "a" / "scores.parquet")
    pd.testing.assert_frame_equal(first, result.table)
    pd.testing.assert_frame_equal(first, pd.read_parquet(tmp_path / "b" / "scores.parquet"))
    assert (tmp_path / "a" / "config.toml").read_text() == \
        (tmp_path / "b" / "config.toml").read_text()


def test_policy_eval_in_memory_and_rerun(files, tmp_path) -> None:
    pairs = Dataset.from_list(rows(files["pairs"]))
    result = evaluate_policy("tiny-llama", pairs, reward=str(files["rm"]), heldout=pairs,
                             temperatures=[0.7], max_new_tokens=5, limit=3, threads=1)
    assert isinstance(result, PolicyEval) and result.config.limit == 3
    assert list(result.table.columns) == ["prompt_id", "temperature", "reply", "reward"]
    assert len(result.table) == 3 and result.summary["perplexity"] > 1
    assert result.summary["reward"]["0.7"]["mean"] == pytest.approx(
        result.table["reward"].mean(), abs=1e-4)
    assert result.summary["prompts"] == result.summary["heldout"] == "<Dataset of 6 rows>"
    assert list(result.generations(0.7)["reply"]) == list(result.table["reply"])
    cli("eval-policy", "tiny-llama", "--prompts", files["pairs"], "--reward", files["rm"],
        "--temperatures", "0.7", "--max-new-tokens", 5, "--limit", 3, "--threads", 1,
        "--out", tmp_path / "a")
    cli("eval-policy", "tiny-llama", "--prompts", files["pairs"], "--config",
        tmp_path / "a" / "config.toml", "--out", tmp_path / "b")
    generated = [(tmp_path / x / "generations.jsonl").read_text() for x in ("a", "b")]
    assert generated[0] == generated[1]
    assert [r["reply"] for r in map(json.loads, generated[0].splitlines())] == \
        list(result.table["reply"])  # in memory, as on the command line


def test_win_rate_in_memory_and_rerun(files, tmp_path) -> None:
    result = win_rate("tiny-llama", "tiny-llama", pd.DataFrame(rows(files["pairs"])),
                      judge="tiny-llama", max_new_tokens=5, limit=3, threads=1)
    assert isinstance(result, WinRate) and result.win_rate == 0.5  # the same replies: ties
    assert (result.summary["ties"], len(result.table)) == (3, 3)
    assert {"reply_a", "reply_b", "p_a_first", "p_a_second"} <= set(result.table.columns)
    cli("winrate", "tiny-llama", result.folder / "generations_b.jsonl", "--prompts",
        files["pairs"], "--judge", "tiny-llama", "--max-new-tokens", 5, "--limit", 3,
        "--threads", 1, "--out", tmp_path / "a")
    cli("winrate", "tiny-llama", result.folder / "generations_b.jsonl", "--prompts",
        files["pairs"], "--config", tmp_path / "a" / "config.toml", "--out", tmp_path / "b")
    tables = [pd.read_parquet(tmp_path / x / "judgements.parquet") for x in ("a", "b")]
    pd.testing.assert_frame_equal(tables[0], tables[1])
    pd.testing.assert_frame_equal(tables[0], result.table)
