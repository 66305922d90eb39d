"""An audit made with `--limit N` can be cleaned (issue 32, item 11): `clean` takes the
audit's own selection (the first N pairs, recorded in its summary) or `--limit N` with
the same meaning, and says how many pairs it leaves out."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from preflab.cli import app
from preflab.data.read import iter_pairs, read_pairs

runner = CliRunner()
N = 12


@pytest.fixture(scope="module")
def hh_audit(hh_path, tmp_path_factory):
    """The first 12 HH pairs audited by the `tiny` committee (`preflab audit --limit 12`)."""
    out = tmp_path_factory.mktemp("limit") / "audit"
    result = runner.invoke(app, ["audit", str(hh_path), "--committee", "tiny", "--limit",
                                 str(N), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_clean_takes_the_audits_limit(hh_path, hh_audit, tmp_path) -> None:
    first = [p.id for p, _ in zip(iter_pairs(read_pairs(hh_path).pairs), range(N),
                                   strict=False)]
    result = runner.invoke(app, ["clean", str(hh_path), "--audit", str(hh_audit), "--method",
                                 "vote-maj", "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"cleaning the first {N} of the 2312 pairs" in said and "the audit's --limit" in said
    assert f"the other {2312 - N} are not in the output" in said
    manifest = pd.read_parquet(tmp_path / "c" / "manifest.parquet")
    assert list(manifest["id"]) == first
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["n_input"] == N and summary["limit"] == N
    assert json.loads((hh_audit / "summary.json").read_text())["limit"] == N
    # --limit N says the same; another N is refused, naming the audit's
    same = runner.invoke(app, ["clean", str(hh_path), "--audit", str(hh_audit), "--method",
                               "vote-maj", "--limit", str(N), "--out", str(tmp_path / "d")])
    assert same.exit_code == 0, same.output
    assert list(pd.read_parquet(tmp_path / "d" / "manifest.parquet")["id"]) == first
    other = runner.invoke(app, ["clean", str(hh_path), "--audit", str(hh_audit), "--limit",
                                "20", "--out", str(tmp_path / "e")])
    assert other.exit_code == 2 and "made with --limit 12" in other.output


def test_an_audit_without_a_recorded_limit_is_cleaned_by_its_ids(hh_path, hh_audit,
                                                                 tmp_path) -> None:
    old = tmp_path / "old-audit"  # as an audit written before the summary kept --limit
    old.mkdir()
    (old / "audit.parquet").write_bytes((hh_audit / "audit.parquet").read_bytes())
    summary = json.loads((hh_audit / "summary.json").read_text())
    summary.pop("limit", None)
    (old / "summary.json").write_text(json.dumps(summary))
    result = runner.invoke(app, ["clean", str(hh_path), "--audit", str(old), "--method",
                                 "vote-maj", "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert "the audit covers only them" in " ".join(result.output.split())
    assert len(pd.read_parquet(tmp_path / "c" / "manifest.parquet")) == N
    # without --limit on either side, data other than the audit's is still refused
    table = pd.read_parquet(old / "audit.parquet")
    table.iloc[::-1].to_parquet(old / "audit.parquet", index=False)
    bad = runner.invoke(app, ["clean", str(hh_path), "--audit", str(old), "--out",
                              str(tmp_path / "x")])
    assert bad.exit_code == 2 and "covers 12 pairs but the data has 2312" in bad.output
