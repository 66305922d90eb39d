"""``preflab clean``: read pairs and their audit, decide, write the cleaned data,
the manifest (every input pair: action, reason, method, parameters, source), the
summary and the settings (config.toml)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.audit_pairs import Notify, check_rejects_file, read_for_command
from preflab.audit.noise_sources import tag_sources
from preflab.audit.view import AuditView
from preflab.clean.apply import apply_decisions, check_aligned
from preflab.clean.audited import AuditInput
from preflab.clean.cleaned import Cleaned
from preflab.clean.config import CleanConfig
from preflab.clean.decisions import counts
from preflab.clean.human import apply_review
from preflab.clean.methods import parse_params, run_method
from preflab.clean.metrics import detection_metrics
from preflab.data.pair import PreferencePair
from preflab.data.read import iter_pairs
from preflab.data.reviews import export_min_votes, load_review, review_quorum
from preflab.settings import resolve_config


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


def _review(config: CleanConfig, notify: Notify | None
            ) -> tuple[pd.DataFrame | None, int | None, str, int | None]:
    """(reviews, min_votes to decide with, the quorum in words, the export's own
    min_votes) for ``--review``; Nones without it."""
    if config.review is None:
        return None, config.min_votes, "", None
    reviews = load_review(config.review)
    min_votes, rule, warning = review_quorum(config.review, config.min_votes)
    if warning and notify is not None:
        notify(warning)
    return reviews, min_votes, rule, export_min_votes(config.review)[1]


def clean_data(data: str | Path, audit: AuditInput, config: CleanConfig, *,
               rejects: str | Path | None = None, notify: Notify | None = None) -> Cleaned:
    """Read `data`, decide on the pairs `audit` covers with the settings `config`, and
    return the result in memory (nothing is written but `rejects`). The result's config
    records the method's typed parameters and the ``limit`` taken from the audit."""
    started = time.perf_counter()
    params = parse_params(config.method, config.params)  # an unknown method fails here
    reviews, min_votes, rule, exported = _review(config, notify)
    read = read_for_command(data, config.on_error, rejects, notify)
    every = list(iter_pairs(read.pairs))
    audit.check_failures(every)
    pairs = audit.covered(every, config.limit, data, notify)
    cleaned, manifest, summary = clean_pairs(pairs, audit.view, config.method, params, reviews,
                                             config.uncertain, min_votes)
    human = summary.get("human_review")
    if human is not None:
        human["quorum"], human["export_min_votes"] = rule, exported
    if human and human["below_quorum"] and notify is not None:
        notify(f"the review is incomplete: {human['below_quorum']} of {human['reviewed']} "
               f"reviewed pairs are below their quorum ({human['votes_missing']} votes "
               "missing); clean left them to the method (the manifest's review column "
               "says why)")
    limit = len(pairs) if len(pairs) < len(every) else None
    writer, name = output_target(data, read.format, config.to)
    summary = {"data": str(data), "audit": audit.name, "output": None, "format": writer,
               **summary, "limit": limit, "n_rejected_on_read": len(read.rejects),
               "rejects": str(rejects) if rejects and read.rejects else None,
               "seconds": round(time.perf_counter() - started, 2)}
    inputs = {"data": str(data), "audit": audit.name,
              "rejects": str(rejects) if rejects else None,
              "review": str(config.review) if config.review is not None else None}
    config = replace(config, params=params,
                     limit=config.limit if config.limit is not None else limit)
    return Cleaned(cleaned, manifest, summary, config, writer, name, inputs)


def clean(data: str | Path, audit: str | Path, config: CleanConfig | str | Path | None = None,
          out: str | Path = "clean", *, rejects: str | Path | None = None,
          overwrite: bool = False, notify: Notify | None = None,
          **overrides: Any) -> dict[str, Any]:
    """Clean a preference file with the audit in folder `audit`, with the settings
    `config` (a :class:`CleanConfig` or a settings file; its defaults when None,
    `overrides` on top: ``clean(path, audit, method="vote-maj", params={"action":
    "flip"})``); writes the cleaned data (the input's format, or ``to``),
    manifest.parquet, summary.json and config.toml into `out`; returns the summary.

    `out` must be missing, empty or a folder clean wrote before (its marker
    ``.preflab-clean.json``), or `overwrite`; a bad input makes no folder. With
    ``on_error="skip"`` bad records are skipped as the audit skipped them (written to
    `rejects`; `notify` hears how many). ``review``: a ``preflab review export`` folder
    whose consensus overrides the method; ``uncertain``: keep or remove pairs people
    found uncertain; ``min_votes``: the votes a pair needs before people's verdict
    counts (default: the quorum the export was made with, see
    :func:`preflab.data.reviews.review_quorum`; `notify` hears when it differs, and how
    many pairs are below it). An audit made with ``--limit N`` cleans the first N pairs
    (its summary records N); ``limit`` says the same explicitly (see
    :meth:`AuditInput.covered`).
    """
    config = resolve_config(CleanConfig, config, **overrides)
    check_rejects_file(rejects, out, "clean", overwrite)
    result = clean_data(data, AuditInput.load(audit), config, rejects=rejects, notify=notify)
    result.save(out, overwrite)
    return result.summary
