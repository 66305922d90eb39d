"""Settings are written once: every stage's options are generated from its config
dataclass, and what ``--help`` shows as each option's default is the dataclass's
default. No help text carries a hand-written ``[default: ...]``."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

import click
import pytest
from rich.console import Console
from typer import rich_utils

from preflab.settings import FromFile, field_default, setting
from tests.cli.test_shared_options import commands

STAGES = ["audit", "clean", "label", "train-rm", "sft", "dpo", "rl", "rahf", "hir", "bon",
          "steer extract", "winrate", "eval-rm", "eval-policy", "review init", "serve",
          "experiment clean-vs-original", "experiment rahf", "experiment overoptimization"]
ALL = commands()
WITH_SETTINGS = sorted(name for name, c in ALL.items() if hasattr(c.callback, "settings"))
DEFAULT = re.compile(r"\[default: (.*)\]\s*$", re.S)


def shown_default(command: Any, param: click.Parameter) -> str | None:
    """The default as ``--help`` shows it for `param` (None: none shown)."""
    ctx = click.Context(command, info_name=command.name)
    columns = rich_utils._get_parameter_help(param=param, ctx=ctx, markup_mode="markdown")
    console = Console(width=10_000, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(columns)
    text = " ".join(console.export_text().split())
    found = DEFAULT.search(text)
    return found.group(1) if found else None


def settings_of(command: Any) -> tuple[type, dict[str, Any]]:
    callback = command.callback
    return callback.settings, callback.setting_options


@pytest.mark.parametrize("name", STAGES)
def test_every_stage_has_one_settings_dataclass_and_a_config_option(name: str) -> None:
    command = ALL[name]
    cls, options = settings_of(command)
    assert is_dataclass(cls) and options
    assert "--config" in [d for p in command.params for d in p.opts]


def expected(option: Any, default: Any) -> str | None:
    """What help must show for a setting whose dataclass default is `default`."""
    meta = option.field.metadata
    if default is None:
        return f"({meta['shown']})" if meta.get("shown") else None
    if isinstance(default, bool):
        info = option.parameter.annotation.__metadata__[0]
        names = [d for d in (info.default, *info.param_decls) if isinstance(d, str)]
        on, _, off = names[0].partition("/")
        return (on if default else off or "no-" + on[2:]).lstrip("-")
    if isinstance(default, list | tuple | dict):
        shown = option.parameter.annotation.__metadata__[0].show_default
        return f"({shown})" if isinstance(shown, str) else ",".join(map(str, default))
    return str(default.value if hasattr(default, "value") else default)


def test_every_stage_is_among_the_commands_with_settings() -> None:
    assert set(STAGES) <= set(WITH_SETTINGS)


@pytest.mark.parametrize("name", WITH_SETTINGS)
def test_each_shown_default_is_the_dataclass_default(name: str) -> None:
    command = ALL[name]
    cls, options = settings_of(command)
    params = {p.name: p for p in command.params}
    for option_name, (table, option) in options.items():
        default = (field_default(option.field) if table is None else
                   getattr(field_default({f.name: f for f in fields(cls)}[table]),
                           option.field.name))
        assert option.value(params[option_name].default) == default or (
            default is not None and params[option_name].default == expected(option, default)
        ), (name, option_name)
        assert shown_default(command, params[option_name]) == expected(option, default), \
            (name, option_name)


def test_no_help_text_holds_a_hand_written_default() -> None:
    hand = [(name, p.name) for name, command in ALL.items() for p in command.params
            if "[default:" in (getattr(p, "help", None) or "")]
    assert hand == []


def test_a_bad_value_names_the_setting_and_its_option() -> None:
    from preflab.audit.config import AuditConfig

    with pytest.raises(ValueError, match=r"limit \(--limit\) must be at least 1, got 0"):
        AuditConfig(limit=0)
    with pytest.raises(ValueError, match=r"combine \(--combine\) must be one of stacked"):
        AuditConfig(combine="best")


@dataclass
class Toy(FromFile):
    combine: str = setting("stacked", "How.", choices=("stacked", "mean"))
    lora: bool = setting(False, "Adapters.", flag="--lora/--full")
    seed: int = setting(0, "Seed.", min=0)
    params: dict[str, float] = setting(factory=dict, flag="--param/-p", help="K=V.")


def test_a_typed_flag_wins_over_the_file_even_at_its_default_and_dicts_merge(tmp_path) -> None:
    """defaults < --config FILE < the options typed: typing the default value still
    overrides the file; a dict option adds its keys to the file's; a setting left out
    keeps the file's value."""
    import typer
    from typer.testing import CliRunner

    from preflab.cli.from_config import options_from

    seen = []
    app = typer.Typer()

    @app.command()
    @options_from(Toy)
    def toy(config: Toy) -> None:
        seen.append(config)

    file = tmp_path / "toy.toml"
    file.write_text('combine = "mean"\nlora = true\nseed = 7\nparams = {a = 1.0}\n')
    result = CliRunner().invoke(app, ["--config", str(file), "--combine", "stacked", "--full",
                                      "-p", "b=2"])
    assert result.exit_code == 0, result.output
    assert seen[-1] == Toy(combine="stacked", lora=False, seed=7, params={"a": 1.0, "b": 2.0})
    assert CliRunner().invoke(app, ["--seed", "3"]).exit_code == 0 and seen[-1].seed == 3
