"""Turning a context and a reply into model input text."""

from __future__ import annotations

from typing import Any

from preflab.data.messages import Messages

_NAMES = {"user": "Human", "assistant": "Assistant", "system": "System"}


def plain_context(context: Messages) -> str:
    """HH-style plain text of a conversation."""
    return "".join(f"\n\n{_NAMES[role]}: {content}" for role, content in context).lstrip("\n")


def chat_ids(tokenizer: Any, context: Messages, reply: str | None,
             suffix: str = "") -> list[int]:
    """Token ids of context (+ reply as the assistant's turn) through the chat template.

    With `reply=None` the result ends with the generation header, followed by
    `suffix` (e.g. "Preferred Response="). Tokenizers without a chat template get
    HH-style plain text.
    """
    messages = [{"role": r, "content": c} for r, c in context]
    if tokenizer.chat_template:
        if reply is None:
            text = tokenizer.apply_chat_template(messages, tokenize=False,
                                                 add_generation_prompt=True) + suffix
        else:
            messages.append({"role": "assistant", "content": reply})
            text = tokenizer.apply_chat_template(messages, tokenize=False)
        return tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    text = plain_context(context) + "\n\nAssistant:" + (f" {reply}" if reply is not None
                                                        else suffix)
    return tokenizer(text, verbose=False)["input_ids"]
