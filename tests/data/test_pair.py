from __future__ import annotations

import pytest

from preflab import PreferencePair, pair_id
from preflab.errors import FieldError

PROMPT = [{"role": "user", "content": "How do I boil an egg?"}]


def test_id_is_content_hash_independent_of_label_metadata() -> None:
    a = PreferencePair(PROMPT, "Boil it 8 minutes.", "No.", subset="x", p_chosen=0.7)
    b = PreferencePair(PROMPT, "Boil it 8 minutes.", "No.", meta={"k": 1})
    assert a.id == b.id == pair_id(PROMPT, "Boil it 8 minutes.", "No.")
    assert PreferencePair(PROMPT, "No.", "Boil it 8 minutes.").id != a.id


def test_swapped_exchanges_replies_and_contexts() -> None:
    other = [{"role": "user", "content": "How do I fry an egg?"}]
    pair = PreferencePair(PROMPT, "A", "B", rejected_prompt=other, p_chosen=0.8)
    s = pair.swapped()
    assert (s.chosen, s.rejected, s.prompt, s.rejected_prompt) == ("B", "A", other, PROMPT)
    assert s.p_chosen == pytest.approx(0.2)
    assert pair.swapped(p_chosen=1.0).p_chosen == 1.0
    assert s.swapped().id == pair.id


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"chosen": ""}, "chosen"),
    ({"rejected": "  "}, "rejected"),
    ({"rejected": "A"}, "rejected"),
    ({"p_chosen": 1.5}, "p_chosen"),
    ({"p_chosen": float("nan")}, "p_chosen"),
    ({"prompt": [{"role": "robot", "content": "x"}]}, "prompt[0].role"),
    ({"prompt": [{"role": "user", "content": 3}]}, "prompt[0].content"),
])
def test_invalid_pairs_name_the_field(kwargs: dict, field: str) -> None:
    args = {"prompt": PROMPT, "chosen": "A", "rejected": "B", **kwargs}
    with pytest.raises(FieldError) as e:
        PreferencePair(**args)
    assert e.value.field == field


def test_row_round_trip() -> None:
    pair = PreferencePair(PROMPT, "A", "B", subset="s", p_chosen=0.25, meta={"x": [1, 2]})
    again = PreferencePair.from_row(pair.to_row())
    assert again == pair
