"""What every stage's Python result shares: a failed run leaves no folder it made,
results load from the folder a stage wrote, an audit in a folder reads its table
only when asked, warnings reach Python's warnings, and reprs stay one line."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pandas as pd
import pytest

import preflab as pl
from preflab.api.evaluate import RewardModelEval, evaluate_reward_model
from preflab.api.folders import read_jsonl
from preflab.api.train import BestOfN, Trained, train_reward_model
from preflab.label.config import LabelConfig
from preflab.label.grid import LabelGrid
from preflab.train.config import BestOfNConfig
from tests.helpers import save_tiny_rm
from tests.train.helpers import short_pairs


def test_a_failed_run_takes_back_the_folder_it_made(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):  # the data is read after config.toml is written
        train_reward_model(tmp_path / "missing.jsonl", base="tiny-bert", out=tmp_path / "rm")
    assert not (tmp_path / "rm").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"^<list of 0 rows>: no pairs to evaluate$"):
        evaluate_reward_model(tmp_path / "no-model", [], out=tmp_path / "empty")
    assert not any((tmp_path / "empty").iterdir())  # left as it was: empty


def test_trained_and_evaluations_load_from_their_folders(tmp_path) -> None:
    rm = train_reward_model(short_pairs(4), base="tiny-bert", epochs=1, batch_size=4,
                            threads=1, out=tmp_path / "rm")
    again = Trained.load(tmp_path / "rm")
    assert (again.stage, again.config, again.summary) == (rm.stage, rm.config, rm.summary)
    assert again.folder == again.model_dir == tmp_path / "rm" and again.scratch is None
    assert again.load_model().config.num_labels == 1
    copy = Trained.load(rm.save(tmp_path / "copy"))
    assert copy.stage == "train-rm" and copy.summary["model"] == str(tmp_path / "copy")
    with pytest.raises(FileNotFoundError, match="not a model"):
        Trained.load(tmp_path)
    ev = evaluate_reward_model(save_tiny_rm(tmp_path / "tiny"), short_pairs(4), threads=1,
                               out=tmp_path / "ev")
    loaded = RewardModelEval.load(tmp_path / "ev")
    assert (loaded.summary, loaded.config) == (ev.summary, ev.config)
    pd.testing.assert_frame_equal(loaded.table, ev.table)
    assert repr(loaded) == repr(ev)


def test_an_audit_in_a_folder_reads_its_table_when_asked(tmp_path) -> None:
    data = tmp_path / "pairs.jsonl"
    pl.demo(data, n=12, seed=1)
    with data.open("a") as f:
        f.write(json.dumps({"prompt": "no replies"}) + "\n")
    with pytest.warns(UserWarning) as caught:
        audit = pl.audit(data, committee="tiny", on_error="skip", out=tmp_path / "audit")
    assert any(re.match(r"1 of 13 records .* rejected", str(w.message)) for w in caught)
    assert {Path(w.filename) for w in caught} == {Path(__file__)}  # the caller's line
    assert audit.folder == tmp_path / "audit" and len(audit.table) == 12
    assert "<html" in audit.report_html.lower() and audit.read("nothing.txt") is None
    with pytest.warns(UserWarning, match="--per-pair 3 but the project has 1 reviewers"):
        project = pl.ReviewProject.create(data, audit, tmp_path / "review.db", sample=4,
                                          reviewers=["ann"], on_error="skip")
    assert len(project.queue("ann")) == 4  # chosen from the audit's own folder
    (tmp_path / "audit" / "audit.parquet").rename(tmp_path / "table.parquet")
    with pytest.raises(FileNotFoundError):
        pl.Audit.load(tmp_path / "audit")
    (tmp_path / "table.parquet").rename(tmp_path / "audit" / "audit.parquet")
    lazy = pl.Audit.load(tmp_path / "audit")
    (tmp_path / "audit" / "audit.parquet").unlink()  # loading read only the summary
    assert lazy.summary == audit.summary and lazy.config == audit.config
    with pytest.raises(FileNotFoundError):
        lazy.table  # noqa: B018
    heard: list[str] = []
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        held = pl.audit(data, committee="tiny", on_error="skip", notify=heard.append)
    assert not [w for w in seen if str(w.message) in heard]  # told once: to notify
    assert held.folder is None and len(held.table) == 12 and held.flagged is not None
    assert any("rejected" in line for line in heard)
    saved = held.save(tmp_path / "again")
    pd.testing.assert_frame_equal(pl.Audit.load(saved).table, held.table)


def test_reprs_are_one_short_line() -> None:
    samples = pd.DataFrame({"prompt_id": [f"p{i}" for i in range(50)],
                            "replies": [["a long reply " * 20] * 4] * 50})
    bon = BestOfN(short_pairs(3), samples, {"n_prompts": 50, "n": 4, "best_of_4": 0.25},
                  BestOfNConfig(n=4))
    assert repr(bon) == "BestOfN(50 prompts, n=4, mean reward of the best 0.2500, " \
                        "3 pairs selected)"
    grid = LabelGrid(pd.DataFrame({"alignment": [0.6, None, 0.75]}),
                     LabelConfig(judge="tiny-llama"))
    assert repr(grid) == ("LabelGrid(3 prompt settings, judge 'tiny-llama', alignment "
                          "with the human labels 60.0% to 75.0%)")


def test_read_jsonl_keeps_values_as_written(tmp_path) -> None:
    (tmp_path / "x.jsonl").write_text('{"prompt_id": "007", "reward": 1.0}\n\n')
    table = read_jsonl(tmp_path / "x.jsonl")
    assert table["prompt_id"].tolist() == ["007"] and table["reward"].dtype == float
