"""AI-labeler throughput with the shared-preamble KV cache against the same labeler
without it, side by side in one run.

The same judge model and the same 2-shot prompt (the preamble and two exemplars,
identical for every pair) label the same pairs in both orders, three ways:

- ``cached`` (the default, ``share_prefix="run"``): the preamble and exemplars run
  once and their KV cache is reused by every pair;
- ``uncached`` (``share_prefix="off"``): every pair's prompt runs whole (the two
  orders of a pair still share their common part, as in every mode);
- ``batch`` (``share_prefix="batch"``, for reference): the tokens every prompt of a
  batch shares run once per batch.

Last line: JSON with cached_pairs_per_s, uncached_pairs_per_s, speedup (cached /
uncached), max_abs_diff (largest |p_ai cached - p_ai uncached|), the batch figures
and the prompt's size.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from preflab.data.read import iter_pairs, read_pairs
from preflab.data.sample import sample_pairs
from preflab.engine import Engine, EngineOptions
from preflab.engine.judge import JudgeScorer
from preflab.engine.label_prompt import LabelPrompt, exemplars_from_pairs
from preflab.label.table import label_table
from preflab.models.runtime import Runtime

DEFAULT_DATA = (Path(__file__).resolve().parents[2]
                / "shared/data/hh-rlhf/harmless-base-test.jsonl.gz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--judge", default="smollm2-135m-instruct")
    parser.add_argument("--task", default="harmless")
    parser.add_argument("--preamble", default="detailed")
    parser.add_argument("--shots", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--no-batch", action="store_true", help="skip the per-batch mode")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    everything = list(iter_pairs(read_pairs(args.data).pairs))
    pairs = sample_pairs(everything, args.pairs, args.seed)
    prompt = LabelPrompt.build(args.task, args.preamble)
    exemplars = exemplars_from_pairs(everything, args.shots, seed=args.seed,
                                     exclude={p.id for p in pairs}, invert=prompt.invert)
    prompt = replace(prompt, exemplars=tuple(exemplars))
    runtime = Runtime(precision=args.precision)
    modes = ["off", "run"] if args.no_batch else ["off", "batch", "run"]
    seconds, p_ai, scorers = {}, {}, {}
    for mode in modes:
        scorer = JudgeScorer(args.judge, prompt=prompt, runtime=runtime, share_prefix=mode)
        label_table(pairs[:4], scorer, Engine(EngineOptions(cache_path=":memory:",
                                                            progress=False)))  # warm-up
        scorer._head = None  # the timed run pays for its own head
        engine = Engine(EngineOptions(cache_path=":memory:"))
        started = time.perf_counter()
        table = label_table(pairs, scorer, engine)
        seconds[mode] = time.perf_counter() - started
        p_ai[mode] = table["p_ai"].to_numpy()
        scorers[mode] = scorer
    lengths = [len(scorers["run"].prompt_ids(*u)) for u in
               [(tuple((m["role"], m["content"]) for m in p.prompt), p.chosen, p.rejected)
                for p in pairs]]
    result = {
        "pairs": len(pairs), "judge": args.judge, "task": args.task,
        "preamble": args.preamble, "shots": args.shots, "precision": args.precision,
        "threads": args.threads, "head_tokens": len(scorers["run"].head_ids()),
        "mean_prompt_tokens": round(float(np.mean(lengths)), 1),
        "cached_seconds": round(seconds["run"], 2),
        "uncached_seconds": round(seconds["off"], 2),
        "cached_pairs_per_s": round(len(pairs) / seconds["run"], 3),
        "uncached_pairs_per_s": round(len(pairs) / seconds["off"], 3),
        "speedup": round(seconds["off"] / seconds["run"], 3),
        "max_abs_diff": float(np.abs(p_ai["run"] - p_ai["off"]).max()),
    }
    if "batch" in seconds:
        result["batch_pairs_per_s"] = round(len(pairs) / seconds["batch"], 3)
        result["batch_max_abs_diff"] = float(np.abs(p_ai["batch"] - p_ai["off"]).max())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
