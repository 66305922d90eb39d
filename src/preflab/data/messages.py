"""Conversations as hashable tuples of (role, content), and stable content hashes."""

from __future__ import annotations

import hashlib
import json
from typing import Any

Messages = tuple[tuple[str, str], ...]


def text_hash(*parts: Any) -> str:
    """Stable hash of JSON-serialisable parts."""
    blob = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def as_messages(messages: list[dict[str, str]]) -> Messages:
    return tuple((m["role"], m["content"]) for m in messages)
