"""``pl.audit``: an audit as an object in memory (``Audit``), written to disk only when
the caller asks."""

from __future__ import annotations

import json
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pandas as pd

from preflab.api.notify import Notify, notifier
from preflab.audit.config import AuditConfig
from preflab.audit.report import FLAGGED_CSV
from preflab.audit.view import AuditView
from preflab.data.outputs import read_files, save_files
from preflab.data.source import PairsInput, describe, pairs_source
from preflab.settings import CONFIG_FILE, load_config, resolve_config

COMMAND, TABLE, SUMMARY = "audit", "audit.parquet", "summary.json"


class Audit:
    """An audit: `table` (a DataFrame, one row per pair: each member's margin and vote,
    agreement, bin, the committee's ``p_chosen``), `summary` (the figures of
    summary.json), the `config` it ran with, and its other files (the report,
    flagged.csv, failures.jsonl: :meth:`read`).

    An audit in a folder that stays (``audit(..., out=folder)``, :meth:`load`) keeps
    only its summary and settings in memory: the table and the files are read from
    `folder` when asked for, so a large audit costs no memory until it is looked at.
    One run in a temporary folder is held in memory (`folder` is None)."""

    def __init__(self, summary: dict[str, Any], config: AuditConfig, *,
                 folder: Path | None = None, table: pd.DataFrame | None = None,
                 files: dict[str, bytes] | None = None) -> None:
        if folder is None and table is None:
            raise ValueError("an Audit needs its folder or its table")
        self.summary, self.config, self.folder = summary, config, folder
        self._table, self._files = table, files or {}

    @property
    def table(self) -> pd.DataFrame:
        """The audit table (read from `folder` the first time it is asked for)."""
        if self._table is None:
            self._table = pd.read_parquet(self.folder / TABLE)
        return self._table

    def read(self, name: str) -> bytes | None:
        """One of the audit's files (``report.html``, ``flagged.csv``,
        ``failures.jsonl``), or None if the audit wrote none."""
        if self.folder is None:
            return self._files.get(name)
        path = self.folder / name
        return path.read_bytes() if path.is_file() else None

    @property
    def members(self) -> pd.DataFrame:
        """One row per member: its kind, agreement with the labels, sign-test z,
        estimated accuracy, orientation and weight in the committee."""
        rows = {name: {"kind": self.summary.get("member_kinds", {}).get(name), **d}
                for name, d in self.summary["member_diagnostics"].items()}
        return pd.DataFrame.from_dict(rows, orient="index")

    @property
    def bins(self) -> pd.DataFrame:
        """Pairs per agreement bin (count and share)."""
        return pd.DataFrame.from_dict(self.summary["bins"]["overall"], orient="index")

    @property
    def report_html(self) -> str:
        """The self-contained HTML report."""
        return (self.read("report.html") or b"").decode("utf-8")

    @property
    def flagged(self) -> pd.DataFrame:
        """The pairs the committee doubts, for a person to read (flagged.csv)."""
        import io

        return pd.read_csv(io.BytesIO(self.read(FLAGGED_CSV) or b""))

    def view(self) -> AuditView:
        """The audit as cleaning rules read it."""
        orientation = (self.summary.get("committee_probability") or {}).get("orientation")
        return AuditView(self.table, self.summary.get("member_kinds", {}),
                         str(self.summary.get("data", "(in memory)")), orientation or {})

    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write the audit as ``preflab audit`` does; `folder` must be new, empty or an
        earlier audit's, unless `overwrite`."""
        from preflab.audit.audit_pairs import write_table

        if self.folder is not None and Path(folder).resolve() == self.folder.resolve():
            return Path(folder)
        info = {"data": self.summary.get("data"), "committee": self.summary.get("committee")}
        files = self._files if self.folder is None else read_files(
            self.folder, COMMAND, skip=(TABLE, SUMMARY))
        folder = save_files(files, folder, COMMAND, overwrite, info=info)
        write_table(self.table, folder / TABLE)
        (folder / SUMMARY).write_text(json.dumps(self.summary, indent=1))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Audit:
        """An audit written by ``preflab audit`` or :meth:`save`; its table and files
        are read when asked for."""
        folder = Path(folder)
        if not (folder / TABLE).exists():
            raise FileNotFoundError(f"{folder}: no {TABLE}; run preflab audit first")
        config_path = folder / CONFIG_FILE
        config = load_config(AuditConfig, config_path if config_path.exists() else None)
        return cls(json.loads((folder / SUMMARY).read_text()), config, folder=folder)

    def in_memory(self) -> Audit:
        """The same audit with its table and files read into memory (a copy that
        outlives its folder)."""
        if self.folder is None:
            return self
        return Audit(self.summary, self.config, table=self.table,
                     files=read_files(self.folder, COMMAND, skip=(TABLE, SUMMARY)))

    def __repr__(self) -> str:
        share = self.summary.get("low_or_no_agreement_fraction")
        return (f"Audit({self.summary['n_pairs']} pairs, committee "
                f"{self.summary.get('committee')!r}, low or no agreement "
                f"{share:.1%})" if share is not None else f"Audit({len(self.table)} pairs)")


def audit(data: PairsInput, config: AuditConfig | str | Path | None = None, *,
          out: str | Path | None = None, overwrite: bool = False,
          rejects: str | Path | None = None, notify: Notify | None = None,
          **overrides: Any) -> Audit:
    """Score every pair of `data` (a path, a ``datasets.Dataset``, a DataFrame or a
    list of pairs) with a committee and return the :class:`Audit`.

    `config` is an :class:`AuditConfig` or a settings file (``OUT/config.toml`` of an
    earlier run); `overrides` are its fields (``committee="cpu-fast"``, ``limit=200``).
    With `out` the audit is written there as it runs (the folder is checked before any
    model loads; `overwrite` as :meth:`Audit.save`) and the result reads its table
    from there when asked; else it runs in a temporary folder, gone on return, and
    the result holds everything in memory. Each warning (records rejected, texts
    truncated, pairs that failed) goes to `notify` as a line of text, else to
    :func:`warnings.warn`.
    """
    from preflab.audit.audit_pairs import audit as run_audit

    config = resolve_config(AuditConfig, config, **overrides)
    with pairs_source(data) as source, ExitStack() as stack:
        folder = Path(out) if out is not None else Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="preflab-audit-out-"))) / COMMAND
        run_audit(source, config, folder, rejects=rejects, overwrite=overwrite,
                  notify=notifier(notify))
        if not isinstance(data, str | Path):  # the summary names the object, not a temp file
            summary = json.loads((folder / SUMMARY).read_text())
            (folder / SUMMARY).write_text(json.dumps({**summary, "data": describe(data)},
                                                     indent=1))
        result = Audit.load(folder)
        return result if out is not None else result.in_memory()
