"""The tutorial (docs/tutorial.md) runs: its Python blocks are executed in order in
one namespace, as a notebook would run them, and what each block prints is checked
against the output the page shows where that output is seeded and exact."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "tutorial.md"
BLOCK = re.compile(r"```python\n(.*?)```(?:\n\n```text\n(.*?)```)?", re.S)


def blocks() -> list[tuple[str, str | None]]:
    return [(code, shown) for code, shown in BLOCK.findall(PAGE.read_text())]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, monkeypatch_module) -> list[str]:
    """What each block of the page printed, run top to bottom in a fresh folder (a
    block's figures still check the code: the page shows what it printed)."""
    monkeypatch_module.chdir(tmp_path_factory.mktemp("tutorial"))
    namespace: dict = {"__name__": "__tutorial__"}
    printed = []
    for code, _ in blocks():
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(compile(code, str(PAGE), "exec"), namespace)
        printed.append(buffer.getvalue())
    return printed


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_the_page_has_the_steps_of_the_workflow() -> None:
    code = "\n".join(c for c, _ in blocks())
    for call in ("pl.demo_pairs", "pl.audit", "pl.ReviewProject.create", "pl.clean",
                 "pl.train_reward_model", "pl.evaluate_reward_model"):
        assert call in code


def test_every_block_runs_and_prints_what_the_page_shows(outputs) -> None:
    shown = [s for _, s in blocks()]
    assert outputs[0] == shown[0]  # the data: seeded, exact
    assert outputs[3] == shown[3]  # the review: scripted, exact
    assert outputs[1].startswith("Audit(120 pairs, committee 'cpu-fast', low or no agreement")
    assert shown[1].splitlines()[0].split(", low")[0] == outputs[1].splitlines()[0].split(
        ", low")[0]
    for got, page in zip(outputs, shown, strict=True):  # the same lines, figures aside
        assert shape(got) == shape(page)


def shape(text: str) -> list[list[str]]:
    """The words of each line, numbers (and pair ids) as #: what must not change when
    a CPU rounds a figure differently."""
    return [re.sub(r"\b[0-9a-f]{16}\b|[\d.]+", "#", line).split() for line in text.splitlines()]


def test_the_reviewed_pairs_are_cleaned_by_people_and_the_model_beats_chance(outputs) -> None:
    consensus = re.search(r"(\d+) of (\d+) pairs reached a consensus", outputs[3])
    assert consensus and consensus.group(1) == consensus.group(2) != "0"
    assert outputs[4].startswith("Cleaned(sac on 120 pairs")
    accuracy = float(re.search(r"held-out pairs: ([\d.]+)", outputs[-1]).group(1))
    assert 0.5 < accuracy <= 1.0
