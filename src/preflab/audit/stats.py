"""Summary statistics of an audit table (pure functions)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from preflab.audit.combine import COLLINEAR, correlations, sign_test_z
from preflab.audit.table import BIN_NAMES

CHANCE_Z = 2.0  # |sign-test z| below which a member's agreement with the labels is chance
WEAK_AGREEMENT = 0.65  # a best voter agreeing with fewer labels is close to a coin (verdict)


def member_names(table: pd.DataFrame) -> list[str]:
    """The voting members (their own ``vote.NAME`` columns)."""
    return [c.split(".", 1)[1] for c in table.columns if c.startswith("vote.")]


def voter_names(table: pd.DataFrame) -> list[str]:
    """The voters the committee's votes and bins count (``voter.NAME`` columns: a
    member, or members merged as one); an older table without them: its members."""
    return [c.split(".", 1)[1] for c in table.columns if c.startswith("voter.")] or \
        member_names(table)


def vote_matrix(table: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Votes as floats [pairs, columns]: 1, 0, NaN where there is none."""
    return table[columns].astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def fleiss_kappa(votes: np.ndarray) -> float:
    """Fleiss' kappa of raters over 2 categories (agree / disagree with the label), each
    pair counting the raters that voted on it (NaN: no vote): P_i is the agreement among
    pair i's n_i votes, n_ij (n_ij - 1) summed over j, over n_i (n_i - 1); p_j the share
    of all votes in category j; kappa = (mean P_i - sum p_j^2) / (1 - sum p_j^2). Pairs
    with fewer than two votes are left out (NaN when none is left); 1 when every vote
    falls in one category."""
    seen = ~np.isnan(votes)
    yes = np.where(seen, votes, 0.0).sum(axis=1)
    n_i = seen.sum(axis=1).astype(float)
    counts = np.stack([yes, n_i - yes], axis=1)[n_i >= 2]
    n_i = n_i[n_i >= 2]
    if len(n_i) == 0:
        return float("nan")
    p_i = (counts * (counts - 1)).sum(axis=1) / (n_i * (n_i - 1))
    p_e = float(((counts.sum(axis=0) / n_i.sum()) ** 2).sum())
    return float((p_i.mean() - p_e) / (1 - p_e)) if p_e < 1 else 1.0


def bin_counts(table: pd.DataFrame) -> dict[str, Any]:
    """Counts and fractions per bin, overall and per subset."""
    def counts(frame: pd.DataFrame) -> dict[str, Any]:
        c = frame["bin"].value_counts()
        return {b: {"count": int(c.get(b, 0)), "fraction": round(float(c.get(b, 0)) / len(frame),
                                                                 4)}
                for b in BIN_NAMES}

    return {"overall": counts(table),
            "by_subset": {s: counts(f) for s, f in table.groupby("subset", sort=True)}}


def flip_detection_auc(table: pd.DataFrame) -> dict[str, float] | None:
    """ROC-AUC of each member's and the committee's suspicion against known flips."""
    if "flipped" not in table or table["flipped"].nunique() < 2:
        return None
    from sklearn.metrics import roc_auc_score

    y = table["flipped"].to_numpy()
    aucs = {"committee": float(roc_auc_score(y, 1 - table["p_chosen"]))}
    for name in member_names(table):
        aucs[name] = float(roc_auc_score(y, -np.nan_to_num(table[f"margin.{name}"])))
    return aucs


