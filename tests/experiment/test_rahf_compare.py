"""The RAHF comparison end to end on tiny models and real demo pairs."""

import json

from preflab.data.write import write_pairs
from preflab.experiment.rahf_compare import METHODS, rahf_compare
from preflab.train.rahf import RAHFConfig
from preflab.train.recipe import PolicyConfig
from tests.experiment.helpers import rerun_from_config
from tests.train.helpers import short_pairs


def test_rahf_compare_runs_every_method_and_resumes(tmp_path):
    write_pairs(short_pairs(40), tmp_path / "pairs.jsonl")
    policy = PolicyConfig(policy="tiny-llama", lora=True, max_length=512, batch_size=8,
                          threads=1, save_steps=1000)
    # the methods in another order: Dual's preferred model is still trained first
    methods = ["sft", "rahf-dual", "steering", "dpo", "hir", "rahf-scit", "preferred-sft"]
    kwargs = dict(policy=policy, rahf=RAHFConfig(learning_rate=1e-3), methods=methods,
                  judge="tiny-llama", task="helpful", eval_fraction=0.25, eval_limit=5,
                  perplexity_pairs=5, max_new_tokens=8)
    s = rahf_compare(tmp_path / "pairs.jsonl", "tiny-bert", tmp_path / "x", **kwargs)
    rows = {r["method"]: r for r in s["rows"]}
    assert sorted(rows) == sorted(METHODS)
    for name, r in rows.items():
        assert {"reward_t0.7", "reward_t1.0", "perplexity"} <= set(r)
        if name == "sft":
            assert "win_rate" not in r and r["train_seconds"] is None
        else:
            assert r["wins"] + r["ties"] + r["losses"] == 5
    assert rows["rahf-dual"]["train_seconds"] > 0
    # Dual's preferred model is the Preferred-SFT model, trained once
    dual = json.loads((tmp_path / "x" / "rahf-dual" / "preflab-train.json").read_text())
    assert dual["step1_models"][0] == str(tmp_path / "x" / "preferred-sft")
    assert not (tmp_path / "x" / "rahf-dual" / "step1-good").exists()
    assert dual["step1_models"][1] == str(tmp_path / "x" / "rahf-dual" / "step1-bad")
    bad = json.loads((tmp_path / "x" / "rahf-dual" / "step1-bad" / "preflab-train.json")
                     .read_text())
    preferred = json.loads((tmp_path / "x" / "preferred-sft" / "preflab-train.json")
                           .read_text())
    assert bad["side"] == "rejected"  # and the same settings otherwise
    assert {**bad["config"], "side": "chosen"} == preferred["config"]
    # --scit-lr does not leak into Dual: its step 2 keeps the paper's 9e-6
    scit = json.loads((tmp_path / "x" / "rahf-scit" / "preflab-train.json").read_text())
    assert scit["config"]["learning_rate"] == 1e-3 and dual["config"]["learning_rate"] == 9e-6
    hir = json.loads((tmp_path / "x" / "eval-hir" / "summary.json").read_text())
    steer = json.loads((tmp_path / "x" / "eval-steering" / "summary.json").read_text())
    assert hir["instruction"] and steer["steer"].endswith("vector.safetensors")
    assert s["probe"]["heldout_pairs"] == 10 and 0 <= s["probe"]["auc"] <= 1
    report = (tmp_path / "x" / "report.md").read_text()
    assert report.startswith("# RAHF and baselines") and "| rahf-scit |" in report
    again = rahf_compare(tmp_path / "pairs.jsonl", "tiny-bert", tmp_path / "x", **kwargs)
    assert again["stage_seconds"] == {} and again["rows"] == s["rows"]
    assert again["all_stage_seconds"] == s["all_stage_seconds"] == s["stage_seconds"]
    assert "Stage times over all runs" in (tmp_path / "x" / "report.md").read_text()
    # the command with the run's config.toml is the same experiment: every stage is done
    rerun = rerun_from_config("rahf", tmp_path / "pairs.jsonl", tmp_path / "x")
    assert rerun["stage_seconds"] == {} and rerun["rows"] == s["rows"]
