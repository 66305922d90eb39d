"""eval-rm, split-halves and split through the CLI, with tiny models on real pairs."""

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from typer.testing import CliRunner

from preflab.cli import app
from preflab.data.messages import as_messages
from preflab.data.read import iter_pairs, load_pairs
from preflab.data.write import write_pairs
from preflab.models.chat import plain_context
from tests.train.helpers import short_pairs

runner = CliRunner()


def cli(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_split_is_seeded_and_disjoint(tmp_path):
    data = tmp_path / "pairs.jsonl"
    write_pairs(short_pairs(20), data)
    cli("split", data, "--test-fraction", 0.25, "--seed", 3, "--out", tmp_path / "s")
    train = [p.id for p in iter_pairs(load_pairs(tmp_path / "s" / "train.jsonl"))]
    test = [p.id for p in iter_pairs(load_pairs(tmp_path / "s" / "test.jsonl"))]
    assert len(train) == 15 and len(test) == 5 and not set(train) & set(test)
    cli("split", data, "--test-fraction", 0.25, "--seed", 3, "--out", tmp_path / "t")
    assert (tmp_path / "s" / "test.jsonl").read_bytes() == \
        (tmp_path / "t" / "test.jsonl").read_bytes()


def test_train_then_eval_writes_summary_scores_and_report(tmp_path):
    data = tmp_path / "pairs.jsonl"
    pairs = short_pairs(16)
    pairs = [replace(p, subset="a" if i % 2 else "b") for i, p in enumerate(pairs)]
    write_pairs(pairs, data)
    cli("train-rm", data, "--base", "tiny-bert", "--out", tmp_path / "rm", "--epochs", 20,
        "--lr", 3e-3, "--max-length", 256, "--threads", 1)
    result = cli("eval-rm", tmp_path / "rm", data, "--out", tmp_path / "ev", "--json")
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["max_length"] == 256  # read from the model's preflab-train.json
    assert summary["n_pairs"] == 16 and summary["accuracy"] > 0.9  # its own training pairs
    assert set(summary["per_subset"]) == {"a", "b"}
    assert 0 <= summary["ece"] <= 1 and len(summary["reliability"]) == 10
    scores = pd.read_parquet(tmp_path / "ev" / "scores.parquet")
    assert len(scores) == 16
    assert ((scores["margin"] > 0).mean()) == summary["accuracy"]
    html = (tmp_path / "ev" / "report.html").read_text()
    assert "Reliability diagram" in html and "data:image/png;base64," in html
    saved = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert saved["accuracy"] == summary["accuracy"]
    # the standard cross-encoder call (a text pair) gives the same reward
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm").eval()
    tok = AutoTokenizer.from_pretrained(tmp_path / "rm")
    enc = tok(plain_context(as_messages(pairs[0].prompt)), pairs[0].chosen, return_tensors="pt")
    with torch.no_grad():
        r = model(**enc).logits[0, 0].item()
    assert abs(r - scores["r_chosen"].iloc[0]) < 1e-4


def test_split_halves_report(tmp_path):
    data = tmp_path / "pairs.jsonl"
    write_pairs(short_pairs(30), data)
    result = cli("eval-rm", "tiny-llama", data, "--split-halves", "--test-fraction", 0.2,
                 "--epochs", 1, "--max-length", 256, "--threads", 1,
                 "--out", tmp_path / "sh", "--json")
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert (summary["n_train_a"], summary["n_train_b"], summary["n_held_out"]) == (12, 12, 6)
    for key in ("agreement", "spearman_margin", "js_divergence", "kl_divergence_ab"):
        assert key in summary
    assert summary["pm_a"]["n_pairs"] == 6
    assert (tmp_path / "sh" / "pm-a" / "model.safetensors").exists()
    assert (tmp_path / "sh" / "pm-b" / "preflab-train.json").exists()
    scores = pd.read_parquet(tmp_path / "sh" / "scores.parquet")
    assert {"margin_a", "margin_b"} <= set(scores.columns) and len(scores) == 6
    assert "agree on" in (tmp_path / "sh" / "report.html").read_text()


def test_bad_settings_fail_with_one_clear_line(tmp_path):
    data = tmp_path / "pairs.jsonl"
    write_pairs(short_pairs(4), data)
    result = runner.invoke(app, ["train-rm", str(data), "--base", "tiny-bert",
                                 "--subset-weight", "harmless", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "--subset-weight 'harmless': expected NAME=NUMBER" in result.output
    result = runner.invoke(app, ["train-rm", str(data), "--base", "tiny-bert", "--labels",
                                 "soft", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "every p_chosen is 1.0" in result.output
    config = Path(tmp_path / "c.toml")
    config.write_text('base = "tiny-bert"\nlearning_rat = 0.1\n')
    result = runner.invoke(app, ["train-rm", str(data), "--config", str(config)])
    assert result.exit_code == 2 and "unknown settings" in result.output
    result = runner.invoke(app, ["train-rm", str(data), "--base", "tiny-bert", "--head",
                                 "bi-encoder", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "segment ids" in result.output
