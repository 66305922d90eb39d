"""The registry of cleaning methods and their named variants."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.noise_sources import SourceRules
from preflab.audit.view import AuditView
from preflab.clean.baselines import BASELINES
from preflab.clean.sac import sac

METHODS: dict[str, Any] = {"sac": sac, **BASELINES}

# Named variants (method, fixed parameters): what `--methods all` runs. `random`
# removes as many pairs as `sac` acts on (the bench sets its count).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "sac": ("sac", {}),
    "sac-remove": ("sac", {"flip_action": "remove"}),
    "sac-soft": ("sac", {"soft": True}),
    "sac-keep": ("sac", {"against": "keep"}),
    "random": ("random", {}),
    **{f"{m}-{a}": (m, {"action": a})
       for m in ("vote-all", "vote-maj", "reward-gap", "judge", "confident-learning")
       for a in ("remove", "flip")},
    "loss": ("loss", {}),
    "ifd-gap": ("ifd-gap", {}),
}


def method_params(name: str) -> dict[str, Any]:
    """The parameters a method accepts and their defaults."""
    fn = METHODS[name]
    params = {p.name: p.default for p in list(inspect.signature(fn).parameters.values())[1:]
              if p.kind is not inspect.Parameter.VAR_KEYWORD}
    if name == "sac":
        params.update(SourceRules().params())
    return params


def _coerce(value: str, default: Any, key: str) -> Any:
    if isinstance(default, bool):
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"parameter {key}: expected true or false, got {value!r}")
    if isinstance(default, str):  # a word, or a number where the word is a mode ("auto")
        try:
            return float(value)
        except ValueError:
            return value
    for kind in ((int,) if isinstance(default, int) else
                 (float,) if isinstance(default, float) else (int, float) if default is None
                 else ()):
        try:
            return kind(value)
        except ValueError:
            if default is not None:
                raise ValueError(f"parameter {key}: expected {kind.__name__}, got {value!r}") \
                    from None
    return value


def parse_params(name: str, items: list[str] | dict[str, Any]) -> dict[str, Any]:
    """Typed parameters of method `name` from `key=value` strings or a {key: value}
    table (a settings file's, or the command line's text); unknown keys fail."""
    known = method_params(resolve_method(name)[0])
    given: list[tuple[str, Any]] = []
    if isinstance(items, dict):
        given = list(items.items())
    else:
        for item in items:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"parameter {item!r}: write it as key=value")
            given.append((key, value.strip()))
    params: dict[str, Any] = {}
    for key, value in given:
        key = key.strip().replace("-", "_")
        if key not in known:
            raise ValueError(f"method {name}: unknown parameter {key!r}; it takes "
                             f"{', '.join(f'{k}={v}' for k, v in known.items())}")
        params[key] = _coerce(value, known[key], key) if isinstance(value, str) else value
    return params


def resolve_method(name: str) -> tuple[str, dict[str, Any]]:
    """A method or variant name -> (method, fixed parameters)."""
    if name in VARIANTS:
        return VARIANTS[name]
    if name in METHODS:
        return name, {}
    raise ValueError(f"unknown cleaning method {name!r}; methods: {', '.join(METHODS)}; "
                     f"variants: {', '.join(VARIANTS)}")


UNSCORED_REASON = "unscored: no member scored this pair, so no rule decides on it (kept)"


def run_method(view: AuditView, name: str, params: dict[str, Any] | None = None
               ) -> pd.DataFrame:
    """Decisions of method or variant `name` with `params` over the audit. Pairs no
    member scored (bin ``unscored``) are kept, with :data:`UNSCORED_REASON`; the method
    decides on the others as if those were not there (fractions, thresholds, folds)."""
    method, fixed = resolve_method(name)
    scored = view.scored
    if not scored.any():
        raise ValueError(f"{view.source}: no member scored any of the {view.n} pairs; "
                         "there is nothing to clean on")
    decided = METHODS[method](view.subset(scored) if not scored.all() else view,
                              **{**fixed, **(params or {})})
    if not scored.all():
        decided.index = np.flatnonzero(scored)
        kept = pd.DataFrame({c: np.nan if decided[c].dtype.kind == "f" else ""
                             for c in decided.columns}, index=np.flatnonzero(~scored))
        kept["id"] = view.table["id"].to_numpy()[~scored]
        kept["action"], kept["reason"] = "keep", UNSCORED_REASON
        kept["params"] = decided["params"].iloc[0]
        decided = pd.concat([decided, kept]).sort_index().reset_index(drop=True)
    decided["method"] = name
    return decided
