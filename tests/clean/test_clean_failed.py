"""Cleaning after an audit with failed pairs (review finding 8): the pairs a member
could not score are not in the audit's table, and `clean` says so, naming how many
and failures.jsonl, instead of blaming --limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from preflab.cli import app
from preflab.engine import EngineOptions

runner = CliRunner()
N = 30


def fail_on_long(messages: list[dict[str, str]], reply: str) -> float:
    """A scorer that cannot read a reply over 300 characters."""
    if len(reply) > 300:
        raise ValueError("reply too long for this scorer")
    return float(len(reply))


@pytest.fixture(scope="module")
def failed_audit(hh_path: Path, tmp_path_factory) -> tuple[Path, dict]:
    from preflab.audit.audit_pairs import audit

    folder = tmp_path_factory.mktemp("failed")
    committee = folder / "fails.toml"
    committee.write_text('[[member]]\nname = "picky"\nkind = "python"\n'
                         f'function = "{__name__}:fail_on_long"\n')
    summary = audit(hh_path, out=folder / "audit", committee=committee, limit=N,
                    engine_options=EngineOptions(cache_path=":memory:", progress=False))
    assert summary["n_failed"] > 0 and summary["n_pairs"] == N - summary["n_failed"]
    return folder / "audit", summary


@pytest.mark.parametrize("extra", [[], ["--limit", str(N)]])
def test_clean_names_the_audits_failed_pairs(hh_path, failed_audit, tmp_path,
                                             extra: list[str]) -> None:
    audit, summary = failed_audit
    result = runner.invoke(app, ["clean", str(hh_path), "--audit", str(audit), "--method",
                                 "vote-maj", "--out", str(tmp_path / "c"), *extra])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, said
    assert f"{summary['n_failed']} of the {N} pairs it read failed" in said, said
    assert str(audit / "failures.jsonl") in said.replace(" ", "") or \
        "failures.jsonl" in said
    assert "made with --limit" not in said and "(--limit" not in said
    failed = [json.loads(line)["id"] for line in (audit / "failures.jsonl").open()]
    assert failed[0] in said  # the first failed pair, by id
