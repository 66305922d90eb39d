"""Scoring-engine throughput against the strongest naive scorer, side by side.

The naive scorer is what RewardBench and PrefCleanBench do: every (prompt, reply)
text tokenized through the chat template and scored on its own, in input order, in
right-padded batches through the sequence-classification model's own forward, at
batch 8 and at 64 (RewardBench's default). The engine deduplicates, sorts by
length into batches capped in padded tokens, and runs each prompt once for both
replies (prefix sharing). Same model (smollm2 with a seeded scalar head, i.e. a
`causal-rm` member), same dtype, same thread count.

Fairness: tokenization is inside both timers (the engine encodes inside its run);
model loading is outside; each side is warmed up (a few pairs) before its timer;
every run is a fresh child process (peak resident memory reported per side, the
largest over its runs); the three sides run `--reps` times in alternating order
and the median time is reported; the speedup is against the faster naive variant.
The engine's score cache is in memory and empty at each timed run.

Breakdown: the engine with one of its techniques switched off at a time
(``no-dedup``: every unit scored, duplicates included; ``no-length-sorting``:
groups batched in input order; ``no-prefix-sharing``: prompt+reply rows through
the model's own forward; ``no-batch-cap``: fixed batches of `--fixed-rows` pairs
instead of the padded-token cap), each run once (``--breakdown-reps``).

Last line: JSON with engine_pairs_per_s, naive_pairs_per_s (the faster naive),
speedup, max_abs_diff (engine vs naive scores), the peak memories and the
breakdown.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from child import in_child

DEFAULT_DATA = (Path(__file__).resolve().parents[2]
                / "shared/data/hh-rlhf/harmless-base-test.jsonl.gz")
VARIANTS = ("no-dedup", "no-length-sorting", "no-prefix-sharing", "no-batch-cap")
WARM_UP_PAIRS = 4


def load(args: argparse.Namespace, prefix_sharing: bool = True) -> tuple[Any, list[Any]]:
    """(scorer, units: chosen and rejected of each of the first --pairs pairs)."""
    import torch

    from preflab.data.messages import as_messages
    from preflab.data.read import iter_pairs, read_pairs
    from preflab.engine.reward import RewardScorer
    from preflab.engine.units import reply_unit
    from preflab.models.runtime import Runtime

    torch.set_num_threads(args.threads)
    pairs = []
    for pair in iter_pairs(read_pairs(args.data).pairs):
        pairs.append(pair)
        if len(pairs) == args.pairs:
            break
    scorer = RewardScorer(args.model, runtime=Runtime(precision=args.precision),
                          prefix_sharing=prefix_sharing)
    units = [u for p in pairs for u in (reply_unit(as_messages(p.prompt), p.chosen),
                                         reply_unit(as_messages(p.rejected_context), p.rejected))]
    return scorer, units


def run_engine(args: argparse.Namespace, variant: str = "engine") -> dict[str, Any]:
    import numpy as np

    from preflab.engine import Engine, EngineOptions

    scorer, units = load(args, prefix_sharing=variant != "no-prefix-sharing")
    options = EngineOptions(cache_path=":memory:", max_tokens=args.max_tokens, progress=False)
    if variant == "no-batch-cap":
        options = replace(options, max_tokens=10**12, max_waste=float("inf"),
                          max_rows=args.fixed_rows)
    if variant == "no-length-sorting":
        scorer.sort_key = lambda item: (0,)  # a stable sort: groups stay in input order
    if variant == "no-dedup":
        units = [replace(u, key=f"{u.key}:{i}") for i, u in enumerate(units)]
    Engine(options).run(scorer, units[:2 * WARM_UP_PAIRS])  # warm-up, its own cache
    engine = Engine(options)
    started = time.perf_counter()
    values = np.concatenate(engine.run(scorer, units))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "values": values.tolist(), "batches": engine.last_stats.batches,
            "unique": engine.last_stats.unique, "units": len(units)}


def run_naive(args: argparse.Namespace, batch: int) -> dict[str, Any]:
    import torch

    from preflab.models.chat import chat_ids

    scorer, units = load(args)
    pad = scorer.tokenizer.pad_token_id

    @torch.inference_mode()
    def score(units: list[Any]) -> list[float]:
        out: list[float] = []
        for start in range(0, len(units), batch):
            chunk = [chat_ids(scorer.tokenizer, *u.payload) for u in units[start:start + batch]]
            width = max(len(t) for t in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for j, t in enumerate(chunk):
                ids[j, :len(t)] = torch.tensor(t)
                mask[j, :len(t)] = 1
            with scorer.runtime.autocast():
                logits = scorer.model(input_ids=ids, attention_mask=mask).logits
            out += logits[:, scorer.output_index].float().tolist()
        return out

    score(units[:2 * WARM_UP_PAIRS])  # warm-up
    started = time.perf_counter()
    values = score(units)
    return {"seconds": time.perf_counter() - started, "values": values}


def side(name: str, args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    if name.startswith("naive-"):
        return in_child(run_naive, args, int(name.split("-")[1]))
    return in_child(run_engine, args, name)


def main() -> None:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=4096)
    parser.add_argument("--naive-batches", default="8,64")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--breakdown-reps", type=int, default=1)
    parser.add_argument("--fixed-rows", type=int, default=32,
                        help="no-batch-cap: pairs per batch (64 replies, as naive-64)")
    args = parser.parse_args()
    if args.threads is None:
        import torch

        args.threads = torch.get_num_threads()

    sides = ["engine", *(f"naive-{b}" for b in args.naive_batches.split(","))]
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    peaks: dict[str, float] = {}
    for rep in range(args.reps):
        for name in sides if rep % 2 == 0 else sides[::-1]:
            result, peak = side(name, args)
            runs[name].append(result)
            peaks[name] = max(peaks.get(name, 0.0), peak)
            print(json.dumps({"rep": rep, "side": name, "seconds": round(result["seconds"], 2),
                              "peak_rss_mb": round(peak)}), flush=True)
    median = {s: statistics.median(r["seconds"] for r in runs[s]) for s in sides}
    engine_values = np.array(runs["engine"][0]["values"])
    naive = [s for s in sides if s != "engine"]
    fastest = min(naive, key=lambda s: median[s])
    diff = max(float(np.abs(engine_values - np.array(runs[s][0]["values"])).max())
               for s in naive)
    n = len(engine_values) // 2

    breakdown: dict[str, Any] = {"engine": {"seconds": round(median["engine"], 2),
                                            "slowdown": 1.0}}
    for variant in VARIANTS:
        times = []
        for _ in range(args.breakdown_reps):
            result, peak = side(variant, args)
            times.append(result["seconds"])
            values = np.array(result["values"])
        breakdown[variant] = {"seconds": round(statistics.median(times), 2),
                              "slowdown": round(statistics.median(times) / median["engine"], 3),
                              "max_abs_diff": float(np.abs(values - engine_values).max()),
                              "peak_rss_mb": round(peak)}
    print("\n| engine run | seconds | pairs/s | time vs full engine |\n|---|---|---|---|")
    for name, row in breakdown.items():
        print(f"| {name} | {row['seconds']} | {n / row['seconds']:.2f} | "
              f"{row['slowdown']:.2f}x |")
    for s in naive:
        print(f"| naive, batch {s.split('-')[1]} | {median[s]:.2f} | {n / median[s]:.2f} | "
              f"{median[s] / median['engine']:.2f}x |")
    print()
    result = {
        "pairs": n, "model": args.model, "precision": args.precision,
        "threads": args.threads, "reps": args.reps,
        "engine_seconds": round(median["engine"], 2),
        **{f"{s.replace('-', '')}_seconds": round(median[s], 2) for s in naive},
        "engine_pairs_per_s": round(n / median["engine"], 3),
        "naive_pairs_per_s": round(n / median[fastest], 3), "faster_naive": fastest,
        "speedup": round(median[fastest] / median["engine"], 3),
        "speedup_vs_slower_naive": round(max(median[s] for s in naive) / median["engine"], 3),
        "max_abs_diff": diff,
        "engine_batches": runs["engine"][0]["batches"],
        "unique_units": runs["engine"][0]["unique"], "units": runs["engine"][0]["units"],
        **{f"{s.replace('-', '_')}_peak_rss_mb": round(peaks[s]) for s in sides},
        "breakdown": breakdown,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
