"""``pl.train_reward_model``, ``pl.sft``, ``pl.dpo``, ``pl.hir``, ``pl.rahf``, ``pl.rl``,
``pl.best_of_n`` and ``pl.steering_vector``: the training stages as functions.

One convention: ``stage(data, config=None, *, out=None, overwrite=False, **overrides)``,
`config` a settings dataclass (:mod:`preflab.train.config`) or a settings file (an
earlier run's ``OUT/config.toml``), `overrides` its fields (``epochs=1``, ``lora=True``).
`data` is a path, a ``datasets.Dataset``, a pandas DataFrame or a list of pairs.
With `out` the stage writes there (a new or empty folder, or one the same stage wrote
before, unless `overwrite`); without it a model is trained into a temporary folder
the result keeps (:meth:`Trained.save` copies it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from preflab.api.folders import FolderResult, output_folder, read_json, read_jsonl
from preflab.data.outputs import check_output_file, marker_path, read_files, save_files
from preflab.data.pair import PreferencePair
from preflab.data.source import PairsInput, describe, pairs_source
from preflab.settings import CONFIG_FILE, config_toml, load_config, resolve_config
from preflab.train.config import (
    BestOfNConfig,
    PolicyConfig,
    RAHFConfig,
    RewardConfig,
    RLConfig,
    SteerConfig,
)

SUMMARY = "preflab-train.json"


# the stage that trained a model folder (its marker .preflab-STAGE.json) -> its settings
STAGES: dict[str, type] = {"train-rm": RewardConfig, "sft": PolicyConfig, "dpo": PolicyConfig,
                           "hir": PolicyConfig, "rahf": RAHFConfig, "rl": RLConfig}


@dataclass
class Trained(FolderResult):
    """A trained model: its `folder` (a standard transformers folder, with
    ``config.toml`` and ``preflab-train.json``; also `model_dir`), the run's
    `summary` (loss curve, steps, truncation), the `config` it ran with and the
    `stage` that trained it. Without an `out` the folder is temporary: it lives as
    long as this object. :meth:`load_model` gives the transformers model."""

    summary: dict[str, Any]
    config: Any
    stage: str

    @property
    def command(self) -> str:
        return self.stage

    @property
    def model_dir(self) -> Path:
        """The model folder (`folder`): what ``from_pretrained`` and ``--policy`` take."""
        return self.folder

    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Copy the model folder to `folder` (new, empty or the same stage's earlier
        output, unless `overwrite`)."""
        if Path(folder).resolve() == self.folder.resolve():
            return Path(folder)
        folder = super().save(folder, overwrite)
        if (folder / SUMMARY).exists():  # the summary names the folder it is in
            summary = read_json(folder / SUMMARY)
            (folder / SUMMARY).write_text(json.dumps({**summary, "model": str(folder)},
                                                     indent=1, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Trained:
        """A model a training stage wrote (``preflab train-rm``, ``sft``, ``dpo``,
        ``hir``, ``rahf``, ``rl`` or :meth:`save`): its stage from the folder's marker,
        its settings from ``config.toml``, its summary from ``preflab-train.json``."""
        folder = Path(folder)
        if not (folder / SUMMARY).is_file():
            raise FileNotFoundError(f"{folder}: no {SUMMARY}; not a model a preflab "
                                    "training stage wrote")
        summary = read_json(folder / SUMMARY)
        stage = stage_of(folder, summary)
        settings = folder / CONFIG_FILE
        config = load_config(STAGES[stage], settings if settings.is_file() else folder / SUMMARY)
        return cls(folder, summary, config, stage)

    def load_model(self) -> Any:
        """The model: ``AutoModelForSequenceClassification`` for a reward model, else
        ``AutoModelForCausalLM``."""
        from preflab.models.offline import load_causal_lm, load_pretrained

        if self.stage == "train-rm":
            from transformers import AutoModelForSequenceClassification

            return load_pretrained(AutoModelForSequenceClassification, self.folder)
        return load_causal_lm(self.folder)

    def load_tokenizer(self) -> Any:
        """The model's tokenizer."""
        from preflab.models.offline import load_tokenizer

        return load_tokenizer(self.folder)

    def __repr__(self) -> str:
        s = {**(self.summary.get("stages") or [{}])[-1], **self.summary}  # the last stage's
        pairs = f"{s['n_pairs']} pairs, " if "n_pairs" in s else ""
        loss = s.get("train_loss")
        return (f"Trained({self.stage}: {pairs}{s.get('steps', '?')} steps"
                + (f", final train loss {loss}" if loss is not None else "")
                + (", in a temporary folder)" if self.scratch is not None
                   else f", in {self.folder})"))


def stage_of(folder: Path, summary: dict[str, Any]) -> str:
    """The stage that trained the model in `folder`: its marker, else what its
    summary says (a reward model's lists its ``stages``; HIR's says ``scit``)."""
    for stage in STAGES:
        if marker_path(folder, stage).is_file():
            return stage
    stage = {"scit": "hir"}.get(summary.get("stage"), summary.get("stage"))
    if stage in STAGES:
        return stage
    if "stages" in summary:
        return "train-rm"
    raise ValueError(f"{folder}: no stage named in {SUMMARY} and no .preflab-STAGE.json "
                     f"marker of {', '.join(STAGES)}")


def _threads(config: Any) -> None:
    """The torch CPU threads a config asks for (torch loads only when a run starts)."""
    from preflab.models.runtime import set_threads

    set_threads(getattr(config, "threads", None))


def _named(summary: dict[str, Any], data: PairsInput, folder: Path, key: str
           ) -> dict[str, Any]:
    """The summary (and the file beside the model) naming in-memory `data` as the
    object, not the temporary file it was read from."""
    if isinstance(data, str | Path) or key not in summary:
        return summary
    summary = {**summary, key: describe(data)}
    if (folder / SUMMARY).exists():
        (folder / SUMMARY).write_text(json.dumps(summary, indent=1, default=str))
    return summary


def _train(stage: str, cls: type, run: Callable[[str, Path, Any], dict[str, Any]],
           data: PairsInput, config: Any, out: str | Path | None, overwrite: bool,
           overrides: dict[str, Any], key: str = "data") -> Trained:
    """One training stage: settings, output folder, `run(source, folder, config)`."""
    config = resolve_config(cls, config, **overrides)
    _threads(config)
    with output_folder(stage, out, overwrite) as (folder, scratch), \
            pairs_source(data) as source:
        summary = run(source, folder, config)
    return Trained(folder, _named(summary, data, folder, key), config, stage,
                   scratch=scratch)


def train_reward_model(data: PairsInput, config: RewardConfig | str | Path | None = None, *,
                       out: str | Path | None = None, overwrite: bool = False,
                       resume: bool = True, **overrides: Any) -> Trained:
    """Train a scalar reward model on the pairs of `data` (:class:`RewardConfig`: base,
    labels, head, epochs, ...); an interrupted run into the same `out` resumes unless
    `resume` is False. ``.load_model()`` gives an
    ``AutoModelForSequenceClassification``."""
    from preflab.train.reward_model import train_rm

    return _train("train-rm", RewardConfig,
                  lambda src, folder, c: train_rm(src, folder, c, resume=resume),
                  data, config, out, overwrite, overrides)


def sft(data: PairsInput, config: PolicyConfig | str | Path | None = None, *,
        out: str | Path | None = None, overwrite: bool = False, resume: bool = True,
        **overrides: Any) -> Trained:
    """Supervised fine-tuning of ``config.policy`` on the chosen replies (``side=
    "rejected"``: the rejected ones) of `data`."""
    from preflab.train.sft import train_sft

    return _train("sft", PolicyConfig,
                  lambda src, folder, c: train_sft(src, folder, c, resume=resume),
                  data, config, out, overwrite, overrides)


def dpo(data: PairsInput, config: PolicyConfig | str | Path | None = None, *,
        out: str | Path | None = None, overwrite: bool = False, resume: bool = True,
        **overrides: Any) -> Trained:
    """DPO, or a noise-robust / soft-label variant (``loss=``), of ``config.policy``
    on the pairs of `data`; reference log-probs are cached on disk."""
    from preflab.train.dpo import train_dpo

    return _train("dpo", PolicyConfig,
                  lambda src, folder, c: train_dpo(src, folder, c, resume=resume),
                  data, config, out, overwrite, overrides)


def hir(data: PairsInput, config: PolicyConfig | str | Path | None = None, *,
        out: str | Path | None = None, overwrite: bool = False, resume: bool = True,
        **overrides: Any) -> Trained:
    """The HIR baseline: SFT on hindsight-relabelled instructions."""
    from preflab.train.scit import train_hir

    return _train("hir", PolicyConfig,
                  lambda src, folder, c: train_hir(src, folder, c, resume=resume),
                  data, config, out, overwrite, overrides)


def rahf(data: PairsInput, config: RAHFConfig | str | Path | None = None, *,
         out: str | Path | None = None, overwrite: bool = False, resume: bool = True,
         **overrides: Any) -> Trained:
    """Representation alignment (RAHF, ``variant="scit"`` or ``"dual"``): step-1
    models in ``step1-*`` inside the model folder, unless given."""
    from preflab.train.rahf import train_rahf

    return _train("rahf", RAHFConfig,
                  lambda src, folder, c: train_rahf(src, folder, c, resume=resume),
                  data, config, out, overwrite, overrides)


def rl(prompts: PairsInput, config: RLConfig | str | Path | None = None, *,
       out: str | Path | None = None, overwrite: bool = False, resume: bool = True,
       **overrides: Any) -> Trained:
    """RL from a reward model (or direct RLAIF, ``direct=True``) on `prompts` (pairs,
    or prompt-only data with a ``prompt`` column); the step log is
    ``summary["log"]`` and ``rl_log.jsonl`` in the model folder."""
    from preflab.train.rl import rl as run_rl

    return _train("rl", RLConfig,
                  lambda src, folder, c: run_rl(src, folder, c, resume=resume),
                  prompts, config, out, overwrite, overrides, key="prompts")


@dataclass
class BestOfN:
    """Best-of-N samples: `selected` (per prompt the best non-empty reply as chosen,
    the worst as rejected: an SFT set that is also DPO data), `samples` (a DataFrame,
    one row per prompt: its replies and their rewards), `summary` (mean reward of
    best-of-1, 2, 4, ... N) and the `config`."""

    selected: list[PreferencePair]
    samples: pd.DataFrame
    summary: dict[str, Any]
    config: BestOfNConfig
    files: dict[str, bytes] = field(default_factory=dict, repr=False)

    def save(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write the files ``preflab bon`` writes (new, empty or an earlier bon's
        folder, unless `overwrite`)."""
        return save_files(self.files, folder, "bon", overwrite)

    @classmethod
    def load(cls, folder: str | Path) -> BestOfN:
        """A best-of-N run written by ``preflab bon`` or :meth:`save`."""
        from preflab.data.read import iter_pairs, load_pairs

        folder = Path(folder)
        if not (folder / "summary.json").exists():
            raise FileNotFoundError(f"{folder}: no summary.json; run preflab bon first")
        files = read_files(folder, "bon")
        selected = (list(iter_pairs(load_pairs(str(folder / "selected.jsonl"))))
                    if files.get("selected.jsonl") else [])
        samples = read_jsonl(folder / "samples.jsonl")
        config = load_config(BestOfNConfig, folder / CONFIG_FILE)
        return cls(selected, samples, json.loads(files["summary.json"]), config, files)

    def __repr__(self) -> str:
        s = self.summary
        n, best = s.get("n", self.config.n), s.get(f"best_of_{s.get('n', self.config.n)}")
        return (f"BestOfN({s.get('n_prompts', len(self.samples))} prompts, n={n}"
                + (f", mean reward of the best {best:.4f}" if best is not None else "")
                + f", {len(self.selected)} pairs selected)")


def best_of_n(prompts: PairsInput, config: BestOfNConfig | str | Path | None = None, *,
              out: str | Path | None = None, overwrite: bool = False,
              **overrides: Any) -> BestOfN:
    """Sample ``n`` replies per prompt from ``policy`` and keep the one ``reward`` (a
    reward model or a committee) scores best."""
    from preflab.train.best_of_n import best_of_n as run_bon

    config = resolve_config(BestOfNConfig, config, **overrides)
    _threads(config)
    with output_folder("bon", out, overwrite) as (folder, scratch):
        with pairs_source(prompts) as source:
            summary = run_bon(source, folder, config)
        if not isinstance(prompts, str | Path):
            summary = {**summary, "prompts": describe(prompts)}
            (folder / "summary.json").write_text(json.dumps(summary, indent=1))
        result = BestOfN.load(folder)
    if scratch is not None:
        scratch.cleanup()
    return result


def steering_vector(data: PairsInput, config: SteerConfig | str | Path | None = None, *,
                    out: str | Path | None = None, overwrite: bool = False,
                    progress: bool = True, **overrides: Any) -> Any:
    """A steering vector (:class:`preflab.models.steering.SteeringVector`) from the
    pairs of `data`. With `out` (a ``.safetensors`` file) it is written there and its
    settings beside it (``NAME.config.toml``, what ``--config`` reruns); neither file
    is replaced unless `overwrite`."""
    from preflab.train.extract_steering import steering_from_config

    config = resolve_config(SteerConfig, config, **overrides)
    if out is not None:
        check_output_file(out, overwrite)
        check_output_file(steering_config_path(out), overwrite)
    _threads(config)
    with pairs_source(data) as source:
        vector = steering_from_config(source, config, progress)
    vector.meta["source"] = describe(data)
    if out is not None:
        vector.save(out)
        steering_config_path(out).write_text(config_toml(
            config, "SteerConfig: preflab steer extract --config this file reproduces "
                    "the vector"), encoding="utf-8")
    return vector


def steering_config_path(vector: str | Path) -> Path:
    """Where a steering vector's settings are written: ``NAME.config.toml`` beside it."""
    return Path(vector).with_suffix(".config.toml")


__all__ = ["BestOfN", "Trained", "best_of_n", "dpo", "hir", "rahf", "rl", "sft",
           "steering_vector", "train_reward_model"]
