"""The standard cleaning baselines (PrefCleanBench and generic label-noise methods).

Each is a pure function of the audit view and its parameters; most act by
``action`` = ``remove`` or ``flip`` on the pairs their rule picks:

- ``random``: remove a seeded random `fraction` (or `count`) of pairs: the floor
  every method must beat at the same removal budget;
- ``vote_all``: every voting member disagrees with the label;
- ``vote_maj``: fewer than half of the voting members agree;
- ``reward_gap``: the lowest `k` by the committee's mean scaled margin (RwGap);
- ``judge``: an LLM judge member prefers the rejected reply;
- ``confident_learning``: cleanlab's ``find_label_issues`` on the committee's
  out-of-fold probabilities, each pair recast as a binary label (a seeded random
  orientation: label 1 when the chosen reply is shown first);
- ``loss``: remove the top `k` by a trained reward model's loss -log sigmoid(margin)
  (the cross-fitted members: each pair's loss under a model fitted on the others);
- ``ifd_gap``: remove the lowest `k` by the gap in instruction-following
  difficulty, -log IFD(chosen) + log IFD(rejected), from an ``ifd`` member.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.view import TRAINED_KINDS, AuditView
from preflab.clean.decisions import act_where, decisions, lowest_fraction

DEFAULT_K = 0.2  # PrefCleanBench sweeps 10-40%; 20% sits in the middle


def _check_action(action: str, allowed: tuple[str, ...] = ("remove", "flip")) -> None:
    if action not in allowed:
        raise ValueError(f"action must be one of {allowed}, got {action!r}")


def random_removal(view: AuditView, fraction: float = 0.1, count: int | None = None,
                   seed: int = 0) -> pd.DataFrame:
    """Remove a seeded random `count` of pairs (default `fraction` of them)."""
    n = view.n
    k = round(fraction * n) if count is None else count
    if not 0 <= k <= n:
        raise ValueError(f"random: cannot remove {k} of {n} pairs")
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).choice(n, size=k, replace=False)] = True
    action, reason = act_where(mask, "remove", "picked at random")
    return decisions(view.table["id"], action, reason, "random",
                     {"fraction": fraction, "count": k, "seed": seed})


def vote_all(view: AuditView, action: str = "remove") -> pd.DataFrame:
    """Act where every voting member disagrees with the label (votes = 0)."""
    _check_action(action)
    mask = view.votes == 0
    act, reason = act_where(mask, action, f"0/{len(view.members)} members agree")
    return decisions(view.table["id"], act, reason, "vote-all", {"action": action},
                     score=1 - view.agreement)


def vote_maj(view: AuditView, action: str = "remove") -> pd.DataFrame:
    """Act where fewer than half of the voting members agree with the label."""
    _check_action(action)
    mask = view.agreement < 0.5
    m = len(view.members)
    reason = np.array([f"{v}/{m} members agree (< half)" for v in view.votes], dtype=object)
    act, _ = act_where(mask, action, "")
    reason[~mask] = ""
    return decisions(view.table["id"], act, reason, "vote-maj", {"action": action},
                     score=1 - view.agreement)


def reward_gap(view: AuditView, action: str = "remove", k: float = DEFAULT_K) -> pd.DataFrame:
    """Act on the lowest `k` fraction by the members' mean scaled margin."""
    _check_action(action)
    gap = view.scaled_margins().mean(axis=1)
    mask = lowest_fraction(gap, k)
    reason = np.array([f"mean scaled margin {g:+.2f} (lowest {k:.0%})" for g in gap],
                      dtype=object)
    reason[~mask] = ""
    act, _ = act_where(mask, action, "")
    return decisions(view.table["id"], act, reason, "reward-gap", {"action": action, "k": k},
                     score=-gap)


def judge(view: AuditView, action: str = "remove", member: str | None = None) -> pd.DataFrame:
    """Act where an LLM judge member prefers the rejected reply."""
    _check_action(action)
    name = view.member_of_kind(("judge",), "the judge baseline", member)
    margin = view.margin(name)
    mask = margin < 0
    p = 1 / (1 + np.exp(-margin))
    reason = np.array([f"{name}: P(chosen better)={v:.2f}" for v in p], dtype=object)
    reason[~mask] = ""
    act, _ = act_where(mask, action, "")
    return decisions(view.table["id"], act, reason, "judge", {"action": action, "member": name},
                     score=-margin)


def confident_learning(view: AuditView, action: str = "remove", seed: int = 0,
                       filter_by: str = "prune_by_noise_rate") -> pd.DataFrame:
    """cleanlab's ``find_label_issues`` with pairs recast as binary labels."""
    from cleanlab.filter import find_label_issues

    _check_action(action)
    p = np.clip(view.p, 1e-6, 1 - 1e-6)
    first = np.random.default_rng(seed).random(view.n) < 0.5  # chosen shown first
    labels = first.astype(int)  # 1: "the first reply is better"
    p_first = np.where(first, p, 1 - p)
    pred = np.stack([1 - p_first, p_first], axis=1)
    issues = find_label_issues(labels, pred, filter_by=filter_by)
    reason = np.array([f"cleanlab label issue (committee P(chosen)={v:.2f})" for v in p],
                      dtype=object)
    reason[~issues] = ""
    act, _ = act_where(issues, action, "")
    return decisions(view.table["id"], act, reason, "confident-learning",
                     {"action": action, "seed": seed, "filter_by": filter_by}, score=1 - p)


def loss(view: AuditView, k: float = DEFAULT_K, member: str | None = None) -> pd.DataFrame:
    """Remove the top `k` fraction by a trained reward model's loss on the pair."""
    name = view.member_of_kind(TRAINED_KINDS, "the loss baseline", member)
    value = np.logaddexp(0, -view.margin(name))  # -log sigmoid(margin)
    mask = lowest_fraction(-value, k)
    reason = np.array([f"{name}: loss {v:.2f} (top {k:.0%})" for v in value], dtype=object)
    reason[~mask] = ""
    act, _ = act_where(mask, "remove", "")
    return decisions(view.table["id"], act, reason, "loss", {"k": k, "member": name},
                     score=value)


def ifd_gap(view: AuditView, k: float = DEFAULT_K, member: str | None = None) -> pd.DataFrame:
    """Remove the lowest `k` fraction by IFD gap (chosen follows the prompt no better)."""
    name = view.member_of_kind(("ifd",), "the ifd-gap baseline", member, signals=True)
    gap = view.margin(name)
    mask = lowest_fraction(gap, k)
    reason = np.array([f"{name}: log IFD gap {g:+.3f} (lowest {k:.0%})" for g in gap],
                      dtype=object)
    reason[~mask] = ""
    act, _ = act_where(mask, "remove", "")
    return decisions(view.table["id"], act, reason, "ifd-gap", {"k": k, "member": name},
                     score=-gap)


BASELINES: dict[str, Any] = {
    "random": random_removal,
    "vote-all": vote_all,
    "vote-maj": vote_maj,
    "reward-gap": reward_gap,
    "judge": judge,
    "confident-learning": confident_learning,
    "loss": loss,
    "ifd-gap": ifd_gap,
}
