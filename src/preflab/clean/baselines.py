"""The standard cleaning baselines (PrefCleanBench and generic label-noise methods).

Each baseline is score -> threshold -> act:

1. a score per pair (the ``*_score`` functions, listed in :data:`SCORES`): a pure
   function of the audit view, one float per row of ``view.table`` in order,
   higher = more suspect (the opposite of cleanlab's ``cleanlab.rank`` label-quality
   scores, where lower = more likely mislabelled); it is the decisions' ``score``
   column (except ``random``'s, which only orders its draw);
2. a selection rule of :mod:`preflab.clean.threshold` on that score;
3. the shared action :func:`preflab.clean.decisions.act` (``remove`` or ``flip``)
   on the selected pairs.

- ``random``: remove a seeded random `fraction` (or `count`) of pairs: the floor
  every method must beat at the same removal budget;
- ``vote_all``: every voting member disagrees with the label (disagreement = 1);
- ``vote_maj``: fewer than half of the voters agree (disagreement > 0.5);
- ``reward_gap``: the lowest `k` by the committee's mean scaled margin (RwGap);
- ``judge``: an LLM judge member prefers the rejected reply (its margin < 0);
- ``confident_learning``: cleanlab's ``find_label_issues`` on the committee's
  out-of-fold probabilities, each pair recast as a binary label (a seeded random
  orientation: label 1 when the chosen reply is shown first);
- ``loss``: remove the top `k` by a trained reward model's loss -log sigmoid(margin)
  (the cross-fitted members: each pair's loss under a model fitted on the others);
- ``ifd_gap``: remove the lowest `k` by the gap in instruction-following
  difficulty, -log IFD(chosen) + log IFD(rejected), from an ``ifd`` member.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.view import TRAINED_KINDS, AuditView
from preflab.clean.decisions import act
from preflab.clean.threshold import above, rule, top_count, top_fraction

DEFAULT_K = 0.2  # PrefCleanBench sweeps 10-40%; 20% sits in the middle


def _check_action(action: str, allowed: tuple[str, ...] = ("remove", "flip")) -> None:
    if action not in allowed:
        raise ValueError(f"action must be one of {allowed}, got {action!r}")


def _judge(view: AuditView, member: str | None) -> str:
    return view.member_of_kind(("judge",), "the judge baseline", member)


def _trained(view: AuditView, member: str | None) -> str:
    return view.member_of_kind(TRAINED_KINDS, "the loss baseline", member)


def _ifd(view: AuditView, member: str | None) -> str:
    return view.member_of_kind(("ifd",), "the ifd-gap baseline", member, signals=True)


# Scores: one float per pair, higher = more suspect.

def random_score(view: AuditView, count: int, seed: int = 0) -> np.ndarray:
    """Seeded random numbers in [0, 1]: the `count` pairs that numpy's seeded
    ``choice(n, count, replace=False)`` draws score 0.5 or more, the others less."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(view.n, size=count, replace=False)
    score = rng.random(view.n) / 2
    score[picked] += 0.5
    return score


def disagreement_score(view: AuditView) -> np.ndarray:
    """The share of voting members that disagree with the label, 1 - agreement
    (``vote_all`` and ``vote_maj``): 1 when every member disagrees."""
    return 1 - view.agreement


def reward_gap_score(view: AuditView) -> np.ndarray:
    """Minus the voting members' mean scaled margin (chosen - rejected)."""
    return -view.scaled_margins().mean(axis=1)


def judge_score(view: AuditView, member: str | None = None) -> np.ndarray:
    """Minus the judge member's margin: positive when it prefers the rejected reply."""
    return -view.margin(_judge(view, member))


