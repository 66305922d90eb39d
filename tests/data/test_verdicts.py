"""Verdicts, consensus and Fleiss kappa against hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from preflab.data.verdicts import (
    VERDICTS,
    consensus,
    fleiss_kappa,
    to_verdict,
    verdict_counts,
)

# Fleiss (1971) as worked in the textbook example: 10 subjects, 14 raters, 5 categories;
# P_bar = 0.378, P_e = 0.2127, kappa = 0.210.
FLEISS_TABLE = np.array([
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])


def test_fleiss_kappa_matches_the_textbook_example() -> None:
    assert round(fleiss_kappa(FLEISS_TABLE), 3) == 0.210


def test_fleiss_kappa_with_different_numbers_of_raters() -> None:
    # P_i = 1, 0, 1 -> P_bar = 2/3; p = (3/7, 4/7) -> P_e = 25/49; kappa = 23/72
    assert fleiss_kappa(np.array([[2, 0], [1, 1], [0, 3]])) == pytest.approx(23 / 72)
    # an item with one rater is left out; none left: NaN; perfect agreement: 1
    assert fleiss_kappa(np.array([[2, 0], [1, 1], [0, 3], [1, 0]])) == pytest.approx(23 / 72)
    assert math.isnan(fleiss_kappa(np.array([[1, 0], [0, 1]])))
    assert fleiss_kappa(np.array([[3, 0], [0, 3]])) == pytest.approx(1.0)
    assert fleiss_kappa(np.array([[1, 1], [1, 1]])) == pytest.approx(-1.0)


def test_a_choice_maps_back_through_the_shown_order() -> None:
    assert to_verdict("A", "CR") == "chosen" and to_verdict("B", "CR") == "rejected"
    assert to_verdict("A", "RC") == "rejected" and to_verdict("B", "RC") == "chosen"
    for v in ("both-good", "both-bad", "uncertain"):
        assert to_verdict(v, "RC") == to_verdict(v, "CR") == v
    with pytest.raises(ValueError, match="shown order"):
        to_verdict("A", "AB")
    with pytest.raises(ValueError, match="unknown choice"):
        to_verdict("C", "CR")


def test_consensus_needs_more_than_half() -> None:
    assert consensus(["rejected", "rejected", "chosen"]) == ("rejected", 2)
    assert consensus(["chosen", "rejected"]) == ("", 1)
    assert consensus(["both-bad", "chosen", "uncertain"]) == ("", 1)
    assert consensus(["uncertain"]) == ("uncertain", 1)
    assert consensus([]) == ("", 0)
    counts = verdict_counts([["chosen", "chosen"], ["both-bad"]])
    assert counts.tolist() == [[2, 0, 0, 0, 0], [0, 0, 0, 1, 0]] and len(VERDICTS) == 5
