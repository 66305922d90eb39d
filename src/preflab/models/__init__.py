"""Models: offline presets from registry packages, hub ids and local paths, tiny test models."""

from preflab.models.presets import (
    PRESETS,
    Preset,
    PresetMissing,
    cache_dir,
    load_causal_lm,
    load_tokenizer,
    prepare,
    resolve,
)

__all__ = [
    "PRESETS",
    "Preset",
    "PresetMissing",
    "cache_dir",
    "load_causal_lm",
    "load_tokenizer",
    "prepare",
    "resolve",
]
