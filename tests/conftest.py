"""Shared fixtures: the real HH file, tiny in-process models, a private cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HH_PATH = Path(os.environ.get(
    "PREFLAB_HH", ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base-test.jsonl.gz"))


@pytest.fixture(scope="session")
def hh_path() -> Path:
    """The 2,312 real HH pairs in ../shared (required in CI, skipped elsewhere if absent)."""
    if not HH_PATH.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{HH_PATH} is missing: CI needs ../shared/data beside the project")
        pytest.skip(f"{HH_PATH} not found (set PREFLAB_HH)")
    return HH_PATH


@pytest.fixture(scope="session")
def hh_result(hh_path: Path):
    from preflab import read_pairs

    return read_pairs(hh_path)


@pytest.fixture(scope="session")
def tiny_tok():
    from preflab.models.tiny import tiny_tokenizer

    return tiny_tokenizer()
