"""TRL's preference formats (see TRL's ``data_utils``).

- standard, explicit prompt: ``{"prompt": str, "chosen": str, "rejected": str}``
- standard, implicit prompt: ``{"chosen": str, "rejected": str}`` (shared prefix)
- conversational, explicit: ``{"prompt": [msg...], "chosen": [msg...], "rejected": [msg...]}``
- conversational, implicit: ``{"chosen": [msg...], "rejected": [msg...]}``

The implicit prompt is found as TRL's ``extract_prompt`` finds it (the test suite
checks that both agree); it is reimplemented here because importing TRL takes
seconds, which every read would pay.
"""

from __future__ import annotations

import json
from typing import Any

from preflab.data.pair import EMPTY_REPLY, Message, PreferencePair, check_messages
from preflab.errors import FieldError

_KNOWN = ("id", "prompt", "chosen", "rejected", "subset", "p_chosen", "meta", "flags")


def looks_like_trl(record: dict[str, Any]) -> bool:
    """True for a record with chosen/rejected as strings or message lists."""
    c, r = record.get("chosen"), record.get("rejected")
    return (isinstance(c, str) and isinstance(r, str)) or (isinstance(c, list)
                                                          and isinstance(r, list))


def extract_prompt(chosen: str | list, rejected: str | list) -> tuple[Any, Any, Any]:
    """Split off the longest common prefix of two completions, as TRL does."""
    idx = 0
    for idx in range(min(len(chosen), len(rejected))):
        if chosen[idx] != rejected[idx]:
            if chosen[idx - 1] == " ":  # keep the space with the replies
                idx -= 1
            break
    return chosen[:idx], chosen[idx:], rejected[idx:]


def _as_messages(value: Any, field: str) -> list[Message]:
    if isinstance(value, str):
        try:  # message lists stored as JSON text (CSV cells)
            value = json.loads(value) if value.lstrip().startswith("[{") else value
        except json.JSONDecodeError as e:
            raise FieldError(field, f"looks like a JSON message list but does not parse: {e}"
                             ) from None
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    check_messages(value, field)
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _split_completion(prompt: list[Message], completion: list[Message],
                      field: str) -> tuple[list[Message], str]:
    """(context, reply) of a completion given as a message list."""
    if not completion:
        raise FieldError(field, "reply is empty (no messages)")
    last = completion[-1]
    if last["role"] != "assistant":
        raise FieldError(f"{field}[{len(completion) - 1}].role",
                         f"the reply must be an assistant message, got {last['role']!r}")
    return prompt + completion[:-1], last["content"]


def parse_trl(record: dict[str, Any], subset: str | None = None) -> PreferencePair:
    """Parse one record in any of TRL's four preference formats."""
    for name in ("chosen", "rejected"):
        if name not in record or record[name] is None:
            raise FieldError(name, "missing")
    chosen, rejected = record["chosen"], record["rejected"]
    for name, value in (("chosen", chosen), ("rejected", rejected)):
        if not isinstance(value, str | list):
            raise FieldError(name, f"must be a string or a message list, got "
                             f"{type(value).__name__}")
    if type(chosen) is not type(rejected) or not isinstance(chosen, str | list):
        raise FieldError("rejected", "chosen and rejected must both be strings or both "
                         f"message lists, got {type(chosen).__name__} and "
                         f"{type(rejected).__name__}")
    conversational = isinstance(chosen, list)
    if conversational:
        check_messages(chosen, "chosen")
        check_messages(rejected, "rejected")
    if chosen == rejected:
        raise FieldError("rejected", "chosen and rejected replies are identical")
    if "prompt" in record and record["prompt"] is not None:
        prompt = record["prompt"]
        if not isinstance(prompt, str | list):
            raise FieldError("prompt", f"must be a string or a message list, got "
                             f"{type(prompt).__name__}")
    else:
        prompt, chosen, rejected = extract_prompt(chosen, rejected)
    prompt = _as_messages(prompt, "prompt")
    flags: list[str] = []
    if conversational:
        context_c, reply_c = _split_completion(prompt, _as_messages(chosen, "chosen"), "chosen")
        context_r, reply_r = _split_completion(prompt, _as_messages(rejected, "rejected"),
                                               "rejected")
        if not reply_c.strip() or not reply_r.strip():
            flags.append(EMPTY_REPLY)  # an assistant turn that says nothing: kept, flagged
    else:
        context_c = context_r = prompt
        reply_c, reply_r = chosen, rejected
    return PreferencePair(
        prompt=context_c, chosen=reply_c, rejected=reply_r,
        rejected_prompt=context_r if context_r != context_c else None,
        subset=record.get("subset") if record.get("subset") is not None else subset,
        p_chosen=record["p_chosen"] if record.get("p_chosen") is not None else 1.0,
        flags=flags, meta=_meta(record),
    )


def _meta(record: dict[str, Any]) -> dict[str, Any]:
    meta = record.get("meta")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError as e:
            raise FieldError("meta", f"must be a JSON object: {e}") from None
    if meta is not None and not isinstance(meta, dict):
        raise FieldError("meta", f"must be an object, got {type(meta).__name__}")
    meta = dict(meta or {})
    extra = {k: v for k, v in record.items() if k not in _KNOWN}
    if extra:
        meta.setdefault("extra", {}).update(extra)
    return meta


def trl_record(pair: PreferencePair) -> dict[str, Any]:
    """The pair in TRL's conversational format with an explicit prompt.

    When the rejected reply has its own context, the shared messages form the
    prompt and each completion carries the turns that differ.
    """
    ctx_c, ctx_r = pair.prompt, pair.rejected_context
    n = 0
    while n < min(len(ctx_c), len(ctx_r)) and ctx_c[n] == ctx_r[n]:
        n += 1
    return {
        "id": pair.id,
        "prompt": ctx_c[:n],
        "chosen": [*ctx_c[n:], {"role": "assistant", "content": pair.chosen}],
        "rejected": [*ctx_r[n:], {"role": "assistant", "content": pair.rejected}],
        "subset": pair.subset,
        "p_chosen": pair.p_chosen,
        "meta": json.dumps(pair.meta, ensure_ascii=False, sort_keys=True),
    }
