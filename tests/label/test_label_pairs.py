"""preflab label end to end with a real (tiny, in-process) judge, and its statistics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from preflab.cli import app
from preflab.data.read import iter_pairs, read_pairs
from preflab.engine import EngineOptions
from preflab.label.label_pairs import label
from preflab.label.summary import label_summary

runner = CliRunner()
QUIET = EngineOptions(progress=False)




def test_label_writes_both_orders_and_their_average(tmp_path, data) -> None:
    s = label(data, judge="tiny-llama", out=tmp_path / "l", engine_options=QUIET).summary
    table = pd.read_parquet(tmp_path / "l" / "labels.parquet")
    pairs = list(iter_pairs(read_pairs(data).pairs))
    assert list(table["id"]) == [p.id for p in pairs] and s["n_pairs"] == 24
    np.testing.assert_allclose(table["p_ai"], (table["p_chosen_first"]
                                               + table["p_chosen_second"]) / 2)
    assert table["p_ai"].between(0, 1).all()
    assert s == {**s, **label_summary(table, [p.p_chosen for p in pairs])}
    assert s["computed"] == 48 and json.loads((tmp_path / "l" / "summary.json").read_text()) == s
    again = label(data, judge="tiny-llama", out=tmp_path / "l2", engine_options=QUIET).summary
    assert again["cached"] == 48 and again["alignment"] == s["alignment"]


def test_an_inverted_task_turns_the_label_around(tmp_path, data) -> None:
    """Same prompt text, `invert` on: the labeler's answer now names the worse reply."""
    flipped = tmp_path / "inv.toml"
    flipped.write_text("invert = true\n")
    plain = label(data, judge="tiny-llama", out=tmp_path / "a", engine_options=QUIET)
    inv = label(data, judge="tiny-llama", out=tmp_path / "b", template=flipped,
                engine_options=QUIET)
    a = pd.read_parquet(tmp_path / "a" / "labels.parquet")
    b = pd.read_parquet(tmp_path / "b" / "labels.parquet")
    np.testing.assert_allclose(b["p_ai"], 1 - a["p_ai"], atol=1e-6)
    assert inv.summary["invert"] and not plain.summary["invert"]


def test_shots_come_from_unlabelled_pairs(tmp_path, data) -> None:
    with pytest.raises(ValueError, match="needs exemplars that are not labelled"):
        label(data, judge="tiny-llama", shots=2, out=tmp_path / "x", engine_options=QUIET)
    s = label(data, judge="tiny-llama", shots=2, limit=10, seed=1, out=tmp_path / "k",
              engine_options=QUIET, write_data=True).summary
    ids = set(pd.read_parquet(tmp_path / "k" / "labels.parquet")["id"])
    assert len(ids) == 10 and len(s["exemplar_ids"]) == 2 and not ids & set(s["exemplar_ids"])
    labelled = list(iter_pairs(read_pairs(tmp_path / "k" / "labelled.jsonl").pairs))
    table = pd.read_parquet(tmp_path / "k" / "labels.parquet")
    assert [p.id for p in labelled] == list(table["id"])
    np.testing.assert_allclose([p.p_chosen for p in labelled], table["p_ai"], atol=1e-6)
    assert labelled[0].meta["label"]["shots"] == 2


def test_alignment_and_position_figures() -> None:
    from preflab.data.pair import PreferencePair

    pairs = [PreferencePair(prompt=[{"role": "user", "content": f"q{i}"}], chosen="a",
                            rejected="b", p_chosen=1.0 if i < 3 else 0.2) for i in range(5)]
    nan = float("nan")
    table = pd.DataFrame({
        "p_ai": [0.9, 0.5, 0.3, 0.3, nan], "p_chosen_first": [0.9, 0.6, 0.2, 0.4, nan],
        "p_chosen_second": [0.9, 0.4, 0.4, 0.2, nan],
        "consistent": [True, False, True, True, False],
        "first_preferred": [True, True, False, False, False],
        "first_preferred_swapped": [False, True, True, True, False],
        "label_mass": [0.5] * 4 + [nan], "failure": [None] * 4 + ["timed out"]})
    s = label_summary(table, [p.p_chosen for p in pairs])
    # pair 0 agrees, 1 is a tie, 2 disagrees, 3 agrees (its human label is soft, < 0.5);
    # pair 4 has no label: counted apart, in no figure
    assert s["alignment"] == 0.5 and s["ties"] == 1
    # each order alone: 0.9 0.6 0.2 | 0.4 (chosen first), 0.9 0.4 0.4 | 0.2 (second)
    assert s["alignment_chosen_first"] == 0.75 and s["alignment_chosen_second"] == 0.5
    assert "alignment_first_order_only" not in s
    assert s["position_consistency"] == 0.75 and s["first_position_rate"] == 5 / 8
    assert s["n_labelled"] == 4 and s["n_failed"] == 1 and s["failures"] == {"timed out": 1}


