"""Committee members: turn a member spec into per-pair scores through the engine.

Every member yields, per pair, a margin r(x, y_chosen) - r(x, y_rejected), its
own probability that chosen is better, and (where the member has them) the
absolute rewards of both replies.

A member whose model reads a bounded number of tokens shortens a longer input to fit
by its scorer's stated rule (reward models: left truncation; judges: the first
instruction and the end of the conversation; embeddings and log-likelihoods: the
context's end, the reply's start) and never drops it: its info says how many pairs it
read shortened (``truncated``) and by which rule (``truncation``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from preflab.committee.spec import MemberSpec
from preflab.data.messages import Messages, as_messages
from preflab.data.pair import PreferencePair
from preflab.engine import Engine
from preflab.engine.kept import KeptScorers, free_memory
from preflab.engine.units import Unit, reply_unit
from preflab.models.runtime import Runtime


@dataclass
class MemberScores:
    name: str
    kind: str
    margin: np.ndarray
    p_chosen: np.ndarray
    r_chosen: np.ndarray
    r_rejected: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def _runtime(options: dict[str, Any]) -> Runtime:
    return Runtime(device=options.get("device", "auto"),
                   precision=options.get("precision", "fp32"), threads=options.get("threads"))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def _sides(pairs: list[PreferencePair]) -> tuple[list[Messages], list[str]]:
    """Every pair's (context, reply) items: all chosen ones, then all rejected ones."""
    contexts = ([as_messages(p.prompt) for p in pairs]
                + [as_messages(p.rejected_context) for p in pairs])
    return contexts, [p.chosen for p in pairs] + [p.rejected for p in pairs]


def shortened(engine: Engine, units: Sequence[Unit]) -> np.ndarray:
    """Which of `units` (those of the engine's last run) its scorer shortened to fit."""
    return np.array([u.key in engine.truncated for u in units], dtype=bool)


def truncation_info(scorer: Any, cut: np.ndarray, n: int) -> dict[str, Any]:
    """How many of `n` pairs a member read shortened: `cut` flags its inputs, in blocks
    of `n` (one block per side or order of the pairs); and by which rule."""
    pairs = int(cut.reshape(-1, n).any(axis=0).sum()) if n else 0
    rule = getattr(scorer, "truncation", None)  # None: it reads whole inputs (python)
    return {"truncated": pairs, **({"truncation": rule} if rule else {})}


def _scalar_rewards(scorer: Any, contexts: Sequence[Messages], replies: Sequence[str],
                    engine: Engine, desc: str) -> tuple[np.ndarray, np.ndarray]:
    """A scalar scorer's value of each (context, reply) through the engine, and which
    of them it shortened."""
    units = [reply_unit(c, r) for c, r in zip(contexts, replies, strict=True)]
    values = np.array([v[0] for v in engine.run(scorer, units, desc=desc)], dtype=np.float64)
    return values, shortened(engine, units)


def _pointwise(spec: MemberSpec, scorer: Any, pairs: list[PreferencePair],
               engine: Engine) -> MemberScores:
    r, cut = _scalar_rewards(scorer, *_sides(pairs), engine, spec.name)
    r_c, r_r = r[:len(pairs)], r[len(pairs):]
    margin = r_c - r_r
    return MemberScores(spec.name, spec.kind, margin, sigmoid(margin), r_c, r_r,
                        truncation_info(scorer, cut, len(pairs)))


def _reward_scorer(spec: MemberSpec) -> Any:
    """A ``seq-rm``/``causal-rm`` member's scorer: its keys that are
    :class:`~preflab.engine.reward.RewardModelOptions` fields (``class`` is
    `model_class`), its runtime and length."""
    from preflab.engine.reward import RewardModelOptions, RewardScorer

    o = spec.options
    fields = set(RewardModelOptions.__dataclass_fields__) - {"model_class"}
    options = RewardModelOptions(model_class=o.get("class"),
                                 **{k: v for k, v in o.items() if k in fields})
    return RewardScorer(o["model"], name=spec.name, output_index=o.get("output_index", 0),
                        max_length=o.get("max_length", 2048), runtime=_runtime(o),
                        options=options)


def device_max_tokens(free_bytes: int, layers: int, hidden: int, value_bytes: int,
                      floor: int) -> int:
    """Padded tokens per batch that fit in half of a device's free memory: a token holds
    its KV rows (2 x layers x hidden values) and about 16 x hidden values of
    activations in flight; never below `floor`."""
    per_token = (2 * layers + 16) * hidden * value_bytes
    return max(floor, int(0.5 * free_bytes / per_token))


