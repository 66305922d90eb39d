"""Command-line options generated from a stage's settings dataclass.

A stage's settings are written once, as fields of its config dataclass
(:func:`preflab.settings.setting`: default, help, range, choices, flag). The decorator
:func:`options_from` turns those fields into typer options, adds ``--config FILE``, and
calls the command with one config built in a single merge order: the dataclass's
defaults, then the file, then the options given on the command line.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import Field, fields, is_dataclass
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, TypeVar

import typer

from preflab.settings import field_default, from_dict, read_settings

F = TypeVar("F", bound=Callable[..., Any])

CONFIG_PARAM = "config_file"
CTX_PARAM = "preflab_context"  # typer passes the click context here
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", exists=True, dir_okay=False,
    help="TOML, YAML or JSON file of settings (a run's OUT/config.toml reproduces it); "
         "options given on the command line override it.")]


def given_options(ctx: Any, names: set[str] | None = None) -> dict[str, Any] | None:
    """The options given on the command line of the running command `ctx` (not their
    defaults), by parameter name; None without a command line (a direct call)."""
    if ctx is None:
        return None
    given = {}
    for name, value in ctx.params.items():
        source = ctx.get_parameter_source(name)  # by name: typer bundles its own click
        if source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT") and (
                names is None or name in names):
            given[name] = value
    return given


def _split_optional(hint: Any) -> tuple[Any, bool]:
    if isinstance(hint, UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not NoneType]
        if len(args) == 1:
            return args[0], True
    return hint, False


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


class _Option:
    """One generated option: the parameter typer sees and how its text becomes the
    field's value."""

    def __init__(self, name: str, f: Field[Any], hint: Any, default: Any,
                 flag: str | None = None) -> None:
        self.name, self.field, self.default = name, f, default
        base, optional = _split_optional(hint)
        self.origin = typing.get_origin(base)
        self.item = (typing.get_args(base) or (str, str))[-1]
        if self.item is Any or not isinstance(self.item, type):  # Any, a union: as given
            self.item = str
        meta = f.metadata
        flag = flag or meta.get("flag") or "--" + name.replace("_", "-")
        self.flag = flag.split("/")[0]  # how errors name the option
        kwargs: dict[str, Any] = {"help": meta.get("help", "")}
        if meta.get("choices") and base is str:
            base = typing.Literal[tuple(meta["choices"])]  # typer shows and checks them
        if default is None and meta.get("shown"):
            kwargs["show_default"] = meta["shown"]
        if self.origin in (list, tuple):  # comma-separated on the command line
            cli_type: Any = str | None if optional or default is None else str
            kwargs["metavar"] = "A,B,..."
            cli_default = None if default is None else _shown(default)
            if default == [] or default == ():
                kwargs["show_default"] = "none"
        elif self.origin is dict:  # NAME=VALUE, repeatable
            cli_type = list[str] | None
            kwargs["metavar"] = "NAME=VALUE"
            cli_default = None
            kwargs["show_default"] = _shown(default) or "none"
        else:
            cli_type = base | None if optional or default is None else base
            cli_default = default
            if base in (int, float) and _range(meta):  # shown; the dataclass checks it
                kwargs["metavar"] = f"<{base.__name__} range> [{_range(meta)}]"
        if base is not bool:  # "--param/-p": an option and its other names
            decls = flag.split("/")
        else:  # "--lora/--full": the on and off switches
            decls = [flag] if "/" in flag else [f"{flag}/--no-{flag[2:]}"]
        self.parameter = inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=cli_default,
            annotation=Annotated[cli_type, typer.Option(..., *decls, **kwargs)])

    def value(self, given: Any) -> Any:
        """The field's value from what the command line gave."""
        if given is None:  # a dict option's parameter defaults to None: the field's default
            return self.default if self.origin is dict else None
        if self.origin in (list, tuple):
            text = given if isinstance(given, str) else ",".join(map(str, given))
            items = [x.strip() for x in text.split(",") if x.strip()]
            try:
                return [self.item(x) for x in items]
            except ValueError:
                raise ValueError(f"{self.flag} {text!r}: expected comma-separated "
                                 f"{_kind(self.item)} values") from None
        if self.origin is dict:
            out = {}
            for pair in given:
                key, sep, number = pair.partition("=")
                try:
                    out[key] = self.item(number)
                except ValueError:
                    sep = ""
                if not sep or not key:
                    raise ValueError(f"{self.flag} {pair!r}: expected "
                                     f"NAME={_kind(self.item).upper()}")
            return out
        return given


def _range(meta: Any) -> str:
    """A setting's allowed range as help shows it (``x>=1``, ``0<=x<=1``, ``x>0``)."""
    low, above, high = meta.get("min"), meta.get("gt"), meta.get("max")
    if high is None:
        return f"x>={low:g}" if low is not None else f"x>{above:g}" if above is not None else ""
    left = f"{low:g}<=" if low is not None else f"{above:g}<" if above is not None else ""
    return f"{left}x<={high:g}"


def _kind(item: type) -> str:
    """A value's type as errors say it."""
    return {"int": "integer", "float": "number", "str": "text"}.get(item.__name__,
                                                                    item.__name__)


