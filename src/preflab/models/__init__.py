"""Models: offline presets from registry packages, hub ids and local paths, tiny test models."""

from preflab.models.offline import (
    OFFLINE_MODELS,
    OfflineModel,
    OfflineModelMissing,
    cache_dir,
    load_causal_lm,
    load_tokenizer,
    prepare,
    resolve,
)

__all__ = [
    "OFFLINE_MODELS",
    "OfflineModel",
    "OfflineModelMissing",
    "cache_dir",
    "load_causal_lm",
    "load_tokenizer",
    "prepare",
    "resolve",
]
