"""Win rate of policy A against policy B, judged in both orders.

For each prompt the judge compares A's and B's replies twice, A first and B first.
A pair of orders that agree is a win or a loss; orders that disagree are a tie
(position bias, not a preference). Win rate = (wins + ties / 2) / n with a
bootstrap 95% interval over prompts. The length-controlled win rate follows
AlpacaEval: a logistic GLM of the judge's preference on tanh(length difference /
its std) and an intercept, reported with the length term set to zero.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from preflab.data.prompts import Prompt, load_prompts
from preflab.engine import Engine
from preflab.engine.judge import judge_unit, p_first
from preflab.engine.label_prompt import LabelPrompt
from preflab.eval.config import WinrateConfig
from preflab.models.generate import Sampling
from preflab.models.runtime import Runtime
from preflab.settings import resolve_config, write_config

log = logging.getLogger(__name__)


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def length_controlled(p_a: np.ndarray, len_a: np.ndarray, len_b: np.ndarray) -> float:
    """AlpacaEval's length-controlled win rate: fit logit P(A) = theta + phi *
    tanh(d / std(d)), d = len_a - len_b, to the soft preferences; return sigmoid(theta)."""
    from scipy.optimize import minimize

    d = (len_a - len_b).astype(np.float64)
    scale = d.std() or 1.0
    x = np.tanh(d / scale)
    p = np.clip(p_a.astype(np.float64), 1e-6, 1 - 1e-6)

    def nll(w: np.ndarray) -> float:
        z = w[0] + w[1] * x
        return float(np.sum(np.logaddexp(0, -z) * p + np.logaddexp(0, z) * (1 - p))
                     + 1e-3 * np.sum(w ** 2))

    theta = minimize(nll, np.zeros(2), method="L-BFGS-B").x[0]
    return _sigmoid(theta)


def winrate_stats(p_a_first: np.ndarray, p_a_second: np.ndarray, len_a: np.ndarray,
                  len_b: np.ndarray, seed: int = 0, n_boot: int = 2000) -> dict[str, Any]:
    """Wins/ties/losses, win rate with a bootstrap 95% interval and the
    length-controlled win rate, from P(A better) with A shown first and second."""
    win_1, win_2 = p_a_first > 0.5, p_a_second > 0.5
    lose_1, lose_2 = p_a_first < 0.5, p_a_second < 0.5  # exactly 0.5: neither
    wins = int(np.sum(win_1 & win_2))
    losses = int(np.sum(lose_1 & lose_2))
    ties = len(win_1) - wins - losses
    score = np.where(win_1 & win_2, 1.0, np.where(lose_1 & lose_2, 0.0, 0.5))
    rng = np.random.default_rng(seed)
    boot = score[rng.integers(0, len(score), (n_boot, len(score)))].mean(1)
    lo, hi = np.quantile(boot, [0.025, 0.975])
    p_a = (p_a_first + p_a_second) / 2
    return {"n": len(score), "wins": wins, "ties": ties, "losses": losses,
            "win_rate": round(float(score.mean()), 4),
            "ci95": [round(float(lo), 4), round(float(hi), 4)],
            "lc_win_rate": round(length_controlled(p_a, len_a, len_b), 4),
            "mean_p_a": round(float(p_a.mean()), 4),
            "order_agreement": round(float(np.mean((win_1 & win_2) | (lose_1 & lose_2))), 4),
            "mean_len_a": round(float(np.mean(len_a)), 1),
            "mean_len_b": round(float(np.mean(len_b)), 1)}


def read_generations(path: str | Path) -> dict[str, str]:
    """prompt id -> reply from a generations file (``prompt_id`` or ``prompt``, ``reply``)."""
    from preflab.data.prompts import prompt_of

    out = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}, line {i}: not JSON ({e.msg})") from None
            if "reply" not in row or not isinstance(row["reply"], str):
                raise ValueError(f"{path}, line {i}: field 'reply' must be a string")
            if "prompt_id" not in row and "prompt" not in row:
                raise ValueError(f"{path}, line {i}: needs field 'prompt_id' or 'prompt'")
            key = row.get("prompt_id") or prompt_of(
                row["prompt"] if isinstance(row["prompt"], list)
                else [{"role": "user", "content": row["prompt"]}]).id
            if key in out:
                raise ValueError(f"{path}, line {i}: a second reply for prompt {key}")
            out[key] = row["reply"]
    return out


def policy_replies(policy: str, prompts: Sequence[Prompt], sampling: Sampling, seed: int,
                   out_file: Path, runtime: Runtime, batch_size: int = 8) -> list[str]:
    """Replies of `policy` (a model, generated here, or a generations .jsonl file),
    saved to `out_file`."""
    if policy.endswith(".jsonl") and Path(policy).is_file():
        given = read_generations(policy)
        missing = [p.id for p in prompts if p.id not in given]
        if missing:
            raise ValueError(f"{policy}: no reply for {len(missing)} of the prompts "
                             f"(first prompt id {missing[0]})")
        replies = [given[p.id] for p in prompts]
    else:
        from preflab.models.sampler import Policy

        gen = Policy(policy, runtime)
        replies = [r[0] for r in gen.generate([p.messages for p in prompts],
                                              [p.id for p in prompts], 1, sampling, seed,
                                              batch_size)]
        if gen.prompts_truncated:
            log.warning("%s: %d prompts longer than %d tokens kept their last tokens",
                        policy, len(gen.prompts_truncated), gen.max_prompt_tokens)
    write_generations(prompts, replies, out_file)
    return replies


def write_generations(prompts: Sequence[Prompt], replies: Sequence[str], path: str | Path
                      ) -> None:
    """A generations file (prompt_id, prompt, reply), as :func:`read_generations` reads."""
    with open(path, "w", encoding="utf-8") as f:
        for p, r in zip(prompts, replies, strict=True):
            f.write(json.dumps({"prompt_id": p.id, "prompt": [
                {"role": a, "content": c} for a, c in p.messages], "reply": r},
                ensure_ascii=False) + "\n")


def winrate(a: str, b: str, prompts: str | Path, judge: str | None = None,
            out: str | Path = "winrate", config: WinrateConfig | None = None,
            **settings: Any) -> dict[str, Any]:
    """Win rate of `a` against `b` (models or generations files) on `prompts`, judged
    by ``config.judge`` (a local model or an OpenAI-compatible URL) in both orders.
    `judge` and `settings` (fields of :class:`WinrateConfig`) override `config`.
    Writes ``OUT/config.toml``, the generations, ``judgements.parquet`` and
    ``summary.json``."""
    config = resolve_config(WinrateConfig, config, **settings,
                            **({"judge": judge} if judge else {}))
    started = time.perf_counter()
    items = load_prompts(prompts, config.limit)
    out = Path(out)
    write_config(config, out)
    runtime = Runtime(device=config.device, threads=config.threads)
    sampling = Sampling(config.max_new_tokens, config.temperature)
    reply_a = policy_replies(a, items, sampling, config.seed, out / "generations_a.jsonl",
                             runtime, config.batch_size)
    reply_b = policy_replies(b, items, sampling, config.seed, out / "generations_b.jsonl",
                             runtime, config.batch_size)
    p_a_first, p_a_second, length = judge_both_orders(items, reply_a, reply_b, config,
                                                      runtime)
    len_a = np.array([length(r) for r in reply_a])
    len_b = np.array([length(r) for r in reply_b])
    stats = winrate_stats(p_a_first, p_a_second, len_a, len_b, config.seed)
    summary = {"a": a, "b": b, "prompts": str(prompts), "judge": config.judge,
               "task": config.task, "preamble": config.preamble,
               "temperature": config.temperature, "max_new_tokens": config.max_new_tokens,
               "seed": config.seed, **stats,
               "seconds": round(time.perf_counter() - started, 1)}
    import pandas as pd

    pd.DataFrame({"prompt_id": [p.id for p in items], "reply_a": reply_a, "reply_b": reply_b,
                  "p_a_first": p_a_first, "p_a_second": p_a_second}).to_parquet(
        out / "judgements.parquet", index=False)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def judge_both_orders(items: Sequence[Prompt], reply_a: Sequence[str],
                      reply_b: Sequence[str], config: WinrateConfig, runtime: Runtime
                      ) -> tuple[np.ndarray, np.ndarray, Callable[[str], int]]:
    """P(A better) with A shown first and with A shown second, and the judge's length
    of a reply (its tokens, or words for a judge without a tokenizer)."""
    from preflab.engine.make_judge import make_judge

    judge = config.judge
    label_prompt = LabelPrompt.build(config.task, config.preamble)
    scorer = make_judge(judge, label_prompt, max_context_tokens=config.max_context_tokens,
                        runtime=runtime if not judge.startswith("http") else None)
    units = [judge_unit(p.messages, x, y) for p, x, y in zip(items, reply_a, reply_b,
                                                              strict=True)]
    units += [judge_unit(p.messages, y, x) for p, x, y in zip(items, reply_a, reply_b,
                                                               strict=True)]
    values = Engine().run(scorer, units, desc=f"judging with {judge}")
    failed = [i for i, v in enumerate(values) if not np.all(np.isfinite(v[:2]))]
    if failed:
        raise RuntimeError(f"the judge failed on {len(failed)} comparisons; see its log")
    p1 = p_first(np.stack([v[:2] for v in values]))
    if label_prompt.invert:  # the judge names the worse reply
        p1 = 1.0 - p1
    n = len(items)
    tok = getattr(scorer, "tokenizer", None)

    def length(text: str) -> int:
        return len(tok(text)["input_ids"]) if tok is not None else len(text.split())

    return p1[:n], 1.0 - p1[n:], length
