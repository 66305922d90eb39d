"""Committees of reward models and judges, as TOML files.

    name = "cpu"
    [[member]]
    name = "crossfit-minilm"
    kind = "crossfit"
    model = "minilm-l6"
    folds = 5

Everything is checked before any model loads: unknown kinds and keys, missing
models, duplicate names.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

PRESETS_DIR = resources.files("preflab.committee.presets")  # the committee presets (TOML)
RUNTIME_KEYS = {"precision", "device", "threads"}
# How a big model loads on GPUs (passed to `from_pretrained`).
GPU_KEYS = {"attn_implementation", "device_map"}
# A model's conventions, from its card: the class to load (`module:Name` for a class the
# card defines), which output holds the reward, the pad token, a tokenizer of its own.
CONVENTION_KEYS = {"class", "reward_output", "pad_token", "tokenizer", "output_index"}
# Declared sizes, for `--plan` when the model's config is not at hand offline.
SIZE_KEYS = {"params", "layers", "hidden", "context"}
KINDS: dict[str, tuple[set[str], set[str]]] = {  # kind -> (required keys, optional keys)
    "seq-rm": ({"model"}, {"max_length", "trust_remote_code"} | CONVENTION_KEYS | GPU_KEYS
               | RUNTIME_KEYS),
    "causal-rm": ({"model"}, {"output_index", "max_length", "head_seed"} | GPU_KEYS
                  | RUNTIME_KEYS),
    "judge": ({"model"}, {"preamble", "max_length", "max_context_tokens"} | RUNTIME_KEYS),
    "embed-rm": ({"model"}, {"head", "max_length"} | RUNTIME_KEYS),
    "crossfit": ({"model"}, {"folds", "seed", "features", "C", "max_length"} | RUNTIME_KEYS),
    "python": (set(), {"function", "entry_point"}),
    "ifd": ({"model"}, {"max_context_tokens", "max_reply_tokens"} | RUNTIME_KEYS),
    "http-rm": ({"url"}, {"model", "tokenizer", "api", "output_index", "max_length",
                          "concurrency", "timeout", "retries", "backoff", "batch",
                          "trust_remote_code"}),
    "scores": ({"path"}, {"key"}),
}
# Every member may set `vote = false`: scored and written to the audit table as a
# signal for cleaning rules, but not counted in votes or the committee probability.
COMMON_KEYS = {"vote"} | SIZE_KEYS
# Tokens a member reads, by kind when its file does not say (members.py's defaults).
TOKEN_KEYS = {"max_length", "max_context_tokens", "max_reply_tokens", "folds"}
DEFAULT_MAX_LENGTH = {"seq-rm": 2048, "causal-rm": 2048, "http-rm": 2048, "judge": 2048,
                      "embed-rm": 256, "crossfit": 256, "ifd": 256}
HTTP_APIS = ("pooling", "classify")
SCORE_KEYS = ("id", "text")
VOTES_BY_DEFAULT = {kind: kind != "ifd" for kind in KINDS}
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
DEFAULT_BINS = (0.25, 0.75)  # low: 0 < v/M <= 0.25; high: 0.75 <= v/M < 1


class CommitteeError(ValueError):
    """A committee file that cannot be run."""


@dataclass(frozen=True)
class MemberSpec:
    name: str
    kind: str
    options: dict[str, Any]

    @property
    def votes(self) -> bool:
        return bool(self.options.get("vote", VOTES_BY_DEFAULT[self.kind]))

    @property
    def max_tokens(self) -> int | None:
        """The most tokens of one text (prompt or reply) this member reads; None: no limit."""
        if self.kind == "ifd":
            return max(self.options.get("max_context_tokens", 256),
                       self.options.get("max_reply_tokens", 256))
        return self.options.get("max_length", DEFAULT_MAX_LENGTH.get(self.kind))


@dataclass
class Committee:
    name: str
    members: list[MemberSpec]
    source: str
    bins: tuple[float, float] = DEFAULT_BINS
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def max_tokens(self) -> int | None:
        """The largest :attr:`MemberSpec.max_tokens` of the members (None: none has one):
        a text longer than this is truncated by every member."""
        limits = [m.max_tokens for m in self.members if m.max_tokens is not None]
        return max(limits) if limits else None


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.iterdir()
                  if p.name.endswith(".toml"))


def _model_exists(model: str) -> bool:
    from preflab.models.offline import OFFLINE_MODELS

    return (model in OFFLINE_MODELS or Path(model).expanduser().exists()
            or bool(_HUB_ID.match(model)))


def load_committee(name_or_path: str | Path) -> Committee:
    """A committee from a preset name (`gold`, `cpu`, `tiny`) or a TOML file, validated."""
    text_name = str(name_or_path)
    if text_name in preset_names():
        source = f"preset {text_name}"
        text = PRESETS_DIR.joinpath(f"{text_name}.toml").read_text()
    else:
        path = Path(name_or_path)
        if not path.exists():
            raise CommitteeError(f"committee {text_name!r}: no such file, and not a preset "
                                 f"({', '.join(preset_names())})")
        source, text = str(path), path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CommitteeError(f"{source}: not valid TOML: {e}") from None
    return parse_committee(data, source)


def parse_committee(data: dict[str, Any], source: str) -> Committee:
    """Validate a parsed committee; raise :class:`CommitteeError` naming the member and key."""
    members_raw = data.get("member")
    if not isinstance(members_raw, list) or not members_raw:
        raise CommitteeError(f"{source}: needs at least one [[member]] table")
    members: list[MemberSpec] = []
    seen: set[str] = set()
    for i, raw in enumerate(members_raw, 1):
        where = f"{source}, member {i}"
        if not isinstance(raw, dict):
            raise CommitteeError(f"{where}: expected a [[member]] table, got {raw!r}")
        name, kind = raw.get("name"), raw.get("kind")
        if not isinstance(name, str) or not name:
            raise CommitteeError(f"{where}: missing required key 'name'" if name is None else
                                 f"{where}: name {name!r} is not a non-empty string")
        where = f"{source}, member {i} ({name!r})"
        if name in seen:
            raise CommitteeError(f"{where}: duplicate member name")
        seen.add(name)
        if kind not in KINDS:
            what = "missing required key 'kind'" if kind is None else f"unknown kind {kind!r};"
            raise CommitteeError(f"{where}: {what} (one of {', '.join(KINDS)})")
        required, optional = KINDS[kind]
        options = {k: v for k, v in raw.items() if k not in ("name", "kind")}
        unknown = set(options) - required - optional - COMMON_KEYS
        if unknown:
            raise CommitteeError(f"{where}: unknown key(s) {sorted(unknown)} for kind {kind}; "
                                 f"allowed: {sorted(required | optional | COMMON_KEYS)}")
        for key in ("vote", "trust_remote_code"):
            if not isinstance(options.get(key, True), bool):
                raise CommitteeError(f"{where}: '{key}' must be true or false")
        for key in sorted(TOKEN_KEYS & set(options)):
            value = options[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise CommitteeError(f"{where}: '{key}' must be a positive whole number, "
                                     f"got {value!r}")
        for key in sorted(required - set(options)):
            raise CommitteeError(f"{where}: missing required key '{key}' for kind {kind}")
        _check_kind_options(where, kind, options)
        if kind != "http-rm" and "model" in options and not _model_exists(str(options["model"])):
            raise CommitteeError(f"{where}: model {options['model']!r} not found: not a preset, "
                                 "an existing folder or a hub id")
        if kind == "python" and ("function" in options) == ("entry_point" in options):
            raise CommitteeError(f"{where}: give exactly one of 'function' (module:name) or "
                                 "'entry_point'")
        if kind == "embed-rm":
            head = options.get("head", "cosine")
            if head != "cosine" and not Path(head).exists():
                raise CommitteeError(f"{where}: head {head!r} is neither 'cosine' nor a file")
        members.append(MemberSpec(name, kind, options))
    if not any(m.votes for m in members):
        raise CommitteeError(f"{source}: every member has vote = false; at least one must vote")
    bins = tuple(data.get("bins", DEFAULT_BINS))
    if len(bins) != 2 or not 0 < bins[0] < bins[1] < 1:
        raise CommitteeError(f"{source}: bins must be two thresholds 0 < low < high < 1")
    return Committee(name=data.get("name", Path(source).stem), members=members, source=source,
                     bins=(float(bins[0]), float(bins[1])),
                     description=data.get("description", ""))


def _check_kind_options(where: str, kind: str, options: dict[str, Any]) -> None:
    """The value checks of the newer keys: sizes, conventions, http-rm and scores."""
    for key in sorted(SIZE_KEYS & set(options)):
        value = options[key]
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise CommitteeError(f"{where}: '{key}' must be a positive number, got {value!r}")
    cls = options.get("class")
    if cls is not None and (not isinstance(cls, str) or cls.count(":") != 1):
        raise CommitteeError(f"{where}: 'class' must be 'module:Name', got {cls!r}")
    output = options.get("reward_output")
    if output is not None and (not isinstance(output, str) or not output):
        raise CommitteeError(f"{where}: 'reward_output' must name an output field "
                             f"(logits, score...), got {output!r}")
    index = options.get("output_index")
    if index is not None and (not isinstance(index, int) or isinstance(index, bool)
                              or index < 0):
        raise CommitteeError(f"{where}: 'output_index' must be a whole number >= 0, "
                             f"got {index!r}")
    if kind == "http-rm":
        url = str(options["url"])
        if not url.startswith(("http://", "https://")):
            raise CommitteeError(f"{where}: url {url!r} is not an http(s) URL")
        if options.get("api", "pooling") not in HTTP_APIS:
            raise CommitteeError(f"{where}: api must be one of {', '.join(HTTP_APIS)}, "
                                 f"got {options['api']!r}")
        for key in ("timeout", "backoff"):
            value = options.get(key, 1.0)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise CommitteeError(f"{where}: '{key}' must be a positive number of seconds, "
                                     f"got {value!r}")
        for key in ("concurrency", "batch", "retries"):
            value = options.get(key, 1)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0 or (
                    key != "retries" and value < 1):
                raise CommitteeError(f"{where}: '{key}' must be a whole number "
                                     f"{'>= 0' if key == 'retries' else '>= 1'}, got {value!r}")
    if kind == "scores":
        path = Path(str(options["path"])).expanduser()
        if not path.is_file():
            raise CommitteeError(f"{where}: scores file {str(path)!r} not found")
        if options.get("key", "id") not in SCORE_KEYS:
            raise CommitteeError(f"{where}: key must be one of {', '.join(SCORE_KEYS)}, "
                                 f"got {options['key']!r}")