def test_label_cli_and_grid(tmp_path, data) -> None:
    result = runner.invoke(app, ["label", str(data), "--judge", "tiny-llama", "--task",
                                 "harmless", "--out", str(tmp_path / "c"), "--json"])
    assert result.exit_code == 0, result.output
    s = json.loads(result.output.strip().splitlines()[-1])
    assert s["task"] == "harmless" and s["invert"] and 0 <= s["alignment"] <= 1
    result = runner.invoke(app, ["label", str(data), "--judge", "tiny-llama", "--grid",
                                 "--limit", "4", "--cot-tokens", "3", "--out",
                                 str(tmp_path / "g"), "--json"])
    assert result.exit_code == 0, result.output
    grid = json.loads(result.output.strip().splitlines()[-1])
    assert [(r["preamble"], r["cot"], r["shots"]) for r in grid] == [
        (p, c, k) for p in ("base", "detailed") for c in (False, True) for k in (0, 1, 2)]
    assert len(pd.read_csv(tmp_path / "g" / "grid.csv")) == 12
    assert "+ CoT" in result.output
    bad = runner.invoke(app, ["label", str(data), "--judge", "tiny-llama", "--task", "funny",
                              "--out", str(tmp_path / "f")])
    assert bad.exit_code == 2 and "funny" in bad.output and "helpful" in bad.output


def test_chain_of_thought_and_self_consistency(tmp_path, data) -> None:
    """Rationales are generated, kept, cached and seeded; SC averages k distributions."""
    kw = dict(limit=6, cot=True, cot_tokens=5, engine_options=QUIET)
    s = label(data, judge="tiny-llama", out=tmp_path / "cot", **kw).summary
    t = pd.read_parquet(tmp_path / "cot" / "labels.parquet")
    assert s["cot"] and s["generated_tokens"] > 0 and s["n_labelled"] == 6
    assert all(len(r) == 1 and r[0] for r in t["rationales_first"])
    again = label(data, judge="tiny-llama", out=tmp_path / "cot2", **kw).summary
    assert again["generated_tokens"] == 0 and again["computed"] == 0  # all cached
    sc = label(data, judge="tiny-llama", out=tmp_path / "sc", sc=3, **kw).summary
    t3 = pd.read_parquet(tmp_path / "sc" / "labels.parquet")
    assert sc["sc"] == 3 and sc["temperature"] == 1.0
    assert all(len(r) == 3 and len(set(r)) > 1 for r in t3["rationales_first"])
    label(data, judge="tiny-llama", out=tmp_path / "sc2", sc=3, seed=0,
          engine_options=EngineOptions(cache_path=":memory:", progress=False),
          **{k: v for k, v in kw.items() if k != "engine_options"})
    t3b = pd.read_parquet(tmp_path / "sc2" / "labels.parquet")  # recomputed: same seeds
    assert [list(r) for r in t3b["rationales_first"]] == [list(r) for r in t3["rationales_first"]]
    np.testing.assert_allclose(t3b["p_ai"], t3["p_ai"], atol=1e-6)
    with pytest.raises(ValueError, match="needs --cot"):
        label(data, judge="tiny-llama", out=tmp_path / "x", sc=2, engine_options=QUIET)


def test_direct_scoring_labels_pairs(tmp_path, data) -> None:
    s = label(data, judge="tiny-llama", out=tmp_path / "d", direct=True, limit=6,
              engine_options=QUIET).summary
    t = pd.read_parquet(tmp_path / "d" / "labels.parquet")
    assert s["direct"] and s["n_labelled"] == 6 and s["position_consistency"] is None
    assert t["score_chosen"].between(-1, 1).all() and t["score_rejected"].between(-1, 1).all()
    np.testing.assert_allclose(t["p_ai"], (2 + t["score_chosen"] - t["score_rejected"]) / 4)
    with pytest.raises(ValueError, match="direct scoring"):
        label(data, judge="tiny-llama", out=tmp_path / "x", direct=True, cot=True,
              engine_options=QUIET)


