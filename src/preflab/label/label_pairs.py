"""``preflab label``: AI-feedback labels for preference pairs, and how well they agree
with the human ones (RLAIF, Lee et al. 2023; docs/methods.md, "AI feedback labels").

Each pair is judged in both orders (chosen shown first, then second) and the two
soft labels are averaged (position debiasing). Alignment is the share of pairs
where the AI label's argmax is the human label; an AI label of exactly 0.5 is a
tie and counts as not aligned (ties are reported).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from preflab.data.messages import as_messages, text_hash
from preflab.data.pair import PreferencePair
from preflab.data.read import iter_pairs, read_pairs
from preflab.data.sample import sample_pairs
from preflab.data.write import write_pairs
from preflab.engine import Engine, EngineOptions
from preflab.engine.core import CHARS_PER_TOKEN, make_executor, oversized, pair_texts
from preflab.engine.executor import ExecutorOptions
from preflab.engine.judge import CONTEXT_CLIPPING, JudgeScorer, judge_unit, p_first
from preflab.engine.label_prompt import LabelPrompt, exemplars_from_pairs
from preflab.engine.make_judge import is_url, make_judge
from preflab.engine.units import Unit
from preflab.label.config import LabelConfig
from preflab.models.generate import Sampling
from preflab.models.runtime import Runtime, fingerprint
from preflab.settings import write_config

Notify = Callable[[str], None]


def rationale_seed(seed: int, key: str, j: int) -> int:
    """The seed of the `j`-th rationale of a unit: fixed by its content, not its batch."""
    return int(text_hash("rationale-seed", seed, key, j)[:8], 16)


def rationales(units: Sequence[Unit], scorer: JudgeScorer, engine: Engine, k: int,
               sampling: Sampling, seed: int = 0, batch: int = 16
               ) -> list[list[str | None]]:
    """`k` chain-of-thought rationales for each (context, A, B) unit, through the engine's
    cache (an interrupted run resumes; a finished one is not generated again). A
    rationale the judge failed to give is None, its reason in ``scorer.failures``."""
    fp = fingerprint("rationale", scorer.fingerprint, scorer.prompt.cot_ending,
                     sampling.__dict__, seed if sampling.temperature > 0 else None)
    keys = [[text_hash(u.key, j) for j in range(k)] for u in units]
    flat = [(u, j, key) for u, ks in zip(units, keys, strict=True) for j, key in enumerate(ks)]
    found = engine.cache.get_texts(fp, [key for _, _, key in flat])
    todo = sorted((x for x in flat if x[2] not in found),
                  key=lambda x: sum(len(t) for t in x[0].payload[:3] if isinstance(t, str)))
    with engine.progress() as progress:
        task = progress.add_task(f"rationales ({scorer.name})", total=len(flat))
        progress.advance(task, len(flat) - len(todo))
        for start in range(0, len(todo), batch):
            chunk = todo[start:start + batch]
            texts = scorer.generate([u.payload[:3] for u, _, _ in chunk],
                                    [rationale_seed(seed, u.key, j) for u, j, _ in chunk],
                                    sampling)
            done = [(key, t) for (_, _, key), t in zip(chunk, texts, strict=True)
                    if t is not None]
            engine.cache.put_texts(fp, done)
            found.update(done)
            progress.advance(task, len(chunk))
    return [[found.get(key) for key in ks] for ks in keys]


def label_table(pairs: Sequence[PreferencePair], scorer: JudgeScorer, engine: Engine,
                cot: bool = False, sc: int = 1, sampling: Sampling | None = None,
                seed: int = 0) -> pd.DataFrame:
    """Per pair: ``p_ai`` (P(chosen better), both orders averaged), ``p_chosen_first`` and
    ``p_chosen_second`` (each order alone), ``consistent`` (both orders prefer the same
    reply), ``label_mass`` (probability the labeler put on the two labels) and
    ``failure`` (why a pair has no label; its p columns are then NaN).

    With `cot`, each order is first explained (`sc` rationales, greedy when `sc` is 1,
    sampled as `sampling` says otherwise) and scored after each rationale; the `sc`
    distributions of an order are averaged (self-consistency). The rationales are
    in ``rationales_first`` / ``rationales_second``.
    """
    n = len(pairs)
    base = [judge_unit(as_messages(p.prompt), p.chosen, p.rejected) for p in pairs] + \
        [judge_unit(as_messages(p.prompt), p.rejected, p.chosen) for p in pairs]
    k = max(sc, 1) if cot else 1
    if cot:
        sampling = sampling or Sampling(temperature=0.0 if k == 1 else 1.0)
        texts = rationales(base, scorer, engine, k, sampling, seed)
    else:
        texts = [[None] for _ in base]
    scored = [judge_unit(*u.payload[:3], t) for u, ts in zip(base, texts, strict=True)
              for t in ts if not (cot and t is None)]
    values = iter(engine.run(scorer, scored, desc=scorer.name) if scored else [])
    p1, mass, reasons = first_preferred(base, texts, values,
                                        {**getattr(scorer, "failures", {}), **engine.failures},
                                        cot)
    if scorer.prompt.invert:  # it named the worse reply
        p1 = 1.0 - p1
    p_fwd, p_bwd = p1[:n], 1.0 - p1[n:]
    failure = [reasons[i] or reasons[n + i] for i in range(n)]
    table = pd.DataFrame({
        "id": [p.id for p in pairs],
        "p_ai": 0.5 * (p_fwd + p_bwd),
        "p_chosen_first": p_fwd,
        "p_chosen_second": p_bwd,
        "consistent": (p_fwd > 0.5) == (p_bwd > 0.5),
        "first_preferred": p1[:n] > 0.5,
        "first_preferred_swapped": p1[n:] > 0.5,
        "label_mass": 0.5 * (mass[:n] + mass[n:]),
        "failure": failure,
    })
    if cot:
        table["rationales_first"] = [list(map(str, t)) if None not in t else None
                                     for t in texts[:n]]
        table["rationales_second"] = [list(map(str, t)) if None not in t else None
                                      for t in texts[n:]]
    return table


def first_preferred(units: Sequence[Unit], texts: list[list[str | None]], values: Any,
                    failures: dict[str, str], cot: bool
                    ) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Per unit: P(the first reply is better), averaged over its rationales, the
    probability mass on the two labels, and why it has none (NaN) when it has none."""
    p1 = np.full(len(units), np.nan)
    mass = np.full(len(units), np.nan)
    reasons: list[str | None] = [None] * len(units)
    for i, (u, ts) in enumerate(zip(units, texts, strict=True)):
        got = []
        for t in ts:
            if cot and t is None:
                reasons[i] = "no rationale: " + failures.get(u.key, "generation failed")
                continue
            got.append((np.asarray(next(values), dtype=float), t))
        bad = [t for v, t in got if not np.isfinite(v[:2]).all()]
        if reasons[i] is None and bad:
            key = judge_unit(*u.payload[:3], bad[0]).key
            reasons[i] = failures.get(key, "the judge gave no label")
        if reasons[i] is None:
            vs = np.stack([v[:2] for v, _ in got])
            p1[i] = float(p_first(vs).mean())
            mass[i] = float(np.exp(vs).sum(axis=1).mean())
    return p1, mass, reasons


