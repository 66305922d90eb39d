"""``preflab.api.clean.clean`` (``pl.clean``): the result in memory (pairs, manifest,
summary, config, a ``datasets.Dataset``), from an audit in memory, a folder or a view;
nothing written unless asked, and never over a folder clean did not write; the
command's ``OUT/config.toml`` reruns it to the same manifest, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from preflab.api.audit import Audit, audit
from preflab.api.clean import CleanConfig, Cleaned, clean
from preflab.cli import app
from preflab.data.demo import demo_pairs
from preflab.errors import OutputExistsError

runner = CliRunner()


@pytest.fixture(scope="module")
def audited(tmp_path_factory) -> tuple[list, Audit, Path]:
    """24 demo pairs (a quarter flipped), audited by the tiny committee into a folder."""
    folder = tmp_path_factory.mktemp("clean-api")
    pairs = demo_pairs(24, flip_rate=0.25, seed=1)
    result = audit(pairs, committee="tiny", out=folder / "audit")
    return pairs, result, folder / "audit"


def test_clean_returns_the_result_in_memory(audited, tmp_path) -> None:
    pairs, result, folder = audited
    cleaned = clean(pairs, result, method="vote-maj", params={"action": "flip"})
    assert isinstance(cleaned, Cleaned) and isinstance(cleaned.config, CleanConfig)
    assert cleaned.config.method == "vote-maj" and cleaned.config.params == {"action": "flip"}
    assert list(cleaned.manifest["id"]) == [p.id for p in pairs]
    flips = int((cleaned.manifest["action"] == "flip").sum())
    assert flips == cleaned.summary["flip"] and len(cleaned.pairs) == 24
    assert cleaned.summary["output"] is None and cleaned.summary["data"].startswith("<list")
    dataset = cleaned.to_dataset()
    assert dataset.num_rows == 24 and dataset["id"] == [p.id for p in cleaned.pairs]
    # the audit as a folder or as a view decides the same
    for other in (folder, result.view()):
        again = clean(pairs, other, method="vote-maj", params={"action": "flip"})
        assert list(again.manifest["action"]) == list(cleaned.manifest["action"])
    # saved only when asked; a folder clean did not write is refused unless overwrite
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="did not write"):
        cleaned.save(theirs)
    saved = cleaned.save(tmp_path / "c")
    assert cleaned.summary["output"] == str(saved / "cleaned.jsonl")
    back = Cleaned.load(saved)
    assert [p.id for p in back.pairs] == [p.id for p in cleaned.pairs]
    assert back.config == cleaned.config
    with pytest.raises(OutputExistsError):
        clean(pairs, result, out=theirs)
    assert sorted(p.name for p in theirs.iterdir()) == ["notes.txt"]


def test_config_toml_reproduces_the_manifest(audited, tmp_path) -> None:
    pairs, _, folder = audited
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(p.to_row()) + "\n" for p in pairs))
    first = runner.invoke(app, ["clean", str(data), "--audit", str(folder), "--method",
                                "sac", "-p", "flip_p=0.2", "--limit", "24", "--out",
                                str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    config = CleanConfig.from_file(tmp_path / "a" / "config.toml")
    assert config.params == {"flip_p": 0.2} and config.limit == 24  # typed, as it ran
    again = runner.invoke(app, ["clean", str(data), "--audit", str(folder), "--config",
                                str(tmp_path / "a" / "config.toml"), "--out",
                                str(tmp_path / "b")])
    assert again.exit_code == 0, again.output
    for name in ("manifest.parquet", "cleaned.jsonl", "config.toml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    # an option on the command line wins over the file
    other = runner.invoke(app, ["clean", str(data), "--audit", str(folder), "--config",
                                str(tmp_path / "a" / "config.toml"), "--method", "vote-all",
                                "--out", str(tmp_path / "c")])
    assert other.exit_code == 2 and "unknown parameter 'flip_p'" in other.output
    manifest = pd.read_parquet(tmp_path / "a" / "manifest.parquet")
    assert set(manifest["method"]) == {"sac"}
