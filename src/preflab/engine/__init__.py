"""The scoring engine: the one place that batches, caches and runs models for scoring.

Auditing, AI-feedback labelling, best-of-N and evaluation all score through it.
A scorer says how to encode a group of units (texts that share a prefix) and how
to run a batch; the engine deduplicates, looks up the disk cache, plans
token-capped batches by length, runs them through an executor and streams the
results back into the cache.
"""

from preflab.engine.cache import ScoreCache
from preflab.engine.core import Engine, EngineOptions
from preflab.engine.units import Unit

__all__ = ["Engine", "EngineOptions", "ScoreCache", "Unit"]
