"""What the experiments share: a run's folder and its resumable stages, a settings
check, the data split."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from preflab.settings import write_config


class SplitSettings(Protocol):
    """What an experiment's settings hold for :func:`start_run`'s split."""

    eval_fraction: float
    train_sample: int | None
    seed: int


C = TypeVar("C", bound=SplitSettings)


@dataclass
class ExperimentRun(Generic[C]):
    """One experiment's folder, settings, split and stage timings."""

    out: Path
    config: C
    train_file: Path = Path()
    eval_file: Path = Path()
    timings: dict[str, float] = field(default_factory=dict)

    def stage(self, path: Path, name: str, fn: Any) -> dict[str, Any]:
        return run_stage(path, name, fn, self.timings)


R = TypeVar("R", bound=ExperimentRun[Any])


def start_run(run: R, data: str | Path) -> R:
    """Check a rerun of `run` is the same experiment, write its config.toml, split the
    pairs (its train and eval files)."""
    out, config = run.out, run.config
    out.mkdir(parents=True, exist_ok=True)
    check_settings(out / "settings.json", {"data": str(data), **asdict(config)})
    write_config(config, out)
    run.train_file, run.eval_file = prepare_split(data, out / "split", config.eval_fraction,
                                                  config.train_sample, config.seed)
    return run


def run_stage(path: Path, name: str, fn: Any, timings: dict[str, float]) -> dict[str, Any]:
    """Run `fn` unless `path` (its summary) exists; returns the summary."""
    if path.exists():
        return json.loads(path.read_text())
    started = time.perf_counter()
    result = fn()
    timings[name] = round(time.perf_counter() - started, 1)
    return result


def check_settings(path: Path, settings: dict[str, Any]) -> None:
    """A rerun resumes only the same experiment: its stages' outputs are reused."""
    settings = json.loads(json.dumps(settings))
    if path.exists():
        before = json.loads(path.read_text())
        changed = sorted(k for k in set(before) | set(settings)
                         if before.get(k) != settings.get(k))
        if changed:
            raise ValueError(f"{path.parent} holds an experiment with other settings "
                             f"({', '.join(changed)}); use another --out, or delete it")
    else:
        path.write_text(json.dumps(settings, indent=1))


def prepare_split(data: str | Path, folder: Path, eval_fraction: float,
                  train_limit: int | None, seed: int) -> tuple[Path, Path]:
    """Seeded train / eval split of `data` into `folder` (kept on a rerun); the train
    part optionally a seeded sample of `train_limit` pairs."""
    from preflab.data.read import iter_pairs, load_pairs
    from preflab.data.sample import sample_pairs
    from preflab.data.split import split_pairs
    from preflab.data.write import write_pairs

    if not (folder / "eval.jsonl").exists():
        train, test = split_pairs(list(iter_pairs(load_pairs(data))), eval_fraction, seed)
        train = sample_pairs(train, train_limit, seed) if train_limit else train
        folder.mkdir(parents=True, exist_ok=True)
        write_pairs(train, folder / "train.jsonl")
        write_pairs(test, folder / "eval.jsonl.partial")  # eval.jsonl marks the split done
        (folder / "eval.jsonl.partial").replace(folder / "eval.jsonl")
    return folder / "train.jsonl", folder / "eval.jsonl"


def merge_timings(path: Path, timings: dict[str, float]) -> dict[str, float]:
    """The seconds of every stage that ever ran in this experiment: those of this run
    added to the ones saved in `path` by earlier (interrupted) runs, saved back."""
    saved = json.loads(path.read_text()) if path.exists() else {}
    saved.update(timings)
    path.write_text(json.dumps(saved, indent=1))
    return saved
