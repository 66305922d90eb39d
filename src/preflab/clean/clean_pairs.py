"""``preflab clean``: read pairs and their audit, decide, write the cleaned data,
the manifest (every input pair: action, reason, method, parameters, source) and
a summary."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.audit_pairs import Notify, check_rejects_file, read_for_command
from preflab.audit.noise_sources import tag_sources
from preflab.audit.view import AuditView
from preflab.clean.apply import apply_decisions, check_aligned
from preflab.clean.decisions import counts
from preflab.clean.human import apply_review, export_min_votes, load_review, review_quorum
from preflab.clean.methods import run_method
from preflab.clean.metrics import detection_metrics
from preflab.data.outputs import prepare_output_dir
from preflab.data.pair import PreferencePair
from preflab.data.read import iter_pairs
from preflab.data.write import write_pairs


def output_target(source: str | Path, fmt: str | None, to: str | None) -> tuple[str, str]:
    """(writer, file name) for the cleaned data: the input's format unless `to` is given."""
    name = Path(str(source)).name
    gz = ".gz" if name.endswith(".gz") else ""
    if to is None:
        if fmt == "hh":
            to = "hh"
        elif fmt == "trl":
            to = "trl"
        elif name.endswith(".parquet"):
            to = "parquet"
        else:
            to = "jsonl"
    ext = ".parquet" if to == "parquet" else ".jsonl" + gz
    return to, f"cleaned{ext}"


def audit_limit(audit: str | Path) -> int | None:
    """The ``--limit`` the audit in folder `audit` was made with (its summary.json), if any."""
    path = Path(audit) / "summary.json"
    if not path.is_file():
        return None
    try:
        limit = json.loads(path.read_text(encoding="utf-8")).get("limit")
    except (ValueError, AttributeError) as e:
        raise ValueError(f"{path}: not an audit summary ({e})") from None
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"{path}: field 'limit' must be a positive integer, got {limit!r}")
    return limit


