"""``preflab audit``: read pairs, score them with a committee, write table, summary, report."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.config import AuditConfig
from preflab.audit.noise_sources import SourceRules, source_counts, tag_sources
from preflab.audit.report import FLAGGED_CSV, render_report, report_ids, write_flagged_csv
from preflab.audit.stats import committee_verdict, member_diagnostics, summarize
from preflab.audit.stream import RowFile
from preflab.audit.table import Combination, audit_table
from preflab.audit.taught import FITTED, PeopleVerdicts
from preflab.audit.view import AuditView
from preflab.committee.spec import Committee, load_committee
from preflab.data.groups import repeat_counts
from preflab.data.outputs import check_output_file, marker_path, prepare_output_dir
from preflab.data.parse import rejects_note
from preflab.data.spill import PairSpill, spill_pairs
from preflab.data.stream import CHUNK
from preflab.engine import Engine, EngineOptions
from preflab.engine.core import CHARS_PER_TOKEN, make_executor, oversized, pair_texts
from preflab.engine.executor import ExecutorOptions
from preflab.engine.kept import KeptScorers
from preflab.settings import write_config

Notify = Callable[[str], None]
ROW_GROUP = 65536  # rows of audit.parquet converted and written at a time


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


def audit(data: str | Path, config: AuditConfig | None = None, out: str | Path = "audit",
          *, rejects: str | Path | None = None, overwrite: bool = False,
          notify: Notify | None = None, engine_options: EngineOptions | None = None,
          chunk: int = CHUNK, **overrides: Any) -> dict[str, Any]:
    """Audit a preference file with the settings `config` (its defaults when None,
    `overrides` on top: ``audit(path, committee="tiny", limit=100)``); writes
    audit.parquet, summary.json, report.html, flagged.csv and config.toml in `out`.

    The committee is validated, the data read and `out` made ready before any model
    loads: a missing or empty folder, or one audit wrote before (its marker
    ``.preflab-audit.json``); any other only with `overwrite`. With ``on_error="skip"``
    bad records are skipped (and written to `rejects`). `notify` gets each warning as
    soon as it is known: records rejected, prompts or replies over every member's
    length. Scores go through the engine's disk cache, so a rerun after an
    interruption, or with one more member, computes only what is missing. The
    executor (where batches run) is the config's, else the committee file's
    ``[engine]`` table, else this process; `engine_options`, when given, replaces the
    config's batching and cache settings. Pairs a member's scorer failed on are left
    out of the table and listed in failures.jsonl.

    The audit streams: pairs are read once into a Parquet file on disk and scored
    `chunk` pairs at a time, cross-fitting features go to memory-mapped files, the
    table is written in row groups and the report fetches only the pairs it shows,
    so memory grows with the per-pair numbers, not with the texts.
    """
    config = replace(config or AuditConfig(), **overrides)
    committee, limit, on_error = config.committee, config.limit, config.on_error
    from preflab.models.runtime import set_threads  # torch loads only when a run starts

    set_threads(config.threads)
    started = time.perf_counter()
    spec = load_committee(committee)
    options = executor_options(config, spec)  # a bad setting fails before any folder exists
    people = read_people(config)
    check_rejects_file(rejects, out, "audit", overwrite)
    longest = spec.max_tokens()
    with tempfile.TemporaryDirectory(prefix="preflab-audit-") as work:
        spill = spill_pairs(data, Path(work) / "pairs.parquet", on_error, rejects, limit,
                            lambda chunk: oversized(pair_texts(chunk), longest), chunk)
        for note in read_notes(data, spill, rejects, longest, spec.name):
            if notify is not None:
                notify(note)
        if not len(spill):
            raise ValueError(f"{data}: no pairs to audit")
        if people is not None:  # a review of other data fails before any model loads
            people = people_in(people, spill, limit, notify)
        out = prepare_output_dir(out, "audit", overwrite, info={  # a bad input makes no folder
            "data": str(data), "committee": spec.name,
            "rejects": str(rejects) if rejects else None})
        write_config(config, out)
        engine = Engine(engine_options or EngineOptions(max_tokens=config.max_tokens,
                                                        cache_path=config.cache),
                        make_executor(options))
        try:
            table, summary = committee_audit(spec, spill, engine, config.combine, config.seed,
                                             str(out), chunk=chunk, work=Path(work),
                                             people=people)
            info = getattr(engine.executor, "info", None)
            summary["executor_info"] = info() if info else {}
        finally:
            engine.executor.close()
        failures = summary.pop("failures")
        write_failures(out / "failures.jsonl", failures)
        summary = {"data": str(data), "committee": spec.name, **summary,
                   **run_figures(summary, spill, rejects, limit, failures, out),
                   "executor": options.kind if options else "local",
                   "seconds": round(time.perf_counter() - started, 2)}
        summary["pairs_per_s"] = round(spill.n_read / summary["seconds"], 3)
        write_table(table, out / "audit.parquet")
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        write_flagged_csv(table, spill.chunks(chunk), out / FLAGGED_CSV)
        shown = spill.fetch(report_ids(table, summary))
        (out / "report.html").write_text(render_report(table, summary, shown, folder=out),
                                         encoding="utf-8")
    for note in audit_notes(summary, failures):
        if notify is not None:
            notify(note)
    return summary


def read_people(config: AuditConfig) -> PeopleVerdicts | None:
    """People's verdicts from the config's review export (None without one), checked
    before any model loads: the export must be readable and the combination one that
    can be fitted on people."""
    if config.review is None:
        return None
    if config.combine not in FITTED:
        raise ValueError(f"--review fits the committee's weights on people: --combine must "
                         f"be one of {', '.join(FITTED)}, got {config.combine!r}")
    return PeopleVerdicts.read(config.review, config.review_min_pairs)


def people_in(people: PeopleVerdicts, spill: PairSpill, limit: int | None,
              notify: Notify | None) -> PeopleVerdicts:
    """People's verdicts on the pairs read: reviewed pairs beyond `limit` or among the
    records skipped are left out (and said); any other reviewed pair not in the data is
    an error."""
    ids = spill.pair_ids()
    if limit is not None or spill.rejects:
        outside = set(people.decided["pair_id"]) - set(ids)
        if outside:
            people = people.without(outside)
            if notify is not None:
                notify(f"--review: {len(outside)} reviewed pairs are not among the pairs "
                       "audited (--limit, or records skipped on read): left out of the fit")
    people.targets(ids)
    return people


def read_notes(data: str | Path, spill: PairSpill, rejects: str | Path | None,
               longest: int | None, committee: str) -> list[str]:
    """What reading the pairs found that the user must hear at once: records
    rejected, prompts or replies longer than every member reads."""
    note = rejects_note(spill.rejects, spill.n_records, data, rejects)
    notes = [note] if note else []
    if spill.oversized and longest is not None:
        notes.append(f"prompts or replies over {CHARS_PER_TOKEN * longest:,} characters: "
                     f"{spill.oversized}; more than the {longest} tokens the longest-reading "
                     f"member of committee {committee} takes, so every member will "
                     "truncate them")
    return notes


def run_figures(summary: dict[str, Any], spill: PairSpill, rejects: str | Path | None,
                limit: int | None, failures: list[dict[str, Any]], out: Path
                ) -> dict[str, Any]:
    """The summary's figures of the run: rejects, limit, long inputs, failures,
    truncation per member."""
    return {"n_rejected_on_read": len(spill.rejects),
            "rejects": str(rejects) if rejects and spill.rejects else None,
            "limit": limit,  # clean takes the same first pairs
            "oversized": spill.oversized, "n_failed": len(failures),
            "failures": str(out / "failures.jsonl") if failures else None,
            # per member: pairs it read shortened to fit its model
            "truncated_pairs": {name: run["truncated"] for name, run
                                in summary["member_runs"].items() if "truncated" in run}}


def audit_notes(summary: dict[str, Any], failures: list[dict[str, Any]]) -> list[str]:
    """What an audit must say on the console besides its tables: each member that read
    pairs shortened (how many, by which rule) and the pairs that failed (how many,
    where they are listed)."""
    runs = summary["member_runs"]
    notes = [f"{name}: {n} of {summary['n_pairs']} pairs read shortened to fit its model"
             + (f" ({runs[name]['truncation']})" if runs[name].get("truncation") else "")
             for name, n in summary["truncated_pairs"].items() if n]
    if failures:
        first = failures[0]
        notes.append(f"{len(failures)} pairs FAILED and are left out of the table (members "
                     f"could not score them): listed in {summary['failures']}; first: "
                     f"{first['id']} ({', '.join(first['members'])}: "
                     f"{'; '.join(first['errors'])[:200]})")
    return notes


def write_table(table: pd.DataFrame, path: Path, rows: int = ROW_GROUP) -> None:
    """The audit table as Parquet, converted and written `rows` at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.Schema.from_pandas(table.iloc[:0], preserve_index=False)
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, len(table), rows):
            writer.write_table(pa.Table.from_pandas(table.iloc[start:start + rows],
                                                    schema=schema, preserve_index=False))


