"""Policy sampling: seeded per sample, independent of batching and of prompt sharing."""

from preflab.data.prompts import prompt_of
from preflab.models.generate import Sampling
from preflab.models.runtime import Runtime
from preflab.models.sampler import Policy

PROMPTS = [prompt_of([{"role": "user", "content": t}]) for t in
           ("How do I boil an egg?", "Name a color.", "Tell me a long story about a cat.")]


def test_samples_do_not_depend_on_batching_or_on_sharing_the_prompt():
    policy = Policy("tiny-llama", Runtime(threads=1))
    contexts, keys = [p.messages for p in PROMPTS], [p.id for p in PROMPTS]
    sampling = Sampling(max_new_tokens=12, temperature=1.0)
    many = policy.generate(contexts, keys, n=3, sampling=sampling, batch_size=2,
                           progress=False)
    one = policy.generate(contexts, keys, n=1, sampling=sampling, batch_size=3,
                          progress=False)
    single = [policy.generate([c], [k], n=1, sampling=sampling, batch_size=1,
                              progress=False)[0] for c, k in zip(contexts, keys, strict=True)]
    # sample 0 of each prompt: the same whether its prompt's cache was shared or not
    assert [m[0] for m in many] == [o[0] for o in one] == [s[0] for s in single]
    assert all(len(set(m)) > 1 for m in many)  # different seeds, different samples
    again = policy.generate(contexts, keys, n=3, sampling=sampling, batch_size=3,
                            progress=False)
    assert again == many
