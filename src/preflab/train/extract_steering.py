"""Fitting a steering vector from preference pairs (see :mod:`preflab.models.steering`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from preflab.models.hidden import check_layers, decoder_layers
from preflab.models.steering import STIMULI, SteeringVector, steering_from_differences
from preflab.train.config import PolicyConfig, SteerConfig


def extract_steering(model_name: str, pairs: Sequence[Any], layers: Sequence[int] | None = None,
                     stimulus: str = "instruction", max_length: int = 512,
                     batch_size: int = 8, device: str = "auto", source: str = "<pairs>",
                     progress: bool = True) -> SteeringVector:
    """A steering vector for `model_name` from preference pairs (see the module doc).
    Default layers: RAHF's SCIT layers scaled to the model's depth."""
    from preflab.data.instructions import BAD, GOOD, instructed_pair
    from preflab.models.causal_lm import fit_max_length, load_policy
    from preflab.models.examples import build_policy_examples
    from preflab.models.hidden import mean_reply_hidden, rahf_layers

    if stimulus not in STIMULI:
        raise ValueError(f"stimulus must be one of {STIMULI}, got {stimulus!r}")
    model, tokenizer = load_policy(model_name, PolicyConfig(device=device), trainable=False)
    model.eval()
    layers = check_layers(model, layers or rahf_layers(len(decoder_layers(model))), last=False)
    if stimulus == "instruction":
        sides = ([instructed_pair(p, GOOD) for p in pairs], [instructed_pair(p, BAD)
                                                             for p in pairs])
    else:
        sides = (list(pairs), [p.swapped() for p in pairs])
    length = fit_max_length(model, max_length)
    means, examples, reports = [], [], {}
    for name, side in zip(("good", "bad"), sides, strict=True):
        ex, report = build_policy_examples(side, tokenizer, length, source, with_rejected=False)
        examples.append(ex)
        reports[name] = {"context_truncated": report.context_truncated,
                         "reply_truncated": report.reply_truncated}
    if stimulus == "instruction":
        from preflab.train.scit import check_instructed

        for i, (g, b) in enumerate(zip(*examples, strict=True)):
            check_instructed(g, b, source, i + 1, length)
    for name, ex in zip(("good", "bad"), examples, strict=True):
        means.append(mean_reply_hidden(model, ex, layers, tokenizer.pad_token_id,
                                       batch_size, desc=f"{name} stimulus", progress=progress))
    return steering_from_differences(model_name, means[0] - means[1], layers,
                                     stimulus=stimulus, source=source, max_length=length,
                                     truncation=reports)


def steering_from_config(data: str, config: SteerConfig, progress: bool = True
                         ) -> SteeringVector:
    """The steering vector `config` describes, from the pairs of `data` (the first
    ``config.limit``, then a seeded sample of ``config.sample``)."""
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.data.sample import sample_pairs

    pairs = list(iter_pairs(load_pairs(data)))
    pairs = sample_pairs(pairs[:config.limit] if config.limit is not None else pairs,
                         config.sample, config.seed)
    return extract_steering(config.model, pairs, config.layers, config.stimulus,
                            config.max_length, config.batch_size, config.device, data,
                            progress)
