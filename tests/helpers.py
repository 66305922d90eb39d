"""Small helpers shared by tests (also a scoring function for python members)."""

from __future__ import annotations


def length_reward(context: list[dict[str, str]], reply: str) -> float:
    """A toy reward: longer replies score higher."""
    return float(len(reply))
