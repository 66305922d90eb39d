"""``pl.clean``: a cleaning run as an object in memory (:class:`Cleaned`), written to
disk only when the caller asks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from preflab.api.audit import Audit
from preflab.api.notify import Notify, notifier
from preflab.audit.view import AuditView
from preflab.clean.audited import FAILURES, AuditInput, read_failures
from preflab.clean.cleaned import Cleaned
from preflab.clean.config import CleanConfig
from preflab.data.source import PairsInput, describe, pairs_source
from preflab.settings import resolve_config

__all__ = ["CleanConfig", "Cleaned", "clean"]


def audit_input(audit: Audit | AuditView | str | Path) -> AuditInput:
    """What clean reads of `audit`: an :class:`Audit`, a folder ``preflab audit``
    wrote, or an :class:`AuditView` (no summary: an audit of the data's first pairs is
    recognised by its ids)."""
    if isinstance(audit, str | Path):
        return AuditInput.load(audit)
    if isinstance(audit, Audit):
        listed = audit.read(FAILURES)
        failures = (read_failures(listed.decode("utf-8"), FAILURES) if listed is not None
                    else None)
        return AuditInput(audit.view(), audit.summary, failures, "(in memory)")
    if isinstance(audit, AuditView):
        return AuditInput(audit, name=audit.source)
    raise TypeError(f"cannot read an audit from a {type(audit).__name__}: give a pl.Audit, "
                    "a folder preflab audit wrote, or an AuditView")


def clean(data: PairsInput, audit: Audit | AuditView | str | Path,
          config: CleanConfig | str | Path | None = None, *, out: str | Path | None = None,
          overwrite: bool = False, rejects: str | Path | None = None, notify: Notify | None = None,
          **overrides: Any) -> Cleaned:
    """Keep, flip, remove or soft-relabel each pair of `data` (a path, a
    ``datasets.Dataset``, a DataFrame or a list of pairs) by its `audit` (a
    :class:`~preflab.api.audit.Audit`, an audit folder or an ``AuditView``), and return
    the :class:`Cleaned` result.

    `config` is a :class:`CleanConfig` or a settings file (``OUT/config.toml`` of an
    earlier run); `overrides` are its fields (``method="vote-maj"``,
    ``params={"action": "flip"}``, ``review="review-export"``). With `out` the result
    is also written there as ``preflab clean`` writes it (a new or empty folder, or one
    clean wrote before; any other only with `overwrite`). Each warning goes to `notify`
    as a line of text, else to :func:`warnings.warn`.
    """
    from preflab.audit.audit_pairs import check_rejects_file
    from preflab.clean.clean_pairs import clean_data

    config = resolve_config(CleanConfig, config, **overrides)
    if out is not None:
        check_rejects_file(rejects, out, "clean", overwrite)
    with pairs_source(data) as source:
        result = clean_data(source, audit_input(audit), config, rejects=rejects,
                            notify=notifier(notify))
    if not isinstance(data, str | Path):  # the summary names the object, not a temp file
        result.summary["data"] = result.inputs["data"] = describe(data)
    if out is not None:
        result.save(out, overwrite)
    return result
