"""The audit table: one row per pair with every member's margin and vote, and the
committee's votes, agreement bin and probability.

The committee votes as its probability counts its members
(:func:`preflab.audit.combine.committee_voters`): members that are near copies or
negations of each other (|r| >= 0.95) form one *voter*, which votes once by the sign of
their merged margin, and a voter that disagrees with the labels beyond chance is turned
round. ``votes``, ``members``, ``agreement`` and ``bin`` count voters; ``vote.NAME`` is
member NAME's own vote as declared (1: it scores the chosen reply higher, 0: lower or
equal, null: no score) and ``voter.NAME`` the vote the committee counts. A pair no member
scored has bin ``unscored``, ``members`` 0, ``agreement`` NaN and ``p_chosen`` 0.5 (no
opinion); review selection and the cleaning rules leave it out.

Pure functions over arrays; no model is touched here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.combine import (
    DEFAULT,
    Voters,
    committee_probability,
    committee_voters,
    row_means,
)
from preflab.audit.taught import MIN_DECIDED, RESAMPLES, people_probability

BIN_NAMES = ("none", "low", "mixed", "high", "unanimous", "unscored")
UNSCORED = "unscored"  # no member scored the pair: no vote, no agreement, no verdict


def agreement_bin(v: np.ndarray, m: np.ndarray | int, low: float = 0.25, high: float = 0.75
                  ) -> np.ndarray:
    """none: v=0; low: 0<v/M<=low; mixed; high: high<=v/M<M; unanimous: v=M."""
    a = v / m
    return np.select([v == 0, a <= low, a < high, v < m], ["none", "low", "mixed", "high"],
                     default="unanimous")


def _row_spread(x: np.ndarray) -> np.ndarray:
    """Standard deviation of each row over its non-NaN entries (NaN where there is none)."""
    return np.sqrt(row_means((x - row_means(x)[:, None]) ** 2))


def nullable_votes(votes: np.ndarray) -> pd.arrays.IntegerArray:
    """1/0 votes with NaN for no score, as a nullable Int8 column (null in Parquet)."""
    return pd.array(votes, dtype="Int8")  # type: ignore[return-value]


def counted_voters(voters: Voters, member_weights: Sequence[float], taught: bool
                   ) -> np.ndarray:
    """Which voters' votes count in ``votes``, ``members``, ``agreement`` and ``bin``:
    all of them, except in a committee taught by people (`taught`), where a voter
    people gave no weight (every member's weight 0: on people's verdicts it adds
    nothing to the others) does not count, unless none has weight."""
    weight = np.array([np.abs(np.asarray(member_weights)[g]).sum() for g in voters.groups])
    if not taught or not (weight > 0).any():
        return np.ones(len(voters.groups), dtype=bool)
    return weight > 0


@dataclass(frozen=True)
class Combination:
    """How the committee probability is formed (:mod:`preflab.audit.combine`): the
    method (one of :data:`~preflab.audit.combine.METHODS`), the seed of its cross-fitting
    and the pairs that must share a fold (`groups`: one label per pair; None: each pair
    alone). With `people` (people's verdicts per pair:
    :func:`preflab.audit.taught.people_targets`) and at least `min_decided` of them,
    the weights are fitted on people instead of the labels.
    """

    method: str = DEFAULT
    seed: int = 0
    groups: np.ndarray | None = None
    people: np.ndarray | None = None  # per pair +1/-1/NaN: fit on people (audit.taught)
    tallies: np.ndarray | None = None  # per pair (votes behind the consensus, votes)
    min_decided: int = MIN_DECIDED
    resamples: int = RESAMPLES  # bootstrap resamples for the weights' intervals (0: none)


def audit_table(ids: Sequence[str], subsets: Sequence[str | None], names: Sequence[str],
                margins: np.ndarray, member_p: np.ndarray, r_chosen: np.ndarray,
                r_rejected: np.ndarray, bins: tuple[float, float] = (0.25, 0.75),
                flipped: Sequence[bool] | None = None,
                combination: Combination | None = None
                ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The table from per-member arrays of shape [pairs, members], and how the
    committee probability was formed (`combination`; default :class:`Combination`'s):
    besides the method's own figures, ``weights`` (each member's share of the verdict,
    in the direction it is counted: >= 0 for ``stacked``), ``orientation`` (+1 as
    declared, -1 turned round) and ``voters`` (per voter: its members with their
    orientation, and the sign-test z of its oriented votes)."""
    how = combination or Combination()
    names = list(names)
    own = np.where(np.isnan(margins), np.nan, (margins > 0).astype(float))  # a tie is no vote
    people = how.people
    n_decided = 0 if people is None else int((~np.isnan(people)).sum())
    if n_decided < how.min_decided:
        people = None
    committee = committee_voters(margins)  # the votes, and the probability's orientation
    voter_names = committee.names(names)
    if people is None:
        p, info = committee_probability(margins, how.method, seed=how.seed, member_p=member_p,
                                        groups=how.groups, voters=committee)
    else:
        p, info = people_probability(margins, people, how.method, seed=how.seed,
                                     groups=how.groups, voters=committee,
                                     resamples=how.resamples, tallies=how.tallies)
    if how.people is not None and people is None:
        info["fitted_on"] = "labels"
        info["people_not_used"] = (
            f"{n_decided} reviewed pairs with a consensus naming the better reply, under the "
            f"{how.min_decided} needed to fit on people: the weights stay fitted on the labels")
    cast = committee.votes
    counted = counted_voters(committee, info["member_weights"], people is not None)
    present = (~np.isnan(cast[:, counted])).sum(axis=1)  # a voter with no score casts no vote
    v = np.nansum(cast[:, counted], axis=1).astype(int)
    table = pd.DataFrame({"id": list(ids), "subset": [s or "(none)" for s in subsets]})
    if flipped is not None:
        table["flipped"] = np.asarray(flipped, dtype=bool)
    for k, name in enumerate(names):
        table[f"margin.{name}"] = margins[:, k]
        table[f"vote.{name}"] = nullable_votes(own[:, k])
        table[f"r_chosen.{name}"] = r_chosen[:, k]
        table[f"r_rejected.{name}"] = r_rejected[:, k]
        table[f"p_chosen.{name}"] = member_p[:, k]
    for k, name in enumerate(voter_names):
        if counted[k]:  # a voter people gave no weight is listed in info, not counted
            table[f"voter.{name}"] = nullable_votes(cast[:, k])
    table["votes"] = v
    table["members"] = present
    if (present < counted.sum()).any():
        table["missing_votes"] = counted.sum() - present
    unscored = present == 0  # no member scored the pair: its own bin, no agreement
    table["agreement"] = np.where(unscored, np.nan, v / np.maximum(present, 1))
    table["bin"] = np.where(unscored, UNSCORED, agreement_bin(v, np.maximum(present, 1), *bins))
    table["p_chosen"] = p
    table["spread"] = _row_spread(member_p)
    orient = committee.member_orientation
    weights = np.array(info.pop("member_weights")) * orient
    info["weights"] = {n: round(float(w), 4) + 0.0 for n, w in zip(names, weights, strict=True)}
    if "member_weight_intervals" in info:
        info["weight_intervals"] = {
            n: sorted(round(float(b * o), 4) + 0.0 for b in bounds)
            for n, bounds, o in zip(names, info.pop("member_weight_intervals"), orient,
                                    strict=True)}
    info["orientation"] = {n: int(o) for n, o in zip(names, orient, strict=True)}
    info["voters"] = {voter: {"members": {names[k]: int(orient[k]) for k in g},
                              "sign_test_z": round(float(z), 2), "counted": bool(c)}
                      for voter, g, z, c in zip(voter_names, committee.groups,
                                                committee.sign_test_z, counted, strict=True)}
    info["merged"] = [[names[k] for k in g] for g in info["merged"]]
    return table, info
