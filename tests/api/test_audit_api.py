"""``pl.audit`` on what a notebook holds (a ``datasets.Dataset``, a DataFrame, a list
of pairs) gives the table the command line gives on the same pairs; results stay in
memory until saved, and saving refuses a folder audit did not write."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from datasets import Dataset

import preflab as pl
from preflab.data.outputs import OutputExistsError

PREFLAB = str(Path(sys.executable).with_name("preflab"))


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("api") / "pairs.jsonl"
    pl.demo(path, n=40, flip_rate=0.25, seed=3)
    return path


@pytest.fixture(scope="module")
def cli_table(pairs: Path, tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("cli") / "audit"
    subprocess.run([PREFLAB, "audit", str(pairs), "--committee", "tiny", "--out", str(out)],
                   check=True, capture_output=True)
    return pd.read_parquet(out / "audit.parquet")


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open()]


@pytest.mark.parametrize("kind", ["Dataset", "DataFrame", "pairs"])
def test_pl_audit_in_memory_equals_the_command_line(kind, pairs, cli_table, tmp_path) -> None:
    rows = records(pairs)
    data = {"Dataset": lambda: Dataset.from_list(rows),
            "DataFrame": lambda: pd.DataFrame(rows),
            "pairs": lambda: list(pl.read_pairs(pairs).pairs.to_list()) and
            [pl.PreferencePair.from_row(r) for r in pl.read_pairs(pairs).pairs.to_list()]
            }[kind]()
    result = pl.audit(data, committee="tiny")
    assert isinstance(result, pl.Audit) and result.config.committee == "tiny"
    pd.testing.assert_frame_equal(result.table, cli_table)
    assert result.summary["data"].startswith(f"<{type(data).__name__} of 40 rows>")
    assert set(result.members.index) == set(result.summary["member_diagnostics"])
    assert result.bins["count"].sum() == 40
    assert "<html" in result.report_html.lower() and len(result.flagged) > 0


def test_an_audit_is_saved_only_where_audit_may_write(pairs, tmp_path) -> None:
    result = pl.audit(pairs, pl.AuditConfig(committee="tiny"), limit=20)
    assert not any(tmp_path.iterdir())  # nothing written until asked
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "report.html").write_text("someone else's report")
    with pytest.raises(OutputExistsError, match="did not write"):
        result.save(theirs)
    assert (theirs / "report.html").read_text() == "someone else's report"
    saved = result.save(tmp_path / "mine")
    again = pl.Audit.load(saved)
    pd.testing.assert_frame_equal(again.table, result.table)
    assert again.config == result.config and again.config.limit == 20
    result.save(saved)  # its own folder: written again without overwrite
    rerun = pl.audit(pairs, saved / "config.toml")  # the run's settings reproduce it
    pd.testing.assert_frame_equal(rerun.table, result.table)
