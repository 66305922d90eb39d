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


def save_tiny_rm(folder, **kwargs):
    """A tiny randomly initialised Llama reward model and its tokenizer saved in `folder`
    (`kwargs` go to :func:`preflab.models.tiny.tiny_reward_model`)."""
    from preflab.models.tiny import tiny_reward_model, tiny_tokenizer

    tok = tiny_tokenizer()
    tiny_reward_model(tok, **kwargs).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def serving(folder, name: str):
    """`preflab serve` hosting the model in `folder` as `name` in this process, on a free
    port of 127.0.0.1, while a fixture is alive: yields its URL."""
    from preflab.serve.server import make_server

    server = make_server(str(folder), port=0, quiet=True, served_name=name).start()
    yield server.url
    server.shutdown()


def wait_until(condition, timeout: float = 120, every: float = 0.02) -> bool:
    """Whether `condition()` became true, asked every `every` s. `timeout` only keeps a
    broken test from hanging: wait for a state the test is sure to reach, never use it
    to bound how long something may take."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


GATE_ENV = "PREFLAB_TEST_GATE"


def gated_length_reward(context: list[dict[str, str]], reply: str) -> float:
    """:func:`length_reward` once the file named by ``$PREFLAB_TEST_GATE`` exists; until
    then it creates ``<gate>.waiting`` and waits: a python member that holds an audit at a
    known point for as long as a test wants."""
    import os
    import time
    from pathlib import Path

    gate = Path(os.environ[GATE_ENV])
    if not gate.exists():
        gate.with_name(gate.name + ".waiting").touch()
        while not gate.exists():
            time.sleep(0.05)
    return length_reward(context, reply)


def word_reward(context: list[dict[str, str]], reply: str) -> float:
    """A second toy reward: replies with fewer distinct words score higher."""
    return -float(len(set(reply.lower().split())))
