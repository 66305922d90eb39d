"""Small real pairs for reward-model tests: chitchat turns with short replies."""

from __future__ import annotations

from dataclasses import replace

from transformers import TrainerCallback

from preflab.data.demo import demo_pairs
from preflab.data.pair import PreferencePair


def short_pairs(n: int, seed: int = 0, p_chosen: float = 1.0) -> list[PreferencePair]:
    """n real demo pairs (real reply vs a reply from another conversation), one turn of
    context, replies under 120 characters."""
    pairs = [p for p in demo_pairs(n=20 * n, flip_rate=0.0, seed=seed, max_turns=1)
             if len(p.chosen) < 120 and len(p.rejected) < 120
             and len(p.prompt[-1]["content"]) < 200][:n]
    assert len(pairs) == n
    return [replace(p, p_chosen=p_chosen) for p in pairs] if p_chosen != 1.0 else pairs


class StopAt(TrainerCallback):
    """Interrupts training (as Ctrl-C would) at the end of a given step."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt
