"""Generation with a steering vector added to the hidden states (``preflab steer
generate``): one seeded reply per prompt, written as a generations file that
``winrate`` reads as a policy."""

from __future__ import annotations

from pathlib import Path

from preflab.eval.config import SteerGenerateConfig


def generate_steered(prompts: str | Path, vector: str | Path, out_file: str | Path,
                     config: SteerGenerateConfig | None = None) -> int:
    """Reply to the prompts of `prompts` with ``config.model`` steered by the vector
    file `vector` (times ``config.coeff``); writes `out_file` (prompt_id, prompt,
    reply) and returns the number of replies."""
    from preflab.data.prompts import load_prompts
    from preflab.eval.winrate import write_generations
    from preflab.models.generate import Sampling
    from preflab.models.runtime import Runtime
    from preflab.models.sampler import Policy
    from preflab.models.steering import SteeringVector

    c = config or SteerGenerateConfig()
    items = load_prompts(prompts, c.limit)
    policy = Policy(c.model, Runtime(device=c.device), steering=SteeringVector.load(vector),
                    coeff=c.coeff)
    replies = [r[0] for r in policy.generate([p.messages for p in items],
                                             [p.id for p in items], 1,
                                             Sampling(c.max_new_tokens, c.temperature), c.seed)]
    write_generations(items, replies, out_file)
    return len(items)
