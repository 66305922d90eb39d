"""``preflab audit``: read pairs, score them with a committee, write table, summary, report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from preflab.audit.combine import DEFAULT
from preflab.audit.noise_sources import SourceRules, source_counts, tag_sources
from preflab.audit.report import render_report
from preflab.audit.stats import member_diagnostics, summarize
from preflab.audit.table import audit_table
from preflab.audit.view import AuditView
from preflab.committee.spec import Committee, load_committee
from preflab.data.groups import pair_groups, repeat_counts
from preflab.data.outputs import check_output_file, marker_path, prepare_output_dir
from preflab.data.pair import PreferencePair
from preflab.data.read import ReadResult, iter_pairs, read_pairs
from preflab.engine import Engine, EngineOptions
from preflab.engine.core import CHARS_PER_TOKEN, oversized, pair_texts

Notify = Callable[[str], None]


def check_rejects_file(rejects: str | Path | None, out: str | Path, command: str,
                       overwrite: bool) -> None:
    """Refuse an existing `rejects` file unless `overwrite`, or unless it is the one
    `command` wrote with its last run into `out` (named in the folder's marker)."""
    if rejects is None:
        return
    marker = marker_path(out, command)
    try:
        ours = json.loads(marker.read_text(encoding="utf-8")).get("rejects") == str(rejects)
    except (OSError, ValueError, AttributeError):
        ours = False
    check_output_file(rejects, overwrite or ours)


def read_for_command(data: str | Path, on_error: str, rejects: str | Path | None,
                     notify: Notify | None = None) -> ReadResult:
    """Read pairs with `on_error`; with skip, say how many records were rejected."""
    read = read_pairs(data, on_error=on_error, rejects_path=rejects)  # type: ignore[arg-type]
    if read.rejects and notify is not None:
        seen = f" (see {rejects})" if rejects else " (--rejects FILE lists them)"
        notify(f"{len(read.rejects)} of {read.n_records} records of {data} were rejected on "
               f"read and skipped{seen}")
    return read


def audit(data: str | Path, committee: str | Path = "cpu", out: str | Path = "audit",
          limit: int | None = None, engine_options: EngineOptions | None = None,
          combine: str = DEFAULT, seed: int = 0, on_error: str = "fail",
          rejects: str | Path | None = None, overwrite: bool = True,
          notify: Notify | None = None) -> dict[str, Any]:
    """Audit a preference file; writes audit.parquet, summary.json and report.html in `out`.

    The committee is validated, the data read and `out` made ready before any model
    loads: a missing or empty folder, or one audit wrote before (its marker
    ``.preflab-audit.json``); any other only with `overwrite` (the command refuses by
    default, the function keeps its old behaviour). With ``on_error="skip"`` bad
    records are skipped (and written to `rejects`). `notify` gets each warning as soon
    as it is known: records rejected, prompts or replies over every member's length.
    Scores go through the engine's disk cache, so a rerun after an interruption, or
    with one more member, computes only what is missing.
    """
    started = time.perf_counter()
    spec = load_committee(committee)
    check_rejects_file(rejects, out, "audit", overwrite)
    read = read_for_command(data, on_error, rejects, notify)
    pairs = list(islice(iter_pairs(read.pairs), limit))
    if not pairs:
        raise ValueError(f"{data}: no pairs to audit")
    out = prepare_output_dir(out, "audit", overwrite, info={  # a bad input makes no folder
        "data": str(data), "committee": spec.name, "rejects": str(rejects) if rejects else None})
    longest = spec.max_tokens()
    n_long = oversized(pair_texts(pairs), longest)
    if n_long and notify is not None and longest is not None:
        notify(f"prompts or replies over {CHARS_PER_TOKEN * longest:,} characters: {n_long}; "
               f"more than the {longest} tokens the longest-reading member of committee "
               f"{spec.name} takes, so every member will truncate them")
    engine = Engine(engine_options)
    table, summary = committee_audit(spec, pairs, engine, combine, seed, str(out))
    seconds = time.perf_counter() - started
    summary = {"data": str(data), "committee": spec.name, **summary,
               "n_rejected_on_read": len(read.rejects),
               "rejects": str(rejects) if rejects and read.rejects else None,
               "oversized": n_long, "seconds": round(seconds, 2),
               "pairs_per_s": round(len(pairs) / seconds, 3)}
    table.to_parquet(out / "audit.parquet", index=False)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    by_id = {p.id: p for p in pairs}
    (out / "report.html").write_text(render_report(table, summary, by_id), encoding="utf-8")
    return summary


def score_committee(spec: Committee, pairs: list[PreferencePair], engine: Engine
                    ) -> tuple[list[Any], dict[str, Any]]:
    """Every member's scores of `pairs`, and per member what its run did."""
    from preflab.committee.members import score_member  # torch: only once there is work

    scores, runs = [], {}
    for member in spec.members:
        member_started = time.perf_counter()
        s = score_member(member, pairs, engine)
        scores.append(s)
        runs[member.name] = {"kind": member.kind,
                             "seconds": round(time.perf_counter() - member_started, 2),
                             "computed": engine.last_stats.computed,
                             "cached": engine.last_stats.cached, **s.info}
    return scores, runs


def committee_audit(spec: Committee, pairs: list[PreferencePair], engine: Engine,
                    combine: str, seed: int, source: str) -> tuple[Any, dict[str, Any]]:
    """Score `pairs` with the committee: (the audit table, its summary)."""
    scores, runs = score_committee(spec, pairs, engine)
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
    view = AuditView(table, kinds, source)
    tags = tag_sources(view)
    table["source"], table["source_signal"] = tags["source"], tags["signal"]
    members, warnings = member_diagnostics(table, combined["weights"])
    return table, {**summarize(table),
                   "member_diagnostics": members, "member_warnings": warnings,
                   "repeats": repeat_counts(groups, [p.id for p in pairs]),
                   "sources": source_counts(tags), "source_rules": SourceRules().params(view),
                   "member_kinds": kinds, "signals": [s.name for s in signals],
                   "committee_probability": combined, "bin_thresholds": list(spec.bins),
                   "member_runs": runs}
