"""``preflab label``: the labeling stage. Reads the pairs, builds the judge's prompt and
the judge, labels the pairs (:mod:`preflab.label.table`), sums up how the labels agree
with the human ones (:mod:`preflab.label.summary`) and returns them as
:class:`~preflab.label.result.Labels`, written to a folder when asked (labels.parquet,
summary.json, config.toml and, with ``write_data``, labelled.jsonl).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preflab.data.outputs import prepare_output_dir
from preflab.data.pair import PreferencePair
from preflab.data.read import iter_pairs, read_pairs
from preflab.data.sample import sample_pairs
from preflab.engine import Engine, EngineOptions
from preflab.engine.core import CHARS_PER_TOKEN, make_executor, oversized, pair_texts
from preflab.engine.label_prompt import LabelPrompt, exemplars_from_pairs
from preflab.engine.make_judge import is_url, make_judge
from preflab.label.config import LabelConfig
from preflab.label.result import COMMAND, Labels
from preflab.label.summary import label_summary, truncation
from preflab.label.table import direct_table, label_table
from preflab.models.generate import Sampling
from preflab.models.runtime import Runtime

Notify = Callable[[str], None]


def label(data: str | Path, config: LabelConfig | None = None, out: str | Path | None = None,
          *, rejects: str | Path | None = None, overwrite: bool = False,
          notify: Notify | None = None, engine_options: EngineOptions | None = None,
          name: str | None = None, **overrides: Any) -> Labels:
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
    """
    started = time.perf_counter()
    config = replace(config or LabelConfig(), **overrides)
    check_options(config)
    name = name or str(data)
    everything, chosen, n_rejected = select_pairs(data, config, rejects, notify, name)
    if out is not None:  # a bad input makes no folder
        out = prepare_output_dir(out, COMMAND, overwrite,
                                 info={"data": name, "judge": config.judge})
    n_long = oversized(pair_texts(chosen), config.max_length)
    if n_long and notify is not None:
        notify(f"prompts or replies over {CHARS_PER_TOKEN * config.max_length:,} characters: "
               f"{n_long}; more than the judge's --max-length of {config.max_length} tokens, "
               "so they will be truncated")
    prompt = build_prompt(config, everything, chosen)
    scorer = make_scorer(config, prompt)
    engine = Engine(engine_options, make_executor(config.executor))
    try:
        table = judge_pairs(chosen, scorer, engine, config)
    finally:
        engine.executor.close()
    pairs = labelled_pairs(table, chosen, config, prompt)
    summary = {"data": name, "judge": config.judge, **prompt.describe(),
               "direct": config.direct, "cot": config.cot, "sc": config.sc,
               **({"cot_tokens": config.cot_tokens, "temperature": sampling(config).temperature}
                  if config.cot else {}),
               "seed": config.seed, "limit": config.limit, "sample": config.sample,
               "n_rejected_on_read": n_rejected,
               "rejects": str(rejects) if rejects and n_rejected else None,
               **label_summary(table, chosen),
               "computed": engine.last_stats.computed, "cached": engine.last_stats.cached,
               "executor": config.executor.kind,
               "prompt_tokens": getattr(scorer, "prompt_tokens", None),
               "generated_tokens": getattr(scorer, "generated_tokens", 0),
               **truncation(scorer, config), "oversized": n_long,
               **({"labelled_pairs": len(pairs)} if config.write_data else {}),
               "seconds": round(time.perf_counter() - started, 2)}
    result = Labels(table, summary, config, pairs)
    if out is not None:
        result.write(out)
    return result


def sampling(config: LabelConfig) -> Sampling:
    """How rationales are decoded: greedy for one, at ``temperature`` for `sc` > 1."""
    return Sampling(max_new_tokens=config.cot_tokens,
                    temperature=0.0 if config.sc == 1 else config.temperature)


def judge_pairs(pairs: list[PreferencePair], scorer: Any, engine: Engine,
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


def select_pairs(data: str | Path, config: LabelConfig, rejects: str | Path | None = None,
                 notify: Notify | None = None, name: str | None = None
                 ) -> tuple[list[PreferencePair], list[PreferencePair], int]:
    """(every pair of `data`, the pairs to label: the first ``limit``, then a seeded
    ``sample`` of them, how many records were rejected on read). Messages name the
    data `name` (default: the path)."""
    name = name or str(data)
    read = read_pairs(data, on_error=config.on_error,  # type: ignore[arg-type]
                      rejects_path=rejects)
    if read.rejects and notify is not None:
        seen = f" (see {rejects})" if rejects else " (--rejects FILE lists them)"
        notify(f"{len(read.rejects)} of {read.n_records} records of {name} were rejected on "
               f"read and skipped{seen}")
    everything = list(iter_pairs(read.pairs))
    if not everything:
        raise ValueError(f"{name}: no pairs to label")
    chosen = everything[:config.limit] if config.limit is not None else everything
    chosen = sample_pairs(chosen, config.sample, config.seed)
    if config.shots and len(chosen) == len(everything):
        raise ValueError(f"{name}: {config.shots}-shot labeling needs exemplars that are not "
                         "labelled; label part of the pairs (--sample N or --limit N) so "
                         "they come from the rest")
    return everything, chosen, len(read.rejects)


def build_prompt(config: LabelConfig, everything: list[PreferencePair],
                 chosen: list[PreferencePair]) -> LabelPrompt:
    """The labeling prompt, its exemplars drawn (seeded) from the pairs not labelled."""
    prompt = LabelPrompt.build(config.task, config.preamble, template_file=config.template)
    exemplars = exemplars_from_pairs(everything, config.shots, seed=config.seed,
                                     exclude={p.id for p in chosen}, invert=prompt.invert)
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


def labelled_pairs(table: pd.DataFrame, chosen: list[PreferencePair], config: LabelConfig,
                   prompt: LabelPrompt) -> list[PreferencePair]:
    """The pairs that got a label, with ``p_chosen`` = the AI label and how it was made
    in ``meta["label"]`` (for soft-label reward models and DPO)."""
    by_id = {i: p for i, p in zip(table["id"], table["p_ai"], strict=True) if np.isfinite(p)}
    meta = {"judge": config.judge, **prompt.describe(), "cot": config.cot, "sc": config.sc}
    return [replace(p, p_chosen=float(by_id[p.id]), meta={**p.meta, "label": meta})
            for p in chosen if p.id in by_id]
