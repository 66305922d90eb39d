"""The preference pair: one prompt, a preferred and a dispreferred reply.

A dataset of pairs is an Arrow table (wrapped as a ``datasets.Dataset``) with
the columns of :data:`PAIR_SCHEMA`; :class:`PreferencePair` is the row as a
Python object, for code that handles pairs one at a time.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from preflab.errors import FieldError

Message = dict[str, str]
ROLES = ("system", "user", "assistant")

MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
PAIR_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("prompt", pa.list_(MESSAGE_TYPE)),
        ("chosen", pa.string()),
        ("rejected", pa.string()),
        # Context of the rejected reply when it differs from `prompt`
        # (HH transcripts that diverge before the final turn); null otherwise.
        ("rejected_prompt", pa.list_(MESSAGE_TYPE)),
        ("subset", pa.string()),
        ("p_chosen", pa.float64()),
        ("flags", pa.list_(pa.string())),
        ("meta", pa.string()),  # JSON object
    ]
)

# Flags a reader may set. They mark pairs that are kept but deserve a look.
PREFIX_MISMATCH = "prefix_mismatch"
EMPTY_REPLY = "empty_reply"


def pair_id(prompt: list[Message], chosen: str, rejected: str,
            rejected_prompt: list[Message] | None = None) -> str:
    """Content hash of a pair: the same texts give the same id in every format."""
    body: dict[str, Any] = {
        "prompt": [[m["role"], m["content"]] for m in prompt],
        "chosen": chosen,
        "rejected": rejected,
    }
    if rejected_prompt is not None:
        body["rejected_prompt"] = [[m["role"], m["content"]] for m in rejected_prompt]
    blob = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


@dataclass
class PreferencePair:
    """One preference judgement: `chosen` was preferred to `rejected` after `prompt`.

    `p_chosen` is the probability that `chosen` is the better reply: 1.0 for a
    hard human label, anything in [0, 1] for a soft (e.g. AI-feedback) label.
    """

    prompt: list[Message]
    chosen: str
    rejected: str
    rejected_prompt: list[Message] | None = None
    subset: str | None = None
    p_chosen: float = 1.0
    flags: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    id: str = ""

    def __post_init__(self) -> None:
        self.validate()
        if self.rejected_prompt is not None and self.rejected_prompt == self.prompt:
            self.rejected_prompt = None
        if self.rejected_prompt is not None and PREFIX_MISMATCH not in self.flags:
            self.flags.append(PREFIX_MISMATCH)
        if not self.id:
            self.id = pair_id(self.prompt, self.chosen, self.rejected, self.rejected_prompt)

    def validate(self) -> None:
        """Raise :class:`FieldError` on anything that would train silently wrong."""
        check_messages(self.prompt, "prompt")
        if self.rejected_prompt is not None:
            check_messages(self.rejected_prompt, "rejected_prompt")
        for name in ("chosen", "rejected"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise FieldError(name, f"must be a string, got {type(value).__name__}")
            if not value.strip() and EMPTY_REPLY not in self.flags:
                raise FieldError(name, "reply is empty")
        if self.chosen == self.rejected and (self.rejected_prompt in (None, self.prompt)):
            raise FieldError("rejected", "chosen and rejected replies are identical")
        p = self.p_chosen
        number = isinstance(p, int | float) and not isinstance(p, bool)
        if not number or math.isnan(p) or not 0 <= p <= 1:
            raise FieldError("p_chosen", f"must be a number in [0, 1], got {p!r}")
        if self.subset is not None and not isinstance(self.subset, str):
            raise FieldError("subset", f"must be a string, got {type(self.subset).__name__}")

    @property
    def rejected_context(self) -> list[Message]:
        """The messages the rejected reply answers."""
        return self.rejected_prompt if self.rejected_prompt is not None else self.prompt

    def swapped(self, p_chosen: float | None = None) -> PreferencePair:
        """The pair with chosen and rejected exchanged (each keeps its own context).

        By default `p_chosen` becomes ``1 - p_chosen``: the same judgement stated the
        other way round. Pass `p_chosen` to assert a new label instead (a flip).
        """
        meta = dict(self.meta)
        if "hh_raw" in meta:
            meta["hh_raw"] = {"chosen": meta["hh_raw"]["rejected"],
                              "rejected": meta["hh_raw"]["chosen"]}
        return PreferencePair(
            prompt=self.rejected_context, chosen=self.rejected, rejected=self.chosen,
            rejected_prompt=self.prompt if self.rejected_prompt is not None else None,
            subset=self.subset, p_chosen=1.0 - self.p_chosen if p_chosen is None else p_chosen,
            flags=list(self.flags),
            meta=meta,
        )

    def to_row(self) -> dict[str, Any]:
        """The pair as a row of :data:`PAIR_SCHEMA`."""
        return {
            "id": self.id,
            "prompt": self.prompt,
            "chosen": self.chosen,
            "rejected": self.rejected,
            "rejected_prompt": self.rejected_prompt,
            "subset": self.subset,
            "p_chosen": float(self.p_chosen),
            "flags": list(self.flags),
            "meta": json.dumps(self.meta, ensure_ascii=False, sort_keys=True),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> PreferencePair:
        """Rebuild a pair from a row of :data:`PAIR_SCHEMA` (keeps its id)."""
        meta = row.get("meta") or "{}"
        return cls(
            prompt=[dict(m) for m in row["prompt"]],
            chosen=row["chosen"],
            rejected=row["rejected"],
            rejected_prompt=(
                [dict(m) for m in row["rejected_prompt"]]
                if row.get("rejected_prompt") is not None else None
            ),
            subset=row.get("subset"),
            p_chosen=1.0 if row.get("p_chosen") is None else row["p_chosen"],
            flags=list(row.get("flags") or []),
            meta=json.loads(meta) if isinstance(meta, str) else dict(meta),
            id=row.get("id") or "",
        )


def check_messages(messages: Any, name: str) -> None:
    """Check a chat message list: dicts with a known `role` and string `content`."""
    if not isinstance(messages, list):
        raise FieldError(name, f"must be a list of messages, got {type(messages).__name__}")
    for i, m in enumerate(messages):
        where = f"{name}[{i}]"
        if not isinstance(m, dict):
            raise FieldError(where, f"must be a message object, got {type(m).__name__}")
        if m.get("role") not in ROLES:
            raise FieldError(f"{where}.role", f"must be one of {ROLES}, got {m.get('role')!r}")
        if not isinstance(m.get("content"), str):
            got = type(m.get("content")).__name__
            raise FieldError(f"{where}.content", f"must be a string, got {got}")