def _options(cls: type, skip: set[str], nested: dict[str, dict[str, str]],
             flags: dict[str, str] | None = None) -> dict[str, tuple[str | None, _Option]]:
    """Option name -> (nested table or None, option), for every field on the command
    line: `cls`'s own and, for each table in `nested`, {option name: field} of it."""
    hints = typing.get_type_hints(cls)
    top = {f.name: f for f in fields(cls)}
    result: dict[str, tuple[str | None, _Option]] = {}
    for f in top.values():
        if f.name in skip or f.name in nested or not f.metadata.get("cli", True):
            continue
        if is_dataclass(hints[f.name]):
            continue
        result[f.name] = (None, _Option(f.name, f, hints[f.name], field_default(f),
                                        (flags or {}).get(f.name)))
    for table, names in nested.items():
        inner_cls = hints[table]
        inner_default = field_default(top[table])
        inner_hints = typing.get_type_hints(inner_cls)
        inner = {f.name: f for f in fields(inner_cls)}
        for option, name in names.items():
            if option in result:
                raise TypeError(f"option {option} is both a setting and a {table} setting")
            f = inner[name]
            flag = "--" + option.replace("_", "-") if option != name else None
            if f.metadata.get("flag") and option == name:
                flag = f.metadata["flag"]
            result[option] = (table, _Option(option, f, inner_hints[name],
                                             getattr(inner_default, name), flag))
    return result


def build_config(cls: type, config_file: Path | None, options: dict[str, tuple[str | None,
                 _Option]], values: dict[str, Any], ctx: Any = None) -> Any:
    """`cls` from its defaults, then `config_file`, then the options given on the
    command line `ctx` (in a direct call: those that differ from their defaults). A
    flag given wins over the file even where it equals the default; a dict option
    (``-p key=value``) adds its keys to the file's."""
    given = given_options(ctx, set(options))
    if given is None:
        given = {k: v for k, v in values.items() if v != options[k][1].parameter.default}
    top = {k: options[k][1].value(v) for k, v in given.items() if options[k][0] is None}
    tables: dict[str, dict[str, Any]] = {}
    for k, v in given.items():
        table, option = options[k]
        if table is not None:
            tables.setdefault(table, {})[option.field.name] = option.value(v)
    if config_file is None:
        return from_dict(cls, {**top, **tables})
    # merged before any setting is checked: an option may mend a file's bad value
    data = read_settings(config_file)
    for table, inner in tables.items():
        if isinstance(data.get(table), dict):
            tables[table] = {**data[table], **inner}
    for name, value in top.items():
        if isinstance(value, dict) and isinstance(data.get(name), dict):
            top[name] = {**data[name], **value}
    return from_dict(cls, {**data, **top, **tables}, str(config_file))


def options_from(cls: type, *, param: str = "config", skip: tuple[str, ...] = (),
                 nested: dict[str, dict[str, str]] | None = None,
                 flags: dict[str, str] | None = None) -> Callable[[F], F]:
    """Give the command `fn` one option per field of the settings dataclass `cls` (bar
    `skip`, fields with ``cli=False`` and fields named like `fn`'s own parameters), and
    ``--config FILE``; `fn` receives the merged settings as its `param` argument.
    `nested` exposes some fields of nested settings: {table: {option name: field}};
    `flags` gives some fields another option on this command ({"policy": "--base"})."""

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn, eval_str=True)
        hints = typing.get_type_hints(fn, include_extras=True)
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY,
                         annotation=hints.get(p.name, p.annotation))
               for p in signature.parameters.values() if p.name != param]
        options = _options(cls, set(skip) | {p.name for p in own}, nested or {}, flags)
        config_param = inspect.Parameter(CONFIG_PARAM, inspect.Parameter.KEYWORD_ONLY,
                                         default=None, annotation=ConfigOpt)
        ctx_param = inspect.Parameter(CTX_PARAM, inspect.Parameter.KEYWORD_ONLY,
                                      default=None, annotation=typer.Context)
        arguments = [p for p in own if _is_argument(p)]
        rest = [p for p in own if not _is_argument(p)]
        parameters = [*arguments, config_param, *[o.parameter for _, o in options.values()],
                      *rest, ctx_param]

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            ctx = kwargs.pop(CTX_PARAM, None)  # which options were typed
            config_file = kwargs.pop(CONFIG_PARAM, None)
            values = {name: kwargs.pop(name) for name in options if name in kwargs}
            kwargs[param] = build_config(cls, config_file, options, values, ctx)
            return fn(**kwargs)

        del command.__wrapped__  # typer reads the generated signature, not fn's
        command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            parameters, return_annotation=signature.return_annotation)
        command.__annotations__ = {p.name: p.annotation for p in parameters}
        command.settings = cls  # type: ignore[attr-defined]
        command.setting_options = options  # type: ignore[attr-defined]
        return command  # type: ignore[return-value]

    return decorate


def _is_argument(p: inspect.Parameter) -> bool:
    return any(isinstance(m, typer.models.ArgumentInfo)
               for m in getattr(p.annotation, "__metadata__", ()))
