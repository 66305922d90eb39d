"""`preflab label --config OUT/config.toml` reruns a labeling run."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from preflab.cli import app
from preflab.data.demo import demo
from preflab.label.config import LabelConfig
from preflab.settings import config_from_file

runner = CliRunner()


def test_config_toml_reproduces_the_run_and_flags_override_it(tmp_path) -> None:
    data = tmp_path / "demo.jsonl"
    demo(data, n=12, flip_rate=0.0)
    first = runner.invoke(app, ["label", str(data), "--judge", "tiny-llama", "--task",
                                "harmless", "--sample", "3", "--seed", "2", "--out",
                                str(tmp_path / "a"), "--json"])
    assert first.exit_code == 0, first.output
    config = config_from_file(LabelConfig, tmp_path / "a" / "config.toml")
    assert config == LabelConfig(judge="tiny-llama", task="harmless", sample=3, seed=2)
    again = runner.invoke(app, ["label", str(data), "--config",
                                str(tmp_path / "a" / "config.toml"), "--out",
                                str(tmp_path / "b"), "--json"])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "b" / "config.toml").read_text() == \
        (tmp_path / "a" / "config.toml").read_text()
    a = pd.read_parquet(tmp_path / "a" / "labels.parquet")
    b = pd.read_parquet(tmp_path / "b" / "labels.parquet")
    pd.testing.assert_frame_equal(a, b)
    s = json.loads(again.output.strip().splitlines()[-1])
    assert s["task"] == "harmless" and s["n_pairs"] == 3
    # a flag given on the command line wins over the file; --limit is the first N pairs
    over = runner.invoke(app, ["label", str(data), "--config",
                               str(tmp_path / "a" / "config.toml"), "--limit", "2",
                               "--sample", "5", "--out", str(tmp_path / "c"), "--json"])
    assert over.exit_code == 0, over.output
    ids = list(pd.read_parquet(tmp_path / "c" / "labels.parquet")["id"])
    from preflab.data.read import iter_pairs, read_pairs

    assert ids == [p.id for p in iter_pairs(read_pairs(data).pairs)][:2]
    bad = tmp_path / "bad.toml"
    bad.write_text('judge = "tiny-llama"\nshotz = 2\n')
    result = runner.invoke(app, ["label", str(data), "--config", str(bad), "--out",
                                 str(tmp_path / "d")])
    assert result.exit_code == 2 and "unknown settings: 'shotz'" in result.stderr
