from __future__ import annotations

import json
import re
from typing import Any

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


def registered_commands() -> list[list[str]]:
    """Every command registered on the app, walked from typer's click group."""
    import typer.main

    def walk(group: Any, prefix: list[str]) -> list[list[str]]:
        found = []
        for name, command in group.commands.items():
            if hasattr(command, "commands"):  # a sub-app (typer vendors its own click)
                found += walk(command, [*prefix, name])
            else:
                found.append([*prefix, name])
        return found

    return walk(typer.main.get_command(app), [])


def test_the_app_registers_every_stage() -> None:
    names = {" ".join(c) for c in registered_commands()}
    assert len(names) == 35
    assert {"inspect", "convert", "split", "data demo", "audit", "clean", "bench noise",
            "label", "train-rm", "eval-rm", "sft", "dpo", "bon", "rl", "rahf", "hir",
            "steer extract", "steer generate", "probe", "winrate", "eval-policy",
            "eval-harmless", "experiment clean-vs-original", "experiment rahf",
            "experiment overoptimization", "models list", "models prepare", "serve",
            "review init", "review serve", "review export", "review add-pairs",
            "review add-reviewers", "review tokens", "review status"} == names


@pytest.mark.parametrize("command", registered_commands(), ids=" ".join)
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout, f"{' '.join(command)} --help has no example"


def test_every_command_is_listed_through_all_three_entry_points() -> None:
    """`preflab`, `python -m preflab` and `python -m preflab.cli`: each a fresh process
    asked for the help of the app and of each sub-app, whose Commands panel must list
    every command registered here, so a command registered only as a side effect of
    import order fails. (Each command's own help is checked in-process above.)"""
    import os
    import re
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    commands = registered_commands()
    groups = sorted({tuple(c[:-1]) for c in commands} | {()})
    expected = {g: {c[len(g)] for c in commands if tuple(c[:len(g)]) == g} for g in groups}
    script = str(Path(sys.executable).with_name("preflab"))
    entry_points = [[script], [sys.executable, "-m", "preflab"],
                    [sys.executable, "-m", "preflab.cli"]]
    env = {**os.environ, "COLUMNS": "200"}

    def listed(argv: list[str]) -> tuple[int, set[str], str]:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        panel = done.stdout.split("Commands", 1)[-1]
        return done.returncode, set(re.findall(r"^│ ([a-z][a-z0-9-]*)\s{2,}", panel, re.M)), \
            done.stderr[-300:]

    calls = [(e, g) for e in entry_points for g in groups]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda call: listed([*call[0], *call[1], "--help"]), calls))
    assert len(calls) == 3 * 7
    for (entry, group), (code, names, err) in zip(calls, results, strict=True):
        assert code == 0, (entry, group, err)
        assert names == expected[group], (entry, group, names ^ expected[group])


def test_audit_bad_committee_is_one_clear_line(tmp_path) -> None:
    committee = tmp_path / "c.toml"
    committee.write_text('[[member]]\nname = "a"\nkind = "oracle"\nmodel = "minilm-l6"\n')
    result = run("audit", "x.jsonl", "--committee", committee, "--out", tmp_path / "o")
    assert result.exit_code == 2 and "unknown kind 'oracle'" in result.stderr


def test_steer_extract_generate_and_evaluate(tmp_path) -> None:
    from preflab.data.write import write_pairs
    from tests.train.helpers import short_pairs

    write_pairs(short_pairs(8), tmp_path / "p.jsonl")
    vec = tmp_path / "v.safetensors"
    result = run("steer", "extract", tmp_path / "p.jsonl", "--model", "tiny-llama",
                 "--out", vec, "--stimulus", "reply")
    assert result.exit_code == 0, result.output
    assert "from 8 pairs" in result.stdout and vec.is_file()
    result = run("steer", "generate", tmp_path / "p.jsonl", "--model", "tiny-llama",
                 "--vector", vec, "--coeff", "3", "--max-new-tokens", "6", "--limit", "3",
                 "--out", tmp_path / "g.jsonl")
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all({"prompt_id", "prompt", "reply"} <= set(r) for r in rows)
    result = run("eval-policy", "tiny-llama", "--heldout", tmp_path / "p.jsonl", "--steer",
                 vec, "--coeff", "3", "--out", tmp_path / "e", "--json")
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout.strip().splitlines()[-1])
    assert s["steer"] == str(vec) and s["coeff"] == 3.0 and s["perplexity"] > 1
    missing = run("steer", "generate", tmp_path / "p.jsonl", "--model", "tiny-llama",
                  "--vector", tmp_path / "nope.safetensors")
    assert missing.exit_code == 2 and "no such steering vector file" in missing.stderr


def test_rahf_hir_and_probe_commands(tmp_path) -> None:
    from preflab.data.write import write_pairs
    from tests.train.helpers import short_pairs

    write_pairs(short_pairs(8), tmp_path / "p.jsonl")
    write_pairs(short_pairs(6, seed=1), tmp_path / "q.jsonl")
    result = run("rahf", tmp_path / "p.jsonl", "--variant", "dual", "--base", "tiny-llama",
                 "--layers", "1", "--max-length", "256", "--out", tmp_path / "r", "--json")
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout.strip().splitlines()[-1])
    assert s["rahf"]["layers"] == [1] and s["config"]["lora_layers"] == [0]
    last = run("rahf", tmp_path / "p.jsonl", "--variant", "dual", "--base", "tiny-llama",
               "--layers", "2", "--max-length", "256", "--out", tmp_path / "r")
    assert last.exit_code == 2 and "layers must be in 1..1" in last.stderr
    assert (tmp_path / "r" / "step1-bad" / "preflab-train.json").is_file()
    bad = run("rahf", tmp_path / "p.jsonl", "--variant", "triple", "--base", "tiny-llama")
    assert bad.exit_code == 2  # typer names the choices (its box may wrap the line)
    assert "'triple' is not one of" in " ".join(re.sub("[│╭╮╰╯─]", " ", bad.stderr).split())
    result = run("hir", tmp_path / "p.jsonl", "--base", "tiny-llama", "--max-length", "256",
                 "--out", tmp_path / "h")
    assert result.exit_code == 0, result.output
    result = run("probe", tmp_path / "p.jsonl", tmp_path / "q.jsonl", "--model", "tiny-llama",
                 "--out", tmp_path / "pr")
    assert result.exit_code == 0, result.output
    assert "6 held-out pairs: accuracy" in result.stdout


@pytest.mark.parametrize("argv", [["label", "x.jsonl", "--limit", "-5"],
                                  ["label", "x.jsonl", "--sample", "0"],
                                  ["dpo", "x.jsonl", "--lr", "-1"],
                                  ["sft", "x.jsonl", "--epochs", "0"],
                                  ["bon", "x.jsonl", "--n", "0"],
                                  ["eval-rm", "m", "x.jsonl", "--split-halves",
                                   "--test-fraction", "1.5"]])
def test_numbers_out_of_range_are_one_line_before_any_work(argv: list[str]) -> None:
    result = run(*argv)
    assert result.exit_code == 2
    flag = argv[-2]  # named alone, or after the setting it sets: learning_rate (--lr)
    assert re.search(rf"error: (\w+ \()?{flag}\)? must be", result.stderr)
    assert len(result.stderr.splitlines()) == 1
