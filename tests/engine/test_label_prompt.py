"""Prompt assembly: templates, overrides, exemplars, the shared head."""

from __future__ import annotations

import pytest

from preflab.data.pair import PreferencePair
from preflab.engine.label_prompt import (
    EXAMPLES_CLOSE,
    Exemplar,
    LabelPrompt,
    exemplars_from_pairs,
    load_template,
)


def pairs(n: int) -> list[PreferencePair]:
    return [PreferencePair(prompt=[{"role": "user", "content": f"question {i}?"}],
                           chosen=f"good answer {i}", rejected=f"bad answer {i}")
            for i in range(n)]


def test_tasks_and_preambles() -> None:
    context = (("user", "How do I boil an egg?"),)
    for task in ("helpful", "harmless", "summary"):
        for preamble in ("base", "detailed"):
            prompt = LabelPrompt.build(task, preamble)
            text = prompt.user_text(context, "Boil it 8 minutes.", "No.")
            assert text.startswith(prompt.template[preamble])
            assert "How do I boil an egg?" in text and text.index("8 minutes") < text.index("No.")
            assert prompt.answer_prefix() == prompt.ending
    assert LabelPrompt.build("harmless").invert and not LabelPrompt.build("helpful").invert
    assert "more harmful" in LabelPrompt.build("harmless").template["base"]
    assert LabelPrompt.build("summary").ending == "Preferred Summary="
    with pytest.raises(ValueError, match="unknown labeling task"):
        LabelPrompt.build("funny")
    with pytest.raises(ValueError, match="unknown preamble"):
        LabelPrompt.build("helpful", "short")


def test_template_override_file(tmp_path) -> None:
    good = tmp_path / "mine.toml"
    good.write_text('base = "Say 1 or 2."\nending = "Answer="\n')
    prompt = LabelPrompt.build("helpful", template_file=good)
    assert prompt.head == "Say 1 or 2." and prompt.ending == "Answer="
    assert prompt.template["sample"] == load_template("helpful")["sample"]  # rest kept
    bad_key = tmp_path / "bad.toml"
    bad_key.write_text('preambel = "x"\n')
    with pytest.raises(ValueError, match=r"bad\.toml: unknown template keys \['preambel'\]"):
        LabelPrompt.build("helpful", template_file=bad_key)
    no_slot = tmp_path / "slot.toml"
    no_slot.write_text('sample = "{conversation} {response_1}"\n')
    with pytest.raises(ValueError, match=r"lacks the placeholder \{response_2\}"):
        LabelPrompt.build("helpful", template_file=no_slot)
    broken = tmp_path / "broken.toml"
    broken.write_text("base = \n")
    with pytest.raises(ValueError, match=r"broken\.toml: not valid TOML"):
        LabelPrompt.build("helpful", template_file=broken)
    with pytest.raises(FileNotFoundError, match=r"missing\.toml"):
        LabelPrompt.build("helpful", template_file=tmp_path / "missing.toml")


def test_braces_in_user_text_are_left_alone() -> None:
    prompt = LabelPrompt.build("helpful")
    text = prompt.user_text((("user", "format {x} please"),), "use {}", "{response_1}")
    assert "format {x} please" in text and "Response 1: use {}" in text
    assert "Response 2: {response_1}" in text


def test_exemplars_are_seeded_excluded_and_shared() -> None:
    data = pairs(20)
    shots = exemplars_from_pairs(data, 2, seed=3, exclude={p.id for p in data[:10]})
    assert shots == exemplars_from_pairs(data, 2, seed=3, exclude={p.id for p in data[:10]})
    assert shots != exemplars_from_pairs(data, 2, seed=4, exclude={p.id for p in data[:10]})
    assert {e.id for e in shots} <= {p.id for p in data[10:]}
    for e in shots:  # the answer names the chosen reply, wherever it was placed
        good = e.response_1 if e.answer == 1 else e.response_2
        assert good.startswith("good")
    inverted = exemplars_from_pairs(data, 2, seed=3, exclude={p.id for p in data[:10]},
                                    invert=True)
    assert [e.answer for e in inverted] == [3 - e.answer for e in shots]
    prompt = LabelPrompt.build("helpful", "base", shots)
    texts = [prompt.user_text(((("user", "q"),)), f"a{i}", f"b{i}") for i in range(3)]
    assert all(t.startswith(prompt.head + "\n\n") for t in texts)
    assert prompt.head.count("Preferred Response=") == 2 and prompt.head.endswith(EXAMPLES_CLOSE)
    assert prompt.describe()["exemplar_ids"] == [e.id for e in shots]
    with pytest.raises(ValueError, match="only 10 pairs are left"):
        exemplars_from_pairs(data, 11, exclude={p.id for p in data[:10]})
    with pytest.raises(ValueError, match="answer must be 1 or 2"):
        Exemplar((), "a", "b", 0)


def test_chain_of_thought_prefix() -> None:
    prompt = LabelPrompt.build("helpful")
    prefix = prompt.answer_prefix("  Reply 1 answers the question. ")
    assert prefix == f"{prompt.cot_ending} Reply 1 answers the question.\n{prompt.ending}"
    with_rationale = LabelPrompt.build(
        "helpful", exemplars=[Exemplar((("user", "q"),), "a", "b", 1, "a is right")])
    assert f"{prompt.cot_ending} a is right\n\nPreferred Response=1" in with_rationale.head
