"""Reward-model scores of (context, reply) items through the scoring engine (batched,
prefix-shared, cached): what best-of-N, RL and policy evaluation read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from preflab.data.messages import Messages
from preflab.engine import Engine
from preflab.engine.core import EngineOptions
from preflab.engine.units import Unit, reply_unit
from preflab.models.runtime import Runtime


class _ScorerReward:
    """r(context, reply) from one scorer through the scoring engine: a subclass says how
    a (context, reply) becomes the scorer's unit (`_unit`) and its values a reward
    (`_reward`)."""

    def __init__(self, scorer: Any, engine_options: EngineOptions | None,
                 progress: bool) -> None:
        self.scorer = scorer
        self.engine = Engine(engine_options or EngineOptions(progress=progress))

    def _unit(self, context: Messages, reply: str) -> Unit:
        raise NotImplementedError

    def _reward(self, values: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, contexts: Sequence[Messages], replies: Sequence[str],
                 desc: str | None = None) -> np.ndarray:
        units = [self._unit(c, r) for c, r in zip(contexts, replies, strict=True)]
        if not units:
            return np.zeros(0)
        return self._reward(self.engine.run(self.scorer, units, desc=desc or self.scorer.name))


class RewardFunction(_ScorerReward):
    """r(context, reply) from a sequence-classification reward model (a preset, a
    `preflab train-rm` folder or a hub id)."""

    def __init__(self, model: str | Path, max_length: int | None = None,
                 engine_options: EngineOptions | None = None, device: str = "auto",
                 threads: int | None = None, progress: bool = True) -> None:
        from preflab.engine.reward import RewardScorer
        from preflab.models.reward_folder import check_model, trained_max_length

        check_model(model)
        self.name = str(model)
        super().__init__(RewardScorer(str(model), name=f"rm:{Path(str(model)).name}",
                                      max_length=max_length or trained_max_length(model),
                                      runtime=Runtime(device=device, threads=threads)),
                         engine_options, progress)

    def _unit(self, context: Messages, reply: str) -> Unit:
        return reply_unit(context, reply)

    def _reward(self, values: list[np.ndarray]) -> np.ndarray:
        return np.array([v[0] for v in values], dtype=np.float64)


class DirectJudgeReward(_ScorerReward):
    """Direct RLAIF: a judge rates each reply 1-10; the reward is sum_i i P(i) rescaled
    to [-1, 1] (Lee et al. 2023)."""

    def __init__(self, judge: str, task: str = "helpful",
                 engine_options: EngineOptions | None = None, device: str = "auto",
                 threads: int | None = None, progress: bool = True) -> None:
        from preflab.engine.direct import DirectScorer

        self.name = f"direct:{judge}"
        super().__init__(DirectScorer(judge, task, runtime=Runtime(device=device,
                                                                   threads=threads)),
                         engine_options, progress)

    def _unit(self, context: Messages, reply: str) -> Unit:
        from preflab.engine.direct import direct_unit

        return direct_unit(context, reply)

    def _reward(self, values: list[np.ndarray]) -> np.ndarray:
        from preflab.engine.direct import expected_score, rescale

        return rescale(expected_score(np.stack(values)))


class CommitteeReward:
    """r(context, reply) from a committee (a preset name or a TOML file): each voting
    member's reward, standardised over the replies scored in one call (members' scales
    differ), averaged. Only members that reward a reply alone can rank samples: a judge
    compares two replies and a crossfit member needs labels, so a committee with one
    voting is refused (set ``vote = false`` on it to keep the rest). Models load when
    first used; ``member_rewards`` holds the last call's raw rewards per member."""

    def __init__(self, committee: str | Path, progress: bool = True) -> None:
        from preflab.committee.members import POINTWISE
        from preflab.committee.spec import CommitteeError, load_committee

        c = load_committee(committee)
        self.name = f"committee:{c.name}"
        self.members = [m for m in c.members if m.votes]
        for m in self.members:
            if m.kind not in POINTWISE:
                raise CommitteeError(
                    f"{c.source}: member {m.name!r} is a {m.kind}, which gives no reward to "
                    f"one reply alone; ranking samples needs members of kinds "
                    f"{', '.join(POINTWISE)} (or set vote = false on {m.name!r})")
        if not self.members:
            raise CommitteeError(f"{c.source}: no voting member to rank replies")
        self.engine = Engine(EngineOptions(progress=progress))
        self.member_rewards: dict[str, np.ndarray] = {}

    def __call__(self, contexts: Sequence[Messages], replies: Sequence[str],
                 desc: str | None = None) -> np.ndarray:
        from preflab.committee.members import reply_rewards

        if not replies:
            return np.zeros(0)
        self.member_rewards = {m.name: reply_rewards(m, contexts, replies, self.engine)
                               for m in self.members}
        return np.mean([_standardised(r) for r in self.member_rewards.values()], axis=0)


def _standardised(r: np.ndarray) -> np.ndarray:
    """z-scores of one member's rewards; a reply it gives no reward (NaN: an empty
    reply has no IFD) ranks one standard deviation below the lowest it scored."""
    seen = ~np.isnan(r)
    if not seen.any():
        return np.zeros(len(r))
    z = (r - r[seen].mean()) / (r[seen].std() or 1.0)
    return np.where(seen, z, z[seen].min() - 1.0)


def is_committee(reward: str | Path) -> bool:
    """A committee preset name or a .toml committee file (anything else is a model)."""
    from preflab.committee.spec import preset_names

    return str(reward) in preset_names() or str(reward).endswith(".toml")
