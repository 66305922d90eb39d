"""Scoring-engine throughput against a naive scorer, side by side in one run.

The naive scorer is what RewardBench and PrefCleanBench do: every (prompt, reply)
text scored separately, in input order, in padded batches of 8, through the
sequence-classification model's own forward. The engine deduplicates, sorts and
buckets by length under a token cap, and runs each prompt once for both replies
(prefix sharing). Same model (smollm2 with a seeded scalar head, i.e. a
`causal-rm` member), same dtype, same thread count.

Last line: JSON with engine_pairs_per_s, naive_pairs_per_s, speedup, max_abs_diff,
gflops and peak_gflops (a 2048^3 fp32 matmul measured in this run). `gflops` is
2 x non-embedding parameters x engine_tokens / engine time, where engine_tokens
counts each prompt once per pair group (the tokens shared by a whole batch, such
as the system prompt, run once per batch, so the engine does a little less work
than that count: read gflops as work-equivalent).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from preflab.data.messages import as_messages
from preflab.data.read import iter_pairs, read_pairs
from preflab.engine import Engine, EngineOptions
from preflab.engine.reward import RewardScorer
from preflab.engine.units import reply_unit
from preflab.models.chat import chat_ids
from preflab.models.runtime import Runtime

DEFAULT_DATA = (Path(__file__).resolve().parents[2]
                / "shared/data/hh-rlhf/harmless-base-test.jsonl.gz")


def matmul_peak_gflops(dtype: torch.dtype = torch.float32, n: int = 2048, reps: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    started = time.perf_counter()
    for _ in range(reps):
        a @ b
    return reps * 2 * n**3 / (time.perf_counter() - started) / 1e9


@torch.inference_mode()
def naive_scores(scorer: RewardScorer, texts: list[list[int]], batch: int = 8) -> np.ndarray:
    pad = scorer.tokenizer.pad_token_id
    out = []
    for start in range(0, len(texts), batch):
        chunk = texts[start:start + batch]
        width = max(len(t) for t in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for j, t in enumerate(chunk):
            ids[j, :len(t)] = torch.tensor(t)
            mask[j, :len(t)] = 1
        with scorer.runtime.autocast():
            logits = scorer.model(input_ids=ids, attention_mask=mask).logits
        out.append(logits[:, scorer.output_index].float())
    return torch.cat(out).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--max-tokens", type=int, default=4096)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pairs = []
    for pair in iter_pairs(read_pairs(args.data).pairs):
        pairs.append(pair)
        if len(pairs) == args.pairs:
            break
    scorer = RewardScorer(args.model, runtime=Runtime(precision=args.precision))
    units = [u for p in pairs for u in (reply_unit(as_messages(p.prompt), p.chosen),
                                         reply_unit(as_messages(p.rejected_context), p.rejected))]
    peak = matmul_peak_gflops()

    engine = Engine(EngineOptions(cache_path=":memory:", max_tokens=args.max_tokens))
    started = time.perf_counter()
    engine_values = np.concatenate(engine.run(scorer, units, desc="engine"))
    engine_s = time.perf_counter() - started

    texts = [chat_ids(scorer.tokenizer, *u.payload) for u in units]
    started = time.perf_counter()
    naive_values = naive_scores(scorer, texts)
    naive_s = time.perf_counter() - started

    groups: dict[str, list] = {}
    for u in units:
        groups.setdefault(u.group, []).append(u)
    real_tokens = sum(scorer.cost([scorer.encode(g)])[1] for g in groups.values())
    n_params = sum(p.numel() for n, p in scorer.backbone.named_parameters()
                   if "embed" not in n)
    result = {
        "pairs": len(pairs), "model": args.model, "precision": args.precision,
        "threads": args.threads, "engine_seconds": round(engine_s, 2),
        "naive_seconds": round(naive_s, 2),
        "engine_pairs_per_s": round(len(pairs) / engine_s, 3),
        "naive_pairs_per_s": round(len(pairs) / naive_s, 3),
        "speedup": round(naive_s / engine_s, 3),
        "max_abs_diff": float(np.abs(engine_values - naive_values).max()),
        "engine_tokens": real_tokens, "naive_tokens": sum(len(t) for t in texts),
        "gflops": round(2 * n_params * real_tokens / engine_s / 1e9, 1),
        "peak_gflops": round(peak, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