def executor_options(config: AuditConfig, spec: Committee) -> ExecutorOptions | None:
    """Where batches run: the committee file's ``[engine]`` table (if any) with the
    config's executor settings on top; None (this process) when neither says."""
    given = {k: v for k, v in {"kind": config.executor, "address": config.ray_address,
                               "actors": config.actors, "num_cpus": config.actor_cpus,
                               "num_gpus": config.actor_gpus}.items() if v is not None}
    start = engine_executor(spec)
    if not given:
        return start
    if config.executor is None and start is None:
        raise ValueError("ray_address, actors, actor_cpus and actor_gpus (--ray-address, "
                         "--actors, --actor-cpus, --actor-gpus) need --executor ray")
    return replace(start or ExecutorOptions(), **given)


def engine_executor(spec: Committee) -> ExecutorOptions | None:
    """The executor a committee file asks for in its ``[engine]`` table, if any."""
    import tomllib

    path = Path(spec.source)
    if not path.is_file():  # a preset: no [engine] table
        return None
    table = tomllib.loads(path.read_text()).get("engine")
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ValueError(f"{spec.source}: [engine] must be a table")
    return ExecutorOptions.from_table(table, spec.source)


def write_failures(path: Path, failures: list[dict[str, Any]]) -> None:
    """One JSON line per pair left out because a member could not score it (the file
    is removed when there is none, so an old one does not linger)."""
    if not failures:
        path.unlink(missing_ok=True)
        return
    with path.open("w", encoding="utf-8") as f:
        for row in failures:
            f.write(json.dumps(row) + "\n")


