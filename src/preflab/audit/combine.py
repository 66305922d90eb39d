"""The committee probability: how the members' margins become P(chosen better).

Pure functions over a [pairs, members] array of margins (chosen minus rejected;
NaN where a member failed on a pair). Every method first puts the members on one
footing (:func:`merge_collinear`): each margin column is scaled to unit spread, so
rescaling a member changes nothing, and members whose margins correlate above
``collinear`` in absolute value are merged into one sign-aligned mean, so copies
of a member, its negation, or two views of one signal count as one member, and each
merged member is oriented as it votes (:func:`committee_voters`: turned round where it
disagrees with the labels beyond chance on all pairs), so no method's probability
leans against the votes. Then:

- ``stacked`` (default): a Bradley-Terry (logistic, L2-regularised) combination of
  all merged members whose weights are fitted on the labels of the OTHER folds
  (cross-fitted, grouped), so no pair's own label decides its verdict, and are
  kept >= 0: a member counts for the committee in the direction it is oriented,
  never against its own opinion. Its orientation is the one it is declared in
  (margin = chosen minus rejected score) unless, on the fitting folds, it
  disagrees with the labels beyond chance (z < -3): a reversed scorer is then
  turned round, so negating a member changes nothing. Without the bound, noisy
  labels gave weak members negative weights that follow the noise: on 500 demo
  pairs with 40% injected flips the unbounded fit (``stacked-free``) detected flips
  with AUC 0.72-0.77 where the bounded one reached 0.76-0.92, and it was never
  better by more than 0.004 anywhere measured.
- ``stacked-free``: the same without the bound (weights of either sign).
- ``selected``: the same over members chosen by forward selection on the
  cross-fitted likelihood (the previous ``stacked``). Measured over three seeds it
  is unstable at high noise (flip AUC 0.51, 0.92 and 0.84 at 40% flips on 500
  demo pairs), which is why it is no longer the default.
- ``latent``: a two-class latent-truth model in the manner of Dawid and Skene
  (1979), with Gaussian margins: the true preference y = +1 (the label is right) or
  -1, each merged member's scaled margin x_k ~ N(b_k + y mu_k, sigma_k^2)
  independently given y (b_k: how far it leans one way whatever the pair), and
  P(y = +1) = pi. EM fits it from the margins alone; a member's weight
  2 mu_k / sigma_k^2 grows with how well its margins separate the two classes. It
  assumes members err independently, which cross-fitted members on noisy labels
  do not.
- ``factor``: the merged margins weighed by a one-factor model (loading / noise
  variance), turned into a probability by a one-parameter Bradley-Terry fit on the
  labels, cross-fitted.
- ``mean``: the average of the members' own probabilities (one per merged member),
  turned round where :func:`committee_voters` turns the member round.

The votes (:func:`committee_voters`) count the same merged members, one vote each,
oriented by the sign test on all pairs whatever the method (a fold's orientation
may differ; the votes never depend on a fold). With one merged member or under
``4 * folds`` pairs the model-based methods fall back to the mean of the oriented
merged margins (``mean-of-scaled-margins``).

Cross-fitting deals out groups of pairs (copies, pairs of one prompt or sharing a reply:
:func:`preflab.data.groups.pair_groups`) so that no pair's weights saw its copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from preflab.committee.crossfit import fit_bradley_terry, fold_ids

METHODS = ("stacked", "stacked-free", "selected", "latent", "factor", "mean")
DEFAULT = "stacked"
COLLINEAR = 0.95  # |r| above which two members count as one


def scale_margins(margins: np.ndarray) -> np.ndarray:
    """Each column divided by its spread (NaN stays NaN; a constant column stays 0)."""
    spread = np.nanstd(np.where(np.isnan(margins).all(axis=0), 0.0, margins), axis=0)
    return margins / np.where(spread > 0, spread, 1.0)


def correlations(margins: np.ndarray) -> np.ndarray:
    """Pearson correlation of every pair of members over the pairs both scored."""
    m = margins.shape[1]
    r = np.eye(m)
    for i in range(m):
        for j in range(i + 1, m):
            both = ~np.isnan(margins[:, i]) & ~np.isnan(margins[:, j])
            a, b = margins[both, i], margins[both, j]
            ok = both.sum() > 2 and a.std() > 0 and b.std() > 0
            r[i, j] = r[j, i] = float(np.corrcoef(a, b)[0, 1]) if ok else 0.0
    return r


def merge_collinear(margins: np.ndarray, threshold: float = COLLINEAR
                    ) -> tuple[np.ndarray, list[list[int]], np.ndarray]:
    """(merged scaled margins [pairs, groups], member indices per group, each member's
    sign within its group). A member joins the first group whose first member it
    correlates with at |r| >= threshold, sign-aligned."""
    x = scale_margins(margins)
    r = correlations(x)
    groups: list[list[int]] = []
    signs = np.ones(x.shape[1])
    for k in range(x.shape[1]):
        home = next((g for g in groups if abs(r[k, g[0]]) >= threshold), None)
        if home is None:
            groups.append([k])
        else:
            home.append(k)
            signs[k] = np.sign(r[k, home[0]]) or 1.0
    merged = np.stack([row_means(x[:, g] * signs[g]) for g in groups], axis=1)
    return scale_margins(merged), groups, signs


def latent_posterior(x: np.ndarray, iters: int = 500, tol: float = 1e-9
                     ) -> tuple[np.ndarray, dict[str, Any]]:
    """P(label right) per pair under the Gaussian two-class latent-truth model (EM).

    `x`: merged scaled margins, NaN = no opinion. Member k's margin is
    N(b_k + y mu_k, sigma_k^2): the offset b_k absorbs a member that leans one way
    whatever the pair (it says nothing about which pairs are wrong), so only the
    separation mu_k earns weight, 2 mu_k / sigma_k^2. EM starts from the mean scaled
    margin; of the two mirror-image solutions the one in which the members score the
    chosen reply higher in the "label right" class is kept.
    """
    seen = ~np.isnan(x)
    x0 = np.nan_to_num(x)
    q = _sigmoid(2 * np.nan_to_num(row_means(x)))
    pi, mu, b = 0.5, np.zeros(x.shape[1]), np.zeros(x.shape[1])
    sigma2 = np.ones(x.shape[1])
    for _ in range(iters):
        w1, w0 = seen * q[:, None], seen * (1 - q)[:, None]
        m1 = (w1 * x0).sum(axis=0) / np.maximum(w1.sum(axis=0), 1e-9)
        m0 = (w0 * x0).sum(axis=0) / np.maximum(w0.sum(axis=0), 1e-9)
        mu, b = (m1 - m0) / 2, (m1 + m0) / 2
        resid = w1 * (x0 - m1) ** 2 + w0 * (x0 - m0) ** 2
        sigma2 = np.maximum(resid.sum(axis=0) / np.maximum(seen.sum(axis=0), 1), 1e-3)
        pi = float(np.clip(q.mean(), 1e-4, 1 - 1e-4))
        logit = np.log(pi / (1 - pi)) + (seen * (x0 - b) * (2 * mu / sigma2)).sum(axis=1)
        q_new = _sigmoid(np.clip(logit, -50, 50))
        done = np.abs(q_new - q).max() < tol
        q = q_new
        if done:
            break
    if (mu * np.abs(mu) / sigma2).sum() < 0:  # the mirror solution, same likelihood:
        pi, mu, q = 1 - pi, -mu, 1 - q  # "label right" is the class members score higher
    from scipy.stats import norm

    return q, {"method": "latent", "labels_right": round(pi, 4),
               "group_weights": [float(w) for w in 2 * mu / sigma2],
               "group_accuracy": [float(a) for a in norm.cdf(mu / np.sqrt(sigma2))]}


def factor_weights(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Member weights from a one-factor model of their (scaled) margins.

    x_k = lambda_k f + e_k, Var(e_k) = psi_k; member k weighs lambda_k / psi_k. The
    labels are not used; the sign is set so that the committee agrees with most labels.
    """
    from sklearn.decomposition import FactorAnalysis

    fa = FactorAnalysis(n_components=1, random_state=seed).fit(x)
    w = fa.components_[0] / np.maximum(fa.noise_variance_, 1e-6)
    return -w if w @ x.mean(axis=0) < 0 else w


