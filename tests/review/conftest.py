"""Fixtures for the review tests: real HH pairs and their audit."""

from __future__ import annotations

from pathlib import Path

import pytest

from preflab.data.pair import PreferencePair
from preflab.data.read import iter_pairs
from tests.review.helpers import with_xss, write_data


@pytest.fixture(scope="session")
def hh_pairs(hh_result) -> list[PreferencePair]:
    """The first 80 HH pairs, the first with HTML and script in its chosen reply."""
    pairs = []
    for pair in iter_pairs(hh_result.pairs):
        pairs.append(pair)
        if len(pairs) == 80:
            break
    return with_xss(pairs)


@pytest.fixture(scope="session")
def hh_data(hh_pairs, tmp_path_factory) -> tuple[Path, Path]:
    """(data file, audit folder) of the 80 pairs."""
    return write_data(hh_pairs, tmp_path_factory.mktemp("review-data"))
