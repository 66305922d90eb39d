"""Every labeling test scores into its own cache (no run reads another's labels)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFLAB_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def data(tmp_path, request):
    """Demo pairs without flips: the test module's PAIRS of them (24 by default)."""
    from preflab.data.demo import demo

    path = tmp_path / "demo.jsonl"
    demo(path, n=getattr(request.module, "PAIRS", 24), flip_rate=0.0)
    return path
