"""Numeric options a command declares by hand (not from a settings dataclass):
their ranges, by name, checked before any work."""

from __future__ import annotations

from typing import Any

# Numeric options by name: the smallest value that makes sense (counts, sizes,
# rates) and, for fractions, the largest. Checked for every command, before any work.
AT_LEAST_1 = {"limit", "sample", "n", "pairs", "batch_size", "epochs", "grad_accum",
              "max_length", "max_new_tokens", "lora_r", "steps", "sc", "cot_tokens",
              "concurrency", "bins", "perplexity_pairs", "pmp_epochs", "save_steps",
              "samples_per_prompt", "threads", "max_prompt_tokens", "max_context_tokens",
              "step1_epochs", "train_sample", "heldout_sample", "eval_limit", "max_tokens",
              "top_logprobs", "max_turns", "folds"}


AT_LEAST_0 = {"shots", "retries", "port", "seed", "temperature", "margin", "eps"}


POSITIVE = {"lr", "step1_lr", "scit_lr", "dual_lr", "value_lr", "beta", "alpha", "timeout",
            "request_timeout", "max_body_mb", "max_logprobs_mb"}


FRACTIONS = {"eval_fraction", "test_fraction", "top_p"}  # in (0, 1]


def check_numbers(values: dict[str, Any]) -> None:
    """A ValueError naming the option for a number out of its range (e.g. --limit -5)."""
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        flag = "--" + name.replace("_", "-")
        if name in AT_LEAST_1 and v < 1:
            raise ValueError(f"{flag} must be at least 1, got {v}")
        if name in AT_LEAST_0 and v < 0:
            raise ValueError(f"{flag} must be 0 or more, got {v}")
        if name in POSITIVE and v <= 0:
            raise ValueError(f"{flag} must be greater than 0, got {v}")
        if name in FRACTIONS and not 0 < v <= 1:
            raise ValueError(f"{flag} must be in (0, 1], got {v}")
