"""``preflab audit``: read pairs, score them with a committee, write table, summary, report."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from preflab.audit.combine import DEFAULT
from preflab.audit.noise_sources import SourceRules, source_counts, tag_sources
from preflab.audit.report import render_report
from preflab.audit.stats import member_diagnostics, summarize
from preflab.audit.table import audit_table
from preflab.audit.view import AuditView
from preflab.committee.members import score_member
from preflab.committee.spec import load_committee
from preflab.data.groups import pair_groups, repeat_counts
from preflab.data.read import iter_pairs, read_pairs
from preflab.engine import Engine, EngineOptions


def audit(data: str | Path, committee: str | Path = "cpu", out: str | Path = "audit",
          limit: int | None = None, engine_options: EngineOptions | None = None,
          combine: str = DEFAULT, seed: int = 0, on_error: str = "fail") -> dict[str, Any]:
    """Audit a preference file; writes audit.parquet, summary.json and report.html in `out`.

    The committee is validated before any model loads. Scores go through the
    engine's disk cache, so a rerun after an interruption, or with one more
    member, computes only what is missing.
    """
    started = time.perf_counter()
    spec = load_committee(committee)
    read = read_pairs(data, on_error=on_error)  # type: ignore[arg-type]
    pairs = []
    for pair in iter_pairs(read.pairs):
        if limit is not None and len(pairs) >= limit:
            break
        pairs.append(pair)
    if not pairs:
        raise ValueError(f"{data}: no pairs to audit")
    engine = Engine(engine_options)
    scores, runs = [], {}
    for member in spec.members:
        member_started = time.perf_counter()
        s = score_member(member, pairs, engine)
        scores.append(s)
        runs[member.name] = {"kind": member.kind,
                             "seconds": round(time.perf_counter() - member_started, 2),
                             "computed": engine.last_stats.computed,
                             "cached": engine.last_stats.cached, **s.info}
    voting = {m.name for m in spec.members if m.votes}
    signals = [s for s in scores if s.name not in voting]
    scores = [s for s in scores if s.name in voting]
    names = [s.name for s in scores]
    stack = lambda attr: np.stack([getattr(s, attr) for s in scores], axis=1)  # noqa: E731
    flipped = [p.meta.get("flipped") for p in pairs]
    has_flips = all(isinstance(f, bool) for f in flipped)
    groups = pair_groups(pairs)
    table, combined = audit_table([p.id for p in pairs], [p.subset for p in pairs], names,
                                  stack("margin"), stack("p_chosen"), stack("r_chosen"),
                                  stack("r_rejected"), bins=spec.bins, combine=combine,
                                  flipped=flipped if has_flips else None, seed=seed,
                                  groups=groups)
    for sig in signals:  # scored for cleaning rules, not counted as votes
        table[f"margin.{sig.name}"] = sig.margin
        table[f"r_chosen.{sig.name}"] = sig.r_chosen
        table[f"r_rejected.{sig.name}"] = sig.r_rejected
    kinds = {m.name: m.kind for m in spec.members}
    view = AuditView(table, kinds, str(out))
    tags = tag_sources(view)
    table["source"], table["source_signal"] = tags["source"], tags["signal"]
    seconds = time.perf_counter() - started
    members, warnings = member_diagnostics(table, combined["weights"])
    summary = {"data": str(data), "committee": spec.name, **summarize(table),
               "member_diagnostics": members, "member_warnings": warnings,
               "repeats": repeat_counts(groups, [p.id for p in pairs]),
               "sources": source_counts(tags), "source_rules": SourceRules().params(view),
               "member_kinds": kinds,
               "signals": [s.name for s in signals],
               "committee_probability": combined, "bin_thresholds": list(spec.bins),
               "member_runs": runs, "n_rejected_on_read": len(read.rejects),
               "seconds": round(seconds, 2), "pairs_per_s": round(len(pairs) / seconds, 3)}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / "audit.parquet", index=False)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    by_id = {p.id: p for p in pairs}
    (out / "report.html").write_text(render_report(table, summary, by_id), encoding="utf-8")
    return summary
