"""Anthropic HH-RLHF transcripts.

Each record is ``{"chosen": T, "rejected": T}`` where T is a whole transcript of
``"\\n\\nHuman: ..."`` and ``"\\n\\nAssistant: ..."`` turns.

The prompt is everything up to the LAST ``"\\n\\nAssistant:"``; the reply is what
follows it. When the two transcripts differ before their last turn, the rejected
reply keeps its own context (``rejected_prompt``) and the pair is flagged
``prefix_mismatch``: nothing is dropped or mis-split.
"""

from __future__ import annotations

import re
from typing import Any

from preflab.data.pair import EMPTY_REPLY, Message, PreferencePair
from preflab.errors import FieldError

HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"
_TURN = re.compile(r"\n\n(Human|Assistant):")
_ROLE = {"Human": "user", "Assistant": "assistant"}
_MARKER = {"user": HUMAN, "assistant": ASSISTANT}

# HH file names carry the subset: harmless-base-test.jsonl.gz -> harmless-base.
HH_SUBSETS = ("harmless-base", "helpful-base", "helpful-online", "helpful-rejection-sampled",
              "red-team-attempts")


def looks_like_hh(record: dict[str, Any]) -> bool:
    """True for a record whose chosen/rejected are whole Human/Assistant transcripts."""
    c, r = record.get("chosen"), record.get("rejected")
    return ("prompt" not in record and isinstance(c, str) and isinstance(r, str)
            and ASSISTANT in c and c.startswith(HUMAN))


def parse_transcript(text: Any, field: str) -> tuple[list[Message], str]:
    """Split one transcript into (prompt messages, final assistant reply).

    The space after each ``Human:`` / ``Assistant:`` marker is part of the format,
    not of the message; a turn without it keeps its text whole.
    """
    if not isinstance(text, str):
        raise FieldError(field, f"must be a transcript string, got {type(text).__name__}")
    if not text.startswith(HUMAN):
        raise FieldError(field, "transcript must start with '\\n\\nHuman:'")
    marks = list(_TURN.finditer(text))
    if marks[-1].group(1) != "Assistant":
        raise FieldError(field, "transcript does not end with an '\\n\\nAssistant:' reply")
    turns: list[Message] = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[m.end():end]
        turns.append({"role": _ROLE[m.group(1)],
                      "content": body[1:] if body.startswith(" ") else body})
    return turns[:-1], turns[-1]["content"]


def parse_hh(record: dict[str, Any], subset: str | None = None) -> PreferencePair:
    """Parse one HH record into a pair."""
    for name in ("chosen", "rejected"):
        if name not in record:
            raise FieldError(name, "missing")
    prompt, chosen = parse_transcript(record["chosen"], "chosen")
    rejected_prompt, rejected = parse_transcript(record["rejected"], "rejected")
    flags = [EMPTY_REPLY] if not chosen.strip() or not rejected.strip() else []
    meta: dict[str, Any] = {}
    extra = {k: v for k, v in record.items() if k not in ("chosen", "rejected")}
    if extra:
        meta["extra"] = extra
    if (render_transcript(prompt, chosen) != record["chosen"]
            or render_transcript(rejected_prompt, rejected) != record["rejected"]):
        # Irregular spacing around the turn markers: keep the exact text for writing back.
        meta["hh_raw"] = {"chosen": record["chosen"], "rejected": record["rejected"]}
    return PreferencePair(prompt=prompt, chosen=chosen, rejected=rejected,
                          rejected_prompt=rejected_prompt, subset=subset, flags=flags,
                          meta=meta)


def render_transcript(messages: list[Message], reply: str) -> str:
    """Render messages plus a final assistant reply as an HH transcript."""
    parts = []
    for i, m in enumerate(messages):
        if m["role"] not in _MARKER:
            raise FieldError(f"prompt[{i}].role",
                             f"HH transcripts have no '{m['role']}' turn; use another format")
        parts.append(f"{_MARKER[m['role']]} {m['content']}")
    parts.append(f"{ASSISTANT} {reply}")
    return "".join(parts)


def hh_record(pair: PreferencePair) -> dict[str, Any]:
    """The pair as an HH record (extra fields of the original record come back too)."""
    raw = pair.meta.get("hh_raw")
    record = dict(raw) if raw else {
        "chosen": render_transcript(pair.prompt, pair.chosen),
        "rejected": render_transcript(pair.rejected_context, pair.rejected),
    }
    record.update(pair.meta.get("extra", {}))
    return record


def subset_from_filename(name: str) -> str | None:
    """The HH subset a file name names, if any."""
    for subset in HH_SUBSETS:
        if subset in name:
            return subset
    return None
