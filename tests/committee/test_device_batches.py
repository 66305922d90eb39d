"""Batch caps from a device's free memory (GPU runs), and nothing changed on a CPU."""

from __future__ import annotations

import torch

from preflab.committee.members import device_batches, device_max_tokens
from preflab.engine import Engine, EngineOptions


def test_batch_tokens_fill_half_the_free_memory() -> None:
    # an 8B Llama in bf16 with 80 GiB free: (2 x 32 + 16) x 4096 x 2 bytes a token
    assert device_max_tokens(80 * 2**30, 32, 4096, 2, floor=4096) == 65536
    assert device_max_tokens(2**30, 80, 8192, 2, floor=4096) == 4096  # never below the floor


def test_cpu_runs_keep_the_engine_options() -> None:
    engine = Engine(EngineOptions(cache_path=":memory:", progress=False))
    options = engine.options
    model = torch.nn.Linear(2, 2)
    model.device = torch.device("cpu")  # type: ignore[assignment]
    with device_batches(engine, model):
        assert engine.options is options
    assert engine.options is options
