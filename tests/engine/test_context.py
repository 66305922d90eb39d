"""What a labeling judge reads of a long conversation: its instruction and its end."""

from __future__ import annotations

import pytest

from preflab.engine.judge import MIDDLE, JudgeReader, instruction, keep_instruction
from preflab.engine.label_prompt import LabelPrompt

TASK = "Summarize the following content."
BODY = " ".join(f"Sentence {i} is about bread and foxes." for i in range(400))
LONG = (("user", f"{TASK}\n\n{BODY}"),)
REPLIES = ("Bread and foxes, at length.", "Foxes.")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFLAB_CACHE", str(tmp_path / "cache"))


def reader(tok, keep_task: bool = True, max_context_tokens: int | None = None,
           max_length: int = 400) -> JudgeReader:
    return JudgeReader(tok, LabelPrompt.build("summary"), max_length=max_length,
                       max_context_tokens=max_context_tokens, keep_task=keep_task)


def test_a_long_summarize_prompt_keeps_its_instruction(tiny_tok) -> None:
    """As found: the labeler kept the last 256 tokens, so the judge never saw the task."""
    old = reader(tiny_tok, keep_task=False, max_context_tokens=256, max_length=2048)
    seen_before = tiny_tok.decode(old.prompt_ids(LONG, *REPLIES))
    assert TASK not in seen_before and old.context_truncated == 1

    judge = reader(tiny_tok)  # the default budget: what max_length leaves
    ids = judge.prompt_ids(LONG, *REPLIES)
    seen = tiny_tok.decode(ids)
    assert TASK in seen and MIDDLE in seen and "Sentence 399 is about bread and foxes." in seen
    assert seen.index(TASK) < seen.index(MIDDLE) < seen.index("Sentence 399")
    assert "Sentence 0 " not in seen and REPLIES[0] in seen and REPLIES[1] in seen
    assert len(ids) <= 400 and judge.truncated == 0 and judge.context_truncated == 1
    assert len(ids) > 400 - 40  # the room is used, not a fixed 256
    # both orders of a pair read the same conversation (it is shared)
    swapped = tiny_tok.decode(judge.prompt_ids(LONG, *reversed(REPLIES)))
    assert swapped.split("Summary 1")[0] == seen.split("Summary 1")[0]


def test_an_explicit_cap_and_a_short_conversation(tiny_tok) -> None:
    capped = reader(tiny_tok, max_context_tokens=64)
    empty = len(capped.prompt_ids((("user", ""),), *REPLIES))
    ids = capped.prompt_ids(LONG, *REPLIES)
    assert TASK in tiny_tok.decode(ids) and len(ids) <= empty + 64 + 4
    short = (("user", "Summarize: foxes eat bread."),)
    judge = reader(tiny_tok)
    assert "Human: Summarize: foxes eat bread." in judge.prompt_text(short, *REPLIES)
    assert judge.context_truncated == 0


def test_the_instruction_is_the_first_user_turns_first_paragraph(tiny_tok) -> None:
    chat = (("system", "Be brief."), ("user", f"{TASK}\n\n{BODY}"), ("assistant", "Sure."),
            ("user", "Shorter, please."))
    assert instruction(chat) == f"Human: {TASK}"
    text, clipped = keep_instruction(tiny_tok, chat, 120)
    assert clipped and text.startswith(f"Human: {TASK}\n\n{MIDDLE} ")
    assert text.endswith("Human: Shorter, please.")
    assert len(tiny_tok(text, add_special_tokens=False)["input_ids"]) <= 122
    # a first paragraph longer than half the budget: its first line, else its start
    one_line = keep_instruction(tiny_tok, (("user", BODY + "\n\nMore."),), 60)[0]
    assert one_line.startswith("Human: Sentence 0") and "…" in one_line


def test_the_direct_scorer_keeps_the_instruction_too() -> None:
    from preflab.engine.direct import DirectScorer

    scorer = DirectScorer("tiny-llama", task="summary", max_length=400, max_context_tokens=None)
    ids = scorer.prompt_ids(LONG, REPLIES[0])
    seen = scorer.tokenizer.decode(ids)
    assert TASK in seen and MIDDLE in seen and len(ids) <= 400
    assert scorer.context_truncated == 1 and scorer.truncated == 0
