"""``preflab clean``: read pairs and their audit, decide, write the cleaned data,
the manifest (every input pair: action, reason, method, parameters, source), the
summary and the settings (config.toml).

The command streams: the pairs are read once into a file on disk (keeping only their
ids and flip flags in memory), the decisions are made on the audit table, and the
pairs are read back, changed and written a chunk at a time (:meth:`Decided.save`).
``clean_data`` (the Python API's ``pl.clean``) returns the cleaned pairs in memory."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from preflab.audit.audit_pairs import Notify, check_rejects_file
from preflab.audit.noise_sources import tag_sources
from preflab.audit.view import AuditView
from preflab.clean.apply import apply_decisions, check_aligned_ids
from preflab.clean.audited import AuditInput
from preflab.clean.cleaned import Cleaned, Decided
from preflab.clean.config import CleanConfig
from preflab.clean.decisions import counts
from preflab.clean.human import apply_review
from preflab.clean.methods import parse_params, run_method
from preflab.clean.metrics import detection_metrics
from preflab.data.pair import PreferencePair
from preflab.data.parse import rejects_note
from preflab.data.reviews import export_min_votes, load_review, review_quorum
from preflab.data.spill import spill_pairs
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
    table, summary = decide([p.id for p in pairs], [p.meta.get("flipped") for p in pairs],
                            view, method, params, reviews, uncertain, min_votes)
    cleaned, manifest = apply_decisions(pairs, table)
    return cleaned, manifest, summary


def decide(ids: Sequence[str] | pa.ChunkedArray, flipped: Sequence[Any], view: AuditView,
           method: str,
           params: dict[str, Any] | None = None, reviews: pd.DataFrame | None = None,
           uncertain: str = "keep", min_votes: int | None = None
           ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The decisions on the pairs of `ids` (the audit's, in order) and the summary's
    counts, before any pair is changed (:func:`clean_pairs` without the pairs:
    `flipped` are their injected-flip flags, ``meta["flipped"]``)."""
    check_aligned_ids(ids, view.table, f"audit {view.source}")
    table = run_method(view, method, params)
    if "source" not in table:  # every method's flagged pairs get a best-guess source
        tags = tag_sources(view)
        table["source"] = np.where(table["action"] != "keep", tags["source"], "")
        table["signal"] = np.where(table["action"] != "keep", tags["signal"], "")
    human = None
    if reviews is not None:
        table, human = apply_review(table, reviews, uncertain, min_votes=min_votes)
    c = counts(table)
    acted = table[table["action"] != "keep"]
    n_output = len(ids) - c["remove"]
    summary: dict[str, Any] = {
        "method": method, "params": json.loads(table["params"].iloc[0]),
        "n_input": len(ids), **c, "n_output": n_output,
        "kept_fraction": round(n_output / len(ids), 4),
        "sources_of_changed_pairs": {k: int(v) for k, v in
                                     acted["source"].value_counts().items() if k},
    }
    if human is not None:
        summary["human_review"] = human
    if all(isinstance(f, bool) for f in flipped) and any(flipped):
        summary["against_recorded_flips"] = detection_metrics(table, np.array(flipped))
    return table, summary


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


def decide_data(data: str | Path, audit: AuditInput, config: CleanConfig, work: Path, *,
                rejects: str | Path | None = None, notify: Notify | None = None
                ) -> Decided:
    """Read `data` into a spill file in `work` and decide on the pairs `audit` covers
    with the settings `config`; no pair is changed yet (:class:`Decided`). Its config
    records the method's typed parameters and the ``limit`` taken from the audit."""
    started = time.perf_counter()
    params = parse_params(config.method, config.params)  # an unknown method fails here
    reviews, min_votes, rule, exported = _review(config, notify)
    spill = spill_pairs(data, work / "pairs.parquet", config.on_error,  # type: ignore[arg-type]
                        rejects)
    note = rejects_note(spill.rejects, spill.n_records, data, rejects)
    if note and notify is not None:
        notify(note)
    ids = spill.id_array()  # Arrow strings: no Python object per pair
    audit.check_failures(ids)
    take = audit.covered(ids, config.limit, data, notify)
    table, summary = decide(ids[:take], spill.flipped[:take], audit.view, config.method,
                            params, reviews, config.uncertain, min_votes)
    human = summary.get("human_review")
    if human is not None:
        human["quorum"], human["export_min_votes"] = rule, exported
    if human and human["below_quorum"] and notify is not None:
        notify(f"the review is incomplete: {human['below_quorum']} of {human['reviewed']} "
               f"reviewed pairs are below their quorum ({human['votes_missing']} votes "
               "missing); clean left them to the method (the manifest's review column "
               "says why)")
    limit = take if take < len(ids) else None
    writer, name = output_target(data, spill.format, config.to)
    summary = {"data": str(data), "audit": audit.name, "output": None, "format": writer,
               **summary, "limit": limit, "n_rejected_on_read": len(spill.rejects),
               "rejects": str(rejects) if rejects and spill.rejects else None,
               "seconds": round(time.perf_counter() - started, 2)}
    inputs = {"data": str(data), "audit": audit.name,
              "rejects": str(rejects) if rejects else None,
              "review": str(config.review) if config.review is not None else None}
    config = replace(config, params=params,
                     limit=config.limit if config.limit is not None else limit)
    return Decided(spill, table, summary, config, writer, name, inputs, started)


def clean_data(data: str | Path, audit: AuditInput, config: CleanConfig, *,
               rejects: str | Path | None = None, notify: Notify | None = None) -> Cleaned:
    """Read `data`, decide on the pairs `audit` covers with the settings `config`, and
    return the result in memory (nothing is written but `rejects`). The result's config
    records the method's typed parameters and the ``limit`` taken from the audit."""
    with tempfile.TemporaryDirectory(prefix="preflab-clean-") as work:
        decided = decide_data(data, audit, config, Path(work), rejects=rejects, notify=notify)
        pairs = [p for chunk in decided.spill.chunks() for p in chunk][:len(decided.table)]
    cleaned, manifest = apply_decisions(pairs, decided.table)
    return decided.result(cleaned, manifest)


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
    with tempfile.TemporaryDirectory(prefix="preflab-clean-") as work:
        decided = decide_data(data, AuditInput.load(audit), config, Path(work),
                              rejects=rejects, notify=notify)
        return decided.save(out, overwrite)
