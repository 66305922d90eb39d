"""audit, clean and label under hostile conditions: folders they did not write, bad
records, texts longer than any model reads, a log instead of a terminal, and random
files (fuzzed). Every case is reproduced as it was found."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import typer.main
import typer.testing
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from preflab.audit.audit_pairs import audit
from preflab.clean.clean_pairs import clean
from preflab.cli import app
from preflab.data.demo import demo
from preflab.engine import EngineOptions

runner = CliRunner()
QUIET = EngineOptions(progress=False)
GOOD = {"prompt": "Say hi", "chosen": "Hi!", "rejected": "No."}


@pytest.fixture(scope="module", autouse=True)
def shared_cache(tmp_path_factory) -> Any:
    """One private cache for the module: the tiny models are built once. The
    transformers logger is quietened: its handler may hold the stderr of an earlier
    invoke, closed since, and a warning then prints a logging traceback."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        built = typer.main.get_command(app)  # build the click tree once (speed only)
        mp.setattr(typer.testing, "_get_command",
                   lambda a: built if a is app else typer.main.get_command(a), raising=False)
        yield
    hf_logging.set_verbosity(verbosity)


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "demo.jsonl"
    demo(path, n=12, flip_rate=0.25, seed=0)
    return path


def run(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def error_line(result: Any) -> str:
    """The one line a failed command ended with: rc 2, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr
    return last


def summary(result: Any) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def audit_args(data: Path, out: Path, *extra: Any) -> list[Any]:
    return ["audit", data, "--committee", "tiny", "--out", out, *extra]


def test_audit_and_clean_write_only_into_their_own_folders(tmp_path, pairs_file) -> None:
    """As found: both wrote report.html / summary.json over an existing folder's and
    left its unrelated files beside them."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    (theirs / "summary.json").write_text("{}")
    line = error_line(run(*audit_args(pairs_file, theirs)))
    assert "did not write" in line and "--overwrite" in line
    assert (theirs / "summary.json").read_text() == "{}" and len(list(theirs.iterdir())) == 2

    first = summary(run(*audit_args(pairs_file, tmp_path / "a", "--json")))
    again = summary(run(*audit_args(pairs_file, tmp_path / "a", "--json")))  # its own: reused
    assert again["n_pairs"] == first["n_pairs"] == 12
    assert sum(r["cached"] for r in again["member_runs"].values()) > 0  # resumed from cache
    assert summary(run(*audit_args(pairs_file, theirs, "--overwrite", "--json")))["n_pairs"] == 12
    assert (theirs / "notes.txt").read_text() == "keep me"  # other files are left alone

    line = error_line(run("clean", pairs_file, "--audit", tmp_path / "a", "--out", theirs))
    assert "preflab clean did not write" in line
    for _ in range(2):
        assert summary(run("clean", pairs_file, "--audit", tmp_path / "a", "--out",
                           tmp_path / "c", "--json"))["n_input"] == 12
    # the library functions, on their own earlier folders, even when told not to overwrite
    assert audit(pairs_file, out=tmp_path / "a", committee="tiny", overwrite=False,
                 engine_options=QUIET)["n_pairs"] == 12
    assert clean(pairs_file, tmp_path / "a", out=tmp_path / "c", overwrite=False)["n_input"] == 12


def test_one_bad_line_is_skipped_and_counted(tmp_path, pairs_file) -> None:
    """As found: one bad line in a 160k-pair file stopped the audit; no --on-error."""
    lines = pairs_file.read_text().splitlines()
    data = tmp_path / "one-bad.jsonl"
    data.write_text("\n".join([*lines[:3], '{"prompt": "Say hi", "chosen": 7}', *lines[3:]])
                    + "\n")
    assert "line 4" in error_line(run(*audit_args(data, tmp_path / "f")))
    assert not (tmp_path / "f").exists()  # a failed read leaves no folder behind
    rejects = tmp_path / "rejects.jsonl"
    args = audit_args(data, tmp_path / "a", "--on-error", "skip", "--rejects", rejects, "--json")
    result = run(*args)
    s = summary(result)
    assert s["n_pairs"] == 12 and s["n_rejected_on_read"] == 1 and s["rejects"] == str(rejects)
    assert [json.loads(r)["position"] for r in rejects.read_text().splitlines()] == [4]
    assert "1 of 13 records" in result.stderr and "skipped" in result.stderr
    assert summary(run(*args))["n_rejected_on_read"] == 1  # a rerun replaces its own rejects
    other = tmp_path / "mine.jsonl"
    other.write_text("mine\n")
    assert "exists" in error_line(run(*audit_args(data, tmp_path / "a", "--on-error", "skip",
                                                  "--rejects", other)))
    assert other.read_text() == "mine\n"
    # clean reads the data as the audit did
    assert "line 4" in error_line(run("clean", data, "--audit", tmp_path / "a", "--out",
                                      tmp_path / "c0"))
    assert not (tmp_path / "c0").exists()
    c = summary(run("clean", data, "--audit", tmp_path / "a", "--on-error", "skip", "--out",
                    tmp_path / "c", "--json"))
    assert c["n_input"] == 12 and c["n_rejected_on_read"] == 1


def test_texts_longer_than_every_member_reads_are_warned_about(tmp_path, pairs_file) -> None:
    """As found: a huge reply (5 MB; here 40 kB, over 4 characters x 2048 tokens, the
    most any tiny member reads) went in without a word."""
    lines = pairs_file.read_text().splitlines()
    data = tmp_path / "long.jsonl"
    huge = {**json.loads(lines[0]), "chosen": "Hello there. " * 3200}
    huge.pop("id", None)
    data.write_text("\n".join([json.dumps(huge), *lines]) + "\n")
    result = run(*audit_args(data, tmp_path / "a", "--json"))
    assert summary(result)["oversized"] == 1
    warned = [w for w in result.stderr.splitlines() if "truncate" in w]
    assert len(warned) == 1 and warned[0].startswith("warning: prompts or replies over 8,192")
    assert ": 1;" in warned[0]
    result = run("label", data, "--judge", "tiny-llama", "--limit", "2", "--max-length", "512",
                 "--out", tmp_path / "l", "--json")
    assert summary(result)["oversized"] == 1
    assert any(w.startswith("warning: prompts or replies over 2,048")
               for w in result.stderr.splitlines())


def test_a_log_gets_progress_lines_while_the_audit_runs(tmp_path) -> None:
    """As found: with stderr redirected, the bars showed only when the run was over."""
    data = tmp_path / "demo.jsonl"
    demo(data, n=6, flip_rate=0.25, seed=1)
    env = {**os.environ, "PREFLAB_PROGRESS_SECONDS": "0.2"}
    done = subprocess.run([sys.executable, "-m", "preflab", *map(str, audit_args(
        data, tmp_path / "a", "--cache", tmp_path / "scores.sqlite", "--max-tokens", "512"))],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    # Plain lines, no live bar. Lines while a task runs depend on how fast this machine
    # scores 6 pairs (tests/engine/test_core.py checks them with a task held open);
    # every task's final line is always there.
    assert not any("━" in line for line in lines), done.stderr[-2000:]
    running = [line for line in lines if re.match(r"tiny-[\w-]+( \(embed\))?: \d+/\d+ "
                                                  r"\(\d+%\), ", line)]
    assert all(re.search(r", elapsed \d+:\d\d:\d\d, ETA (\d+:\d\d:\d\d|-)$", line)
               for line in running), running
    assert any(line.startswith("tiny-judge: 12/12 (100%) done in ") for line in lines)


# ---- fuzz: random files through `preflab audit --committee tiny --on-error skip` ---------

FUZZ = settings(max_examples=10, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
texts = st.text(max_size=10)
values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | texts,
                      lambda inner: st.lists(inner, max_size=2)
                      | st.dictionaries(texts, inner, max_size=2), max_leaves=4)
fields = st.sampled_from(["prompt", "chosen", "rejected", "id", "subset", "p_chosen", "meta"])
good = st.builds(lambda i, p: {**GOOD, "chosen": f"Hi {i}", "prompt": p or "Say hi"},
                 st.integers(0, 10**6), texts)
record = good | st.dictionaries(fields, values, max_size=4) | values


def audit_file(data: bytes, suffix: str) -> None:
    """No traceback: rc 0 with a summary, or rc 2 ending with one error line."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"in{suffix}"
        src.write_bytes(data)
        result = run(*audit_args(src, Path(tmp) / "out", "--on-error", "skip", "--json"))
        if result.exit_code == 0:
            s = summary(result)
            assert s["n_pairs"] >= 3 and (Path(tmp) / "out" / "report.html").exists()
        else:
            error_line(result)


FOUR = [{**GOOD, "prompt": f"Say hi {i}", "chosen": f"Hi {i}!"} for i in range(4)]


@FUZZ
@given(st.lists(record, max_size=6))
@example([*FOUR[:2], {"chosen": 1}, *FOUR[2:]])  # one bad line among pairs: audited
def test_fuzz_audit_random_json_lines(records: list[Any]) -> None:
    audit_file("".join(json.dumps(r) + "\n" for r in records).encode(), ".jsonl")


@FUZZ
@given(st.lists(good, min_size=1, max_size=6), st.floats(0, 1))
@example([*FOUR, GOOD], 0.85)  # cut in the fourth pair: the three before it are audited
def test_fuzz_audit_truncated_gzip(records: list[Any], keep: float) -> None:
    full = gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode(), mtime=0)
    audit_file(full[:round(len(full) * keep)], ".jsonl.gz")
