"""The RAHF comparison end to end on tiny models and real demo pairs."""

import json

from preflab.data.demo import demo
from preflab.experiment.rahf_compare import METHODS, rahf_compare
from preflab.train.policy import PolicyConfig
from preflab.train.rahf import RAHFConfig


def test_rahf_compare_runs_every_method_and_resumes(tmp_path):
    demo(tmp_path / "pairs.jsonl", n=40, flip_rate=0.0, seed=0, max_turns=1)
    policy = PolicyConfig(policy="tiny-llama", lora=True, max_length=128, batch_size=8,
                          threads=1, save_steps=1000)
    kwargs = dict(policy=policy, rahf=RAHFConfig(learning_rate=1e-3), dual_lr=1e-3,
                  judge="tiny-llama", task="helpful", eval_fraction=0.25, eval_limit=5,
                  perplexity_pairs=5, max_new_tokens=8)
    s = rahf_compare(tmp_path / "pairs.jsonl", "tiny-bert", tmp_path / "x", **kwargs)
    rows = {r["method"]: r for r in s["rows"]}
    assert list(rows) == list(METHODS)
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
    hir = json.loads((tmp_path / "x" / "eval-hir" / "summary.json").read_text())
    steer = json.loads((tmp_path / "x" / "eval-steering" / "summary.json").read_text())
    assert hir["instruction"] and steer["steer"].endswith("vector.safetensors")
    assert s["probe"]["heldout_pairs"] == 10 and 0 <= s["probe"]["auc"] <= 1
    report = (tmp_path / "x" / "report.md").read_text()
    assert report.startswith("# RAHF and baselines") and "| rahf-scit |" in report
    again = rahf_compare(tmp_path / "pairs.jsonl", "tiny-bert", tmp_path / "x", **kwargs)
    assert again["stage_seconds"] == {} and again["rows"] == s["rows"]