def binary_labels(view: AuditView, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The pairs recast for cleanlab: (labels, pred_probs [n, 2]). A seeded random half
    show the chosen reply first (label 1: "the first reply is better"), the others
    second (label 0); pred_probs come from the committee's P(chosen), clipped."""
    p = np.clip(view.p, 1e-6, 1 - 1e-6)
    first = np.random.default_rng(seed).random(view.n) < 0.5  # chosen shown first
    p_first = np.where(first, p, 1 - p)
    return first.astype(int), np.stack([1 - p_first, p_first], axis=1)


def confident_learning_score(view: AuditView) -> np.ndarray:
    """The committee's P(rejected better), 1 - P(chosen): one minus cleanlab's
    self-confidence label quality of :func:`binary_labels` (up to its clipping)."""
    return 1 - view.p


def loss_score(view: AuditView, member: str | None = None) -> np.ndarray:
    """A trained (cross-fitted) member's loss on the label, -log sigmoid(margin)."""
    return np.logaddexp(0, -view.margin(_trained(view, member)))


def ifd_gap_score(view: AuditView, member: str | None = None) -> np.ndarray:
    """Minus the ifd member's log IFD gap: positive when the chosen reply follows the
    prompt no better than the rejected one."""
    return -view.margin(_ifd(view, member))


SCORES: dict[str, Callable[..., np.ndarray]] = {
    "random": random_score,
    "vote-all": disagreement_score,
    "vote-maj": disagreement_score,
    "reward-gap": reward_gap_score,
    "judge": judge_score,
    "confident-learning": confident_learning_score,
    "loss": loss_score,
    "ifd-gap": ifd_gap_score,
}


# The baselines: score -> threshold -> act.

def random_removal(view: AuditView, fraction: float = 0.1, count: int | None = None,
                   seed: int = 0) -> pd.DataFrame:
    """Remove a seeded random `count` of pairs (default `fraction` of them)."""
    n = view.n
    k = round(fraction * n) if count is None else count
    if not 0 <= k <= n:
        raise ValueError(f"random: cannot remove {k} of {n} pairs")
    mask = top_count(random_score(view, k, seed), k)
    return act(view.table["id"], mask, "remove", "picked at random", "random",
               {"fraction": fraction, "count": k, "seed": seed})


def vote_all(view: AuditView, action: str = "remove") -> pd.DataFrame:
    """Act where every voter disagrees with the label (votes = 0)."""
    _check_action(action)
    score = disagreement_score(view)
    mask = above(score, 1.0, inclusive=True)
    reason = [f"0/{m} voters agree" for m in view.table["members"]]
    return act(view.table["id"], mask, action, reason, "vote-all", {"action": action}, score)


def vote_maj(view: AuditView, action: str = "remove") -> pd.DataFrame:
    """Act where fewer than half of the voters agree with the label."""
    _check_action(action)
    score = disagreement_score(view)
    reason = [f"{v}/{m} voters agree (< half)"
              for v, m in zip(view.votes, view.table["members"], strict=True)]
    return act(view.table["id"], above(score, 0.5), action, reason, "vote-maj",
               {"action": action}, score)


def reward_gap(view: AuditView, action: str = "remove", k: float = DEFAULT_K) -> pd.DataFrame:
    """Act on the lowest `k` fraction by the members' mean scaled margin."""
    _check_action(action)
    score = reward_gap_score(view)
    mask = top_fraction(score, k)
    reason = [f"mean scaled margin {-s:+.2f} (lowest {k:.0%})" for s in score]
    return act(view.table["id"], mask, action, reason, "reward-gap", {"action": action, "k": k},
               score)


def judge(view: AuditView, action: str = "remove", member: str | None = None) -> pd.DataFrame:
    """Act where an LLM judge member prefers the rejected reply."""
    _check_action(action)
    name = _judge(view, member)
    score = judge_score(view, name)
    p = 1 / (1 + np.exp(score))
    reason = [f"{name}: P(chosen better)={v:.2f}" for v in p]
    return act(view.table["id"], above(score, 0.0), action, reason, "judge",
               {"action": action, "member": name}, score)


def confident_learning(view: AuditView, action: str = "remove", seed: int = 0,
                       filter_by: str = "prune_by_noise_rate") -> pd.DataFrame:
    """cleanlab's ``find_label_issues`` with pairs recast as binary labels."""
    from cleanlab.filter import find_label_issues

    _check_action(action)
    labels, pred = binary_labels(view, seed)
    issues = rule(find_label_issues(labels, pred, filter_by=filter_by), view.n)
    reason = [f"cleanlab label issue (committee P(chosen)={v:.2f})"
              for v in np.clip(view.p, 1e-6, 1 - 1e-6)]
    return act(view.table["id"], issues, action, reason, "confident-learning",
               {"action": action, "seed": seed, "filter_by": filter_by},
               confident_learning_score(view))


def _remove_top_of_member(view: AuditView, method: str, k: float, name: str,
                          score: np.ndarray, reason: Callable[[float], str]) -> pd.DataFrame:
    """Remove the top `k` fraction by member `name`'s `score` (`reason`: a pair's line)."""
    return act(view.table["id"], top_fraction(score, k), "remove", [reason(s) for s in score],
               method, {"k": k, "member": name}, score)


def loss(view: AuditView, k: float = DEFAULT_K, member: str | None = None) -> pd.DataFrame:
    """Remove the top `k` fraction by a trained reward model's loss on the pair."""
    name = _trained(view, member)
    return _remove_top_of_member(view, "loss", k, name, loss_score(view, name),
                                 lambda v: f"{name}: loss {v:.2f} (top {k:.0%})")


def ifd_gap(view: AuditView, k: float = DEFAULT_K, member: str | None = None) -> pd.DataFrame:
    """Remove the lowest `k` fraction by IFD gap (chosen follows the prompt no better)."""
    name = _ifd(view, member)
    return _remove_top_of_member(view, "ifd-gap", k, name, ifd_gap_score(view, name),
                                 lambda s: f"{name}: log IFD gap {-s:+.3f} (lowest {k:.0%})")


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
