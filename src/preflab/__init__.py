"""preflab: read, audit, clean, label and train on preference feedback.

``import preflab as pl`` gives each stage as one function with one convention,
``pl.stage(data, config=None, **overrides) -> Result``: ``data`` is a path, a
``datasets.Dataset``, a pandas DataFrame or a list of :class:`PreferencePair`;
``config`` the stage's settings dataclass (or a settings file such as a run's
``config.toml``); ``overrides`` its fields. Results are objects in memory that the
caller may ``.save(folder)``. The names below load on first use, so ``preflab --help``
and importing one submodule do not pay for Arrow, ``datasets`` or torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import types
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Audit": "preflab.api.audit",
    "AuditView": "preflab.audit.view",
    "audit": "preflab.api.audit",
    "Cleaned": "preflab.api.clean",
    "clean": "preflab.api.clean",
    "PolicyEval": "preflab.api.evaluate",
    "RewardModelEval": "preflab.api.evaluate",
    "WinRate": "preflab.api.evaluate",
    "evaluate_policy": "preflab.api.evaluate",
    "evaluate_reward_model": "preflab.api.evaluate",
    "win_rate": "preflab.api.evaluate",
    "LabelGrid": "preflab.api.label",
    "Labels": "preflab.api.label",
    "label": "preflab.api.label",
    "label_grid": "preflab.api.label",
    "ReviewProject": "preflab.api.review",
    "BestOfN": "preflab.api.train",
    "Trained": "preflab.api.train",
    "best_of_n": "preflab.api.train",
    "dpo": "preflab.api.train",
    "hir": "preflab.api.train",
    "rahf": "preflab.api.train",
    "rl": "preflab.api.train",
    "sft": "preflab.api.train",
    "steering_vector": "preflab.api.train",
    "train_reward_model": "preflab.api.train",
    "AuditConfig": "preflab.audit.config",
    "CleanConfig": "preflab.clean.config",
    "demo": "preflab.data.demo",
    "demo_pairs": "preflab.data.demo",
    "PreferencePair": "preflab.data.pair",
    "pair_id": "preflab.data.pair",
    "ReadResult": "preflab.data.read",
    "read_pairs": "preflab.data.read",
    "write_pairs": "preflab.data.write",
    "PairError": "preflab.errors",
    "EvalPolicyConfig": "preflab.eval.config",
    "RewardEvalConfig": "preflab.eval.config",
    "WinrateConfig": "preflab.eval.config",
    "LabelConfig": "preflab.label.config",
    "ReviewConfig": "preflab.review.config",
    "BestOfNConfig": "preflab.train.config",
    "PolicyConfig": "preflab.train.config",
    "RAHFConfig": "preflab.train.config",
    "RLConfig": "preflab.train.config",
    "RewardConfig": "preflab.train.config",
    "SteeringVector": "preflab.models.steering",
    "SteerConfig": "preflab.train.config",
}

# Stages whose function has the name of their package (``pl.audit`` and
# ``preflab.audit``): the package is made callable as the function, so both
# ``pl.audit(data)`` and ``import preflab.audit.view`` work.
_STAGE_PACKAGES = {name for name, module in _LAZY.items() if module.startswith("preflab.api.")
                   and importlib.util.find_spec(f"preflab.{name}") is not None}

__all__ = sorted([*_LAZY, "__version__"])


def _function(name: str) -> Any:
    return getattr(importlib.import_module(_LAZY[name]), name)


class _StagePackage(types.ModuleType):
    """A stage's package that calls as the stage's function (``pl.audit(...)``); its
    signature and help are the function's (loaded on first use)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _function(self.__name__.rsplit(".", 1)[1])(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, tuple[str]]:  # pickles (joblib, partial) by name
        return importlib.import_module, (self.__name__,)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(_function(self.__name__.rsplit(".", 1)[1]))

    @property  # type: ignore[misc]
    def __doc__(self) -> str:  # type: ignore[override]
        function = _function(self.__name__.rsplit(".", 1)[1])
        return f"{function.__doc__}\n\nThe package: {self.__dict__.get('__doc__') or ''}"


def _callable(module: types.ModuleType) -> types.ModuleType:
    if not isinstance(module, _StagePackage):
        module.__class__ = _StagePackage
    return module


class _Preflab(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # the import system sets each subpackage here once it is imported
        if name in _STAGE_PACKAGES and isinstance(value, types.ModuleType):
            value = _callable(value)
        super().__setattr__(name, value)


def __dir__() -> list[str]:
    """What tab completion offers: the public names, loaded or not."""
    return sorted(__all__)


def __getattr__(name: str) -> Any:
    if name in _STAGE_PACKAGES:
        return _callable(importlib.import_module(f"preflab.{name}"))
    if name in _LAZY:
        return _function(name)
    raise AttributeError(f"module 'preflab' has no attribute {name!r}")


sys.modules[__name__].__class__ = _Preflab
