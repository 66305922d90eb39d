"""Reward over-optimisation: a train PM and a test PM, a policy optimised against the first.

Bai et al. (2022, section 4.3): split the preference data in half by prompt, train one
preference model on each half with the same settings, optimise a policy against the
"train PM" and score what it produces with both. While optimisation helps, both
scores rise together; where the test PM stops following the train PM the policy is
exploiting its reward model.

1. Split the pairs (seeded, by prompt): ``eval_fraction`` held out, the rest into two
   halves (no prompt on two sides); train PM on half A, test PM on half B
   (``train-rm``, the same settings). Both are also scored on the held-out pairs.
2. Best-of-N: ``max(n)`` replies per held-out prompt, drawn once (the first k of them
   are best-of-k's candidates, so the curve is nested); each N keeps the reply the
   train PM scores best. KL(best-of-N || policy) = log N - (N - 1) / N nats (the
   standard analytic bound; Stiennon et al. 2020).
3. With ``rl_steps``: the RL recipe (``preflab rl``) against the train PM on the
   training prompts; at every checkpoint one reply per held-out prompt (T = 1) is
   scored with both PMs, and the KL from the starting policy is estimated on those
   replies (sum of log pi - log pi_ref over the reply's tokens, averaged).

Scores are reported raw and standardised per PM (minus its mean, over its standard
deviation, on all best-of-N candidates: the policy's own distribution), so the two
PMs' arbitrary offsets and scales drop out; the gap is train minus test on that
scale. Intervals: 95% percentile bootstrap over prompts, the same resamples for
every point and both PMs (so the gap's interval is paired).

Every stage writes into its own folder under `out` and is skipped on a rerun.

Modules: :mod:`.run` (the experiment, its stages in order), :mod:`.pms` (the two PMs:
the split-halves study's steps, :mod:`preflab.experiment.split_halves`), :mod:`.bon`
(best-of-N samples and scores), :mod:`.rl_curve` (the RL points), :mod:`.stats` (the
KL bound, picks, the bootstrap, the curve's points), :mod:`.figure` (``curve.png``),
:mod:`.report` (``curve.csv``, ``report.md``).
"""
