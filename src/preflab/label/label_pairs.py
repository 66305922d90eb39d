"""``preflab label``: the labeling stage. Reads the pairs, builds the judge's prompt and
the judge, labels the pairs (:mod:`preflab.label.table`), sums up how the labels agree
with the human ones (:mod:`preflab.label.summary`) and writes labels.parquet,
summary.json, config.toml and, when asked, labelled.jsonl.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preflab.data.pair import PreferencePair
from preflab.data.read import iter_pairs, read_pairs
from preflab.data.sample import sample_pairs
from preflab.data.write import write_pairs
from preflab.engine import Engine, EngineOptions
from preflab.engine.core import CHARS_PER_TOKEN, make_executor, oversized, pair_texts
from preflab.engine.executor import ExecutorOptions
from preflab.engine.label_prompt import LabelPrompt, exemplars_from_pairs
from preflab.engine.make_judge import is_url, make_judge
from preflab.label.config import LabelConfig
from preflab.label.summary import label_summary, truncation
from preflab.label.table import direct_table, label_table
from preflab.models.generate import Sampling
from preflab.models.runtime import Runtime
from preflab.settings import write_config

Notify = Callable[[str], None]


def label(data: str | Path, judge: str | None = None, out: str | Path = "labels",
          config: LabelConfig | None = None, *, engine_options: EngineOptions | None = None,
          http: dict[str, Any] | None = None, on_error: str = "fail",
          rejects: str | Path | None = None, notify: Notify | None = None,
          executor: ExecutorOptions | None = None, **settings: Any) -> dict[str, Any]:
    """Label the pairs of `data` with ``config.judge`` (a model or an OpenAI-compatible
    URL); writes labels.parquet and summary.json. `judge` and `settings` (fields of
    :class:`LabelConfig`) override `config`.

    ``limit`` labels the first N pairs, ``sample`` a seeded random sample of N (of
    those); the `shots` exemplars are drawn (seeded) from the other pairs, so
    `shots` > 0 with every pair labelled is refused (an exemplar would be labelled by
    its own answer). With `cot`, the judge first writes a rationale (up to
    `cot_tokens` tokens, greedy); with `sc` > 1 it samples `sc` rationales at
    `temperature` and the distributions are averaged. With `direct`, each reply is
    rated 1-10 on its own (:func:`~preflab.label.table.direct_table`) instead of
    compared. A pair the judge failed on has no label and says why (``failure``). With `write_data`,
    ``labelled.jsonl`` holds the labelled pairs with ``p_chosen`` = the AI label (for
    soft-label reward models and DPO). A conversation longer than the judge's room
    keeps its first instruction and its most recent tokens (``context_truncated``
    counts them). With ``on_error="skip"`` bad records are skipped (written to
    `rejects`, replaced on every run); `notify` gets each warning as soon as it is
    known (records rejected, texts over the judge's ``max_length``). `executor`: where
    the judge's scoring batches run (local by default, or Ray actors, each with its own
    copy of the judge; rationales are generated in this process). `http`: an HTTP
    judge's options in place of the config's (``top_logprobs`` and fields of
    :class:`~preflab.engine.http_client.HttpOptions`, e.g. ``batch``, ``backoff``).
    """
    started = time.perf_counter()
    config = replace(config or LabelConfig(), **settings, **({"judge": judge} if judge
                                                               else {}))
    check_options(config)
    everything, chosen, n_rejected = select_pairs(data, config, on_error, rejects, notify)
    n_long = oversized(pair_texts(chosen), config.max_length)
    if n_long and notify is not None:
        notify(f"prompts or replies over {CHARS_PER_TOKEN * config.max_length:,} characters: "
               f"{n_long}; more than the judge's --max-length of {config.max_length} tokens, "
               "so they will be truncated")
    prompt = build_prompt(config, everything, chosen)
    scorer = make_scorer(config, prompt, http)
    engine = Engine(engine_options, make_executor(executor))
    sampling = Sampling(max_new_tokens=config.cot_tokens,
                        temperature=0.0 if config.sc == 1 else config.temperature)
    try:
        if config.direct:
            table = direct_table(chosen, scorer, engine)
        else:
            table = label_table(chosen, scorer, engine, cot=config.cot, sc=config.sc,
                                sampling=sampling, seed=config.seed)
    finally:
        engine.executor.close()
    summary = {"data": str(data), "judge": config.judge, **prompt.describe(),
               "direct": config.direct, "cot": config.cot, "sc": config.sc,
               **({"cot_tokens": config.cot_tokens, "temperature": sampling.temperature}
                  if config.cot else {}),
               "seed": config.seed, "limit": config.limit, "sample": config.sample,
               "n_rejected_on_read": n_rejected,
               "rejects": str(rejects) if rejects and n_rejected else None,
               **label_summary(table, chosen),
               "computed": engine.last_stats.computed, "cached": engine.last_stats.cached,
               "executor": executor.kind if executor else "local",
               "prompt_tokens": getattr(scorer, "prompt_tokens", None),
               "generated_tokens": getattr(scorer, "generated_tokens", 0),
               **truncation(scorer, config), "oversized": n_long,
               "seconds": round(time.perf_counter() - started, 2)}
    write_outputs(Path(out), table, chosen, summary, config, prompt)
    return summary


def check_options(config: LabelConfig) -> None:
    """Refuse settings that do not go together, before anything is loaded."""
    if config.sc < 1:
        raise ValueError(f"--sc must be at least 1, got {config.sc}")
    if config.sc > 1 and not config.cot:
        raise ValueError("self-consistency (--sc K) samples rationales: it needs --cot")
    if config.direct and (config.cot or config.shots or is_url(config.judge)):
        raise ValueError("direct scoring takes no --cot, no --shots and a local judge")


def select_pairs(data: str | Path, config: LabelConfig, on_error: str = "fail",
                 rejects: str | Path | None = None, notify: Notify | None = None
                 ) -> tuple[list[PreferencePair], list[PreferencePair], int]:
    """(every pair of `data`, the pairs to label: the first ``limit``, then a seeded
    ``sample`` of them, how many records were rejected on read)."""
    read = read_pairs(data, on_error=on_error, rejects_path=rejects)  # type: ignore[arg-type]
    if read.rejects and notify is not None:
        seen = f" (see {rejects})" if rejects else " (--rejects FILE lists them)"
        notify(f"{len(read.rejects)} of {read.n_records} records of {data} were rejected on "
               f"read and skipped{seen}")
    everything = list(iter_pairs(read.pairs))
    if not everything:
        raise ValueError(f"{data}: no pairs to label")
    chosen = everything[:config.limit] if config.limit is not None else everything
    chosen = sample_pairs(chosen, config.sample, config.seed)
    if config.shots and len(chosen) == len(everything):
        raise ValueError(f"{data}: {config.shots}-shot labeling needs exemplars that are not "
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


def make_scorer(config: LabelConfig, prompt: LabelPrompt,
                http: dict[str, Any] | None = None) -> Any:
    """The judge: a direct (1-10) scorer, a local comparing judge (on ``config.device``
    with ``config.threads``) or an HTTP one (`http`, else the config's HTTP options:
    :func:`~preflab.engine.make_judge.make_judge`). A long conversation keeps its first
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
    http = config.http() if http is None and not local else (http or {})
    return make_judge(config.judge, prompt, config.max_length, config.max_context_tokens,
                      runtime, keep_task=True, **http)


def write_outputs(out: Path, table: pd.DataFrame, chosen: list[PreferencePair],
                  summary: dict[str, Any], config: LabelConfig, prompt: LabelPrompt) -> None:
    """labels.parquet, with `write_data` labelled.jsonl, and summary.json."""
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / "labels.parquet", index=False)
    if config.write_data:
        by_id = {i: p for i, p in zip(table["id"], table["p_ai"], strict=True)
                 if np.isfinite(p)}
        meta = {"judge": config.judge, **prompt.describe(), "cot": config.cot,
                "sc": config.sc}
        labelled = [replace(p, p_chosen=float(by_id[p.id]), meta={**p.meta, "label": meta})
                    for p in chosen if p.id in by_id]
        write_pairs(labelled, out / "labelled.jsonl")
        summary["labelled_data"] = str(out / "labelled.jsonl")
        summary["labelled_pairs"] = len(labelled)  # pairs without a label are left out
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    write_config(config, out)