@contextlib.contextmanager
def device_batches(engine: Engine, model: Any) -> Iterator[None]:
    """On a CUDA device, while a member runs, batches as large as the memory left after
    its weights allows (:func:`device_max_tokens`), when the engine keeps the default
    cap; elsewhere nothing changes."""
    import torch

    from preflab.engine import EngineOptions

    device = getattr(model, "device", None)
    if (device is None or device.type != "cuda"
            or engine.options.max_tokens != EngineOptions().max_tokens):
        yield
        return
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") \
        else model.config
    free, _ = torch.cuda.mem_get_info(device)
    cap = device_max_tokens(free, config.num_hidden_layers, config.hidden_size,
                            next(model.parameters()).element_size(),
                            engine.options.max_tokens)
    saved = engine.options
    engine.options = dataclasses.replace(saved, max_tokens=cap)
    try:
        yield
    finally:
        engine.options = saved


def score_reward_model(spec: MemberSpec, pairs: list[PreferencePair], engine: Engine,
                       kept: KeptScorers | None = None) -> MemberScores:
    scorer = member_scorer(spec, kept)
    with device_batches(engine, scorer.model):
        return _pointwise(spec, scorer, pairs, engine)


def _judge_scorer(spec: MemberSpec) -> Any:
    from preflab.engine.judge import BASE_PREAMBLE, JudgeScorer

    o = spec.options
    return JudgeScorer(o["model"], name=spec.name, preamble=o.get("preamble", BASE_PREAMBLE),
                       max_length=o.get("max_length", 2048),
                       max_context_tokens=o.get("max_context_tokens", 256),
                       runtime=_runtime(o), keep_task=True)


def score_judge(spec: MemberSpec, pairs: list[PreferencePair], engine: Engine,
                kept: KeptScorers | None = None) -> MemberScores:
    from preflab.engine.judge import judge_unit, p_first

    scorer = member_scorer(spec, kept)
    n = len(pairs)
    forward = [judge_unit(as_messages(p.prompt), p.chosen, p.rejected) for p in pairs]
    backward = [judge_unit(as_messages(p.prompt), p.rejected, p.chosen) for p in pairs]
    values = np.stack(engine.run(scorer, forward + backward, desc=spec.name))
    cut = shortened(engine, forward + backward)
    p1 = p_first(values)
    p_fwd, p_bwd = p1[:n], 1.0 - p1[n:]  # P(chosen better) with chosen shown first / second
    p = 0.5 * (p_fwd + p_bwd)
    consistent = float(np.mean((p_fwd > 0.5) == (p_bwd > 0.5)))
    first = float(np.mean(np.concatenate([p1[:n] > 0.5, p1[n:] > 0.5])))
    mass = float(np.exp(values).sum(axis=1).mean())
    eps = 1e-6
    margin = np.log(np.clip(p, eps, 1)) - np.log(np.clip(1 - p, eps, 1))
    nan = np.full(n, np.nan)
    return MemberScores(spec.name, spec.kind, margin, p, nan, nan.copy(), {
        "position_consistency": consistent, "first_position_rate": first,
        "label_token_mass": mass, **truncation_info(scorer, cut, n)})


def _new_embed_scorer(model: str, max_length: int, runtime: Runtime) -> Any:
    from preflab.engine.embed import EmbedScorer

    return EmbedScorer(model, max_length=max_length, runtime=runtime)


# One encoder per (model, settings) in a process: several members of a committee share it.
_embed_scorer = functools.lru_cache(maxsize=2)(_new_embed_scorer)


def embed_items(spec: MemberSpec, contexts: Sequence[Messages], replies: Sequence[str],
                engine: Engine) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised embeddings of each context (its end kept) and each reply."""
    ctx, rep, _ = embed_items_cut(spec, contexts, replies, engine)
    return ctx, rep


def embed_items_cut(spec: MemberSpec, contexts: Sequence[Messages], replies: Sequence[str],
                    engine: Engine, kept: KeptScorers | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`embed_items`, and which (context, reply) items were shortened to fit."""
    from preflab.engine.embed import embed_unit
    from preflab.models.chat import plain_context

    scorer = member_scorer(spec, kept)
    units = ([embed_unit(plain_context(c), keep="end") for c in contexts]
             + [embed_unit(r) for r in replies])
    e = np.stack(engine.run(scorer, units, desc=f"{spec.name} (embed)")).astype(np.float64)
    cut = shortened(engine, units).reshape(2, -1).any(axis=0)
    return e[:len(contexts)], e[len(contexts):], cut