REVERSED_Z = -3.0  # a member disagreeing with the labels beyond this z is turned round


def sign_test_z(x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Per column, how far its signs agree with the labels (chosen better) beyond
    chance: z = (agree - disagree) / sqrt(agree + disagree), ties and NaN left out
    (0 for a column with no sign at all). With `weights` (one per row) each row counts
    its weight: z = sum w sign / sqrt(sum w^2)."""
    if weights is None:
        agree, disagree = (x > 0).sum(axis=0), (x < 0).sum(axis=0)
        return (agree - disagree) / np.sqrt(np.maximum(agree + disagree, 1))
    w = np.asarray(weights, dtype=float)[:, None]
    signed = (w * np.sign(np.nan_to_num(x))).sum(axis=0)
    return signed / np.sqrt(np.maximum((w ** 2 * (np.nan_to_num(x) != 0)).sum(axis=0),
                                       1e-12))


def orientation(x: np.ndarray, z_reversed: float = REVERSED_Z,
                weights: np.ndarray | None = None) -> np.ndarray:
    """+1 per column, or -1 where the column's sign disagrees with the labels beyond
    chance (:func:`sign_test_z` below `z_reversed`; rows counted by `weights`)."""
    return np.where(sign_test_z(x, weights) < z_reversed, -1.0, 1.0)


@dataclass
class Voters:
    """The committee as it votes: one voter per merged group of members
    (:func:`merge_collinear`), each turned round where its merged margin disagrees with
    the labels beyond chance (:func:`orientation` on all pairs)."""

    groups: list[list[int]]  # member indices per voter
    member_orientation: np.ndarray  # per member: +1 counted as declared, -1 turned round
    sign_test_z: np.ndarray  # per voter: its oriented merged margin against the labels
    votes: np.ndarray  # [pairs, voters]: 1 agrees with the label, 0 not (or a tie), NaN none
    margins: np.ndarray  # [pairs, voters]: merged scaled margins, oriented (NaN: no score)

    def names(self, members: list[str]) -> list[str]:
        """Each voter's name: its members joined by '+'."""
        return ["+".join(members[k] for k in g) for g in self.groups]


def committee_voters(margins: np.ndarray, collinear: float = COLLINEAR,
                     z_reversed: float = REVERSED_Z) -> Voters:
    """The voters of a [pairs, members] margin array: a merged group votes once, by the
    sign of its merged margin; a group whose merged margin disagrees with the labels
    beyond chance (sign test z < `z_reversed`, on all pairs) is turned round. One rule
    for every combination method, so the votes never depend on a fold."""
    x, groups, signs = merge_collinear(margins, collinear)
    group_sign = orientation(x, z_reversed)
    oriented = x * group_sign
    member = signs.copy()
    for g, s in zip(groups, group_sign, strict=True):
        member[g] *= s
    votes = np.where(np.isnan(oriented), np.nan, (oriented > 0).astype(float))
    return Voters(groups, member, sign_test_z(oriented), votes, oriented)


def fit_nonnegative_bradley_terry(diff: np.ndarray, C: float = 1.0,
                                  weights: np.ndarray | None = None) -> np.ndarray:
    """w >= 0 maximising sum_i weights_i log sigmoid(w . diff_i) - |w|^2 / 2C after each
    column is oriented (:func:`orientation`); returned with the orientation folded in."""
    from scipy.optimize import minimize

    sign = orientation(diff, weights=weights)
    x = diff * sign
    rows = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w
        grad = -(x * (rows * _sigmoid(-z))[:, None]).sum(axis=0) + w / C
        return float((rows * np.logaddexp(0, -z)).sum() + w @ w / (2 * C)), grad

    start = np.full(x.shape[1], 0.1)
    fit = minimize(objective, start, jac=True, method="L-BFGS-B",
                   bounds=[(0.0, None)] * x.shape[1])
    return fit.x * sign


def crossfit_logits(x: np.ndarray, folds: int, seed: int, groups: np.ndarray | None = None,
                    nonnegative: bool = False) -> np.ndarray:
    """Out-of-fold Bradley-Terry logits of a weighted sum of the columns of x."""
    assign = fold_ids(len(x), folds, seed, groups)
    z = np.zeros(len(x))
    for k in range(folds):
        if (assign == k).any():
            train = x[assign != k]
            w = (fit_nonnegative_bradley_terry(train) if nonnegative
                 else fit_bradley_terry(train, seed=seed))
            z[assign == k] = x[assign == k] @ w
    return z


def _loglik(z: np.ndarray) -> float:
    """Log-likelihood of the labels (chosen better) under logits z."""
    return float(-np.logaddexp(0, -z).sum())


def select_members(x: np.ndarray, folds: int = 5, seed: int = 0, min_gain: float = 1e-3,
                   groups: np.ndarray | None = None) -> tuple[list[int], np.ndarray]:
    """Forward selection of members by cross-fitted likelihood of the labels: add the
    member that improves it most while the gain exceeds `min_gain` per pair, among the
    members with which every weight (the first member's too) stays positive. Returns the
    chosen columns and their weights (all pairs); none chosen when no member gets a
    positive weight."""
    n, m = x.shape
    chosen: list[int] = []
    best = -np.inf
    while len(chosen) < m:
        positive = [k for k in range(m) if k not in chosen
                    and (fit_bradley_terry(x[:, [*chosen, k]], seed=seed) > 0).all()]
        if not positive:
            break
        trials = {k: _loglik(crossfit_logits(x[:, [*chosen, k]], folds, seed, groups))
                  for k in positive}
        k = max(trials, key=trials.__getitem__)
        if chosen and trials[k] - best <= min_gain * n:
            break
        chosen.append(k)
        best = trials[k]
    if not chosen:
        return chosen, np.zeros(0)
    return chosen, fit_bradley_terry(x[:, chosen], seed=seed)


def row_means(x: np.ndarray) -> np.ndarray:
    """Mean of each row over its non-NaN entries (NaN where there are none)."""
    seen = ~np.isnan(x)
    total = np.where(seen, x, 0.0).sum(axis=1)
    count = seen.sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _combine_merged(x: np.ndarray, method: str, folds: int, seed: int,
                    groups: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(probability, weight per voter, info) of a model-based method over the voters'
    oriented merged margins `x`: a weight counts a voter as it votes."""
    filled = np.nan_to_num(x)
    if method == "latent":
        p, info = latent_posterior(x)
        return p, np.array(info["group_weights"]), info
    if len(x) < 4 * folds or x.shape[1] == 1:
        w = np.ones(x.shape[1])
        return _sigmoid(filled.mean(axis=1)), w, {"method": "mean-of-scaled-margins"}
    if method == "factor":
        w = factor_weights(filled, seed)
        score = filled @ w
        z = crossfit_logits((score / (score.std() + 1e-12))[:, None], folds, seed, groups)
        return _sigmoid(z), w, {"method": "factor"}
    if method in ("stacked", "stacked-free"):
        bounded = method == "stacked"
        w = fit_nonnegative_bradley_terry(filled) if bounded else fit_bradley_terry(
            filled, seed=seed)
        z = crossfit_logits(filled, folds, seed, groups, nonnegative=bounded)
        return _sigmoid(z), w, {"method": method}
    chosen, fitted = select_members(filled, folds, seed, groups=groups)
    w = np.zeros(x.shape[1])
    w[chosen] = fitted
    z = crossfit_logits(filled[:, chosen], folds, seed, groups) if chosen else np.zeros(len(x))
    return _sigmoid(z), w, {"method": "selected", "selected_groups": chosen}


def member_weights(voters: Voters, group_w: np.ndarray, m: int, normalise: bool = True
                   ) -> list[float]:
    """Each of the `m` members' weight in the direction it is declared, from one weight
    per voter: a voter's weight shared among its members, turned round with them;
    normalised so |weights| sum to 1 unless `normalise` is False."""
    member_w = np.zeros(m)
    for g, w in zip(voters.groups, group_w, strict=True):
        member_w[g] = w * voters.member_orientation[g] / len(g)
    total = np.abs(member_w).sum()
    return [float(w) for w in (member_w / total if normalise and total > 0 else member_w)]


def committee_probability(margins: np.ndarray, method: str = DEFAULT, folds: int = 5,
                          seed: int = 0, member_p: np.ndarray | None = None,
                          groups: np.ndarray | None = None, collinear: float = COLLINEAR,
                          voters: Voters | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """The committee's P(chosen better) for each pair, and how it was formed: the
    merged member groups, each member's weight in the direction it is declared
    (normalised so |weights| sum to 1). Every method combines the voters
    (:func:`committee_voters`, computed here unless given as `voters`) as they vote:
    merged, and turned round where they disagree with the labels beyond chance."""
    if method not in METHODS:
        raise ValueError(f"combine must be one of {', '.join(METHODS)}, got {method!r}")
    m = margins.shape[1]
    if voters is None:
        voters = committee_voters(margins, collinear)
    merged = voters.groups
    if method == "mean":
        if member_p is None:
            raise ValueError("combine 'mean' needs the members' probabilities")
        aligned = np.where(voters.member_orientation > 0, member_p, 1 - member_p)
        per_group = np.stack([row_means(aligned[:, g]) for g in merged], axis=1)
        p = row_means(per_group)
        group_w, info = np.ones(len(merged)), {"method": "mean"}
    else:
        p, group_w, info = _combine_merged(voters.margins, method, folds, seed, groups)
    info["member_weights"] = member_weights(voters, group_w, m)
    info["merged"] = [list(map(int, g)) for g in merged if len(g) > 1]
    info["collinear_threshold"] = collinear
    return np.nan_to_num(p, nan=0.5), info
