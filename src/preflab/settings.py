"""Run settings as files: reading a dataclass of settings from TOML, YAML or JSON (or a
model's preflab-train.json), and writing one back as ``config.toml``.

Every stage writes the settings it ran with to ``OUT/config.toml``;
``--config OUT/config.toml`` reproduces the run. TOML has no null: a setting whose
value is None while its default is not is written as the string ``"none"``, which
reads back as None. Nested dataclasses (an experiment's DPO settings) are tables.

This module is light (no torch) and sits below every stage: each stage's config
dataclasses (``train/config.py``, ``label/config.py``, ...) are read and written here.
"""

from __future__ import annotations

import json
import math
import numbers
import tomllib
import types
import typing
from dataclasses import MISSING, Field, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Self, TypeVar

T = TypeVar("T")

CONFIG_FILE = "config.toml"
NONE = "none"


def read_settings(path: str | Path) -> dict[str, Any]:
    """The settings in a TOML, YAML (``.yaml`` / ``.yml``, needs PyYAML) or JSON file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:  # pragma: no cover - PyYAML ships with the environment
                raise ValueError(f"{path}: reading YAML needs PyYAML (pip install pyyaml), "
                                 "or write the settings as TOML") from None
            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"{path}: not a valid settings file ({e})") from None
    except Exception as e:  # yaml.YAMLError
        raise ValueError(f"{path}: not a valid settings file ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a table of settings, got {type(data).__name__}")
    return data.get("config", data)  # a preflab-train.json holds its config


def _nested(cls: type) -> dict[str, type]:
    """The fields of `cls` that are dataclasses themselves, with their classes."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)
            if isinstance(hints.get(f.name), type) and is_dataclass(hints[f.name])}


def field_default(f: Field[Any]) -> Any:
    """A field's default (its factory called), or MISSING when it has none."""
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def from_dict(cls: type[T], data: dict[str, Any], source: str = "<settings>",
              prefix: str = "", base: T | None = None) -> T:
    """An instance of the dataclass `cls` from `data` (nested tables for nested
    dataclasses), on top of `base` (the defaults when None). Unknown keys are refused,
    naming `source` and the key."""
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        names = ", ".join(repr(prefix + k) for k in unknown)
        by_flag = {flag_of(f).lstrip("-").replace("-", "_"): f.name for f in known.values()}
        hints = [f"{by_flag[k]} (the field --{k.replace('_', '-')} sets)" for k in unknown
                 if by_flag.get(k, k) != k]
        hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
        raise ValueError(f"{source}: unknown settings: {names}{hint}; known: "
                         f"{', '.join(sorted(known))}")
    nested = _nested(cls)
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name in nested and not isinstance(value, nested[name]):
            if not isinstance(value, dict):
                raise ValueError(f"{source}: {prefix}{name} must be a table of settings")
            # a table changes the keys it sets of the default (or `base`) settings
            inner = getattr(base, name) if base is not None else field_default(known[name])
            values[name] = from_dict(nested[name], value, source, f"{prefix}{name}.",
                                     None if inner is MISSING else inner)
        elif value == NONE and field_default(known[name]) is not MISSING:  # "none": null
            values[name] = None
        else:
            values[name] = value
    try:
        if base is not None:
            return replace(base, **values)  # type: ignore[type-var]
        return cls(**values)
    except ValueError as e:  # a bad value read from a file: name the file
        if source in ("<settings>", "keyword arguments") or str(e).startswith(source):
            raise
        raise ValueError(f"{source}: {e}") from None


def config_from_file(cls: type[T], path: str | Path, **overrides: Any) -> T:
    """An instance of the dataclass `cls` from `path` (TOML, YAML or JSON), the options
    given on top; unknown keys are refused, naming the file and the key."""
    data = read_settings(path)
    return from_dict(cls, {**data, **overrides}, str(path))


def load_config(cls: type[T], path: str | Path | None = None, **overrides: Any) -> T:
    """`cls` from `path` when given, else its defaults; `overrides` on top."""
    if path is not None:
        return config_from_file(cls, path, **overrides)
    return cls(**overrides)


def resolve_config(cls: type[T], config: T | dict[str, Any] | str | Path | None = None,
                   **overrides: Any) -> T:
    """A stage's settings as every Python entry point takes them: `config` is an
    instance of `cls`, a dict of its fields, a settings file or None (the defaults);
    `overrides` are fields set on top. A name that is not a field is refused, listing
    the known ones (and the field a command-line flag sets, for ``lr=`` and the like)."""
    source = "keyword arguments"
    if isinstance(config, cls):
        return from_dict(cls, overrides, source, base=config) if overrides else config
    if isinstance(config, dict):
        return from_dict(cls, {**config, **overrides}, source)
    if isinstance(config, str | Path):
        if not Path(config).is_file():
            raise FileNotFoundError(
                f"config {str(config)!r}: no such settings file (a {cls.__name__} field is "
                f"given as a keyword argument, e.g. {fields(cls)[0].name}=...)")  # type: ignore[arg-type]
        return config_from_file(cls, config, **overrides)
    if config is not None:
        raise TypeError(f"config must be a {cls.__name__}, a dict of its settings, a settings "
                        f"file or None; got a {type(config).__name__}")
    return from_dict(cls, overrides, source)


# ---- one setting: its default, help text and allowed range --------------------------


