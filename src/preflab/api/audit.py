"""``pl.audit``: an audit as an object in memory (``Audit``), written to disk only when
the caller asks."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from preflab.audit.config import AuditConfig
from preflab.audit.view import AuditView
from preflab.data.outputs import read_files, save_files
from preflab.data.source import PairsInput, describe, pairs_source
from preflab.settings import load_config, resolve_config

TABLE, SUMMARY = "audit.parquet", "summary.json"


@dataclass
class Audit:
    """An audit: `table` (a DataFrame, one row per pair: each member's margin and vote,
    agreement, bin, the committee's ``p_chosen``), `summary` (the figures of
    summary.json), the `config` it ran with, and the other files it wrote (the report,
    flagged.csv, failures.jsonl) in `files`."""

    table: pd.DataFrame
    summary: dict[str, Any]
    config: AuditConfig
    files: dict[str, bytes] = field(default_factory=dict, repr=False)

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
        return self.files["report.html"].decode("utf-8")

    @property
    def flagged(self) -> pd.DataFrame:
        """The pairs the committee doubts, for a person to read (flagged.csv)."""
        import io

        return pd.read_csv(io.BytesIO(self.files["flagged.csv"]))

    def view(self) -> AuditView:
        """The audit as cleaning rules read it."""
        orientation = (self.summary.get("committee_probability") or {}).get("orientation")
        return AuditView(self.table, self.summary.get("member_kinds", {}),
                         str(self.summary.get("data", "(in memory)")), orientation or {})

    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write the audit as ``preflab audit`` does; `folder` must be new, empty or an
        earlier audit's, unless `overwrite`."""
        from preflab.audit.audit_pairs import write_table

        folder = save_files(self.files, folder, "audit", overwrite,
                            info={"data": self.summary.get("data"),
                                  "committee": self.summary.get("committee")})
        write_table(self.table, folder / TABLE)
        (folder / SUMMARY).write_text(json.dumps(self.summary, indent=1))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Audit:
        """An audit written by ``preflab audit`` or :meth:`save`."""
        folder = Path(folder)
        if not (folder / TABLE).exists():
            raise FileNotFoundError(f"{folder}: no {TABLE}; run preflab audit first")
        config_path = folder / "config.toml"
        config = load_config(AuditConfig, config_path if config_path.exists() else None)
        return cls(pd.read_parquet(folder / TABLE), json.loads((folder / SUMMARY).read_text()),
                   config, read_files(folder, "audit", skip=(TABLE, SUMMARY)))

    def __repr__(self) -> str:
        share = self.summary.get("low_or_no_agreement_fraction")
        return (f"Audit({self.summary['n_pairs']} pairs, committee "
                f"{self.summary.get('committee')!r}, low or no agreement "
                f"{share:.1%})" if share is not None else f"Audit({len(self.table)} pairs)")


def audit(data: PairsInput, config: AuditConfig | str | Path | None = None, *,
          out: str | Path | None = None, overwrite: bool = False,
          rejects: str | Path | None = None, notify: Any = None, **overrides: Any) -> Audit:
    """Score every pair of `data` (a path, a ``datasets.Dataset``, a DataFrame or a
    list of pairs) with a committee and return the :class:`Audit`.

    `config` is an :class:`AuditConfig` or a settings file (``OUT/config.toml`` of an
    earlier run); `overrides` are its fields (``committee="cpu-fast"``, ``limit=200``).
    With `out` the audit is written there as it runs (the folder is checked before any
    model loads; `overwrite` as :meth:`Audit.save`), else in a temporary folder that
    is gone on return. `notify` gets each warning as a line of text.
    """
    from preflab.audit.audit_pairs import audit as run_audit

    config = resolve_config(AuditConfig, config, **overrides)
    with pairs_source(data) as source, tempfile.TemporaryDirectory(
            prefix="preflab-audit-out-") as scratch:
        folder = Path(out) if out is not None else Path(scratch) / "audit"
        run_audit(source, config, folder, rejects=rejects, overwrite=overwrite,
                  notify=notify)
        if not isinstance(data, str | Path):  # the summary names the object, not a temp file
            summary = json.loads((folder / SUMMARY).read_text())
            (folder / SUMMARY).write_text(json.dumps({**summary, "data": describe(data)},
                                                     indent=1))
        return Audit.load(folder)
