"""An audit table formed again from its own member columns, with no model run: the
committee's votes, bins, probability and source tags under another
:class:`~preflab.audit.table.Combination` (people's verdicts, another seed). Studies of
``audit --review`` use it to teach one audit many times over; ``preflab audit`` itself
forms its table from the scores it computes. Pure functions over tables."""

from __future__ import annotations

from typing import Any

import pandas as pd

from preflab.audit.noise_sources import tag_sources
from preflab.audit.stats import member_names
from preflab.audit.table import Combination, audit_table
from preflab.audit.view import AuditView


def signal_names(table: pd.DataFrame) -> list[str]:
    """Members scored for the cleaning rules but not voting (``margin.NAME`` without
    ``vote.NAME``)."""
    voting = set(member_names(table))
    return [c.split(".", 1)[1] for c in table.columns
            if c.startswith("margin.") and c.split(".", 1)[1] not in voting]


def refit_table(table: pd.DataFrame, kinds: dict[str, str], combination: Combination,
                bins: tuple[float, float] = (0.25, 0.75)) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(the table formed again under `combination`, how its probability was formed), as
    the audit forms it: members' columns as they were, signals copied, sources tagged
    again."""
    names = member_names(table)
    arrays = {a: table[[f"{a}.{n}" for n in names]].to_numpy(dtype=float)
              for a in ("margin", "p_chosen", "r_chosen", "r_rejected")}
    flipped = table["flipped"].to_numpy(dtype=bool) if "flipped" in table else None
    new, info = audit_table(table["id"].tolist(), table["subset"].tolist(), names,
                            arrays["margin"], arrays["p_chosen"], arrays["r_chosen"],
                            arrays["r_rejected"], bins, flipped, combination)
    for name in signal_names(table):
        for column in (f"margin.{name}", f"r_chosen.{name}", f"r_rejected.{name}"):
            new[column] = table[column].to_numpy()
    tags = tag_sources(AuditView(new, kinds, orientation=info["orientation"]))
    new["source"], new["source_signal"] = tags["source"], tags["signal"]
    return new, info
