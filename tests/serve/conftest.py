"""Fixtures for the server tests: a private model cache."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def serve_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One private preflab cache for these tests' processes and in-process servers."""
    path = str(tmp_path_factory.mktemp("serve-cache"))
    old = os.environ.get("PREFLAB_CACHE")
    os.environ["PREFLAB_CACHE"] = path
    yield path
    if old is None:
        os.environ.pop("PREFLAB_CACHE", None)
    else:
        os.environ["PREFLAB_CACHE"] = old
