"""The audit's console table and report on a committee of `scores` members (rewards
computed elsewhere, no model): the first pair missing from one member's file (issue 32,
item 3), members that negate each other shown with their orientation and weights >= 0
(item 2), and the report's verdict, next steps, whole conversations and flagged pairs
(item 10)."""

from __future__ import annotations

import csv
import json
import shlex
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from preflab.cli import app
from preflab.committee.scores import write_scores
from preflab.data.read import iter_pairs

N = 40


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFLAB_CACHE", str(tmp_path / "cache"))


def scores_committee(folder: Path, hh_result: Any, first_missing: bool = False
                     ) -> tuple[Path, list[Any]]:
    """Three `scores` members over the first N HH pairs: `fit` (agrees with most labels),
    `cosine` (fit negated, as minilm-cosine negates crossfit-fit on HH) and `other`
    (independent). With `first_missing`, `cosine` is independent too (so a pair can have
    every vote) and `other`'s file lacks the first pair."""
    pairs = list(islice(iter_pairs(hh_result.pairs), N))
    rng = np.random.default_rng(0)
    fit, other, third = (rng.normal(0.8, 1.0, N) for _ in range(3))
    if first_missing:
        other[0] = np.nan
    zero = np.zeros(N)
    lines = []
    for name, margin in (("fit", fit), ("cosine", third if first_missing else -2 * fit),
                         ("other", other)):
        path = write_scores(folder / f"{name}.jsonl", pairs, margin, zero)
        lines.append(f'[[member]]\nname = "{name}"\nkind = "scores"\npath = "{path}"\n')
    committee = folder / "elsewhere.toml"
    committee.write_text("\n".join(lines))
    return committee, pairs


def run_audit(hh_path: Path, committee: Path, out: Path) -> Any:
    result = CliRunner().invoke(app, ["audit", str(hh_path), "--committee", str(committee),
                                      "--limit", str(N), "--out", str(out), "--json"])
    return result


def test_report_is_written_when_the_first_pair_lacks_a_members_score(
        tmp_path: Path, hh_path: Path, hh_result: Any) -> None:
    committee, pairs = scores_committee(tmp_path, hh_result, first_missing=True)
    result = run_audit(hh_path, committee, tmp_path / "a")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a" / "report.html").is_file()
    table = pd.read_parquet(tmp_path / "a" / "audit.parquet").set_index("id")
    first = pairs[0].id
    assert pd.isna(table.loc[first, "vote.other"])  # null, not 0
    assert table["vote.other"].isna().sum() == 1
    assert table.loc[first, "members"] == 2 and table.loc[first, "missing_votes"] == 1


def test_console_and_report_show_orientation_and_weights_of_the_committee(
        tmp_path: Path, hh_path: Path, hh_result: Any) -> None:
    committee, _ = scores_committee(tmp_path, hh_result)
    result = run_audit(hh_path, committee, tmp_path / "a")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    combined = summary["committee_probability"]
    assert summary["voters"] == ["fit+cosine", "other"]
    assert combined["orientation"] == {"fit": 1, "cosine": -1, "other": 1}
    assert all(w >= 0 for w in combined["weights"].values())
    table = pd.read_parquet(tmp_path / "a" / "audit.parquet")
    assert {"none", "unanimous"} & set(table["bin"])  # two voters, not fit against cosine
    out = " ".join(result.stdout.split())
    assert "orientation" in out and "the committee counts the member turned round" in out
    row = next(line for line in result.stdout.splitlines() if "│ cosine" in line)
    assert row.split("│")[5].strip() == "-1"  # the orientation column
    assert "Votes and bins count 2 voters: fit and cosine turned round as one voter; other" \
        in out
    members_table = result.stdout.split("members (combine=")[1].split("└")[0]
    assert "-0." not in members_table  # no negative weight next to docs that bound them at 0
    page = (tmp_path / "a" / "report.html").read_text()
    assert "<th>orientation</th>" in page and "-1 turned round" in page


def test_report_verdict_next_steps_conversations_and_flagged_pairs(
        tmp_path: Path, hh_path: Path, hh_result: Any) -> None:
    committee, pairs = scores_committee(tmp_path, hh_result)
    out = tmp_path / "a"
    result = run_audit(hh_path, committee, out)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    page = (out / "report.html").read_text()
    assert "`" not in page
    assert "Can this committee be trusted here?" in page
    assert summary["verdict"]["level"] in ("no", "weak", "yes")
    assert "fit and cosine negate each other" in summary["verdict"]["text"]
    # next steps: this run's real paths
    data, audit_dir = shlex.quote(str(hh_path.resolve())), shlex.quote(str(out.resolve()))
    assert f"preflab review init {data} --audit {audit_dir} --db" in page
    assert f"preflab clean {data} --audit {audit_dir}" in page
    # the whole conversation of a multi-turn example, not only its last turn
    table = pd.read_parquet(out / "audit.parquet")
    by_id = {p.id: p for p in pairs}
    shown = [by_id[i] for i in table["id"] if f"id {i}" in page]
    multi = [p for p in shown if len(p.prompt) > 1]
    assert multi
    import html

    assert html.escape(multi[0].prompt[0]["content"][:60]) in page
    # flagged.csv: the pairs the committee doubts, with their texts
    flagged = table[table["source"] != ""]
    assert len(flagged) == sum(summary["sources"].values()) > 0
    with (out / "flagged.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == flagged["id"].tolist()
    first = by_id[rows[0]["id"]]
    assert rows[0]["chosen"] == first.chosen
    assert rows[0]["conversation"].startswith(f"{first.prompt[0]['role']}: ")
    assert "flagged.csv" in page and "flagged pairs" in result.stdout


def test_a_pair_no_member_scored_is_its_own_bin_on_console_and_report(
        tmp_path: Path, hh_path: Path, hh_result: Any) -> None:
    """Review findings 6 and 7 end to end: the first pair is in no member's file, so it is
    ``unscored`` (not ``none``) in the table, the console and the report; Fleiss' kappa is
    of the pairs each voter voted on, and a member with no score at all is named."""
    pairs = list(islice(iter_pairs(hh_result.pairs), N + 1))
    rng = np.random.default_rng(1)
    lines = []
    for name in ("a", "b", "mute"):  # mute scores only a pair past the --limit
        margin = rng.normal(0.8, 1.0, N + 1) if name != "mute" else np.full(N + 1, np.nan)
        margin[0], margin[N] = np.nan, 1.0
        path = write_scores(tmp_path / f"{name}.jsonl", pairs, margin, np.zeros(N + 1))
        lines.append(f'[[member]]\nname = "{name}"\nkind = "scores"\npath = "{path}"\n')
    committee = tmp_path / "c.toml"
    committee.write_text("\n".join(lines))
    result = CliRunner().invoke(app, ["audit", str(hh_path), "--committee", str(committee),
                                      "--limit", str(N), "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(tmp_path / "a" / "audit.parquet").set_index("id")
    assert table.loc[pairs[0].id, "bin"] == "unscored"
    assert (table["bin"] == "unscored").sum() == 1
    row = next(line for line in result.stdout.splitlines() if "unscored" in line)
    assert row.split("│")[2].strip() == "1"
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["bins"]["overall"]["unscored"]["count"] == 1
    assert summary["fleiss_kappa_left_out"] == ["mute"]
    assert np.isfinite(summary["fleiss_kappa"])
    page = (tmp_path / "a" / "report.html").read_text()
    assert "<td>unscored</td>" in page and "mute cast no vote and is left out" in page
