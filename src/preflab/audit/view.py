"""An audit as cleaning rules read it: the table plus what each member is.

Pure data: loading reads ``audit.parquet`` and ``summary.json``; every rule is a
function of this view and its parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from preflab.audit.combine import row_means, scale_margins
from preflab.audit.stats import member_names, voter_names

TRAINED_KINDS = ("crossfit",)  # members trained on the audited data (out-of-fold)


@dataclass
class AuditView:
    """The audit table (one row per pair, in data order), each member's kind and its
    orientation in the committee (+1 as declared, -1 turned round; absent: +1)."""

    table: pd.DataFrame
    kinds: dict[str, str] = field(default_factory=dict)
    source: str = "(in memory)"
    orientation: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: str | Path, columns: list[str] | None = None) -> AuditView:
        """The audit ``preflab audit`` wrote into `folder` (only `columns` of its table,
        if given)."""
        folder = Path(folder)
        path = folder / "audit.parquet"
        if not path.exists():
            raise FileNotFoundError(f"{folder}: no audit.parquet; run `preflab audit` first")
        summary_path = folder / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        orientation = (summary.get("committee_probability") or {}).get("orientation") or {}
        return cls(pd.read_parquet(path, columns=columns), summary.get("member_kinds", {}),
                   str(folder), orientation)

    @property
    def n(self) -> int:
        return len(self.table)

    @property
    def members(self) -> list[str]:
        """Voting members (:func:`preflab.audit.stats.member_names`)."""
        return member_names(self.table)

    @property
    def voters(self) -> list[str]:
        """The committee's voters (:func:`preflab.audit.stats.voter_names`)."""
        return voter_names(self.table)

    @property
    def scored(self) -> np.ndarray:
        """Per pair: some voter scored it (``members`` > 0); the others are the
        ``unscored`` bin, which no cleaning rule decides on."""
        if "members" not in self.table:
            return np.ones(self.n, dtype=bool)
        return self.table["members"].to_numpy() > 0

    def subset(self, mask: np.ndarray) -> AuditView:
        """The view of the pairs in `mask` (in order), members and orientation alike."""
        return AuditView(self.table[mask].reset_index(drop=True), self.kinds, self.source,
                         self.orientation)

    @property
    def signals(self) -> list[str]:
        """Members scored but not voting (e.g. ``ifd``)."""
        voting = set(self.members)
        return [c.split(".", 1)[1] for c in self.table.columns
                if c.startswith("margin.") and c.split(".", 1)[1] not in voting]

    @property
    def p(self) -> np.ndarray:
        """The committee's P(chosen better)."""
        return self.table["p_chosen"].to_numpy(dtype=float)

    @property
    def agreement(self) -> np.ndarray:
        return self.table["agreement"].to_numpy(dtype=float)

    @property
    def votes(self) -> np.ndarray:
        return self.table["votes"].to_numpy()

    def margin(self, name: str) -> np.ndarray:
        column = f"margin.{name}"
        if column not in self.table:
            raise KeyError(f"{self.source}: the audit has no member or signal {name!r}; it has "
                           f"{', '.join(self.members + self.signals)}")
        return self.table[column].to_numpy(dtype=float)

    def scaled_margins(self) -> np.ndarray:
        """Voting members' margins in units of each member's spread, turned round where
        the committee turns the member round (:attr:`orientation`), [pairs, members]."""
        m = np.stack([self.margin(n) * self.orientation.get(n, 1) for n in self.members],
                     axis=1)
        return np.nan_to_num(scale_margins(m))

    def member_of_kind(self, kinds: tuple[str, ...], what: str, name: str | None = None,
                       signals: bool = False) -> str:
        """`name` if given (checked), else the first member whose kind is in `kinds`."""
        pool = self.members + (self.signals if signals else [])
        if name is not None:
            self.margin(name)
            return name
        for n in pool:
            if self.kinds.get(n) in kinds:
                return n
        have = ", ".join(f"{n} ({self.kinds.get(n, '?')})" for n in pool)
        raise ValueError(f"{self.source}: {what} needs a member of kind {' or '.join(kinds)}; "
                         f"the audit has {have}. Add one to the committee or name one with "
                         "member=NAME")

    def reward_percentiles(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Each reply's absolute reward as a percentile among all replies, averaged over
        the voting members that give absolute rewards: (chosen, rejected, members used)."""
        used, pc, pr = [], [], []
        for name in self.members:
            rc = self.table[f"r_chosen.{name}"].to_numpy(dtype=float)
            rr = self.table[f"r_rejected.{name}"].to_numpy(dtype=float)
            if np.isnan(rc).all() or np.isnan(rr).all():
                continue
            both = np.concatenate([rc, rr])
            ranks = pd.Series(both).rank(pct=True).to_numpy()
            pc.append(ranks[:self.n])
            pr.append(ranks[self.n:])
            used.append(name)
        if not used:
            nan = np.full(self.n, np.nan)
            return nan, nan.copy(), []
        return row_means(np.array(pc).T), row_means(np.array(pr).T), used

