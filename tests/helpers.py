"""Small helpers shared by tests (also a scoring function for python members)."""

from __future__ import annotations


def length_reward(context: list[dict[str, str]], reply: str) -> float:
    """A toy reward: longer replies score higher."""
    return float(len(reply))


def private_cache(path: str):
    """Point $PREFLAB_CACHE at `path` while a fixture is alive, then restore it."""
    import os

    old = os.environ.get("PREFLAB_CACHE")
    os.environ["PREFLAB_CACHE"] = path
    yield path
    if old is None:
        os.environ.pop("PREFLAB_CACHE", None)
    else:
        os.environ["PREFLAB_CACHE"] = old
