"""A reward model's folder: is it a model preflab can load, and how long were its inputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

SUMMARY = "preflab-train.json"


DEFAULT_MAX_LENGTH = 512


def trained_max_length(model: str | Path) -> int:
    """The max_length a preflab-trained model was trained with (else 512)."""
    summary = Path(model) / SUMMARY
    if summary.exists():
        return int(json.loads(summary.read_text())["config"]["max_length"])
    return DEFAULT_MAX_LENGTH


def check_model(model: str | Path) -> None:
    """A reward model must be a preset, an existing folder or a hub id (org/name)."""
    from preflab.models.offline import OFFLINE_MODELS

    name = str(model)
    if name in OFFLINE_MODELS or Path(name).exists() or re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        return
    raise FileNotFoundError(f"reward model {name}: no such folder (nor a preset or a hub id)")