def direct_table(pairs: Sequence[PreferencePair], scorer: Any, engine: Engine
                 ) -> pd.DataFrame:
    """Direct scoring: each reply rated 1-10 on its own (``score_chosen``,
    ``score_rejected`` on [-1, 1]); ``p_ai`` = (2 + score_chosen - score_rejected) / 4,
    so a higher-rated chosen reply gives p_ai > 0.5. No order, so no position figures."""
    from preflab.engine.direct import direct_unit, expected_score, rescale

    units = [direct_unit(as_messages(p.prompt), p.chosen) for p in pairs] + \
        [direct_unit(as_messages(p.rejected_context), p.rejected) for p in pairs]
    values = np.stack(engine.run(scorer, units, desc=scorer.name)).astype(float)
    score = rescale(expected_score(values))
    n = len(pairs)
    return pd.DataFrame({"id": [p.id for p in pairs], "p_ai": (2 + score[:n] - score[n:]) / 4,
                         "score_chosen": score[:n], "score_rejected": score[n:],
                         "label_mass": 0.5 * (np.exp(values[:n]).sum(1)
                                              + np.exp(values[n:]).sum(1)),
                         "failure": [None] * n})


def label_summary(table: pd.DataFrame, pairs: Sequence[PreferencePair]) -> dict[str, Any]:
    """Alignment with the human labels and the position figures over the pairs that got
    a label; the others are counted by reason (pure).

    ``alignment`` is that of the AI label (both orders averaged);
    ``alignment_chosen_first`` / ``alignment_chosen_second`` are each order's alone
    (the human-chosen reply shown first / second): a judge that prefers a position
    scores high in one and low in the other, so their gap measures position bias
    (None for direct scoring, which has no order)."""
    ok = table["p_ai"].notna().to_numpy()
    failed = table.loc[~ok, "failure"].fillna("unknown")
    out: dict[str, Any] = {"n_pairs": len(table), "n_labelled": int(ok.sum()),
                           "n_failed": int((~ok).sum()),
                           "failures": {str(k): int(v) for k, v in failed.value_counts().items()}}
    if not ok.any():
        return out
    t = table[ok]
    ordered = "first_preferred" in t
    if not ordered:  # direct scoring: no orders
        t = t.assign(consistent=np.nan, first_preferred=np.nan, first_preferred_swapped=np.nan)
    human_chosen = np.array([p.p_chosen >= 0.5 for p, good in zip(pairs, ok, strict=True)
                             if good])

    def alignment(column: str) -> float:  # a tie (0.5) is not aligned
        p = t[column].to_numpy()
        return round(float(np.where(human_chosen, p > 0.5, p < 0.5).mean()), 4)

    ties = t["p_ai"].to_numpy() == 0.5
    first = np.concatenate([t["first_preferred"], t["first_preferred_swapped"]])
    return {
        **out,
        "alignment": alignment("p_ai"),
        "alignment_chosen_first": alignment("p_chosen_first") if ordered else None,
        "alignment_chosen_second": alignment("p_chosen_second") if ordered else None,
        "ties": int(ties.sum()),
        "position_consistency": _round(t["consistent"].mean()),
        "first_position_rate": _round(np.mean(first)),
        "label_token_mass": round(float(t["label_mass"].mean()), 4),
        "mean_p_ai": round(float(t["p_ai"].mean()), 4),
    }