def check_failures(audit: str | Path, pairs: list[PreferencePair]) -> None:
    """Fail, naming failures.jsonl, when pairs the audit in folder `audit` left out of
    its table (a member's scorer failed on them: its summary's ``n_failed``) are among
    `pairs`: clean has no audit of them to decide on."""
    path = Path(audit) / "summary.json"
    if not path.is_file():
        return
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        n_failed = int(summary.get("n_failed") or 0)
    except (ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not an audit summary ({e})") from None
    if not n_failed:
        return
    listed = Path(audit) / "failures.jsonl"
    failed: dict[str, dict[str, Any]] = {}
    if listed.is_file():
        with listed.open(encoding="utf-8") as f:
            for k, line in enumerate(f, 1):
                try:
                    row = json.loads(line)
                    failed[str(row["id"])] = row
                except (ValueError, KeyError, TypeError) as e:
                    raise ValueError(f"{listed}:{k}: not a failure record ({e})") from None
    present = [p.id for p in pairs if p.id in failed]
    if failed and not present:
        return  # the data no longer holds them
    first = failed[present[0]] if present else None
    n_read = int(summary.get("n_pairs") or 0) + n_failed
    where = (f"listed in {listed}" if listed.is_file()
             else f"its failures.jsonl ({listed}) is missing")
    raise ValueError(
        f"the audit {audit}: {n_failed} of the {n_read} pairs it read failed (a member "
        f"could not score them) and are not in its table ({where}"
        + (f"; first: {first['id']}, {', '.join(first.get('members', []))}: "
           f"{'; '.join(first.get('errors', []))[:200]}" if first else "")
        + "). clean decides only on audited pairs: audit again once every member can "
          "score them (the score cache keeps the rest), or without the member that fails")


def audited_pairs(pairs: list[PreferencePair], view: AuditView, limit: int | None = None,
                  recorded: int | None = None, data: str | Path = "the data",
                  notify: Notify | None = None) -> list[PreferencePair]:
    """The pairs the audit covers: the first `limit` (clean's ``--limit``, the audit's
    meaning: the first N pairs read), else the first `recorded` (the audit's own
    ``--limit``), else, when the audit's ids are the data's first pairs (an audit made
    with ``--limit`` before its summary recorded it), those; else all of them.
    `notify` hears how many pairs are left out."""
    n_audit = len(view.table)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit must be at least 1, got {limit}")
        if recorded is not None and limit != recorded:
            raise ValueError(f"--limit {limit}, but the audit {view.source} was made with "
                             f"--limit {recorded}: give --limit {recorded} or leave it out")
        if min(limit, len(pairs)) != n_audit:
            raise ValueError(f"--limit {limit}: the audit {view.source} covers {n_audit} "
                             f"pairs; clean the pairs the audit covers (--limit {n_audit}, "
                             "or leave it out)")
        take = limit
    elif recorded is not None:
        take = recorded
    elif len(pairs) > n_audit and [p.id for p in pairs[:n_audit]] == list(view.table["id"]):
        take = n_audit
    else:
        return pairs
    if take < len(pairs) and notify is not None:
        why = f"--limit {limit}" if limit is not None else (
            f"the audit's --limit {recorded}" if recorded is not None
            else "the audit covers only them")
        notify(f"cleaning the first {take} of the {len(pairs)} pairs of {data} ({why}); "
               f"the other {len(pairs) - take} are not in the output")
    return pairs[:take]


def clean_pairs(pairs: list[PreferencePair], view: AuditView, method: str,
                params: dict[str, Any] | None = None, reviews: pd.DataFrame | None = None,
                uncertain: str = "keep", min_votes: int | None = None
                ) -> tuple[list[PreferencePair], pd.DataFrame, dict[str, Any]]:
    """Decide and apply: (cleaned pairs, manifest, summary). Pure over its inputs.

    `reviews` (``reviews.parquet`` of ``preflab review export``): people's consensus
    overrides the method where a pair has its quorum (`min_votes`, by default a strict
    majority of its assigned reviewers) and a majority (:mod:`preflab.clean.human`)."""
    check_aligned(pairs, view.table, f"audit {view.source}")
    table = run_method(view, method, params)
    if "source" not in table:  # every method's flagged pairs get a best-guess source
        tags = tag_sources(view)
        table["source"] = np.where(table["action"] != "keep", tags["source"], "")
        table["signal"] = np.where(table["action"] != "keep", tags["signal"], "")
    human = None
    if reviews is not None:
        table, human = apply_review(table, reviews, uncertain, min_votes=min_votes)
    cleaned, manifest = apply_decisions(pairs, table)
    c = counts(manifest)
    acted = manifest[manifest["action"] != "keep"]
    summary: dict[str, Any] = {
        "method": method, "params": json.loads(manifest["params"].iloc[0]),
        "n_input": len(pairs), **c, "n_output": len(cleaned),
        "kept_fraction": round(len(cleaned) / len(pairs), 4),
        "sources_of_changed_pairs": {k: int(v) for k, v in
                                     acted["source"].value_counts().items() if k},
    }
    if human is not None:
        summary["human_review"] = human
    flipped = [p.meta.get("flipped") for p in pairs]
    if all(isinstance(f, bool) for f in flipped) and any(flipped):
        summary["against_recorded_flips"] = detection_metrics(manifest, np.array(flipped))
    return cleaned, manifest, summary


def clean(data: str | Path, audit: str | Path, method: str = "sac",
          params: dict[str, Any] | None = None, out: str | Path = "clean",
          to: str | None = None, on_error: str = "fail", rejects: str | Path | None = None,
          overwrite: bool = True, notify: Notify | None = None,
          review: str | Path | None = None, uncertain: str = "keep",
          min_votes: int | None = None, limit: int | None = None) -> dict[str, Any]:
    """Clean a preference file with its audit; writes the cleaned data (the input's
    format, or `to`), manifest.parquet and summary.json into `out`.

    `out` must be missing, empty or a folder clean wrote before (its marker
    ``.preflab-clean.json``), or `overwrite` (the command refuses by default, the
    function keeps its old behaviour). With ``on_error="skip"`` bad records are
    skipped as the audit skipped them (written to `rejects`; `notify` hears how many).
    `review`: a ``preflab review export`` folder whose consensus overrides the method;
    `uncertain`: keep or remove pairs people found uncertain; `min_votes`: the votes a
    pair needs before people's verdict counts (default: the quorum the export was made
    with, see :func:`preflab.clean.human.review_quorum`; `notify` hears when
    `min_votes` differs from it, and how many pairs are below it).
    An audit made with ``--limit N`` cleans the first N pairs (its summary records N);
    `limit` says the same explicitly (see :func:`audited_pairs`).
    """
    started = time.perf_counter()
    if min_votes is not None and min_votes < 1:
        raise ValueError(f"--min-votes must be at least 1, got {min_votes}")
    view = AuditView.load(audit)
    reviews, rule, exported = None, "", None
    if review is not None:
        reviews = load_review(review)
        min_votes, rule, warning = review_quorum(review, min_votes)
        exported = export_min_votes(review)[1]
        if warning and notify is not None:
            notify(warning)
    check_rejects_file(rejects, out, "clean", overwrite)
    read = read_for_command(data, on_error, rejects, notify)
    every = list(iter_pairs(read.pairs))
    check_failures(audit, every)
    pairs = audited_pairs(every, view, limit, audit_limit(audit), data, notify)
    cleaned, manifest, summary = clean_pairs(pairs, view, method, params, reviews, uncertain,
                                             min_votes)
    human = summary.get("human_review")
    if human is not None:
        human["quorum"], human["export_min_votes"] = rule, exported
    if human and human["below_quorum"] and notify is not None:
        notify(f"the review is incomplete: {human['below_quorum']} of {human['reviewed']} "
               f"reviewed pairs are below their quorum ({human['votes_missing']} votes "
               "missing); clean left them to the method (the manifest's review column "
               "says why)")
    out = prepare_output_dir(out, "clean", overwrite, info={  # a bad input makes no folder
        "data": str(data), "audit": str(audit), "rejects": str(rejects) if rejects else None,
        "review": str(review) if review is not None else None})
    writer, name = output_target(data, read.format, to)
    write_pairs(cleaned, out / name, to=writer)
    manifest.to_parquet(out / "manifest.parquet", index=False)
    summary = {"data": str(data), "audit": str(audit), "output": str(out / name),
               "format": writer, **summary, "limit": len(pairs) if len(pairs) < len(every)
               else None, "n_rejected_on_read": len(read.rejects),
               "rejects": str(rejects) if rejects and read.rejects else None,
               "seconds": round(time.perf_counter() - started, 2)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
