"""Random audits over real pair objects, for property-based tests of cleaning."""

from __future__ import annotations

import numpy as np

from preflab.audit.table import Combination, audit_table
from preflab.audit.view import AuditView
from preflab.data.pair import PreferencePair

KINDS = {"rm": "seq-rm", "fit": "crossfit", "judge": "judge", "ifd": "ifd"}


def make_pairs(n: int, seed: int = 0, soft: bool = False) -> list[PreferencePair]:
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        p = float(rng.uniform(0.5, 1)) if soft else 1.0
        pairs.append(PreferencePair(
            prompt=[{"role": "user", "content": f"question {i}"}],
            chosen=f"good answer {i}", rejected=f"bad answer {i}",
            rejected_prompt=([{"role": "user", "content": f"question {i} (variant)"}]
                             if i % 7 == 3 else None),
            subset="harmless-base" if i % 2 else "helpful-base", p_chosen=p,
            flags=["empty_reply"] if i % 11 == 5 else [], meta={"k": i}))
    return pairs


def make_view(pairs: list[PreferencePair], seed: int = 0, flipped: np.ndarray | None = None
              ) -> AuditView:
    """An audit of `pairs` by three voting members and an ifd signal, with random margins
    that lean towards the truth (flipped pairs lean the other way)."""
    rng = np.random.default_rng(seed)
    n = len(pairs)
    sign = np.where(flipped, -1.0, 1.0) if flipped is not None else np.ones(n)
    names = ["rm", "fit", "judge"]
    r_c = rng.normal(0.5 * sign[:, None], 1.0, size=(n, 3))
    r_r = rng.normal(0.0, 1.0, size=(n, 3))
    margins = r_c - r_r
    r_c[:, 2] = r_r[:, 2] = np.nan  # a judge has no absolute rewards
    member_p = 1 / (1 + np.exp(-margins))
    table, _ = audit_table([p.id for p in pairs], [p.subset for p in pairs], names, margins,
                           member_p, r_c, r_r, combination=Combination(seed=seed))
    ifd = rng.normal(0.2 * sign, 1.0)
    table["margin.ifd"] = ifd
    table["r_chosen.ifd"] = ifd
    table["r_rejected.ifd"] = 0.0
    return AuditView(table, dict(KINDS))
