"""Reading a run's settings from a TOML or JSON file (or a model's preflab-train.json)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def config_from_file(cls: type[T], path: str | Path, **overrides: Any) -> T:
    """An instance of the dataclass `cls` from `path`, options given on top; unknown keys
    are refused with the known ones listed."""
    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(text) if str(path).endswith(".json") else tomllib.loads(text)
    data = data.get("config", data)  # a preflab-train.json holds its config
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"{path}: unknown settings {sorted(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    return cls(**{**data, **overrides})
