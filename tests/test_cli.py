from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from preflab.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_inspect_hh_json(hh_path) -> None:
    result = run("inspect", hh_path, "--json", "--tokenizer", "none")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["n_pairs"] == 2312 and report["prefix_mismatch"] == 5


def test_convert_round_trip(hh_path, tmp_path) -> None:
    assert run("convert", hh_path, tmp_path / "t.jsonl", "--to", "trl").exit_code == 0
    assert run("convert", tmp_path / "t.jsonl", tmp_path / "p.parquet").exit_code == 0
    result = run("convert", tmp_path / "p.parquet", tmp_path / "h.jsonl", "--to", "hh")
    assert result.exit_code == 0, result.output
    import gzip

    with gzip.open(hh_path, "rb") as f:
        assert (tmp_path / "h.jsonl").read_bytes() == f.read()


def test_bad_input_is_one_clear_line(tmp_path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "x", "chosen": "a", "rejected": "b"}\n{"prompt": "x"\n')
    result = run("convert", path, tmp_path / "out.jsonl")
    assert result.exit_code == 2
    assert f"{path}, line 2: malformed JSON" in result.stderr
    assert "Traceback" not in result.output
    result = run("convert", path, tmp_path / "out.jsonl", "--on-error", "skip",
                 "--rejects", tmp_path / "rejects.jsonl")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["n_rejected"] == 1
    assert len((tmp_path / "rejects.jsonl").read_text().splitlines()) == 1


def test_demo_and_models_list(tmp_path) -> None:
    result = run("data", "demo", "--out", tmp_path / "d.jsonl", "--n", "40", "--flip-rate", "0.5")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_flipped"] == 20
    rows = json.loads(run("models", "list", "--json").stdout)
    assert {"smollm2-135m-instruct", "minilm-l6", "gemma3-270m", "tiny-llama"} <= {
        r["name"] for r in rows}


@pytest.mark.parametrize("command", [["inspect"], ["convert"], ["models", "prepare"],
                                     ["data", "demo"], ["audit"]])
def test_every_command_has_an_example(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0 and "Example" in result.stdout


def test_audit_bad_committee_is_one_clear_line(tmp_path) -> None:
    committee = tmp_path / "c.toml"
    committee.write_text('[[member]]\nname = "a"\nkind = "oracle"\nmodel = "minilm-l6"\n')
    result = run("audit", "x.jsonl", "--committee", committee, "--out", tmp_path / "o")
    assert result.exit_code == 2 and "unknown kind 'oracle'" in result.stderr