def member_diagnostics(table: pd.DataFrame, weights: dict[str, float] | None = None,
                       threshold: float = COLLINEAR,
                       orientation: dict[str, int] | None = None,
                       intervals: dict[str, list[float]] | None = None
                       ) -> tuple[dict[str, Any], list[str]]:
    """Per member, as declared: agreement with the labels and its sign-test z
    (agreements minus disagreements over the square root of their sum; ties left out),
    estimated accuracy under the committee (expected agreement with the committee's
    P(chosen better), ties half); then how the committee counts it: its orientation
    (+1 as declared, -1 turned round) and normalised weight in that direction; and its
    correlation with every other member. A warning for each pair of members that
    correlate above `threshold` (they count as one), and one for each weighted member
    whose agreement with the labels is within chance (|z| < :data:`CHANCE_Z`): the
    labels give no evidence that it is accurate, so its weight may follow their noise.
    `intervals` (an audit taught by people: each weight's 95% interval) are kept beside
    the weights, and then the weights come from people, not the labels: no such
    warning."""
    names = member_names(table)
    margins = table[[f"margin.{n}" for n in names]].to_numpy(dtype=float)
    r = correlations(margins)
    z = sign_test_z(margins)
    q = table["p_chosen"].to_numpy(dtype=float)
    rows: dict[str, Any] = {}
    chance: list[str] = []
    for k, name in enumerate(names):
        x = margins[:, k]
        seen = ~np.isnan(x)
        right = np.where(x > 0, q, np.where(x < 0, 1 - q, 0.5))[seen]
        agreement = float((x[seen] > 0).mean()) if seen.any() else None
        z_k = round(float(z[k]), 2) if (x[seen] != 0).any() else None
        weight = None if weights is None else weights.get(name)
        rows[name] = {
            "agreement_with_labels": None if agreement is None else round(agreement, 4),
            "sign_test_z": z_k,
            "estimated_accuracy": round(float(right.mean()), 4) if seen.any() else None,
            "orientation": 1 if orientation is None else orientation.get(name, 1),
            "weight": weight,
            **({"weight_interval": intervals.get(name)} if intervals is not None else {}),
            "correlation": {o: round(float(r[k, j]), 3) for j, o in enumerate(names) if j != k},
        }
        if z_k is not None and abs(z_k) < CHANCE_Z and (weight or 0) > 0 and intervals is None:
            chance.append(f"{name}: agrees with the labels on {agreement:.1%} of {seen.sum()} "
                          f"pairs, within chance (sign test z = {z_k:+.2f}, |z| < "
                          f"{CHANCE_Z:g}); the labels give no evidence that it is accurate, "
                          f"so its weight ({weight:.3f}) may follow their noise")
    warnings = [f"{a} and {b} correlate {r[i, j]:+.2f} (|r| >= {threshold}): these two count "
                "as one" + (f" voter, {b} turned round" if r[i, j] < 0 else " voter")
                for i, a in enumerate(names) for j, b in enumerate(names)
                if i < j and abs(r[i, j]) >= threshold]
    return rows, warnings + chance


def _share(x: np.ndarray) -> float | None:
    """Mean over the non-NaN entries, None if there is none."""
    x = x[~np.isnan(x)]
    return round(float(x.mean()), 4) if len(x) else None


def summarize(table: pd.DataFrame) -> dict[str, Any]:
    """The headline figures of an audit. Members' agreement (with the labels, with each
    other) is of their own votes, over the pairs they scored; the bins and Fleiss'
    kappa are of the committee's voters (:func:`voter_names`; each pair counts the
    voters that voted on it, and ``fleiss_kappa_left_out`` names voters that never
    voted)."""
    names = member_names(table)
    votes = vote_matrix(table, [f"vote.{n}" for n in names])
    voters = voter_names(table)
    cast = vote_matrix(table, [f"voter.{n}" for n in voters]
                       if any(c.startswith("voter.") for c in table.columns)
                       else [f"vote.{n}" for n in voters])
    silent = [n for k, n in enumerate(voters) if np.isnan(cast[:, k]).all()]
    bins = bin_counts(table)
    overall = bins["overall"]
    same = lambda i, j: np.where(np.isnan(votes[:, i]) | np.isnan(votes[:, j]), np.nan,  # noqa: E731
                                 votes[:, i] == votes[:, j])
    agreement_matrix = {a: {b: _share(same(i, j)) for j, b in enumerate(names)}
                        for i, a in enumerate(names)}
    summary: dict[str, Any] = {
        "n_pairs": len(table),
        "members": names,
        "voters": voters,
        "bins": bins,
        "low_or_no_agreement_fraction": round(overall["none"]["fraction"]
                                              + overall["low"]["fraction"], 4),
        "member_agreement_with_labels": {n: _share(votes[:, i]) for i, n in enumerate(names)},
        "committee_agreement_with_labels": round(float((table["p_chosen"] > 0.5).mean()), 4),
        "member_agreement_matrix": agreement_matrix,
        "fleiss_kappa": round(fleiss_kappa(cast), 4),
    }
    if silent:  # no vote at all: kappa is of the others
        summary["fleiss_kappa_left_out"] = silent
    aucs = flip_detection_auc(table)
    if aucs is not None:
        summary["flip_detection_auc"] = {k: round(v, 4) for k, v in aucs.items()}
        summary["n_flipped"] = int(table["flipped"].sum())
    return summary