def _round(x: Any) -> float | None:
    x = float(x)
    return None if x != x else round(x, 4)








def label(data: str | Path, judge: str | None = None, out: str | Path = "labels",
          config: LabelConfig | None = None, *, engine_options: EngineOptions | None = None,
          runtime: Runtime | None = None, scorer: Any | None = None,
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
    rated 1-10 on its own (:func:`direct_table`) instead of compared. A pair the judge
    failed on has no label and says why (``failure``). With `write_data`,
    ``labelled.jsonl`` holds the labelled pairs with ``p_chosen`` = the AI label (for
    soft-label reward models and DPO). A conversation longer than the judge's room
    keeps its first instruction and its most recent tokens (``context_truncated``
    counts them). With ``on_error="skip"`` bad records are skipped (written to
    `rejects`, replaced on every run); `notify` gets each warning as soon as it is
    known (records rejected, texts over the judge's ``max_length``). `executor`: where
    the judge's scoring batches run (local by default, or Ray actors, each with its own
    copy of the judge; rationales are generated in this process).
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
    if scorer is None:
        scorer = make_scorer(config, prompt, runtime, http)
    elif not config.direct and scorer.prompt != prompt:
        raise ValueError("the scorer given reads another prompt than the one asked for")
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


def truncation(scorer: Any, config: LabelConfig) -> dict[str, Any]:
    """What fitting the prompts computed in this run into the judge did: prompts cut
    (``truncated``), conversations shortened (``context_truncated``) and how: a
    conversation gets what ``max_length`` leaves beside the template and the replies,
    at most ``max_context_tokens`` when set."""
    return {"truncated": scorer.truncated,
            "context_truncated": getattr(scorer, "context_truncated", None),
            "context_budget": {"max_length": config.max_length,
                               "max_context_tokens": config.max_context_tokens},
            "context_kept": CONTEXT_CLIPPING}


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


def make_scorer(config: LabelConfig, prompt: LabelPrompt, runtime: Runtime | None = None,
                http: dict[str, Any] | None = None) -> Any:
    """The judge: a direct (1-10) scorer, a local comparing judge or an HTTP one. A long
    conversation keeps its first instruction and its most recent tokens
    (:class:`~preflab.engine.judge.JudgeReader` with ``keep_task``)."""
    local = not is_url(config.judge)
    if runtime is None and local and (config.device != "auto" or config.threads is not None):
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


GRID = [(preamble, cot, shots) for preamble in ("base", "detailed") for cot in (False, True)
        for shots in (0, 1, 2)]


def label_grid(data: str | Path, judge: str | None = None, out: str | Path = "label-grid",
               config: LabelConfig | None = None, **options: Any) -> pd.DataFrame:
    """The paper's grid (Base / Detailed x 0 / 1 / 2-shot x without / with chain of
    thought; ``grid_cot=False`` leaves CoT out) on the same pairs (``limit`` /
    ``sample``; a seeded sample of 300 when neither is set): one row per
    configuration, in the order of the paper's Table 2. `options`: fields of
    :class:`LabelConfig` and the keyword arguments of :func:`label`."""
    fields_ = set(LabelConfig.__dataclass_fields__)
    config = replace(config or LabelConfig(), **{k: v for k, v in options.items()
                                                  if k in fields_},
                     **({"judge": judge} if judge else {}))
    if config.limit is None and config.sample is None:
        config = replace(config, sample=300)
    extra = {k: v for k, v in options.items() if k not in fields_}
    rows = []
    for preamble, with_cot, shots in GRID:
        if with_cot and not config.grid_cot:
            continue
        name = f"{preamble}{'-cot' if with_cot else ''}-{shots}shot"
        s = label(data, out=Path(out) / name, config=replace(
            config, preamble=preamble, shots=shots, cot=with_cot, grid=False), **extra)
        rows.append({"preamble": preamble, "shots": shots, "cot": with_cot,
                     **{k: s.get(k) for k in ("alignment", "position_consistency",
                                              "first_position_rate", "ties", "n_failed",
                                              "seconds")}})
    frame = pd.DataFrame(rows)
    frame.to_csv(Path(out) / "grid.csv", index=False)
    return frame
