"""Fixtures for the server tests: a private model cache."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import private_cache


@pytest.fixture(scope="session")
def serve_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One private preflab cache for these tests' processes and in-process servers."""
    yield from private_cache(str(tmp_path_factory.mktemp("serve-cache")))
