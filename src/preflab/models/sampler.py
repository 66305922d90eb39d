"""Sampling replies from a policy: batched, every sample seeded on its own.

Sample j of prompt p draws from a generator seeded by (seed, p, j), so a reply does
not depend on batch size or on which other prompts are generated. Prompts go
through the chat template (or HH-style text) and keep their last
`max_prompt_tokens` tokens.

Each prompt runs once: its N samples decode against copies of its KV cache
(``batch_size // N`` prompts per batch; with N > batch_size the prompt's cache is
kept and its samples decode batch_size at a time), where ``generate`` with
``num_return_sequences`` would run the prompt N times
(``benchmarks/sample_throughput.py``).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import torch

from preflab.data.instructions import instruct, instruction_text
from preflab.data.messages import Messages
from preflab.models.chat import chat_ids
from preflab.models.forward import Head, head_cache
from preflab.models.generate import Sampling, decode, stop_token_ids
from preflab.models.runtime import Runtime
from preflab.models.steering import SteeringVector, steered


def sample_seed(seed: int, key: str, j: int) -> int:
    return zlib.crc32(f"{seed}:{key}:{j}".encode())


class Policy:
    """A causal LM to sample replies from (preset, folder or hub id), optionally with
    an instruction before each prompt's last user turn (HIR) or a steering vector."""

    def __init__(self, model: str | Any, runtime: Runtime | None = None,
                 max_prompt_tokens: int = 1024, tokenizer: Any = None,
                 instruction: str | None = None, steering: SteeringVector | None = None,
                 coeff: float = 1.0) -> None:
        from preflab.models.offline import load_causal_lm, load_tokenizer

        self.runtime = runtime or Runtime()
        self.runtime.apply_threads()
        if isinstance(model, str):
            self.name = model
            self.tokenizer = load_tokenizer(model)
            self.model = load_causal_lm(model, dtype=self.runtime.weight_dtype()).to(
                self.runtime.torch_device()).eval()
        else:  # an in-memory model (e.g. during RL)
            self.name, self.model, self.tokenizer = "<model>", model, tokenizer
        self.pad_id = (self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None
                       else self.tokenizer.eos_token_id)
        self.stop_ids = stop_token_ids(self.tokenizer, self.model)
        self.max_prompt_tokens = max_prompt_tokens
        self.prompts_truncated: set[Messages] = set()  # prompts that lost their oldest tokens
        # written before each prompt's last user turn (``good``/``bad`` or a text)
        self.instruction = instruction_text(instruction) if instruction else None
        self.steering, self.coeff = steering, coeff  # added to hidden states while sampling

    def prompt_ids(self, context: Messages) -> list[int]:
        """The templated prompt; a longer one keeps its last `max_prompt_tokens` tokens
        (counted in ``prompts_truncated``)."""
        if self.instruction:
            context = instruct(context, self.instruction)
        ids = chat_ids(self.tokenizer, context, None)
        if len(ids) > self.max_prompt_tokens:
            self.prompts_truncated.add(context)
            return ids[-self.max_prompt_tokens:]
        return ids

    def generate_ids(self, contexts: Sequence[Messages], keys: Sequence[str], n: int,
                     sampling: Sampling, seed: int = 0, batch_size: int = 8,
                     progress: bool = True, return_logprobs: bool = False) -> list[list[Any]]:
        """Per prompt, `n` lists of new token ids (with per-token log-prob rows when
        `return_logprobs`; the stop token is then kept), under the steering vector if
        any."""
        ids = [self.prompt_ids(c) for c in contexts]
        out: list[list[Any]] = [[None] * n for _ in ids]
        with steered(self.model, self.steering, self.coeff):
            self._generate(ids, keys, n, sampling, seed, batch_size, progress,
                           return_logprobs, out)
        return out

    def _generate(self, ids: list[list[int]], keys: Sequence[str], n: int,
                  sampling: Sampling, seed: int, batch_size: int, progress: bool,
                  return_logprobs: bool, out: list[list[Any]]) -> None:
        from tqdm.auto import tqdm

        def run(head: Head | None, rests: list[list[int]], chunk: list[tuple[int, int]],
                copies: int = 1) -> None:
            result = decode(self.model, head, rests,
                            [sample_seed(seed, keys[i], j) for i, j in chunk], sampling,
                            self.stop_ids, self.pad_id, return_logprobs=return_logprobs,
                            copies=copies)
            if return_logprobs:
                result = list(zip(*result, strict=True))
            for (i, j), r in zip(chunk, result, strict=True):
                out[i][j] = r

        rows = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        with tqdm(total=len(ids) * n, desc=f"sampling {self.name}",
                  disable=not progress) as bar:
            if n > batch_size:  # one prompt's KV cache, computed once, for all its chunks
                for i, prompt in enumerate(ids):
                    head = head_cache(self.model.base_model, prompt[:-1]) if len(prompt) > 1 \
                        else None
                    for start in range(0, n, batch_size):
                        chunk = [(i, j) for j in range(start, min(n, start + batch_size))]
                        run(head, [prompt[-1:] if head else prompt] * len(chunk), chunk)
                        bar.update(len(chunk))
                return
            # batch_size // n prompts at a time, each run once; its n samples decode
            # against copies of its KV cache
            per = max(1, batch_size // n)
            for start in range(0, len(rows), per):
                group = rows[start:start + per]
                run(None, [ids[i] for i in group], [(i, j) for i in group for j in range(n)],
                    copies=n)
                bar.update(len(group) * n)

    def generate(self, contexts: Sequence[Messages], keys: Sequence[str], n: int = 1,
                 sampling: Sampling | None = None, seed: int = 0, batch_size: int = 8,
                 progress: bool = True) -> list[list[str]]:
        """Per prompt, `n` sampled replies as text."""
        sampling = sampling or Sampling(max_new_tokens=128, temperature=1.0)
        with torch.inference_mode():
            ids = self.generate_ids(contexts, keys, n, sampling, seed, batch_size, progress)
        return [[self.tokenizer.decode(r, skip_special_tokens=True).strip() for r in per]
                for per in ids]