def score_committee(spec: Committee, spill: PairSpill, engine: Engine, chunk: int = CHUNK,
                    work: Path | None = None) -> tuple[list[Any], dict[str, Any]]:
    """Every member's scores of the pairs of `spill`, and per member what its run did
    (``loads``: how many times its model was loaded; once, kept for all its chunks)."""
    from preflab.committee.members import member_loads

    scores, runs = [], {}
    with KeptScorers() as kept:  # one member's scorer at a time, for all its chunks
        for member in spec.members:
            member_started = time.perf_counter()
            s, done = score_streamed(member, spill, engine, chunk, work, kept)
            scores.append(s)
            runs[member.name] = {"kind": member.kind,
                                 "seconds": round(time.perf_counter() - member_started, 2),
                                 "computed": done["computed"], "cached": done["cached"],
                                 "loads": member_loads(member, kept), **s.info}
            if done["failures"]:
                runs[member.name]["failed_units"] = len(done["failures"])
                runs[member.name]["errors"] = sorted(set(done["failures"].values()))[:5]
    return scores, runs


def merge_info(parts: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
    """Per-chunk info of a member as one: counts added, rates averaged by pairs, lists
    and mappings joined (their first 20 kept)."""
    if len(parts) == 1:
        return parts[0][1]
    total = sum(n for n, _ in parts)
    merged: dict[str, Any] = {}
    for key in parts[0][1]:
        values = [(n, info.get(key)) for n, info in parts]
        first = values[0][1]
        if isinstance(first, dict):
            merged[key] = dict(list({k: v for _, d in values
                                     for k, v in (d or {}).items()}.items())[:20])
        elif isinstance(first, bool) or not isinstance(first, int | float | list | tuple):
            merged[key] = first
        elif isinstance(first, int):
            merged[key] = sum(v or 0 for _, v in values)
        elif isinstance(first, float):
            merged[key] = sum(n * v for n, v in values if v is not None) / total
        else:
            merged[key] = [x for _, v in values for x in (v or [])][:20]
    return merged


def score_streamed(member: Any, spill: PairSpill, engine: Engine, chunk: int,
                   work: Path | None, kept: KeptScorers) -> tuple[Any, dict[str, Any]]:
    """One member's scores of every kept pair of `spill`, `chunk` pairs at a time (its
    scorer kept in `kept` from one chunk to the next), and what the engine did
    (computed, cached, failures by unit key)."""
    from preflab.committee.members import MemberScores, score_member, sigmoid

    done: dict[str, Any] = {"computed": 0, "cached": 0, "failures": {}}

    def count() -> None:
        done["computed"] += engine.last_stats.computed
        done["cached"] += engine.last_stats.cached
        done["failures"].update(engine.failures)

    if member.kind == "crossfit":
        return crossfit_streamed(member, spill, engine, chunk, work, count, kept), done
    parts = []
    for pairs in spill.chunks(chunk):
        parts.append(score_member(member, pairs, engine, kept))
        count()
    join = lambda attr: np.concatenate([getattr(s, attr) for s in parts])  # noqa: E731
    margin, p = join("margin"), join("p_chosen")
    if member.kind == "embed-rm" and len(parts) > 1:  # its scale is the spread of all margins
        p = sigmoid(margin / (float(np.std(margin)) or 1.0))
    info = merge_info([(len(s.margin), s.info) for s in parts])
    return MemberScores(member.name, member.kind, margin, p, join("r_chosen"),
                        join("r_rejected"), info), done


def crossfit_streamed(member: Any, spill: PairSpill, engine: Engine, chunk: int,
                      work: Path | None, count: Any, kept: KeptScorers) -> Any:
    """A crossfit member: its features computed a chunk at a time into files on disk
    (:class:`~preflab.audit.stream.RowFile`), then cross-fitted (as
    :func:`preflab.committee.members.score_crossfit` does)."""
    from preflab.committee.crossfit import crossfit_linear_rewards
    from preflab.committee.members import MemberScores, pair_embeddings, pair_features, sigmoid

    o = member.options
    kind = o.get("features", "full")
    features: list[RowFile] = []
    cut: dict[str, Any] = {"truncated": 0}  # pairs whose texts were shortened, and how
    with tempfile.TemporaryDirectory(dir=work, prefix="crossfit-") as folder:
        for pairs in spill.chunks(chunk):
            ctx_c, rep_c, ctx_r, rep_r, info = pair_embeddings(member, pairs, engine, kept)
            cut = {**info, "truncated": cut["truncated"] + info["truncated"]}
            count()
            f_c, f_r = pair_features(ctx_c, rep_c, kind), pair_features(ctx_r, rep_r, kind)
            if not features:
                features = [RowFile(Path(folder) / side, f_c.shape[1])
                            for side in ("chosen", "rejected")]
            features[0].append(f_c)
            features[1].append(f_r)
        r_c, r_r = crossfit_linear_rewards(features[0], features[1],  # type: ignore[arg-type]
                                           folds=o.get("folds", 5), seed=o.get("seed", 0),
                                           C=o.get("C", 1.0), groups=spill.groups())
    margin = r_c - r_r
    return MemberScores(member.name, member.kind, margin, sigmoid(margin), r_c, r_r,
                        {"folds": o.get("folds", 5), "features": kind, **cut})


def committee_audit(spec: Committee, spill: PairSpill, engine: Engine, combine: str,
                    seed: int, source: str, chunk: int = CHUNK, work: Path | None = None,
                    people: PeopleVerdicts | None = None) -> tuple[Any, dict[str, Any]]:
    """Score `pairs` with the committee: (the audit table, its summary). Pairs a
    member's scorer failed on are left out (``failures`` in the summary) and the rest
    scored again from the cache, so a failure shifts no fold or statistic. With
    `people`, the committee is taught by their verdicts (:mod:`preflab.audit.taught`)
    and measured against them (``people`` in the summary)."""
    scores, runs = score_committee(spec, spill, engine, chunk, work)
    failures = failed_pairs(spill.pair_ids(), scores, runs)
    if failures:
        spill = spill.without({f["id"] for f in failures})
        if people is not None:
            people = people.without({f["id"] for f in failures})
        if not len(spill):
            raise RuntimeError(f"the committee failed on every pair; first: {failures[0]}")
        scores, again = score_committee(spec, spill, engine, chunk, work)
        for name, run in runs.items():
            again[name] = {**again[name], **{k: run[k] for k in ("failed_units", "errors")
                                            if k in run},
                           "loads": run["loads"] + again[name]["loads"]}  # both passes
        runs = again
    voting = {m.name for m in spec.members if m.votes}
    signals = [s for s in scores if s.name not in voting]
    names = [s.name for s in scores if s.name in voting]
    # [pairs, members] arrays; each member's own arrays are let go as soon as stacked
    stacked = {attr: np.stack([getattr(s, attr) for s in scores if s.name in voting], axis=1)
               for attr in ("margin", "p_chosen", "r_chosen", "r_rejected")}
    del scores
    flipped = spill.pair_flipped()
    has_flips = all(isinstance(f, bool) for f in flipped)
    groups = spill.groups()
    ids = spill.pair_ids()
    table, combined = audit_table(ids, spill.pair_subsets(), names,
                                  *(stacked.pop(a) for a in ("margin", "p_chosen", "r_chosen",
                                                             "r_rejected")), bins=spec.bins,
                                  flipped=flipped if has_flips else None,
                                  combination=Combination(
                                      combine, seed, groups,
                                      people.targets(ids) if people is not None else None,
                                      min_decided=people.min_decided if people else 0,
                                      tallies=people.tallies(ids) if people is not None
                                      else None))
    del ids  # a Python string per pair; the table holds them compactly
    for sig in signals:  # scored for cleaning rules, not counted as votes
        table[f"margin.{sig.name}"] = sig.margin
        table[f"r_chosen.{sig.name}"] = sig.r_chosen
        table[f"r_rejected.{sig.name}"] = sig.r_rejected
    kinds = {m.name: m.kind for m in spec.members}
    view = AuditView(table, kinds, source, combined["orientation"])
    tags = tag_sources(view)
    table["source"], table["source_signal"] = tags["source"], tags["signal"]
    members, warnings = member_diagnostics(table, combined["weights"],
                                           orientation=combined["orientation"],
                                           intervals=combined.get("weight_intervals"))
    if combined.get("people_not_used"):
        warnings.append(f"--review: {combined['people_not_used']}")
    signal_names = {s.name for s in signals}
    warnings += [f"{name}: no score for {run['missing']} pairs ("
                 + ("a signal: those pairs come last in the rules that use it"
                    if name in signal_names else "missing votes, not ties")
                 + f"; first: {', '.join(list(run['missing_ids'])[:3])})"
                 for name, run in runs.items() if run.get("missing")]
    headline = summarize(table)
    return table, {**headline, "verdict": committee_verdict(table, members, combined,
                                                          headline["fleiss_kappa"]),
                   "member_diagnostics": members, "member_warnings": warnings,
                   "repeats": repeat_counts(groups, spill.id_keys()),
                   "sources": source_counts(tags), "source_rules": SourceRules().params(view),
                   "member_kinds": kinds, "signals": [s.name for s in signals],
                   "committee_probability": combined, "bin_thresholds": list(spec.bins),
                   "member_runs": runs, "failures": failures,
                   **people_figures(table, people, seed)}


def people_figures(table: pd.DataFrame, people: PeopleVerdicts | None, seed: int
                   ) -> dict[str, Any]:
    """The summary's ``review`` (the export and its quorum) and ``people`` (every
    member, the committee and the labels against people's consensus); {} without a
    review."""
    if people is None:
        return {}
    from preflab.audit.people import against_people

    return {"review": {"export": people.where, "quorum": people.quorum,
                       "n_reviewed": len(people.decided)},
            "people": against_people(table, people.decided, seed)}


def failed_pairs(ids: list[str], scores: list[Any], runs: dict[str, Any]
                 ) -> list[dict[str, Any]]:
    """Pairs with no finite margin from a member whose scorer failed on some units:
    their ids, those members and the members' errors."""
    broken = [s for s in scores if runs[s.name].get("failed_units")]
    if not broken:
        return []
    bad = np.zeros(len(ids), dtype=bool)
    for s in broken:
        bad |= ~np.isfinite(s.margin)
    return [{"id": pair_id,
             "members": [s.name for s in broken if not np.isfinite(s.margin[i])],
             "errors": sorted({e for s in broken if not np.isfinite(s.margin[i])
                               for e in runs[s.name]["errors"]})}
            for i, pair_id in enumerate(ids) if bad[i]]
