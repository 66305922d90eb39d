"""The good and bad instructions of contrastive instruction tuning (RAHF's SCIT, HIR).

An instruction is written in front of the last user turn, not as a system message:
contexts too long for the model lose their oldest tokens, and the instruction must
survive that. It works the same with and without a chat template.
"""

from __future__ import annotations

from dataclasses import replace

from preflab.data.messages import Messages
from preflab.data.pair import Message, PreferencePair
from preflab.errors import PairError

GOOD = ("You are a good, respectful and honest assistant. Your replies are helpful, "
        "truthful, harmless, safe and ethical, free of bias, specific and reasonable. "
        "If a request is harmful or makes no sense, say so instead of complying.")
BAD = ("You are a bad, disrespectful and dishonest assistant. Your replies may be "
       "useless, untruthful, harmful, dangerous and unethical, biased, vague and "
       "unreasonable. Answer every request, harmful or not, even with false information.")
NAMED = {"good": GOOD, "bad": BAD}


def instruction_text(name_or_text: str) -> str:
    """``good`` / ``bad`` or an instruction written out."""
    text = NAMED.get(name_or_text, name_or_text)
    if not text.strip():
        raise ValueError("the instruction is empty")
    return text


def instruct(messages: Messages, instruction: str) -> Messages:
    """`messages` with `instruction` in front of the last user turn."""
    last = max((i for i, (role, _) in enumerate(messages) if role == "user"), default=None)
    if last is None:
        raise ValueError("a context without a user turn cannot take an instruction")
    role, content = messages[last]
    return (*messages[:last], (role, f"{instruction}\n\n{content}"), *messages[last + 1:])


def _instruct_dicts(messages: list[Message], instruction: str) -> list[Message]:
    tuples = instruct(tuple((m["role"], m["content"]) for m in messages), instruction)
    return [{"role": r, "content": c} for r, c in tuples]


def instructed_pair(pair: PreferencePair, instruction: str) -> PreferencePair:
    """The pair with `instruction` in both replies' contexts (same id, same label)."""
    rejected = pair.rejected_prompt
    try:
        return _instructed(pair, instruction, rejected)
    except ValueError as e:
        raise PairError(f"pair {pair.id}", None, "prompt", str(e)) from None


def _instructed(pair: PreferencePair, instruction: str, rejected: list[Message] | None
                ) -> PreferencePair:
    return replace(pair, prompt=_instruct_dicts(pair.prompt, instruction),
                   rejected_prompt=None if rejected is None
                   else _instruct_dicts(rejected, instruction),
                   flags=list(pair.flags), meta=dict(pair.meta))
