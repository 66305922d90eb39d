"""What every command prints and how it fails: the consoles, one-line errors and
warnings, JSON on the last line, and :func:`user_errors` (exit 2 with one line)."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from preflab.cli.checks import check_numbers
from preflab.committee.spec import CommitteeError
from preflab.errors import FieldError, FormatError, PairError
from preflab.models.offline import OfflineModelMissing

out = Console()


err = Console(stderr=True)


F = TypeVar("F", bound=Callable[..., Any])


INTERRUPTED = "interrupted: rerun the same command to resume"


def one_line(text: object) -> str:
    """User text for the console: on one line, with ``[...]`` shown, not read as markup."""
    return escape(" ".join(str(text).splitlines()).strip())  # every kind of line break


def user_errors(fn: F) -> F:
    """Show errors a user must fix as one clear line and exit 2, not as a traceback;
    Ctrl-C prints one line and exits 130 (long commands resume from their caches).
    Numeric options are range-checked first (:func:`check_numbers`)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            generated = getattr(fn, "setting_options", {})  # checked by their dataclass
            check_numbers({k: v for k, v in kwargs.items() if k not in generated})
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            err.print(INTERRUPTED, highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None
        except (PairError, FieldError, FormatError, OfflineModelMissing, FileNotFoundError,
                FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError,
                KeyError, ValueError, CommitteeError) as e:
            message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            err.print(f"[bold red]error:[/] {one_line(message)}", highlight=False,
                      soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def print_json(obj: Any) -> None:
    """One JSON object on one line of stdout: never wrapped, never marked up."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def warn(text: str) -> None:
    """One warning line on stderr; `text` is shown as is (no markup)."""
    err.print(f"[yellow]warning:[/] {one_line(text)}", highlight=False, soft_wrap=True)


def pct(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x:.1%}"
