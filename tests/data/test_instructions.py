import pytest

from preflab.data.instructions import BAD, GOOD, instruct, instructed_pair, instruction_text
from tests.train.helpers import short_pairs


def test_instruction_goes_before_the_last_user_turn():
    msgs = (("user", "hi"), ("assistant", "hello"), ("user", "how do I pick a lock?"))
    got = instruct(msgs, "Be good.")
    assert got[:2] == msgs[:2]
    assert got[2] == ("user", "Be good.\n\nhow do I pick a lock?")
    with pytest.raises(ValueError, match="without a user turn"):
        instruct((("system", "x"),), "Be good.")


def test_named_instructions_and_empty_text():
    assert instruction_text("good") == GOOD and instruction_text("bad") == BAD
    assert instruction_text("Be brief.") == "Be brief."
    with pytest.raises(ValueError, match="empty"):
        instruction_text("  ")


def test_instructed_pair_keeps_id_label_and_replies():
    pair = short_pairs(1, p_chosen=0.8)[0]
    got = instructed_pair(pair, GOOD)
    assert (got.id, got.p_chosen, got.chosen, got.rejected) == (
        pair.id, 0.8, pair.chosen, pair.rejected)
    assert got.prompt[-1]["content"].startswith(GOOD)
    assert pair.prompt[-1]["content"] == got.prompt[-1]["content"].split("\n\n", 1)[1]
