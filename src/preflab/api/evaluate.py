"""``pl.evaluate_reward_model``, ``pl.evaluate_policy``, ``pl.win_rate``: evaluations as
objects in memory (:class:`RewardModelEval`, :class:`PolicyEval`, :class:`WinRate`),
written to disk only where the caller asks.

Each result holds its figures (`summary`), its per-pair or per-reply table (`table`,
a DataFrame) and the settings it ran with (`config`); its files (the HTML report, the
generations, the split-halves models) stay in `folder`: the caller's `out`, or a
temporary folder that lives as long as the result. ``.save(folder)`` copies them
with the command line's no-overwrite rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import pandas as pd

from preflab.api.folders import FolderResult, output_folder, read_json, read_jsonl
from preflab.api.train import Trained
from preflab.data.outputs import marker_path
from preflab.data.source import PairsInput, describe, pairs_source
from preflab.eval.config import EvalPolicyConfig, RewardEvalConfig, WinrateConfig
from preflab.settings import CONFIG_FILE, load_config, resolve_config, write_config


@dataclass
class Evaluation(FolderResult):
    """What every evaluation result holds: `folder`, where its files are, `summary`,
    `config` and `table` (None where the stage has no table)."""

    CONFIG: ClassVar[type] = object  # the settings dataclass
    TABLE: ClassVar[str] = ""  # the Parquet file of `table`

    summary: dict[str, Any]
    config: Any
    table: pd.DataFrame | None

    def file(self, name: str) -> Path:
        """One of the files the stage wrote (``report.html``, ``generations.jsonl``)."""
        path = self.folder / name
        if not path.exists():
            raise FileNotFoundError(f"{self.COMMAND} wrote no {name} (in {self.folder})")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> Self:
        """The evaluation written in `folder` by ``preflab COMMAND`` or :meth:`save`."""
        folder = Path(folder)
        if not marker_path(folder, cls.COMMAND).is_file():
            raise FileNotFoundError(f"{folder}: no {marker_path(folder, cls.COMMAND).name}; "
                                    f"not a folder preflab {cls.COMMAND} wrote")
        return cls(folder, read_json(folder / "summary.json"),
                   load_config(cls.CONFIG, folder / CONFIG_FILE), cls.read_table(folder))

    @classmethod
    def read_table(cls, folder: Path) -> pd.DataFrame | None:
        """The stage's table, as written in `folder`."""
        return pd.read_parquet(folder / cls.TABLE)


@dataclass(repr=False)
class RewardModelEval(Evaluation):
    """A reward model evaluated on pairs: `summary` (``accuracy``, ``ece``,
    ``log_loss``, the reliability bins, per-subset figures), `table` (per pair: id,
    subset, r_chosen, r_rejected, margin; with split halves each model's, suffixed
    ``_a`` and ``_b``) and ``report.html`` in `folder`."""

    COMMAND, CONFIG, TABLE = "eval-rm", RewardEvalConfig, "scores.parquet"

    @property
    def report_html(self) -> str:
        return self.file("report.html").read_text(encoding="utf-8")

    def __repr__(self) -> str:
        s = self.summary
        if "pm_a" in s:
            return (f"RewardModelEval(split halves on {s['n_held_out']} held-out pairs: "
                    f"accuracy {s['pm_a']['accuracy']:.3f} / {s['pm_b']['accuracy']:.3f}, "
                    f"agreement {s['agreement']:.3f})")
        return (f"RewardModelEval({s['model']!r} on {s['n_pairs']} pairs: accuracy "
                f"{s['accuracy']:.3f}, ECE {s['ece']:.3f})")


def evaluate_reward_model(model: str | Path | Any, data: PairsInput,
                          config: RewardEvalConfig | str | Path | None = None, *,
                          out: str | Path | None = None, overwrite: bool = False,
                          **overrides: Any) -> RewardModelEval:
    """Score every pair of `data` (a path, a ``datasets.Dataset``, a DataFrame or a
    list of pairs) with the reward model `model` (a folder, a hub id or a
    :class:`~preflab.api.train.Trained` reward model): accuracy,
    calibration, score distributions. With ``split_halves=True`` `model` is the base
    that two models train from, on halves of `data`, and they are compared on the
    pairs held out.

    `config` is a :class:`RewardEvalConfig` or a settings file (an earlier run's
    ``OUT/config.toml``); `overrides` are its fields (``bins=20``). With `out` the
    files are written there (a folder this command did not write needs `overwrite`),
    else in a temporary folder the result keeps.
    """
    from preflab.eval.reward_model import eval_rm
    from preflab.experiment.split_halves import split_halves

    config = resolve_config(RewardEvalConfig, config, **overrides)
    model = model_folder(model)
    with output_folder(RewardModelEval.COMMAND, out, overwrite,
                       {"model": str(model), "data": describe(data)}) as (folder, scratch), \
            pairs_source(data) as source:
        if config.split_halves:
            summary = split_halves(source, folder, config.trainer(), config.test_fraction,
                                   config.seed, config.bins)
        else:
            summary = eval_rm(model, source, folder, config)
        write_config(config, folder)
    return RewardModelEval(folder, named(summary, folder, data=data), config,
                           RewardModelEval.read_table(folder), scratch=scratch)


def model_folder(model: str | Path | Any) -> str | Path:
    """What an evaluation reads a model from: a folder or hub id, or a
    :class:`~preflab.api.train.Trained` model's folder."""
    return model.folder if isinstance(model, Trained) else model


