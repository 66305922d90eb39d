"""Source tagging: a best guess at why a flagged pair is unreliable.

Yeh et al. (2024) re-annotated low-agreement HH pairs and found six sources of
unreliability (docs/methods.md, "Sources of unreliability"). This module assigns each
flagged pair the source its audit signals point to, with the signal written out, in
this order:

1. ``mis-label``: the committee confidently and (near-)unanimously reverses the
   label (P(chosen better) <= ``flip_p`` and at most ``flip_agreement`` of the
   voters agree with it). ``flip_p="auto"`` (the default) calibrates the
   threshold to the committee (see :meth:`SourceRules.flip_threshold`).
5. ``both-harmful`` / 6. ``both-bad``: both replies score low on absolute
   reward (each at or below the ``bad_quantile`` percentile of all replies,
   averaged over the members that give absolute rewards). Which of the two is a
   guess from the subset name: a subset about harm (``harm``, ``red-team``) gives
   ``both-harmful``, any other ``both-bad`` (both incorrect or irrelevant).
4. ``different-thresholds``: both replies score high (each at or above the
   ``good_quantile`` percentile): the label rests on where "good enough" lies.
3. ``different-criteria``: members confidently disagree with each other (one's
   scaled margin >= ``split_sigma``, another's <= -``split_sigma``): they judge
   by different criteria (e.g. helpfulness against harmlessness).
2. ``subjective``: the rest: the committee is unsure without a clearer pattern
   (high subjectivity or missing context).

A pair is flagged when its agreement is at or below ``flag_agreement`` or the
committee leans against its label (P < 0.5); the tags say which (``against``).
Pure functions over the audit view.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from preflab.audit.view import AuditView

SOURCES = ("mis-label", "subjective", "different-criteria", "different-thresholds",
           "both-harmful", "both-bad")
FLIP_P_FLOOR = 0.2  # "auto" is never stricter than this
HARM_WORDS = ("harm", "red-team", "red_team", "redteam", "safety", "toxic")


@dataclass(frozen=True)
class SourceRules:
    """Thresholds of source tagging (and of SAC, which acts on the tags).

    The defaults and why:
      flag_agreement 0.5: flagged = the low and no-agreement bins and the lower half
        of "mixed" (fewer than half agree), plus any pair the committee leans against.
      flip_p "auto": a confident reversal is one at P <= 0.2 (the committee gives the
        label 1 chance in 5 or less), or, when the committee is less sure of the
        labels it agrees with, one as confident as its typical agreement:
        P <= 1 - mean(P | P >= 0.5), capped at 0.5. A fixed threshold fails on noisy
        data: members trained on labels with a fraction e flipped cannot be surer
        than 1 - e out of fold, so at 25% noise P <= 0.2 (with flip_agreement)
        caught 4 of 125 flips on the demo data; "auto" (0.37 there) caught 36 at
        90% precision. A number in [0, 0.5] fixes the threshold.
      flip_agreement 0.25: near-unanimous: with 4-8 members at most a quarter (one or
        two) may side with the label.
      bad_quantile 0.2 / good_quantile 0.6: a reply in the bottom fifth of all replies
        is bad, one above the 60th percentile is good; both replies of a pair must be.
      split_sigma 1.0: a member "confidently" prefers one reply when its margin is at
        least one of its own standard deviations.
    """

    flag_agreement: float = 0.5
    flip_p: float | str = "auto"
    flip_agreement: float = 0.25
    bad_quantile: float = 0.2
    good_quantile: float = 0.6
    split_sigma: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.flip_p, str):
            if self.flip_p != "auto":
                raise ValueError(f"flip_p must be a number in [0, 0.5] or 'auto', "
                                 f"got {self.flip_p!r}")
        elif not 0 <= self.flip_p <= 0.5:
            raise ValueError(f"flip_p must be in [0, 0.5], got {self.flip_p}")
        for name in ("flag_agreement", "flip_agreement", "bad_quantile", "good_quantile"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    def flip_threshold(self, view: AuditView) -> float:
        """The P(chosen) at or below which a reversal is confident."""
        if self.flip_p != "auto":
            return float(self.flip_p)
        p = view.p
        agree = p[p >= 0.5]
        return float(min(0.5, max(FLIP_P_FLOOR, 1 - agree.mean()))) if agree.size else 0.5

    def params(self, view: AuditView | None = None) -> dict[str, float | str]:
        """The rules; with a view, also the flip threshold they resolve to on it."""
        out: dict[str, float | str] = asdict(self)
        if view is not None:
            out["flip_p_used"] = round(self.flip_threshold(view), 4)
        return out


def flagged(view: AuditView, rules: SourceRules) -> np.ndarray:
    """Pairs with low agreement, or that the committee leans against."""
    return (view.agreement <= rules.flag_agreement) | (view.p < 0.5)


def _harm_subset(subsets: pd.Series) -> np.ndarray:
    low = subsets.fillna("").str.lower()
    return np.array([any(w in s for w in HARM_WORDS) for s in low])


def tag_sources(view: AuditView, rules: SourceRules | None = None) -> pd.DataFrame:
    """Per pair: ``flagged``, ``against`` (flagged and the committee leans against
    the label), ``source`` (one of :data:`SOURCES`, or "" when not flagged) and
    ``signal`` (the figures behind the guess)."""
    rules = rules or SourceRules()
    n = view.n
    p, votes = view.p, view.votes
    m = view.table["members"].to_numpy()  # the voters that voted on each pair
    pc, pr, used = view.reward_percentiles()
    z = view.scaled_margins()
    flag = flagged(view, rules)
    source = np.full(n, "", dtype=object)
    signal = np.full(n, "", dtype=object)
    flip_at = rules.flip_threshold(view)
    reversal = (p <= flip_at) & (view.agreement <= rules.flip_agreement)
    have_rewards = bool(used)
    bad = have_rewards & (pc <= rules.bad_quantile) & (pr <= rules.bad_quantile)
    good = have_rewards & (pc >= rules.good_quantile) & (pr >= rules.good_quantile)
    split = (z.max(axis=1) >= rules.split_sigma) & (z.min(axis=1) <= -rules.split_sigma)
    harm = _harm_subset(view.table["subset"])
    names = view.members
    for i in np.flatnonzero(flag):
        head = f"P(chosen)={p[i]:.2f}, {votes[i]}/{m[i]} agree"
        if reversal[i]:
            source[i] = "mis-label"
            strength = "confident reversal" if flip_at <= FLIP_P_FLOOR else "reversal"
            signal[i] = (f"{head}: {strength} (mis-label rule in force: P <= {flip_at:.2f} "
                         f"and at most {rules.flip_agreement:.0%} of voters agree)")
        elif bad[i]:
            source[i] = "both-harmful" if harm[i] else "both-bad"
            signal[i] = (f"{head}; reward percentiles chosen {pc[i]:.2f}, rejected {pr[i]:.2f}"
                         f" (both <= {rules.bad_quantile}; {', '.join(used)})"
                         + ("; harm subset" if harm[i] else ""))
        elif good[i]:
            source[i] = "different-thresholds"
            signal[i] = (f"{head}; reward percentiles chosen {pc[i]:.2f}, rejected {pr[i]:.2f}"
                         f" (both >= {rules.good_quantile})")
        elif split[i]:
            hi, lo = int(np.argmax(z[i])), int(np.argmin(z[i]))
            source[i] = "different-criteria"
            signal[i] = (f"{head}; {names[hi]} {z[i, hi]:+.1f} sd against "
                         f"{names[lo]} {z[i, lo]:+.1f} sd")
        else:
            source[i] = "subjective"
            signal[i] = f"{head}; no clear pattern (member margins within {rules.split_sigma} sd)"
    return pd.DataFrame({"id": view.table["id"].to_numpy(), "flagged": flag,
                         "against": flag & (p < 0.5), "source": source, "signal": signal})


def source_counts(tags: pd.DataFrame) -> dict[str, int]:
    """Flagged pairs per source."""
    counts = tags.loc[tags["flagged"], "source"].value_counts()
    return {s: int(counts.get(s, 0)) for s in SOURCES}
