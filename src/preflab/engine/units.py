"""Units of scoring work: a text (or a context and a reply) with a content key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from preflab.data.messages import Messages, text_hash


@dataclass(frozen=True)
class Unit:
    """One thing to score.

    `key` identifies the value (cache and deduplication); units with the same
    `group` share a prefix that a scorer may compute once (the context).
    `payload` is what the scorer needs: e.g. (context, reply) or a text.
    """

    key: str
    group: str
    payload: Any


def reply_unit(context: Messages, reply: str) -> Unit:
    """A (context, reply) unit for reward-model scoring."""
    return Unit(key=text_hash("reply", context, reply), group=text_hash("context", context),
                payload=(context, reply))