def named(summary: dict[str, Any], folder: Path, **given: Any) -> dict[str, Any]:
    """The summary naming each input in `given` as the caller gave it (a Dataset, not
    the temporary file it was read from), in ``summary.json`` too."""
    shown = {key: describe(value) for key, value in given.items()
             if key in summary and value is not None and not isinstance(value, str | Path)}
    if not shown:
        return summary
    summary = {**summary, **shown}
    (folder / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


@dataclass(repr=False)
class PolicyEval(Evaluation):
    """A policy evaluated: `summary` (per temperature the mean reward and harmless
    rate with their intervals; perplexity on held-out chosen replies), `table` (per
    reply: prompt_id, temperature, reply, reward and/or p_harmless; None when only
    the perplexity was measured), the generations files in `folder`."""

    COMMAND, CONFIG = "eval-policy", EvalPolicyConfig

    @classmethod
    def read_table(cls, folder: Path) -> pd.DataFrame | None:
        """One row per (prompt, temperature): the reply with its reward and/or
        P(harmless)."""
        rewards, harmless = (read_jsonl(folder / name) if (folder / name).exists() else None
                             for name in ("generations.jsonl", "harmless.jsonl"))
        if rewards is None or harmless is None:
            return rewards if rewards is not None else harmless
        return rewards.merge(harmless.drop(columns="reply"), on=["prompt_id", "temperature"])

    def generations(self, temperature: float) -> pd.DataFrame:
        """The replies at `temperature` (prompt_id, prompt, reply), as ``winrate`` reads
        a policy from ``generations_t{T}.jsonl``."""
        return read_jsonl(self.file(f"generations_t{float(temperature)}.jsonl"))

    def __repr__(self) -> str:
        parts = [f"T={t}: reward {r['mean']:.4f}" for t, r in self.summary.get(
            "reward", {}).items()]
        parts += [f"T={t}: harmless {h['harmless_rate']:.3f}" for t, h in self.summary.get(
            "harmless", {}).items()]
        if "perplexity" in self.summary:
            parts.append(f"perplexity {self.summary['perplexity']:.3f}")
        return f"PolicyEval({self.summary['model']!r}: {', '.join(parts)})"


def evaluate_policy(model: str | Path | Any, prompts: PairsInput | None = None,
                    config: EvalPolicyConfig | str | Path | None = None, *,
                    heldout: PairsInput | None = None, out: str | Path | None = None,
                    overwrite: bool = False, **overrides: Any) -> PolicyEval:
    """Evaluate the policy `model`: with ``reward=`` (a reward model) the mean reward of
    its replies to `prompts` at each of ``temperatures``, with ``harmless_judge=`` their
    harmless rate, and with `heldout` pairs the perplexity of their chosen replies.

    `prompts` and `heldout` are paths, ``datasets.Dataset``, DataFrames or lists of
    pairs; `config`, `overrides`, `out` and `overwrite` as
    :func:`evaluate_reward_model`.
    """
    from preflab.eval.policy import eval_policy

    config = resolve_config(EvalPolicyConfig, config, **overrides)
    model = model_folder(model)
    with output_folder(PolicyEval.COMMAND, out, overwrite, {"model": str(model)}) as (
            folder, scratch), \
            optional_source(prompts) as prompt_file, optional_source(heldout) as heldout_file:
        summary = eval_policy(str(model), prompt_file, out=folder, config=config,
                              heldout=heldout_file)
    return PolicyEval(folder, named(summary, folder, prompts=prompts, heldout=heldout), config,
                      PolicyEval.read_table(folder), scratch=scratch)


def optional_source(data: PairsInput | None) -> Any:
    """:func:`pairs_source` of `data`, or None when there is none."""
    from contextlib import nullcontext

    return nullcontext(None) if data is None else pairs_source(data)


@dataclass(repr=False)
class WinRate(Evaluation):
    """Policy A against policy B: `summary` (wins, ties, losses, ``win_rate`` with its
    interval, ``lc_win_rate``), `table` (per prompt: both replies and the judge's
    P(A better) in each order), both policies' generations in `folder`."""

    COMMAND, CONFIG, TABLE = "winrate", WinrateConfig, "judgements.parquet"

    @property
    def win_rate(self) -> float:
        return self.summary["win_rate"]

    def __repr__(self) -> str:
        s = self.summary
        return (f"WinRate({s['a']!r} vs {s['b']!r} on {s['n']} prompts: {s['wins']} wins, "
                f"{s['ties']} ties, {s['losses']} losses; win rate {s['win_rate']:.3f} "
                f"({s['ci95'][0]:.3f}-{s['ci95'][1]:.3f}))")


def win_rate(a: str | Path | Any, b: str | Path | Any, prompts: PairsInput,
             config: WinrateConfig | str | Path | None = None, *,
             out: str | Path | None = None, overwrite: bool = False,
             **overrides: Any) -> WinRate:
    """Win rate of policy `a` against policy `b` (models, or generations files of an
    earlier run) on `prompts`, judged by ``judge`` in both orders (orders that disagree
    are ties), with a bootstrap interval and AlpacaEval's length-controlled win rate.
    `config`, `overrides`, `out` and `overwrite` as :func:`evaluate_reward_model`.
    """
    from preflab.eval.winrate import winrate

    config = resolve_config(WinrateConfig, config, **overrides)
    a, b = model_folder(a), model_folder(b)
    with output_folder(WinRate.COMMAND, out, overwrite, {"a": str(a), "b": str(b)}) as (
            folder, scratch), pairs_source(prompts) as source:
        summary = winrate(str(a), str(b), source, out=folder, config=config)
    return WinRate(folder, named(summary, folder, prompts=prompts), config,
                   WinRate.read_table(folder), scratch=scratch)
