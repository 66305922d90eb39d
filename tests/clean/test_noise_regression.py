"""Regression: the noise benchmark's table and every method's decisions stay as they were.

``noise_table_demo.json`` was written by the cleaning code before the score ->
threshold -> act refactor (``python -m tests.clean.test_noise_regression`` on that
code): per injected rate and method the action counts, the detection metrics and
a digest of the whole decisions table; plus digests of every method's decisions on
synthetic audits (no models). Regenerate it only if a change of decisions is meant.
Last regenerated for issue 32: votes and bins count the committee's voters (collinear
members vote once, a reversed one turned round) and judges shorten long conversations
by the labeler's rule, which changed some of the tiny committee's decisions; the
vote rules' reasons say "voters agree".
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.view import AuditView
from preflab.clean.decisions import counts
from preflab.clean.methods import VARIANTS, run_method
from preflab.clean.noise import bench_noise
from preflab.data.demo import demo
from preflab.engine import EngineOptions
from tests.clean.helpers import make_pairs, make_view

FIXTURE = Path(__file__).with_name("noise_table_demo.json")
# The bench's scores come from real (tiny) models, whose last digits differ between CPUs
# (AVX2 or AVX-512 kernels): its decisions are hashed with scores to 3 decimals.
BENCH_DECIMALS = 3
N, RATES, SEED = 20, (0.1, 0.3), 0
# (method, parameters) run on synthetic audits besides every variant's defaults
EXTRA: list[tuple[str, dict[str, Any]]] = [
    ("random", {"fraction": 0.3, "seed": 2}), ("random", {"count": 5, "seed": 7}),
    ("reward-gap", {"k": 0.35, "action": "flip"}), ("loss", {"k": 0.1}),
    ("loss", {"member": "rm", "k": 0.5}), ("ifd-gap", {"k": 0.5}),
    ("judge", {"member": "fit"}), ("confident-learning", {"seed": 3, "filter_by": "both"}),
    ("confident-learning", {"filter_by": "confident_learning", "action": "flip"}),
    ("sac", {"soft": True, "against": "keep"}), ("sac", {"flip_p": 0.45, "remove_bad": False}),
]


def digest(table: pd.DataFrame, decimals: int = 6) -> str:
    """A short hash of a decisions table (floats to `decimals` decimals)."""
    cols = [table[c].tolist() for c in ("id", "action", "reason", "method", "params",
                                         "source", "signal") if c in table]
    cols += [np.round(table[c].to_numpy(dtype=float), decimals).tolist()
             for c in ("score", "p_new")]
    return hashlib.sha256(json.dumps(cols).encode()).hexdigest()[:16]


def noise_table(folder: Path) -> dict[str, Any]:
    """`bench noise --methods all` with the tiny committee on seeded demo data: per rate
    and method its metrics, action counts and decisions digest."""
    demo(folder / "demo.jsonl", n=N, flip_rate=0.0, seed=SEED)
    report = bench_noise(folder / "demo.jsonl", rates=RATES, methods="all", committee="tiny",
                         out=folder / "bench", seed=SEED,
                         engine_options=EngineOptions(progress=False))
    table: dict[str, Any] = {}
    for rate, by in report["results"].items():
        view = AuditView.load(folder / "bench" / f"rate-{rate}" / "audit")
        rows = {}
        for name, metrics in by.items():
            row = dict(metrics)
            if "error" not in row:  # the decisions as the bench made them (random: sac's budget)
                decided = run_method(view, name,
                                     {"count": by["sac"]["flagged"]} if name == "random" else None)
                row.update(counts(decided), decisions=digest(decided, BENCH_DECIMALS))
            rows[name] = row
        table[rate] = rows
    return table


def synthetic_digests() -> dict[str, str]:
    """Digests of every variant (and EXTRA) on seeded synthetic audits of a few sizes."""
    out = {}
    for n, seed in ((7, 0), (30, 1), (61, 2)):
        flipped = np.random.default_rng(seed).random(n) < 0.3
        view = make_view(make_pairs(n, seed), seed, flipped)
        runs = [(name, {}) for name in VARIANTS] + EXTRA
        for name, params in runs:
            key = f"n={n} {name} {json.dumps(params, sort_keys=True)}"
            out[key] = digest(run_method(view, name, params))
    return out


def test_noise_table_and_decisions_are_unchanged(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PREFLAB_CACHE", str(tmp_path / "cache"))
    expected = json.loads(FIXTURE.read_text())
    assert synthetic_digests() == expected["synthetic"]
    assert json.loads(json.dumps(noise_table(tmp_path))) == expected["bench"]


def write_fixture() -> None:
    """Write the fixture from the code as it is now (only meant for unchanged decisions)."""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PREFLAB_CACHE"] = str(Path(tmp) / "cache")
        bench = noise_table(Path(tmp))
    lines = [f'  "{rate}": {{\n' + ",\n".join(f"   {json.dumps(m)}: {json.dumps(r, sort_keys=True)}"
                                              for m, r in rows.items()) + "\n  }"
             for rate, rows in bench.items()]
    synthetic = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}"
                           for k, v in synthetic_digests().items())
    FIXTURE.write_text(f'{{\n "n": {N}, "rates": {list(RATES)}, "seed": {SEED},\n'
                       f' "bench": {{\n' + ",\n".join(lines) + "\n },\n"
                       f' "synthetic": {{\n{synthetic}\n }}\n}}\n')


if __name__ == "__main__":
    write_fixture()
