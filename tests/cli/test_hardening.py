"""The data commands under hostile input: damaged files, missing paths, existing outputs,
narrow pipes, bracketed text, bad numbers, Ctrl-C, and random bytes (fuzzed)."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
import typer.main
import typer.testing
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from preflab.cli import app
from preflab.cli.console import INTERRUPTED, user_errors

runner = CliRunner()
SCRIPT = str(Path(sys.executable).with_name("preflab"))
GOOD = {"prompt": "Say hi", "chosen": "Hi!", "rejected": "No."}
# What a whole source may fail with even under --on-error skip (nothing readable to skip).
WHOLE_SOURCE = ("empty input", "not a readable Parquet file", "no pairs to write",
                "truncated or corrupt, nothing readable")


@pytest.fixture(scope="module", autouse=True)
def command_built_once() -> Any:
    """typer's runner rebuilds the click tree of all 26 commands on every invoke (85% of
    a small command's time); build the app's once. Without the private name: just slower."""
    built = typer.main.get_command(app)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(typer.testing, "_get_command",
                   lambda a: built if a is app else typer.main.get_command(a), raising=False)
        yield


def run(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def error_line(result: Any) -> str:
    """The single line a failed command printed: rc 2 and no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def summary(result: Any) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def pairs(n: int) -> list[dict[str, Any]]:
    """`n` good pairs, each with its own prompt."""
    return [{**GOOD, "prompt": f"Say hi {i}"} for i in range(n)]


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_truncated_hh_file_keeps_its_pairs_and_says_where(hh_path: Path, tmp_path) -> None:
    data = hh_path.read_bytes()
    cut = tmp_path / hh_path.name
    cut.write_bytes(data[: len(data) // 2])
    n = zlib.decompressobj(wbits=31).decompress(data[: len(data) // 2]).count(b"\n")
    line = error_line(run("convert", cut, tmp_path / "out.jsonl"))
    assert line.startswith(f"error: {cut}, line {n + 1}: file truncated or corrupt here")
    assert not (tmp_path / "out.jsonl").exists()
    report = summary(run("convert", cut, tmp_path / "out.jsonl", "--on-error", "skip",
                         "--rejects", tmp_path / "rejects.jsonl"))
    assert (report["n_pairs"], report["n_rejected"], report["n_records"]) == (n, 1, n + 1)
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == n
    assert json.loads((tmp_path / "rejects.jsonl").read_text())["position"] == n + 1
    report = summary(run("inspect", cut, "--tokenizer", "none", "--json"))
    assert report["n_pairs"] == n and report["rejects_by_reason"] == {
        "file truncated or corrupt here; the rest is unreadable": 1}
    parquet = tmp_path / "p.parquet"
    assert run("convert", cut, parquet, "--on-error", "skip").exit_code == 0
    parquet.write_bytes(parquet.read_bytes()[:-100])
    line = error_line(run("inspect", parquet, "--tokenizer", "none"))
    assert line.startswith(f"error: {parquet}: not a readable Parquet file")


def test_missing_local_paths_never_reach_the_hub(tmp_path, monkeypatch) -> None:
    import datasets

    def no_hub(*args: object, **kwargs: object) -> None:
        raise AssertionError("a local path was looked up on the hub")

    monkeypatch.setattr(datasets, "load_dataset", no_hub)
    for path in ("dir/file.jsonl", "./nothere.jsonl", "a/b/c", "~/x.parquet"):
        assert error_line(run("inspect", path, "--tokenizer", "none")) == (
            f"error: no such file: {path}")
        (tmp_path / "o.jsonl").write_text("")  # the missing input is named first
        assert error_line(run("convert", path, tmp_path / "o.jsonl")) == (
            f"error: no such file: {path}")
        assert error_line(run("split", path, "--out", tmp_path / "s")) == (
            f"error: no such file: {path}")
        assert not (tmp_path / "s").exists()


def test_an_offline_hub_id_fails_fast_in_one_line() -> None:
    """A fresh process: `datasets` reads HF_HUB_OFFLINE when it is imported."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run([SCRIPT, "inspect", "preflab-no-owner/no-such-dataset",
                           "--tokenizer", "none"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line == ("error: preflab-no-owner/no-such-dataset: no such local file, not in the "
                    "local cache, and the hub is unreachable: offline mode (HF_HUB_OFFLINE is "
                    "set)")


def test_outputs_are_replaced_only_when_asked(tmp_path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", pairs(8))
    out = tmp_path / "out.jsonl"
    out.write_text("keep me\n")
    assert "out.jsonl exists; pass --overwrite" in error_line(run("convert", src, out))
    assert out.read_text() == "keep me\n"
    assert summary(run("convert", src, out, "--overwrite"))["n_pairs"] == 8
    assert len(out.read_text().splitlines()) == 8

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    assert "did not write" in error_line(run("split", src, "--out", folder))
    split_dir = tmp_path / "split"
    first = summary(run("split", src, "--out", split_dir))
    marker = json.loads((split_dir / ".preflab-split.json").read_text())
    assert marker["command"] == "split" and marker["n_test"] == first["n_test"] == 4
    again = summary(run("split", src, "--out", split_dir, "--seed", 1))  # its own folder
    assert json.loads((split_dir / ".preflab-split.json").read_text())["seed"] == 1
    assert again["n_train"] + again["n_test"] == 8
    assert summary(run("split", src, "--out", folder, "--overwrite"))["n_test"] == 4
    assert (folder / "notes.txt").read_text() == "keep"

    demo = tmp_path / "demo.jsonl"
    demo.write_text("keep me\n")
    assert "demo.jsonl exists" in error_line(run("data", "demo", "--out", demo, "--n", 4))
    assert summary(run("data", "demo", "--out", demo, "--n", 4, "--overwrite"))["n_pairs"] == 4


def test_json_summaries_survive_narrow_pipes_and_spaces(tmp_path) -> None:
    """Real pipes (fresh processes) with COLUMNS=40 and spaces in every path."""
    folder = tmp_path / "my data dir"
    folder.mkdir()
    src = write_jsonl(folder / "in put.jsonl", pairs(6))
    calls = [["convert", src, folder / "out put file.parquet"],
             ["split", src, "--out", folder / "split out"],
             ["data", "demo", "--out", folder / "demo file.jsonl", "--n", 5],
             ["inspect", src, "--tokenizer", "none", "--json"]]
    env = {**os.environ, "COLUMNS": "40", "TERM": "dumb"}

    def call(args: list[Any]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([SCRIPT, *map(str, args)], capture_output=True, text=True,
                              env=env, timeout=120)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(call, calls))
    for args, done in zip(calls, results, strict=True):
        assert done.returncode == 0, (args, done.stderr)
        (line,) = done.stdout.strip().splitlines()
        report = json.loads(line)
        assert any(" " in str(v) for v in report.values()), report


def test_bracketed_text_is_shown_not_eaten(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "keys[1].jsonl", [{"a": 1}])
    line = error_line(run("convert", "keys[1].jsonl", "o.jsonl"))
    assert line.startswith("error: keys[1].jsonl, line 1: unknown format: record has keys [a];")
    write_jsonl(tmp_path / "d[x].jsonl", [{**GOOD, "subset": "[bold]odd[/]"}])
    result = run("inspect", "d[x].jsonl", "--tokenizer", "none")
    assert result.exit_code == 0 and "[bold]odd[/]" in result.stdout
    assert "d[x].jsonl (trl)" in result.stdout

    tiny = typer.Typer()

    @tiny.command()
    @user_errors
    def boom(kind: str = "value") -> None:
        if kind == "value":
            raise ValueError("committee needs at least one [] table\nsee [member]\u2028[/]")
        raise KeyboardInterrupt

    result = runner.invoke(tiny, [])
    assert error_line(result) == "error: committee needs at least one [] table see [member] [/]"
    result = runner.invoke(tiny, ["--kind", "interrupt"])
    assert result.exit_code == 130 and result.stderr.strip() == INTERRUPTED


def test_ctrl_c_in_a_command_is_one_line_and_130(tmp_path, monkeypatch) -> None:
    import preflab.data.convert

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(preflab.data.convert, "convert", interrupted)
    result = run("convert", tmp_path / "in.jsonl", tmp_path / "out.jsonl")
    assert result.exit_code == 130, result.output
    assert result.stderr.strip() == "interrupted: rerun the same command to resume"
    assert "Traceback" not in result.output


def test_numbers_and_empty_inputs_are_checked(tmp_path) -> None:
    for args in (["data", "demo", "--out", tmp_path / "d.jsonl", "--n", 0],
                 ["data", "demo", "--out", tmp_path / "d.jsonl", "--flip-rate", 2],
                 ["data", "demo", "--out", tmp_path / "d.jsonl", "--max-turns", 0],
                 ["split", "x.jsonl", "--seed", -1],
                 ["inspect", "x.jsonl", "--max-tokens", 0]):
        result = run(*args)
        assert result.exit_code == 2 and "Invalid value" in result.output, args
    assert not (tmp_path / "d.jsonl").exists()
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert "empty input" in error_line(run("inspect", empty, "--tokenizer", "none"))
    assert summary(run("inspect", empty, "--tokenizer", "none", "--json",
                       "--allow-empty"))["n_records"] == 0
    assert "empty input" in error_line(run("convert", empty, tmp_path / "o.jsonl"))
    assert not (tmp_path / "o.jsonl").exists()
    assert summary(run("convert", empty, tmp_path / "o.jsonl", "--allow-empty"))["n_pairs"] == 0
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"a": 1}, {"b": 2}])
    line = error_line(run("convert", bad, tmp_path / "b.jsonl", "--on-error", "skip"))
    assert "no pairs to write, all 2 records were rejected" in line


def test_inspect_counts_texts_over_max_tokens(tmp_path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", [{**GOOD, "chosen": "one two three four"},
                                              {**GOOD, "rejected": "a b c d e f"}])
    report = summary(run("inspect", data, "--tokenizer", "none", "--json", "--max-tokens", 3))
    assert report["max_tokens"] == 3
    assert report["over_max_tokens"] == {"prompt": 0, "chosen": 1, "rejected": 1}
    table = run("inspect", data, "--tokenizer", "none", "--max-tokens", 3).stdout
    assert "over_max_tokens" in table and "chosen: 1" in table


# ---- fuzz: random inputs through inspect and convert -------------------------------------

FUZZ = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
texts = st.text(max_size=12)
messages = st.lists(st.fixed_dictionaries({
    "role": st.sampled_from(["user", "assistant", "system", "bot"]), "content": texts}),
    max_size=3)
values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | texts,
                      lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(texts, inner, max_size=3), max_leaves=6)
fields = st.sampled_from(["prompt", "chosen", "rejected", "id", "subset", "p_chosen", "meta",
                          "flags", "rejected_prompt", "extra"])
pair = st.fixed_dictionaries({"prompt": texts | messages, "chosen": texts | messages,
                              "rejected": texts | messages})
record = pair | st.dictionaries(fields, values | messages, max_size=5) | values
valid = st.lists(st.builds(lambda i, p: {**GOOD, "chosen": f"Hi {i}", "prompt": p},
                           st.integers(0, 10**6), texts), min_size=1, max_size=40)


def n_lines(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def fuzz_one(data: bytes, suffix: str, readable: int | None) -> None:
    """inspect and convert (skip, then fail) on one input: no traceback, rc 0 or 2 with
    one line; in skip mode every readable record is a pair or a reject."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        src = folder / f"in{suffix}"
        src.write_bytes(data)
        for command, extra in (("inspect", ["--tokenizer", "none", "--json"]),
                               ("convert", [folder / "out.jsonl", "--on-error", "skip"])):
            rejects = folder / f"rejects-{command}.jsonl"
            result = run(command, src, *extra, "--rejects", rejects)
            if result.exit_code == 2:
                assert any(w in error_line(result) for w in WHOLE_SOURCE), result.stderr
                continue
            report = summary(result)
            assert report["n_pairs"] + report["n_rejected"] == report["n_records"]
            assert readable is None or report["n_records"] == readable
            assert rejects.read_bytes().count(b"\n") == report["n_rejected"]
            if command == "convert":
                assert (folder / "out.jsonl").read_bytes().count(b"\n") == report["n_pairs"]
        result = run("convert", src, folder / "strict.jsonl")
        if result.exit_code != 0:
            error_line(result)
        else:
            assert summary(result)["n_rejected"] == 0


@FUZZ
@given(st.binary(max_size=600), st.sampled_from([".jsonl", ".jsonl.gz", ".csv", ".parquet"]))
def test_fuzz_random_bytes(data: bytes, suffix: str) -> None:
    fuzz_one(data, suffix, n_lines(data) if suffix == ".jsonl" else None)


@FUZZ
@given(st.lists(record, max_size=8))
@example([{"\x85": None}])  # a key with a line break once split the error line
def test_fuzz_random_json_lines(records: list[Any]) -> None:
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    fuzz_one(data, ".jsonl", len(records))


@FUZZ
@given(valid, st.floats(0, 1))
def test_fuzz_truncated_gzip(records: list[Any], keep: float) -> None:
    full = gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode(), mtime=0)
    cut = round(len(full) * keep)
    try:
        whole = zlib.decompressobj(wbits=31).decompress(full[:cut]).count(b"\n")
    except zlib.error:
        whole = 0
    fuzz_one(full[:cut], ".jsonl.gz", whole + (0 < cut < len(full)))


@FUZZ
@given(valid, st.floats(0, 1))
def test_fuzz_truncated_parquet(records: list[Any], keep: float) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records), buffer)
    full = buffer.getvalue()
    cut = round(len(full) * keep)
    fuzz_one(full[:cut], ".parquet", len(records) if cut == len(full) else None)