def _kappa_words(kappa: float) -> str:
    """Landis and Koch's word for a kappa of 0 or more."""
    for bound, words in ((0.2, "slight"), (0.4, "fair"), (0.6, "moderate"),
                         (0.8, "substantial")):
        if kappa < bound:
            return words
    return "almost perfect"


def committee_verdict(table: pd.DataFrame, members: dict[str, Any], combined: dict[str, Any],
                      kappa: float) -> dict[str, str]:
    """Can this committee be trusted on these labels? ``level`` (``no``, ``weak`` or
    ``yes``) and a few sentences drawn from the diagnostics: which voters agree with
    the labels beyond chance (sign test |z| >= :data:`CHANCE_Z`), members that negate
    each other or are turned round, and how far the voters agree with each other
    (Fleiss' kappa). ``no``: no voter agrees with the labels beyond chance; ``weak``:
    some voter does not, the voters agree only slightly (kappa < 0.2), or even the
    best voter agrees with fewer than :data:`WEAK_AGREEMENT` of the labels (close to a
    coin: strong reward models agree with some 70% of HH's labels)."""
    voters = combined.get("voters") or {n: {"members": {n: 1}, "sign_test_z": d["sign_test_z"]}
                                        for n, d in members.items()}
    z = {v: d.get("sign_test_z") for v, d in voters.items()}
    beyond = [v for v, zv in z.items() if zv is not None and zv >= CHANCE_Z]
    within = [v for v in voters if v not in beyond]
    share = {v: _share(vote_matrix(table, [f"voter.{v}"])[:, 0]) if f"voter.{v}" in table
             else None for v in voters}
    shown = [s for v in beyond if (s := share[v]) is not None]
    parts: list[str] = []
    if not beyond:
        level = "no"
        parts.append(f"No voter of the {len(voters)} agrees with the labels beyond chance "
                     f"(sign test z below {CHANCE_Z:g} for every one): the committee cannot tell "
                     "a right label from a wrong one here, so its bins sort noise.")
    else:
        best = max(shown, default=1.0)
        level = "weak" if within or not kappa >= 0.2 or best < WEAK_AGREEMENT else "yes"
        low, high = f"{min(shown, default=0):.0%}", f"{best:.0%}"
        span = "" if not shown else f" on {low} of pairs" if low == high else \
            f" on {low} to {high} of pairs"
        parts.append(f"{len(beyond)} of {len(voters)} voters agree with the labels beyond "
                     f"chance{span}" + (f"; {', '.join(within)} within chance" if within else "")
                     + ".")
        if best < WEAK_AGREEMENT:
            parts.append(f"Even the best agrees with fewer than {WEAK_AGREEMENT:.0%} of the "
                         "labels: close to a coin, it cannot single out the wrong ones.")
    if np.isfinite(kappa):
        parts.append(f"The voters agree with each other {_kappa_words(kappa)}ly beyond chance "
                     f"(Fleiss' kappa {kappa:.2f})." if kappa >= 0 else
                     f"The voters agree with each other less than chance would (Fleiss' "
                     f"kappa {kappa:.2f}).")
    names = list(members)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            r = members[a]["correlation"].get(b)
            if r is not None and r <= -COLLINEAR:
                turned = b if members[b].get("orientation", 1) < 0 else a
                parts.append(f"{a} and {b} negate each other (r <= -{COLLINEAR:g}): they count "
                             f"as one voter, {turned} turned round.")
    for v, d in voters.items():
        first = next(iter(d["members"]))
        if d["members"][first] < 0:
            parts.append(f"{v} disagrees with the labels beyond chance and is counted turned "
                         "round (a scorer declared the wrong way round, or labels mostly "
                         "reversed).")
    if combined.get("fitted_on") == "people":
        idle = [v for v, d in voters.items() if not d.get("counted", True)]
        parts.append(f"The weights are fitted on people's verdicts on {combined['n_decided']} "
                     "pairs" + (f"; {', '.join(idle)} get no weight from them and are not "
                                "counted in the votes and bins" if idle else "") + ".")
    parts.append({"no": "Do not clean on these bins: use a stronger committee (the gold preset "
                        "on a GPU), or have people review a sample first.",
                  "weak": "Treat the bins as a queue for people to check, not as verdicts: "
                          "review a sample before cleaning.",
                  "yes": "The bins can guide cleaning; review a sample of the none and low "
                         "bins before acting on them."}[level])
    head = {"no": "No", "weak": "Only weakly", "yes": "Yes, with care"}[level]
    return {"level": level, "text": f"{head}. " + " ".join(parts)}