def test_alignment_of_each_order_shows_position_bias() -> None:
    """As found: the only per-order figure was the chosen-first order's, which a judge
    that always says "1" aces. Both orders now: 100% and 0% for that judge."""
    from preflab.data.pair import PreferencePair

    pairs = [PreferencePair(prompt=[{"role": "user", "content": f"q{i}"}], chosen="a",
                            rejected="b") for i in range(4)]
    says_one = pd.DataFrame({  # P(first is better) = 0.8 in either order
        "p_ai": [0.5] * 4, "p_chosen_first": [0.8] * 4, "p_chosen_second": [0.2] * 4,
        "consistent": [False] * 4, "first_preferred": [True] * 4,
        "first_preferred_swapped": [True] * 4, "label_mass": [0.9] * 4, "failure": [None] * 4})
    s = label_summary(says_one, [p.p_chosen for p in pairs])
    assert s["alignment_chosen_first"] == 1.0 and s["alignment_chosen_second"] == 0.0
    assert s["alignment"] == 0.0 and s["ties"] == 4 and s["first_position_rate"] == 1.0


def test_a_long_instruction_prompt_is_labelled_with_its_instruction(tmp_path) -> None:
    """As found: every context was cut to its last 256 tokens, so on "Summarize the
    following content.\n\n<long text>" the judge never read the task, silently."""
    from preflab.engine.judge import MIDDLE
    from preflab.label.config import LabelConfig
    from preflab.label.label_pairs import build_prompt, make_scorer

    task = "Summarize the following content."
    body = " ".join(f"Sentence {i} is about bread and foxes." for i in range(400))
    data = tmp_path / "long.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"{task}\n\n{body}", "chosen": c,
                                        "rejected": r}) + "\n"
                            for c, r in [("Foxes and bread.", "Nothing."), ("Bread.", "No.")]))
    result = runner.invoke(app, ["label", str(data), "--judge", "tiny-llama", "--task",
                                 "summary", "--max-length", "512", "--out",
                                 str(tmp_path / "l"), "--json"])
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout.strip().splitlines()[-1])
    assert s["context_truncated"] == 4 and s["truncated"] == 0  # 2 pairs x 2 orders
    assert s["context_kept"].startswith("the first instruction")
    assert "4 conversations were shortened" in result.stdout and MIDDLE in result.stdout
    assert "alignment of each order alone" in result.stdout
    # what the judge reads: the instruction, the marker, the end, within --max-length
    config = LabelConfig(judge="tiny-llama", task="summary", max_length=512)
    pairs = list(iter_pairs(read_pairs(data).pairs))
    scorer = make_scorer(config, build_prompt(config))
    ids = scorer.prompt_ids((("user", pairs[0].prompt[0]["content"]),), "Foxes.", "No.")
    seen = scorer.tokenizer.decode(ids)
    assert task in seen and MIDDLE in seen and "Sentence 399" in seen and len(ids) <= 512


def test_label_skips_bad_records_when_asked(tmp_path, data) -> None:
    lines = data.read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([lines[0], '{"prompt": "Hi", "chosen": 3}', *lines[1:4]]) + "\n")
    failed = runner.invoke(app, ["label", str(bad), "--judge", "tiny-llama", "--out",
                                 str(tmp_path / "f")])
    assert failed.exit_code == 2 and "line 2" in failed.stderr
    rejects = tmp_path / "rejects.jsonl"
    result = runner.invoke(app, ["label", str(bad), "--judge", "tiny-llama", "--on-error",
                                 "skip", "--rejects", str(rejects), "--out",
                                 str(tmp_path / "s"), "--json"])
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout.strip().splitlines()[-1])
    assert s["n_pairs"] == 4 and s["n_rejected_on_read"] == 1 and s["rejects"] == str(rejects)
    assert rejects.read_text().count("\n") == 1
    assert "1 of 5 records" in result.stderr
