"""The clean-vs-original experiment end to end on tiny models and real demo pairs."""

import json

import pytest

from preflab.data.demo import demo
from preflab.experiment.clean_vs_original import clean_vs_original
from preflab.models.reward_folder import SUMMARY
from preflab.train.recipe import PolicyConfig
from tests.experiment.helpers import rerun_from_config


def test_clean_vs_original_runs_every_stage_and_resumes(tmp_path):
    demo(tmp_path / "pairs.jsonl", n=60, flip_rate=0.25, seed=0, max_turns=1)
    dpo = PolicyConfig(policy="tiny-llama", lora=True, max_length=128, batch_size=8,
                       threads=1, save_steps=1000)
    s = clean_vs_original(tmp_path / "pairs.jsonl", tmp_path / "x", committee="tiny",
                          dpo=dpo, judge="tiny-llama", task="helpful", reward="tiny-bert",
                          eval_fraction=0.2, eval_limit=6, max_new_tokens=8)
    assert [m["model"] for m in s["models"]] == ["original", "cleaned"]
    original, cleaned = s["models"]
    assert original["train_pairs"] == 48
    c = s["cleaning"]
    assert cleaned["train_pairs"] == c["n_output"] == 48 - c["remove"]
    w = s["winrate_cleaned_vs_original"]
    assert w["wins"] + w["ties"] + w["losses"] == w["n"] == 6
    assert "reward" in original and "perplexity" in cleaned
    assert (tmp_path / "x" / "report.md").read_text().startswith("# Clean vs original")
    assert set(s["stage_seconds"]) >= {"audit", "clean", "dpo-original", "dpo-cleaned",
                                       "winrate"}
    d = s["reward_cleaned_minus_original"]  # the same 6 prompts, so a plain difference
    assert d["n"] == 6
    assert d["mean_diff"] == pytest.approx(cleaned["reward"] - original["reward"], abs=1e-3)
    dpo_log = json.loads((tmp_path / "x" / "dpo-original" / SUMMARY).read_text())["log"]
    tail = dpo_log[-max(1, len(dpo_log) // 10):]
    assert original["final_loss"] == pytest.approx(sum(h["loss"] for h in tail) / len(tail),
                                                    abs=1e-6)
    report = (tmp_path / "x" / "report.md").read_text()
    assert s["judge_in_committee"] and "also voted in the committee" in report
    assert f"length-controlled {w['lc_win_rate']}" in report
    # a rerun finds every stage done
    again = clean_vs_original(tmp_path / "pairs.jsonl", tmp_path / "x", committee="tiny",
                              dpo=dpo, judge="tiny-llama", task="helpful", reward="tiny-bert",
                              eval_fraction=0.2, eval_limit=6, max_new_tokens=8)
    assert again["stage_seconds"] == {}
    assert again["all_stage_seconds"] == s["all_stage_seconds"] == s["stage_seconds"]
    assert again["models"] == s["models"]
    assert json.loads((tmp_path / "x" / "summary.json").read_text())["models"] == s["models"]
    # the command with the run's config.toml is the same experiment: every stage is done
    rerun = rerun_from_config("clean-vs-original", tmp_path / "pairs.jsonl", tmp_path / "x")
    assert rerun["stage_seconds"] == {} and rerun["models"] == s["models"]
    with pytest.raises(ValueError, match=r"other settings.*method"):
        clean_vs_original(tmp_path / "pairs.jsonl", tmp_path / "x", committee="tiny",
                          method="vote-all", dpo=dpo, judge="tiny-llama", task="helpful",
                          reward="tiny-bert", eval_fraction=0.2, eval_limit=6,
                          max_new_tokens=8)
