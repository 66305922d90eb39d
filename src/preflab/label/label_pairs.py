"""``preflab label``: the labeling stage. Reads the pairs and chooses those to label
(:mod:`preflab.label.selection`), builds the judge's prompt and the judge, labels the
pairs a chunk at a time (:mod:`preflab.label.table`), sums up how the labels agree
with the human ones (:mod:`preflab.label.summary`) and returns them as
:class:`~preflab.label.result.Labels`, written to a folder when asked (labels.parquet,
summary.json, config.toml and, with ``write_data``, labelled.jsonl).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preflab.data import stream
from preflab.data.outputs import prepare_output_dir
from preflab.data.pair import PreferencePair
from preflab.data.stream import PairWriter
from preflab.engine import Engine, EngineOptions
from preflab.engine.core import CHARS_PER_TOKEN, RunStats, make_executor
from preflab.engine.label_prompt import LabelPrompt
from preflab.engine.make_judge import is_url, make_judge
from preflab.label.config import LabelConfig
from preflab.label.result import COMMAND, LABELLED, Labels, PairFile
from preflab.label.selection import Selection, select_pairs
from preflab.label.summary import label_summary, truncation
from preflab.label.table import direct_table, label_table
from preflab.models.generate import Sampling
from preflab.models.runtime import Runtime

Notify = Callable[[str], None]


def label(data: str | Path, config: LabelConfig | None = None, out: str | Path | None = None,
          *, rejects: str | Path | None = None, overwrite: bool = False,
          notify: Notify | None = None, engine_options: EngineOptions | None = None,
          name: str | None = None, chunk: int | None = None, **overrides: Any) -> Labels:
    """Label the pairs of `data` (a path) with ``config.judge`` (a model or an
    OpenAI-compatible URL) and return the :class:`~preflab.label.result.Labels`;
    `overrides` are fields of :class:`LabelConfig` on top of `config` (its defaults
    when None). With `out` the labels are written there (labels.parquet,
    summary.json, config.toml, with ``write_data`` labelled.jsonl); the folder is
    checked once the data is read, before the judge loads: new, empty or an earlier
    labeling run's, any other only with `overwrite`.

    ``limit`` labels the first N pairs, ``sample`` a seeded random sample of N (of
    those); the `shots` exemplars are drawn (seeded) from the other pairs, so
    `shots` > 0 with every pair labelled is refused (an exemplar would be labelled by
    its own answer). With `cot`, the judge first writes a rationale (up to
    `cot_tokens` tokens, greedy); with `sc` > 1 it samples `sc` rationales at
    `temperature` and the distributions are averaged. With `direct`, each reply is
    rated 1-10 on its own (:func:`~preflab.label.table.direct_table`) instead of
    compared. A pair the judge failed on has no label and says why (``failure``). A
    conversation longer than the judge's room keeps its first instruction and its
    most recent tokens (``context_truncated`` counts them). With ``on_error="skip"``
    bad records are skipped (written to `rejects`, replaced on every run); `notify`
    gets each warning as soon as it is known (records rejected, texts over the
    judge's ``max_length``). ``executor``: where the judge's scoring batches run
    (rationales are generated in this process). `name`: how the summary and
    messages name the data (default: the path).

    The run streams: the pairs are read once into a file on disk and judged `chunk`
    (default :data:`~preflab.data.stream.CHUNK`) at a time, and with `out` the
    labelled pairs go to labelled.jsonl as they come (``Labels.pairs`` then reads them
    from there; without ``write_data`` it is empty); without `out` they are kept in
    memory.
    """
    started = time.perf_counter()
    config = replace(config or LabelConfig(), **overrides)
    check_options(config)
    name, chunk = name or str(data), chunk or stream.CHUNK
    with tempfile.TemporaryDirectory(prefix="preflab-label-") as work:
        selection = select_pairs(data, config, Path(work) / "pairs.parquet", rejects, notify,
                                 name, chunk)
        if out is not None:  # a bad input makes no folder
            out = prepare_output_dir(out, COMMAND, overwrite,
                                     info={"data": name, "judge": config.judge})
        if selection.n_long and notify is not None:
            notify(f"prompts or replies over {CHARS_PER_TOKEN * config.max_length:,} "
                   f"characters: {selection.n_long}; more than the judge's --max-length of "
                   f"{config.max_length} tokens, so they will be truncated")
        prompt = build_prompt(config, selection)
        scorer = make_scorer(config, prompt)
        engine = Engine(engine_options, make_executor(config.executor))
        sink = None if out is None else (out / LABELLED if config.write_data else False)
        try:
            run = judge_chunks(selection, scorer, engine, config, prompt, sink, chunk)
        finally:
            engine.executor.close()
    summary = {"data": name, "judge": config.judge, **prompt.describe(),
               "direct": config.direct, "cot": config.cot, "sc": config.sc,
               **({"cot_tokens": config.cot_tokens, "temperature": sampling(config).temperature}
                  if config.cot else {}),
               "seed": config.seed, "limit": config.limit, "sample": config.sample,
               "n_rejected_on_read": selection.n_rejected,
               "rejects": str(rejects) if rejects and selection.n_rejected else None,
               **label_summary(run.table, run.human),
               "computed": run.computed, "cached": run.cached,
               "executor": config.executor.kind,
               "prompt_tokens": getattr(scorer, "prompt_tokens", None),
               "generated_tokens": getattr(scorer, "generated_tokens", 0),
               **truncation(scorer, config), "oversized": selection.n_long,
               **({"labelled_pairs": run.n_labelled} if config.write_data else {}),
               "seconds": round(time.perf_counter() - started, 2)}
    result = Labels(run.table, summary, config, run.pairs)
    if out is not None:
        result.write(out)
    return result


@dataclass
class Judged:
    """What judging the chosen pairs gave: the label `table`, the `human` labels
    (``p_chosen``) of its pairs, the labelled `pairs` (kept, read back from the file
    they were written to, or none) and how many, and what the engine computed and
    found cached."""

    table: pd.DataFrame
    human: np.ndarray
    pairs: Sequence[PreferencePair]
    n_labelled: int
    computed: int
    cached: int


def judge_chunks(selection: Selection, scorer: Any, engine: Engine, config: LabelConfig,
                 prompt: LabelPrompt, sink: Path | bool | None, chunk: int) -> Judged:
    """The chosen pairs judged `chunk` at a time (:func:`judge_pairs`), their label
    tables joined; the labelled pairs (:func:`labelled_pairs`) kept in memory (`sink`
    None), written to the file `sink` as each chunk is labelled, or dropped (False)."""
    tables, human, kept = [], [], []
    counts = {"computed": 0, "cached": 0, "n": 0}
    with PairWriter(sink) if isinstance(sink, Path) else nullcontext() as writer:
        for pairs in selection.chunks(chunk):
            engine.last_stats = RunStats()  # a chunk whose units all failed runs nothing
            table = judge_pairs(pairs, scorer, engine, config)
            counts["computed"] += engine.last_stats.computed
            counts["cached"] += engine.last_stats.cached
            tables.append(table)
            human.append(np.array([p.p_chosen for p in pairs], dtype=float))
            done = labelled_pairs(table, pairs, config, prompt)
            counts["n"] += len(done)
            if writer is not None:
                writer.write(done)
            elif sink is None:
                kept.extend(done)
    table = tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True)
    pairs = PairFile(sink) if isinstance(sink, Path) else kept
    return Judged(table, np.concatenate(human), pairs, counts["n"], counts["computed"],
                  counts["cached"])


def sampling(config: LabelConfig) -> Sampling:
    """How rationales are decoded: greedy for one, at ``temperature`` for `sc` > 1."""
    return Sampling(max_new_tokens=config.cot_tokens,
                    temperature=0.0 if config.sc == 1 else config.temperature)


def judge_pairs(pairs: Sequence[PreferencePair], scorer: Any, engine: Engine,
                config: LabelConfig) -> pd.DataFrame:
    """The label table of `pairs`: compared in both orders, or each reply rated."""
    if config.direct:
        return direct_table(pairs, scorer, engine)
    return label_table(pairs, scorer, engine, cot=config.cot, sc=config.sc,
                       sampling=sampling(config), seed=config.seed)


def check_options(config: LabelConfig) -> None:
    """Refuse settings that do not go together, before anything is loaded."""
    if config.grid:
        raise ValueError("grid=True runs the paper's grid of prompts: call "
                         "preflab.label.grid.label_grid (or preflab.api.label.label_grid)")
    if config.sc > 1 and not config.cot:
        raise ValueError("self-consistency (--sc K) samples rationales: it needs --cot")
    if config.direct and (config.cot or config.shots or is_url(config.judge)):
        raise ValueError("direct scoring takes no --cot, no --shots and a local judge")


def build_prompt(config: LabelConfig, selection: Selection | None = None) -> LabelPrompt:
    """The labeling prompt, its ``shots`` exemplars drawn (seeded) from the pairs of
    `selection` that are not labelled."""
    prompt = LabelPrompt.build(config.task, config.preamble, template_file=config.template)
    if not config.shots:
        return prompt
    if selection is None:
        raise ValueError(f"{config.shots}-shot labeling draws its exemplars from the data: "
                         "pass the selection (select_pairs)")
    exemplars = selection.exemplars(config.shots, config.seed, prompt.invert)
    return replace(prompt, exemplars=tuple(exemplars))


def make_scorer(config: LabelConfig, prompt: LabelPrompt) -> Any:
    """The judge: a direct (1-10) scorer, a local comparing judge (on ``config.device``
    with ``config.threads``) or an HTTP one with the config's HTTP options
    (:func:`~preflab.engine.make_judge.make_judge`). A long conversation keeps its first
    instruction and its most recent tokens (:class:`~preflab.engine.judge.JudgeReader`
    with ``keep_task``)."""
    local = not is_url(config.judge)
    runtime = None
    if local and (config.device != "auto" or config.threads is not None):
        runtime = Runtime(device=config.device, threads=config.threads)
    if config.direct:
        from preflab.engine.direct import DirectScorer

        return DirectScorer(config.judge, config.task, config.template, config.max_length,
                            config.max_context_tokens, runtime)
    http = {} if local else config.http()
    return make_judge(config.judge, prompt, config.max_length, config.max_context_tokens,
                      runtime, keep_task=True, **http)


def labelled_pairs(table: pd.DataFrame, chosen: Sequence[PreferencePair], config: LabelConfig,
                   prompt: LabelPrompt) -> list[PreferencePair]:
    """The pairs that got a label, with ``p_chosen`` = the AI label and how it was made
    in ``meta["label"]`` (for soft-label reward models and DPO)."""
    by_id = {i: p for i, p in zip(table["id"], table["p_ai"], strict=True) if np.isfinite(p)}
    meta = {"judge": config.judge, **prompt.describe(), "cot": config.cot, "sc": config.sc}
    return [replace(p, p_chosen=float(by_id[p.id]), meta={**p.meta, "label": meta})
            for p in chosen if p.id in by_id]
