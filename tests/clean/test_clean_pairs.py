"""clean and bench noise end to end with real (tiny, in-process) models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from preflab.audit.audit_pairs import audit
from preflab.clean.clean_pairs import clean
from preflab.clean.methods import VARIANTS
from preflab.clean.noise import inject_flips, restore_truth
from preflab.cli import app
from preflab.data.demo import demo, demo_pairs
from preflab.data.read import iter_pairs, read_pairs
from preflab.data.write import write_pairs
from preflab.engine import EngineOptions

runner = CliRunner()
QUIET = EngineOptions(progress=False)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFLAB_CACHE", str(tmp_path / "cache"))


def test_clean_hh_keeps_the_hh_format_and_records_everything(tmp_path, hh_path) -> None:
    pairs = list(iter_pairs(read_pairs(hh_path).pairs))[:40]
    data = tmp_path / "harmless-base-small.jsonl.gz"
    write_pairs(pairs, data, to="hh")
    audit(data, committee="tiny", out=tmp_path / "a", engine_options=QUIET)
    result = runner.invoke(app, ["clean", str(data), "--audit", str(tmp_path / "a"),
                                 "--method", "vote-maj-flip", "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["format"] == "hh" and summary["output"].endswith("cleaned.jsonl.gz")
    manifest = pd.read_parquet(tmp_path / "c" / "manifest.parquet")
    assert list(manifest["id"]) == [p.id for p in pairs]
    assert {"action", "reason", "method", "params", "source", "signal", "output_id"} <= set(
        manifest.columns)
    flips = manifest["action"] == "flip"
    assert flips.sum() == summary["flip"] > 0
    assert (manifest.loc[flips, "source"] != "").all()
    out = list(iter_pairs(read_pairs(tmp_path / "c" / "cleaned.jsonl.gz").pairs))
    assert len(out) == 40
    for pair, new, flip in zip(pairs, out, flips, strict=True):
        if flip:
            assert (new.chosen, new.rejected) == (pair.rejected, pair.chosen)
        else:
            assert new.id == pair.id
    # --to trl, and an audit of other data is refused with a clear message
    assert runner.invoke(app, ["clean", str(data), "--audit", str(tmp_path / "a"), "--to",
                               "trl", "--out", str(tmp_path / "t")]).exit_code == 0
    assert (tmp_path / "t" / "cleaned.jsonl.gz").exists()
    other = tmp_path / "other.jsonl"
    write_pairs(pairs[:39], other)
    bad = runner.invoke(app, ["clean", str(other), "--audit", str(tmp_path / "a"), "--out",
                              str(tmp_path / "never")])
    assert bad.exit_code == 2 and "covers 40 pairs but the data has 39" in bad.output
    assert not (tmp_path / "never").exists()  # refused before any folder is made


def test_clean_demo_reports_against_recorded_flips(tmp_path) -> None:
    data = tmp_path / "demo.jsonl"
    demo(data, n=60, flip_rate=0.25)
    audit(data, committee="tiny", out=tmp_path / "a", engine_options=QUIET)
    summary = clean(data, tmp_path / "a", method="sac", params={"soft": True},
                    out=tmp_path / "c")
    assert summary["n_input"] == 60
    assert summary["keep"] + summary["flip"] + summary["remove"] + summary["relabel"] == 60
    assert summary["against_recorded_flips"]["noise_before"] == 0.25
    relabelled = pd.read_parquet(tmp_path / "c" / "manifest.parquet").query("action == 'relabel'")
    out = {p.id: p for p in iter_pairs(read_pairs(tmp_path / "c" / "cleaned.jsonl").pairs)}
    for row in relabelled.itertuples():
        assert out[row.output_id].p_chosen == pytest.approx(row.p_new)


def test_inject_and_restore_flips() -> None:
    pairs = demo_pairs(40, flip_rate=0.25, seed=0)
    was_flipped = [p.meta["flipped"] for p in pairs]
    truth, restored = restore_truth(pairs)
    assert restored == 10 and not any(p.meta["flipped"] for p in truth)
    for p, t, f in zip(pairs, truth, was_flipped, strict=True):
        assert (t.chosen, t.rejected) == ((p.rejected, p.chosen) if f else (p.chosen, p.rejected))
    noisy, mask = inject_flips(truth, 0.25, seed=3)
    again, mask2 = inject_flips(truth, 0.25, seed=3)
    assert mask.sum() == 10 and (mask == mask2).all() and [p.id for p in noisy] == [
        p.id for p in again]
    for p, q, f in zip(truth, noisy, mask, strict=True):
        assert q.meta["flipped"] == f
        assert (q.chosen == p.rejected) == f


def test_bench_noise_cli_json_and_files(tmp_path) -> None:
    data = tmp_path / "demo.jsonl"
    demo(data, n=60, flip_rate=0.0)
    result = runner.invoke(app, ["bench", "noise", str(data), "--rate", "0.1,0.3",
                                 "--committee", "tiny", "--out", str(tmp_path / "b"),
                                 "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert set(report) == {"0.1", "0.3"}
    for by in report.values():
        assert {"sac", "sac-remove", "random", "vote-all-flip", "confident-learning-remove",
                "loss", "ifd-gap", "judge-flip"} <= set(by)
        for row in by.values():
            assert set(row) == {"precision", "recall", "f1", "kept_fraction", "residual_noise"}
        # a flip method and its remove twin flag the same pairs; only removal drops them
        assert by["vote-maj-flip"]["recall"] == by["vote-maj-remove"]["recall"]
        assert by["vote-maj-flip"]["kept_fraction"] == 1.0
    frame = pd.read_csv(tmp_path / "b" / "noise.csv")
    assert len(frame) == 2 * len(VARIANTS) and (tmp_path / "b" / "noise.png").stat().st_size > 1000
    injected = json.loads((tmp_path / "b" / "rate-0.3" / "injected.json").read_text())
    assert injected["n_flipped"] == 18 and len(injected["ids"]) == 18
    table = pd.read_parquet(tmp_path / "b" / "rate-0.3" / "audit" / "audit.parquet")
    assert table["flipped"].sum() == 18
    assert np.isin(injected["ids"], table["id"]).all()
