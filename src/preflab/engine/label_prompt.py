"""Labeling prompts: preamble + k-shot exemplars + the sample + the ending.

The layout of Lee et al. (2023) (docs/methods.md, "AI feedback labels"). Each task
(``helpful``, ``harmless``, ``summary``) is a TOML template in ``engine/templates``: the
``base`` and ``detailed`` preambles, the ``sample`` layout, the ``ending``
("Preferred Response="), the chain-of-thought ending, and ``invert`` (the
harmless labeler names the MORE harmful reply, so its answer is turned around).
A user file overrides any of these keys.

The preamble and the exemplars are the same for every pair: :attr:`LabelPrompt.head`
comes first in every prompt, so a backend can compute it once.
"""

from __future__ import annotations

import random
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from preflab.data.messages import Messages, as_messages
from preflab.models.chat import plain_context

TASKS = ("helpful", "harmless", "summary")
PREAMBLES = ("base", "detailed")
KEYS = {"invert", "base", "detailed", "sample", "ending", "cot_ending", "direct",
        "direct_sample", "direct_ending"}
PLACEHOLDERS = ("{conversation}", "{response_1}", "{response_2}")
EXAMPLE_OPEN = ">>>>>>>> Example >>>>>>>>"
EXAMPLES_CLOSE = ">>>>>>>> Follow the instructions and the example(s) above >>>>>>>>"


def read_template(name: str, override: str | Path | None, keys: set[str]) -> dict[str, Any]:
    """The built-in template `name` (``engine/templates/NAME.toml``), with the keys of
    `override` (a TOML file, each key one of `keys`) on top."""
    text = resources.files("preflab.engine").joinpath("templates", f"{name}.toml").read_text()
    template = tomllib.loads(text)
    if override is not None:
        path = Path(override)
        try:
            extra = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: template file not found") from None
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: not valid TOML: {e}") from None
        unknown = set(extra) - keys
        if unknown:
            raise ValueError(f"{path}: unknown template keys {sorted(unknown)}; "
                             f"known: {sorted(keys)}")
        template.update(extra)
    return template


def load_template(task: str, override: str | Path | None = None) -> dict[str, Any]:
    """The task's built-in template, with the keys of `override` (a TOML file) on top."""
    if task not in TASKS:
        raise ValueError(f"unknown labeling task {task!r}; tasks: {', '.join(TASKS)}")
    template = read_template(task, override, KEYS)
    for key in PLACEHOLDERS:
        if key not in template["sample"]:
            raise ValueError(f"template {override or task}: 'sample' lacks the placeholder "
                             f"{key}")
    if not isinstance(template["invert"], bool):
        raise ValueError(f"template {override or task}: 'invert' must be true or false")
    return template


@dataclass(frozen=True)
class Exemplar:
    """A solved example: the sample and which response (1 or 2) the answer names.

    `context` is the conversation as messages or as text already rendered.
    """

    context: Messages | str
    response_1: str
    response_2: str
    answer: int
    rationale: str | None = None
    id: str = ""

    def __post_init__(self) -> None:
        if self.answer not in (1, 2):
            raise ValueError(f"exemplar {self.id or '?'}: answer must be 1 or 2, "
                             f"got {self.answer!r}")


@dataclass(frozen=True)
class LabelPrompt:
    """A task's prompt with a chosen preamble and exemplars."""

    task: str = "helpful"
    preamble: str = "base"
    exemplars: tuple[Exemplar, ...] = ()
    template: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def build(cls, task: str = "helpful", preamble: str = "base",
              exemplars: Sequence[Exemplar] = (),
              template_file: str | Path | None = None) -> LabelPrompt:
        template = load_template(task, template_file)
        if preamble not in PREAMBLES:
            raise ValueError(f"unknown preamble {preamble!r}; preambles: {', '.join(PREAMBLES)}")
        return cls(task, preamble, tuple(exemplars), template)

    @property
    def ending(self) -> str:
        return self.template["ending"]

    @property
    def cot_ending(self) -> str:
        return self.template["cot_ending"]

    @property
    def invert(self) -> bool:
        """True when the labeler names the worse reply (harmless: the more harmful)."""
        return bool(self.template["invert"])

    def sample(self, context: Messages | str, response_1: str, response_2: str) -> str:
        """The sample; `context` as messages or already rendered (e.g. truncated)."""
        conversation = context if isinstance(context, str) else plain_context(context)
        return self.template["sample"].format(conversation=conversation,
                                              response_1=response_1, response_2=response_2)

    @property
    def head(self) -> str:
        """Preamble and exemplars: the part every prompt shares."""
        parts = [self.template[self.preamble]]
        for ex in self.exemplars:
            solved = self.sample(ex.context, ex.response_1, ex.response_2)
            if ex.rationale:
                solved += f"\n\n{self.cot_ending} {ex.rationale}"
            parts.append(f"{EXAMPLE_OPEN}\n{solved}\n\n{self.ending}{ex.answer}")
        if self.exemplars:
            parts.append(EXAMPLES_CLOSE)
        return "\n\n".join(parts)

    def user_text(self, context: Messages | str, response_1: str, response_2: str) -> str:
        """What the labeler reads: head, then the sample."""
        return f"{self.head}\n\n{self.sample(context, response_1, response_2)}"

    def answer_prefix(self, rationale: str | None = None) -> str:
        """What follows the labeler's turn header before the label is read: the ending,
        after the chain-of-thought ending and its rationale when there is one."""
        if rationale is None:
            return self.ending
        return f"{self.cot_ending} {rationale.strip()}\n{self.ending}"

    def describe(self) -> dict[str, Any]:
        return {"task": self.task, "preamble": self.preamble, "shots": len(self.exemplars),
                "exemplar_ids": [e.id for e in self.exemplars], "ending": self.ending,
                "invert": self.invert}


def exemplars_from_pairs(pairs: Sequence[Any], k: int, seed: int = 0,
                         exclude: set[str] | None = None, invert: bool = False
                         ) -> list[Exemplar]:
    """`k` seeded exemplars drawn from preference pairs (not in `exclude`), each shown in
    a random order with its human label as the answer (the worse reply for an
    inverted task)."""
    if k <= 0:
        return []
    pool = [p for p in pairs if p.id not in (exclude or set())]
    return [pair_exemplar(pool[i], first, invert)
            for i, first in draw_exemplars(len(pool), k, seed)]


def draw_exemplars(n: int, k: int, seed: int = 0) -> list[tuple[int, bool]]:
    """The seeded draw of :func:`exemplars_from_pairs` from a pool of `n` pairs: per
    exemplar, its position in the pool and whether its chosen reply is shown first
    (so a caller holding only the pool's size draws the same pairs)."""
    if n < k:
        raise ValueError(f"{k} exemplars asked for, but only {n} pairs are left "
                         "to draw them from")
    rng = random.Random(seed)
    picks = rng.sample(range(n), k)  # the same draw as sampling the pool itself
    return [(i, rng.random() < 0.5) for i in picks]


def pair_exemplar(pair: Any, chosen_first: bool, invert: bool = False) -> Exemplar:
    """A preference pair as an exemplar, its chosen reply shown first or second, the
    answer its human label (the worse reply for an inverted task)."""
    a, b = (pair.chosen, pair.rejected) if chosen_first else (pair.rejected, pair.chosen)
    better = 1 if chosen_first else 2
    return Exemplar(as_messages(pair.prompt), a, b, 3 - better if invert else better,
                    id=pair.id)