def setting(default: Any = MISSING, help: str = "", *, factory: Any = MISSING,
            flag: str | None = None, min: float | None = None, gt: float | None = None,
            max: float | None = None, choices: tuple[str, ...] | None = None,
            shown: str | None = None, cli: bool = True) -> Any:
    """A settings field that carries everything the command line and the docs show:
    the default (or `factory`), the `help` text, the allowed range (`min` <= v, `gt` < v,
    v <= `max`), the allowed `choices`, the option's `flag` (default ``--name``; a bool
    may give ``--on/--off``), and `shown`: what help shows as the default where the
    default is None and means something (e.g. "per head"). `cli=False` keeps a setting
    out of the command line (a file or Python sets it)."""
    metadata = {"help": help, "flag": flag, "min": min, "gt": gt, "max": max,
                "choices": choices, "shown": shown, "cli": cli}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


# Settings several stages share, with one help text each.


def device_setting() -> Any:
    """``device``: where a model runs."""
    return setting("auto", "auto (cuda when present), cpu or cuda.")


def threads_setting() -> Any:
    """``threads``: torch's CPU threads."""
    return setting(None, "CPU threads for torch.", min=1, shown="torch's choice")


def seed_setting(help: str = "Random seed.") -> Any:
    """``seed``, with what it seeds in `help`."""
    return setting(0, help, min=0)


def limit_setting(what: str) -> Any:
    """``limit``: only the first N `what` (pairs, prompts)."""
    return setting(None, f"Only the first N {what}.", min=1, shown="all")


def flag_of(f: Field[Any]) -> str:
    """The option a field is set by on the command line (``--max-length``)."""
    flag = f.metadata.get("flag")
    return flag.split("/")[0] if flag else "--" + f.name.replace("_", "-")


_KINDS: dict[type, dict[str, tuple[type, ...]]] = {}
_ACCEPTS = {int: (numbers.Integral,), float: (numbers.Real,), str: (str, Path), bool: (bool,),
            Path: (str, Path), list: (list, tuple), dict: (dict,)}


def _kinds(cls: type) -> dict[str, tuple[type, ...]]:
    """Per field, the Python types its value may have (None aside), where the
    annotation says it plainly (int, float, str, bool, Path, list, dict)."""
    if cls not in _KINDS:
        kinds = {}
        for name, hint in typing.get_type_hints(cls).items():
            args = [a for a in typing.get_args(hint) if a is not type(None)] \
                if typing.get_origin(hint) in (typing.Union, types.UnionType) else [hint]
            base = typing.get_origin(args[0]) or args[0] if len(args) == 1 else None
            if base in _ACCEPTS:
                kinds[name] = _ACCEPTS[base]
        _KINDS[cls] = kinds
    return _KINDS[cls]


def check_settings(config: Any) -> None:
    """A ValueError naming the setting (and its option) for a value of the wrong type,
    or outside the range or the choices its field declares."""
    kinds = _kinds(type(config))
    for f in fields(config):
        value, meta = getattr(config, f.name), f.metadata
        if value is None or not meta:
            continue
        name = f"{f.name} ({flag_of(f)})"
        accepts = kinds.get(f.name)
        if accepts and (not isinstance(value, accepts)
                        or (isinstance(value, bool) and bool not in accepts)):
            kind = {numbers.Integral: "an integer", numbers.Real: "a number"}.get(
                accepts[0], " or ".join(t.__name__ for t in accepts))
            raise ValueError(f"{name} must be {kind}, got {value!r}")
        if meta.get("choices") and value not in meta["choices"]:
            raise ValueError(f"{name} must be one of {', '.join(meta['choices'])}; "
                             f"got {value!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if meta.get("min") is not None and value < meta["min"]:
            raise ValueError(f"{name} must be at least {meta['min']:g}, got {value:g}")
        if meta.get("gt") is not None and value <= meta["gt"]:
            raise ValueError(f"{name} must be greater than {meta['gt']:g}, got {value:g}")
        if meta.get("max") is not None and value > meta["max"]:
            raise ValueError(f"{name} must be at most {meta['max']:g}, got {value:g}")


class FromFile:
    """Base of the stages' settings dataclasses: ``Config.from_file(path, **overrides)``
    is :func:`config_from_file` for that class; each instance is checked against the
    ranges and choices its fields declare (:func:`check_settings`)."""

    def __post_init__(self) -> None:
        for name, accepts in _kinds(type(self)).items():  # "a,b" for a list, as on the CLI
            value = getattr(self, name)
            if list in accepts and isinstance(value, str):
                hint = typing.get_type_hints(type(self))[name]
                items = [a for a in typing.get_args(hint) if a is not type(None)]
                item = (typing.get_args(items[0]) or (str,))[0] if items else str
                convert = item if item in (int, float, str) else str
                setattr(self, name, [convert(x.strip()) for x in value.split(",") if x.strip()])
        check_settings(self)

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> Self:
        return config_from_file(cls, path, **overrides)


# ---- writing ---------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


def _toml_lines(config: Any, table: str = "") -> list[str]:
    scalars, tables = [], []
    for f in fields(config):
        value = getattr(config, f.name)
        if is_dataclass(value):
            tables += ["", f"[{table}{f.name}]", *_toml_lines(value, f"{table}{f.name}.")]
        elif value is None:
            if field_default(f) not in (None, MISSING):
                scalars.append(f'{f.name} = "{NONE}"')
        else:
            scalars.append(f"{f.name} = {_toml_value(value)}")
    return scalars + tables


def config_toml(config: Any, title: str = "") -> str:
    """`config` (a dataclass instance) as TOML text that :func:`config_from_file` reads
    back to an equal instance."""
    head = [f"# {line}" for line in title.splitlines()] if title else []
    return "\n".join([*head, *_toml_lines(config)]).strip("\n") + "\n"


def write_config(config: Any, folder: str | Path, title: str = "") -> Path:
    """Write `config` as ``folder/config.toml``; returns its path."""
    path = Path(folder) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_toml(config, title or f"{type(config).__name__}: preflab "
                                "--config this file reproduces the run"), encoding="utf-8")
    return path
