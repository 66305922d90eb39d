"""Outputs are never replaced unless asked: files, foreign folders, a command's own folder."""

from __future__ import annotations

import json

import pytest

from preflab.data.outputs import check_output_file, marker_path, prepare_output_dir
from preflab.errors import OutputExistsError


def test_check_output_file(tmp_path) -> None:
    path = tmp_path / "out.jsonl"
    assert check_output_file(path) == path
    path.write_text("mine")
    with pytest.raises(OutputExistsError, match=r"out\.jsonl exists; pass --overwrite"):
        check_output_file(path)
    assert check_output_file(path, overwrite=True) == path
    with pytest.raises(OutputExistsError, match="is a folder"):
        check_output_file(tmp_path, overwrite=True)
    assert path.read_text() == "mine"


def test_prepare_output_dir(tmp_path) -> None:
    new = prepare_output_dir(tmp_path / "a" / "b", "split", info={"seed": 3})
    assert json.loads(marker_path(new, "split").read_text()) == {"command": "split", "seed": 3}
    (new / "train.jsonl").write_text("old")
    assert prepare_output_dir(new, "split") == new  # its own folder: the command replaces it
    with pytest.raises(OutputExistsError, match="preflab audit did not write"):
        prepare_output_dir(new, "audit")  # another command's folder
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(OutputExistsError, match="pass --overwrite"):
        prepare_output_dir(foreign, "split")
    prepare_output_dir(foreign, "split", overwrite=True)
    assert (foreign / "notes.txt").read_text() == "keep"  # nothing is deleted
    empty = tmp_path / "empty"
    empty.mkdir()
    assert prepare_output_dir(empty, "bench noise") == empty
    assert (empty / ".preflab-bench-noise.json").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputExistsError, match="not a folder"):
        prepare_output_dir(tmp_path / "file", "split", overwrite=True)
