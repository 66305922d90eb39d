"""Decoding N continuations against copies of one prompt's KV cache."""

import torch
from transformers import GenerationConfig

from preflab.data.prompts import prompt_of
from preflab.models.generate import Sampling, decode
from preflab.models.runtime import Runtime
from preflab.models.sampler import Policy

PROMPTS = [prompt_of([{"role": "user", "content": t}]) for t in
           ("How do I boil an egg?", "Tell me a long story about a cat and a dog.")]


def test_copies_and_dropped_rows_give_each_seed_its_own_sample():
    policy = Policy("tiny-llama", Runtime(threads=1))
    ids = [policy.prompt_ids(p.messages) for p in PROMPTS]
    stop = set(range(0, 400, 5))  # many stop tokens: rows stop at different steps
    sampling = Sampling(max_new_tokens=24, temperature=1.0, top_p=0.95)
    seeds = list(range(100, 108))
    shared = decode(policy.model, None, ids, seeds, sampling, stop, policy.pad_id, copies=4)
    alone = [decode(policy.model, None, [ids[i // 4]], [s], sampling, stop, policy.pad_id)[0]
             for i, s in enumerate(seeds)]
    assert shared == alone
    lengths = {len(r) for r in shared}
    assert len(lengths) > 2 and max(lengths) > 1  # rows left the batch at different steps


def test_greedy_replies_equal_transformers_generate():
    policy = Policy("tiny-llama", Runtime(threads=1))
    sampling = Sampling(max_new_tokens=16, temperature=0.0)
    ours = policy.generate_ids([p.messages for p in PROMPTS], [p.id for p in PROMPTS], 3,
                               sampling, batch_size=6, progress=False)
    config = GenerationConfig(max_new_tokens=16, do_sample=False,
                              eos_token_id=sorted(policy.stop_ids), pad_token_id=policy.pad_id)
    for prompt, replies in zip(PROMPTS, ours, strict=True):
        ids = torch.tensor([policy.prompt_ids(prompt.messages)])
        new = policy.model.generate(input_ids=ids, generation_config=config)[0, ids.shape[1]:]
        ref = new.tolist()
        cut = next((i for i, t in enumerate(ref) if t in policy.stop_ids), len(ref))
        assert cut > 4 and replies == [ref[:cut]] * 3