def embeddings(spec: MemberSpec, pairs: list[PreferencePair], engine: Engine
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """L2-normalised embeddings: chosen context, chosen reply, rejected context, rejected reply."""
    return pair_embeddings(spec, pairs, engine)[:4]


def pair_embeddings(spec: MemberSpec, pairs: list[PreferencePair], engine: Engine,
                    kept: KeptScorers | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """:func:`embeddings`, and what the member's info says of truncation."""
    ctx, rep, cut = embed_items_cut(spec, *_sides(pairs), engine, kept)
    n = len(pairs)
    return (ctx[:n], rep[:n], ctx[n:], rep[n:],
            truncation_info(member_scorer(spec, kept), cut, n))


def pair_features(context: np.ndarray, reply: np.ndarray, kind: str) -> np.ndarray:
    """Features of (context, reply) for a linear reward: reply, interaction or both."""
    cos = np.sum(context * reply, axis=1, keepdims=True)
    if kind == "reply":
        return reply
    if kind == "interaction":
        return np.hstack([context * reply, cos])
    if kind == "full":
        return np.hstack([reply, context * reply, cos])
    raise ValueError(f"features must be reply, interaction or full, got {kind!r}")


def embed_rewards(spec: MemberSpec, context: np.ndarray, reply: np.ndarray) -> np.ndarray:
    """An embed-rm member's reward of each (context, reply) embedding row."""
    head = spec.options.get("head", "cosine")
    if head == "cosine":  # zero-shot: how well the reply fits its context
        return np.sum(context * reply, axis=1)
    data = np.load(head)
    return pair_features(context, reply, str(data["features"])) @ data["w"]


def score_embed_rm(spec: MemberSpec, pairs: list[PreferencePair], engine: Engine,
                   kept: KeptScorers | None = None) -> MemberScores:
    ctx_c, rep_c, ctx_r, rep_r, cut = pair_embeddings(spec, pairs, engine, kept)
    r_c, r_r = embed_rewards(spec, ctx_c, rep_c), embed_rewards(spec, ctx_r, rep_r)
    margin = r_c - r_r
    scale = float(np.std(margin)) or 1.0  # cosine margins are small: a unit-free probability
    return MemberScores(spec.name, spec.kind, margin, sigmoid(margin / scale), r_c, r_r, cut)


def score_crossfit(spec: MemberSpec, pairs: list[PreferencePair], engine: Engine,
                   kept: KeptScorers | None = None) -> MemberScores:
    from preflab.committee.crossfit import crossfit_linear_rewards
    from preflab.data.groups import pair_groups

    ctx_c, rep_c, ctx_r, rep_r, cut = pair_embeddings(spec, pairs, engine, kept)
    o = spec.options
    kind = o.get("features", "full")
    r_c, r_r = crossfit_linear_rewards(pair_features(ctx_c, rep_c, kind),
                                       pair_features(ctx_r, rep_r, kind),
                                       folds=o.get("folds", 5), seed=o.get("seed", 0),
                                       C=o.get("C", 1.0), groups=pair_groups(pairs))
    margin = r_c - r_r
    return MemberScores(spec.name, spec.kind, margin, sigmoid(margin), r_c, r_r,
                        {"folds": o.get("folds", 5), "features": kind, **cut})


def score_ifd(spec: MemberSpec, pairs: list[PreferencePair], engine: Engine,
              kept: KeptScorers | None = None) -> MemberScores:
    """r(x, y) = -log IFD(x, y) = mean log p(y | x) - mean log p(y): how much the context
    helps a causal LM predict the reply (Li et al. 2024). A signal for ``ifd-gap``
    cleaning; by default it does not vote."""
    r, cut, rule = ifd_rewards(spec, *_sides(pairs), engine, kept)
    n = len(pairs)
    r_c, r_r = r[:n], r[n:]
    margin = r_c - r_r
    empty = {p.id: "empty reply: its IFD is undefined" for p, m in zip(pairs, margin, strict=True)
             if np.isnan(m)}
    return MemberScores(spec.name, spec.kind, margin, sigmoid(margin), r_c, r_r,
                        {**_missing_info(list(empty), empty), "truncated":
                         int(cut.reshape(2, -1).any(axis=0).sum()), "truncation": rule})


def _loglik_scorer(spec: MemberSpec) -> Any:
    from preflab.engine.loglik import LoglikScorer

    o = spec.options
    return LoglikScorer(o["model"], name=spec.name,
                        max_context_tokens=o.get("max_context_tokens", 256),
                        max_reply_tokens=o.get("max_reply_tokens", 256), runtime=_runtime(o))


def ifd_rewards(spec: MemberSpec, contexts: Sequence[Messages], replies: Sequence[str],
                engine: Engine, kept: KeptScorers | None = None
                ) -> tuple[np.ndarray, np.ndarray, str]:
    """-log IFD of each (context, reply) (NaN for an empty reply, which has no
    perplexity), which were shortened to fit (with or without their context), and
    the rule."""
    scorer = member_scorer(spec, kept)
    with_context = [reply_unit(c, r) for c, r in zip(contexts, replies, strict=True)]
    alone = [reply_unit((), r) for r in replies]
    # Nothing is shared between units here: one group each, so batches stay small
    # (all replies alone would otherwise form one group of the empty context).
    units = [Unit(u.key, u.key, u.payload) for u in with_context + alone]
    v = np.stack(engine.run(scorer, units, desc=spec.name)).astype(float)
    mean_logp = v[:, 0] / np.maximum(v[:, 1], 1)
    n = len(replies)
    r = np.where(v[n:, 1] > 0, mean_logp[:n] - mean_logp[n:], np.nan)
    cut = shortened(engine, units).reshape(2, -1).any(axis=0)  # with or without context
    return r, cut, scorer.truncation


def _python_scorer(spec: MemberSpec) -> Any:
    from preflab.engine.python import PythonScorer, load_callable

    fn = load_callable(spec.options.get("function"), spec.options.get("entry_point"))
    return PythonScorer(fn, spec.name)


def score_python(spec: MemberSpec, pairs: list[PreferencePair], engine: Engine,
                 kept: KeptScorers | None = None) -> MemberScores:
    return _pointwise(spec, member_scorer(spec, kept), pairs, engine)


def _missing_info(ids: Sequence[str], reasons: dict[str, str] | None = None) -> dict[str, Any]:
    """What a member reports of the pairs it could not score (they count as missing
    votes): how many, and the first ids (with the reason, when there is one)."""
    from preflab.committee.scores import SHOW_MISSING

    shown = list(ids)[:SHOW_MISSING]
    return {"missing": len(ids),
            "missing_ids": {i: reasons.get(i, "") for i in shown} if reasons else shown}


def score_scores(spec: MemberSpec, pairs: list[PreferencePair], engine: Engine,
                 kept: KeptScorers | None = None) -> MemberScores:
    """Rewards or margins read from a file (:mod:`preflab.committee.scores`); a pair the
    file lacks has a NaN margin, reported under ``missing``. Nothing loads (`kept` is
    not used)."""
    from preflab.committee.scores import file_scores

    margin, r_c, r_r, missing = file_scores(pairs, spec.options["path"],
                                            spec.options.get("key"))
    engine.last_stats = type(engine.last_stats)()  # nothing ran through the engine
    return MemberScores(spec.name, spec.kind, margin, sigmoid(margin), r_c, r_r,
                        _missing_info(missing))


def _http_reward_scorer(spec: MemberSpec) -> Any:
    """An ``http-rm`` member's scorer: its keys that are
    :class:`~preflab.engine.http_client.HttpOptions` fields, and the reward's own."""
    from preflab.engine.http_client import HttpOptions
    from preflab.engine.http_reward import HttpRewardScorer

    o = spec.options
    fields = set(HttpOptions.__dataclass_fields__) - {"name"}
    http = HttpOptions(**{k: v for k, v in o.items() if k in fields}, name=spec.name)
    return HttpRewardScorer(http, api=o.get("api", "pooling"),
                            output_index=o.get("output_index", 0),
                            trust_remote_code=o.get("trust_remote_code", False))


def score_http_rm(spec: MemberSpec, pairs: list[PreferencePair], engine: Engine,
                  kept: KeptScorers | None = None) -> MemberScores:
    """Rewards from a served reward model; a pair whose request failed has a NaN margin
    (never a score), reported with its reason under ``missing``."""
    scorer = member_scorer(spec, kept)
    contexts, replies = _sides(pairs)
    units = [reply_unit(c, r) for c, r in zip(contexts, replies, strict=True)]
    r = np.array([v[0] for v in engine.run(scorer, units, desc=spec.name)], dtype=np.float64)
    cut = shortened(engine, units)
    n = len(pairs)
    r_c, r_r = r[:n], r[n:]
    margin = r_c - r_r
    failed = [p.id for p, m in zip(pairs, margin, strict=True) if np.isnan(m)]
    reasons = {}
    for j, p in enumerate(pairs):
        why = scorer.failures.get(units[j].key) or scorer.failures.get(units[n + j].key)
        if why:
            reasons[p.id] = why
    return MemberScores(spec.name, spec.kind, margin, sigmoid(margin), r_c, r_r,
                        {**_missing_info(failed, reasons), **truncation_info(scorer, cut, n)})


SCORERS = {
    "seq-rm": score_reward_model,
    "causal-rm": score_reward_model,
    "judge": score_judge,
    "embed-rm": score_embed_rm,
    "crossfit": score_crossfit,
    "python": score_python,
    "ifd": score_ifd,
    "scores": score_scores,
    "http-rm": score_http_rm,
}


def _recipe(spec: MemberSpec) -> tuple[Hashable, Callable[[], Any]]:
    """How a member's scorer is built, and the key it is kept under: members that
    embed with one encoder (same model and settings) share it; any other scorer
    is its member's own."""
    o = spec.options
    if spec.kind in ("embed-rm", "crossfit"):
        args = (o["model"], o.get("max_length", 256), _runtime(o))
        return ("embed", *args), lambda: _new_embed_scorer(*args)
    builders = {"seq-rm": _reward_scorer, "causal-rm": _reward_scorer,
                "judge": _judge_scorer, "ifd": _loglik_scorer, "python": _python_scorer,
                "http-rm": _http_reward_scorer}
    if spec.kind not in builders:
        raise ValueError(f"member {spec.name!r} ({spec.kind}) runs no scorer")
    key = (spec.kind, spec.name, json.dumps(o, sort_keys=True, default=str))
    return key, lambda: builders[spec.kind](spec)


def member_scorer(spec: MemberSpec, kept: KeptScorers | None = None) -> Any:
    """A member's scorer: the one `kept` holds for it, else built (its model and
    tokenizer loaded) and kept there; without `kept`, built for this call (embedding
    members share one encoder per model in a process)."""
    key, build = _recipe(spec)
    if kept is not None:
        return kept.get(key, build)
    return _embed_scorer(*key[1:]) if key[0] == "embed" else build()


def member_loads(spec: MemberSpec, kept: KeptScorers) -> int:
    """How many times `kept` loaded the model `spec` scores with (members sharing an
    encoder share its loads); 0 for a member that loads none (``scores``)."""
    return 0 if spec.kind == "scores" else kept.loads[_recipe(spec)[0]]


def score_member(spec: MemberSpec, pairs: list[PreferencePair], engine: Engine,
                 kept: KeptScorers | None = None) -> MemberScores:
    """Scores of one member on all pairs. Without `kept` its model loads for this call
    and is freed after it; with `kept` (a run that scores the pairs a chunk at a time)
    it loads on the first call and is kept for the next, until another member's
    loads (members load one at a time, each freed before the next loads)."""
    try:
        return SCORERS[spec.kind](spec, pairs, engine, kept)
    finally:
        if kept is None:
            free_memory()


# Members that give each reply a reward of its own; judges compare two replies and
# crossfit members need the pairs' labels.
POINTWISE = ("seq-rm", "causal-rm", "embed-rm", "python", "ifd", "http-rm")


def reply_rewards(spec: MemberSpec, contexts: Sequence[Messages], replies: Sequence[str],
                  engine: Engine) -> np.ndarray:
    """A pointwise member's reward r(x, y) of each (context, reply)."""
    if spec.kind not in POINTWISE:
        raise ValueError(f"member {spec.name!r} ({spec.kind}) gives no reward to a reply alone")
    if spec.kind == "embed-rm":
        return embed_rewards(spec, *embed_items(spec, contexts, replies, engine))
    if spec.kind == "ifd":
        return ifd_rewards(spec, contexts, replies, engine)[0]
    return _scalar_rewards(member_scorer(spec), contexts, replies, engine, spec.name)[0]
