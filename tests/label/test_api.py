"""``preflab.api.label``: labels in memory from a path, a DataFrame or a list of pairs, the
same as ``preflab label`` gives; saved only when asked, with the CLI's no-overwrite rule."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from preflab.api.label import LabelConfig, LabelGrid, Labels, label, label_grid
from preflab.cli import app
from preflab.data.read import iter_pairs, read_pairs
from preflab.engine.executor import ExecutorOptions
from preflab.errors import OutputExistsError

runner = CliRunner()


PAIRS = 8  # the demo pairs the `data` fixture writes


def test_label_in_memory_equals_the_cli_and_saves_when_asked(tmp_path, data) -> None:
    result = runner.invoke(app, ["label", str(data), "--judge", "tiny-llama", "--limit", "4",
                                 "--write-data", "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    pairs = list(iter_pairs(read_pairs(data).pairs))
    frame = pd.read_json(data, lines=True)
    for given in (pairs, frame):
        labels = label(given, judge="tiny-llama", limit=4, write_data=True)
        assert isinstance(labels, Labels) and labels.config.limit == 4
        pd.testing.assert_frame_equal(labels.table, pd.read_parquet(tmp_path / "cli" /
                                                                    "labels.parquet"))
        assert labels.summary["data"].startswith("<") and labels.summary["n_pairs"] == 4
        assert "labelled_data" not in labels.summary  # nothing written
    assert [p.id for p in labels.pairs] == [p.id for p in pairs[:4]]
    np.testing.assert_allclose([p.p_chosen for p in labels.pairs], labels.table["p_ai"])
    assert labels.pairs[0].meta["label"]["judge"] == "tiny-llama"
    assert "4 of 4 pairs labelled by 'tiny-llama'" in repr(labels)
    # the CLI's run, rerun from its config.toml in Python: the same labels
    again = label(data, tmp_path / "cli" / "config.toml")
    assert again.config == labels.config
    pd.testing.assert_frame_equal(again.table, labels.table)
    # saved as the CLI writes; a folder it did not write is refused unless overwrite
    folder = labels.save(tmp_path / "saved")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        p.name for p in (tmp_path / "cli").iterdir())
    labels.save(folder)  # its own folder again: fine
    loaded = Labels.load(folder)
    pd.testing.assert_frame_equal(loaded.table, labels.table)
    assert loaded.config == labels.config and len(loaded.pairs) == 4
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="pass --overwrite"):
        labels.save(other)
    with pytest.raises(OutputExistsError):
        label(pairs, judge="tiny-llama", limit=2, out=other)
    labels.save(other, overwrite=True)
    assert (other / "notes.txt").read_text() == "mine"


def test_settings_are_checked_where_they_are_set(data) -> None:
    with pytest.raises(ValueError, match=r"task \(--task\) must be one of"):
        LabelConfig(task="funny")
    with pytest.raises(ValueError, match=r"shots \(--shots\) must be at least 0"):
        label(data, judge="tiny-llama", shots=-1)
    with pytest.raises(ValueError, match="need executor ray"):
        LabelConfig(executor=ExecutorOptions(actors=4))
    with pytest.raises(ValueError, match=r"call preflab\.label\.grid\.label_grid"):
        label(data, judge="tiny-llama", grid=True)


def test_label_grid_in_memory_and_saved(tmp_path, data) -> None:
    grid = label_grid(data, judge="tiny-llama", limit=2, grid_cot=False)
    assert isinstance(grid, LabelGrid) and grid.config.grid
    assert list(grid.runs) == [f"{p}-{k}shot" for p in ("base", "detailed") for k in (0, 1, 2)]
    assert list(grid.table["shots"]) == [0, 1, 2, 0, 1, 2]
    assert grid.runs["detailed-2shot"].summary["shots"] == 2
    folder = grid.save(tmp_path / "g")
    assert len(pd.read_csv(folder / "grid.csv")) == 6
    assert json.loads((folder / "base-1shot" / "summary.json").read_text())["n_pairs"] == 2
    assert LabelConfig.from_file(folder / "config.toml") == grid.config
