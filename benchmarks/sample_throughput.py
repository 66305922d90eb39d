"""Sampling N replies per prompt: preflab's sampler against transformers' `generate`.

Both sides read the same model (fp32), the same chat-templated prompt ids (the
sampler's ``prompt_ids``), the same ``max_new_tokens``, temperature and top-p (no
top-k, no repetition penalty: a fresh ``GenerationConfig``), the same stop tokens
and the same number of sequences decoded at once (`--batch-size`: generate gets
batch-size / N prompts per call with ``num_return_sequences=N``, left-padded; the
sampler decodes batch-size rows). ``generate`` copies each prompt N times and
runs every copy's prompt; preflab's sampler runs each prompt once and decodes the N
continuations against copies of its KV cache (``models/sampler.py``).

Tokens/s counts, on each side, the tokens it generated (each reply up to and with
its stop token, when it stopped before the limit), over the time of the sampling
calls (tokenization and model loading outside). Each side runs in its own child
process, whose peak resident memory is reported. Greedy check: every prompt
decoded greedily by both, one prompt at a time (the sampler with 2 samples per
prompt, so through the shared cache; generate without padding) must give the same
tokens.

Last line: JSON with ``preflab_tokens_per_s``, ``hf_tokens_per_s``, ``speedup``,
``greedy_identical``, both peak memories.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from child import in_child

DEFAULT_DATA = (Path(__file__).resolve().parents[2]
                / "shared/data/hh-rlhf/harmless-base-test.jsonl.gz")


def load(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    from preflab.data.prompts import load_prompts
    from preflab.models.runtime import Runtime
    from preflab.models.sampler import Policy

    policy = Policy(args.model, Runtime(threads=args.threads),
                    max_prompt_tokens=args.max_prompt_tokens)
    return policy, load_prompts(args.data, args.pairs)


def trim(ids: list[int], stop: set[int]) -> list[int]:
    """Tokens before the first stop token."""
    for i, t in enumerate(ids):
        if t in stop:
            return ids[:i]
    return ids


def generated(replies: list[list[int]], max_new_tokens: int) -> int:
    """Tokens generated: each reply, plus its stop token when it stopped before the limit."""
    return sum(len(r) + (len(r) < max_new_tokens) for r in replies)


def run_preflab(args: argparse.Namespace, greedy: bool) -> dict[str, Any]:
    import torch

    from preflab.models.generate import Sampling

    policy, prompts = load(args)
    n = 2 if greedy else args.n
    sampling = Sampling(max_new_tokens=args.max_new_tokens,
                        temperature=0.0 if greedy else args.temperature, top_p=args.top_p)
    with torch.inference_mode():
        policy.generate_ids([p.messages for p in prompts], [p.id for p in prompts], 1, sampling,
                            batch_size=1, progress=False)  # warm-up: one prompt
        started = time.perf_counter()
        out = policy.generate_ids([p.messages for p in prompts], [p.id for p in prompts], n,
                                  sampling, seed=args.seed,
                                  batch_size=n if greedy else args.batch_size, progress=False)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "replies": out,
            "tokens": generated([r for per in out for r in per], args.max_new_tokens)}


def run_hf(args: argparse.Namespace, greedy: bool) -> dict[str, Any]:
    import torch
    from transformers import GenerationConfig

    policy, prompts = load(args)
    model, pad = policy.model, policy.pad_id
    stop = sorted(policy.stop_ids)
    config = GenerationConfig(
        max_new_tokens=args.max_new_tokens, do_sample=not greedy,
        temperature=args.temperature if not greedy else None,
        top_p=args.top_p if not greedy else None, top_k=None,
        num_return_sequences=1 if greedy else args.n, eos_token_id=stop, pad_token_id=pad)
    per_call = 1 if greedy else max(1, args.batch_size // args.n)
    ids = [policy.prompt_ids(p.messages) for p in prompts]
    k = config.num_return_sequences

    def generate(batch: list[list[int]]) -> list[list[int]]:
        width = max(len(x) for x in batch)
        inp = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros_like(inp)
        for j, x in enumerate(batch):
            inp[j, width - len(x):] = torch.tensor(x)
            mask[j, width - len(x):] = 1
        seqs = model.generate(input_ids=inp, attention_mask=mask, generation_config=config)
        return [trim(s[width:].tolist(), policy.stop_ids) for s in seqs]

    torch.manual_seed(args.seed)
    with torch.inference_mode():
        generate(ids[:1])  # warm-up: one prompt
        started = time.perf_counter()
        flat = [r for start in range(0, len(ids), per_call)
                for r in generate(ids[start:start + per_call])]
    seconds = time.perf_counter() - started
    replies = [flat[i * k:(i + 1) * k] for i in range(len(ids))]
    return {"seconds": seconds, "replies": replies,
            "tokens": generated(flat, args.max_new_tokens)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="pairs or prompts file")
    parser.add_argument("--pairs", type=int, default=16, help="first N prompts of --data")
    parser.add_argument("--n", type=int, default=16, help="replies per prompt")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--batch-size", type=int, default=16, help="sequences decoded at once")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--max-prompt-tokens", type=int, default=1024)
    parser.add_argument("--greedy-tokens", type=int, default=32,
                        help="max_new_tokens of the greedy check")
    parser.add_argument("--order", default="hf,preflab", help="which runs first")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.batch_size % args.n and args.n < args.batch_size:
        parser.error("--batch-size must be a multiple of --n when larger")

    runs: dict[str, Any] = {}
    for side in args.order.split(","):
        result, peak = in_child(run_preflab if side == "preflab" else run_hf, args, False)
        runs[side] = {**result, "peak_rss_mb": round(peak)}
        print(json.dumps({"side": side, "seconds": round(result["seconds"], 2),
                          "tokens": result["tokens"], "peak_rss_mb": round(peak)}), flush=True)
    check = argparse.Namespace(**{**vars(args), "max_new_tokens": args.greedy_tokens})
    greedy_p, _ = in_child(run_preflab, check, True)
    greedy_h, _ = in_child(run_hf, check, True)
    same = [all(r == h[0] for r in p) for p, h in zip(greedy_p["replies"], greedy_h["replies"],
                                                      strict=True)]
    p, h = runs["preflab"], runs["hf"]
    p_rate, h_rate = p["tokens"] / p["seconds"], h["tokens"] / h["seconds"]
    print(json.dumps({
        "data": args.data, "model": args.model, "prompts": len(p["replies"]), "n": args.n,
        "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature, "top_p": args.top_p,
        "preflab_seconds": round(p["seconds"], 2), "hf_seconds": round(h["seconds"], 2),
        "preflab_tokens": p["tokens"], "hf_tokens": h["tokens"],
        "preflab_tokens_per_s": round(p_rate, 1), "hf_tokens_per_s": round(h_rate, 1),
        "speedup": round(p_rate / h_rate, 3),
        "preflab_peak_rss_mb": p["peak_rss_mb"], "hf_peak_rss_mb": h["peak_rss_mb"],
        "greedy_identical": all(same), "greedy_prompts_identical": f"{sum(same)}/{len(same)}",
        "greedy_max_new_tokens": args.greedy_tokens}))


if __name__ == "__main__":
    main()
