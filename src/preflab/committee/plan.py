"""What an audit will cost, before any weights load (``preflab audit --plan``).

Per member: its parameters (from the model's config where it is here offline: a
preset, a folder, the Hugging Face cache; else the sizes the committee file
declares: ``params``, ``layers``, ``hidden``), the memory of its weights at its
precision plus an upper bound of one batch's KV cache, the tokens it will run after
deduplication and prefix sharing (counted with its tokenizer where it is here
offline, else estimated at :data:`CHARS_PER_TOKEN` characters per token and marked
as an estimate), and a time on a named device from the FLOPs of a forward pass
(2 x parameters x tokens) at a stated utilisation (MFU). Members load one at a
time, so the run needs the largest member's memory and the sum of the times.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from preflab.committee.spec import Committee, MemberSpec, load_committee
from preflab.data.messages import as_messages
from preflab.data.pair import PreferencePair

# Dense bf16 tensor-core peak (FLOP/s) and memory (GiB) per device, from the vendors'
# data sheets (H100/H200 SXM: 989 TFLOP/s dense; A100: 312; L40S: 362; the CPU row is
# a rough figure for a 2-core build machine).
DEVICES: dict[str, tuple[float, float]] = {
    "h200": (989e12, 141.0), "h100": (989e12, 80.0), "a100-80gb": (312e12, 80.0),
    "a100-40gb": (312e12, 40.0), "l40s": (362e12, 48.0), "cpu": (0.2e12, 24.0)}
DEFAULT_DEVICE = "h200"
DEFAULT_MFU = 0.4  # prefill-only scoring of short sequences; vLLM/HF reach 30-50%
CHARS_PER_TOKEN = 4.0  # English BPE text (Llama-3, Gemma-2 tokenizers: ~4-4.5 chars/token)
BYTES = {"fp32": 4, "bf16-autocast": 4, "bf16": 2, "fp16": 2}
MODEL_KINDS = ("seq-rm", "causal-rm", "judge", "embed-rm", "crossfit", "ifd", "http-rm")
JUDGE_PROMPT_TOKENS = 120  # the judge's instructions around the conversation and replies


@dataclass
class MemberPlan:
    name: str
    kind: str
    model: str | None
    params: float | None
    params_source: str  # "config (offline)", "declared", "none" (no weights), "unknown"
    precision: str
    weights_gib: float | None
    kv_gib: float | None
    units: int  # (context, reply) items (or prompts) to score, after deduplication
    tokens: int  # tokens run through the model, after prefix sharing
    tokens_estimated: bool  # True: from characters, not a tokenizer
    prefix_sharing: bool
    tflops: float | None
    seconds: float | None
    runs_on: str  # "this device", "the server", "nowhere (file)"
    notes: list[str] = field(default_factory=list)


def _offline_config(model: str, trust_remote_code: bool = False
                   ) -> tuple[Any | None, str | None]:
    """(the model's config, where it loads from) when it is here offline, else (None, None)."""
    from transformers import AutoConfig

    from preflab.models.offline import OFFLINE_MODELS, is_prepared, load_pretrained, prepare

    try:
        if model in OFFLINE_MODELS:
            if not is_prepared(model):
                return None, None
            path = str(prepare(model))
        else:
            path = model
        return load_pretrained(AutoConfig, path, local_files_only=True,
                               trust_remote_code=trust_remote_code), path
    except Exception:  # not in the cache, no network: the declared sizes
        return None, None


def _count_params(config: Any) -> float | None:
    """Parameters of a model built from `config` on the meta device (no memory)."""
    import torch
    from transformers import AutoModel

    try:
        with torch.device("meta"):
            model = AutoModel.from_config(config)
        return float(sum(p.numel() for p in model.parameters()))
    except Exception:
        return None


def _tokenizer(model: str, options: dict[str, Any]) -> Any | None:
    from preflab.models.offline import OFFLINE_MODELS, load_tokenizer

    name = options.get("tokenizer") or model
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a plan never downloads
    trust = bool(options.get("trust_remote_code"))
    try:
        if name not in OFFLINE_MODELS and not Path(name).exists():
            return load_tokenizer(name, local_files_only=True, trust_remote_code=trust)
        return load_tokenizer(name, trust_remote_code=trust)
    except Exception:
        return None


class _Counter:
    """Token counts of texts with a tokenizer, or estimated from characters."""

    def __init__(self, tokenizer: Any | None) -> None:
        self.tokenizer = tokenizer
        self.cache: dict[str, int] = {}

    @property
    def estimated(self) -> bool:
        return self.tokenizer is None

    def counts(self, texts: Sequence[str]) -> list[int]:
        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if todo:
            if self.tokenizer is None:
                values = [math.ceil(len(t) / CHARS_PER_TOKEN) for t in todo]
            else:
                values = [len(ids) for ids in self.tokenizer(
                    todo, add_special_tokens=False)["input_ids"]]
            self.cache.update(zip(todo, values, strict=True))
        return [self.cache[t] for t in texts]


def _contexts(pairs: Sequence[PreferencePair]) -> tuple[list[str], list[str], list[str]]:
    """Every (context, reply) side of the pairs: context keys, context texts, replies."""
    from preflab.models.chat import plain_context

    keys, texts, replies = [], [], []
    for p in pairs:
        for prompt, reply in ((p.prompt, p.chosen), (p.rejected_context, p.rejected)):
            messages = as_messages(prompt)
            keys.append(json.dumps(messages))
            texts.append(plain_context(messages))
            replies.append(reply)
    return keys, texts, replies


def _tokens(spec: MemberSpec, pairs: Sequence[PreferencePair], counter: _Counter,
            shared: bool) -> tuple[int, int]:
    """(units, tokens) a member runs: unique (context, reply) items, each at most
    `max_length` tokens; with prefix sharing a context runs once for all its replies."""
    keys, contexts, replies = _contexts(pairs)
    limit = spec.max_tokens or 10**9
    if spec.kind in ("embed-rm", "crossfit"):  # contexts and replies embedded alone
        texts = list(dict.fromkeys(contexts)) + list(dict.fromkeys(replies))
        return len(texts), sum(min(n, limit) for n in counter.counts(texts))
    if spec.kind == "judge":  # both orders, one prompt each
        triples = {(p.id, o) for p in pairs for o in (0, 1)}
        c = counter.counts([contexts[2 * i] for i in range(len(pairs))])
        a = counter.counts([p.chosen for p in pairs])
        b = counter.counts([p.rejected for p in pairs])
        per = [min(limit, JUDGE_PROMPT_TOKENS + x + y + z) for x, y, z in zip(c, a, b,
                                                                              strict=True)]
        return len(triples), 2 * sum(per)
    items = dict.fromkeys(zip(keys, replies, strict=True))
    ctx_tokens = dict(zip(keys, counter.counts(contexts), strict=True))
    reply_tokens = dict(zip(replies, counter.counts(replies), strict=True))
    if spec.kind == "ifd":  # with and without the context
        c_lim = spec.options.get("max_context_tokens", 256)
        r_lim = spec.options.get("max_reply_tokens", 256)
        total = sum(min(ctx_tokens[k], c_lim) + 2 * min(reply_tokens[r], r_lim)
                    for k, r in items)
        return 2 * len(items), total
    if shared:
        total = sum(min(ctx_tokens[k], limit) for k in dict.fromkeys(keys))
        total += sum(min(reply_tokens[r], limit) for _, r in items)
    else:
        total = sum(min(ctx_tokens[k] + reply_tokens[r], limit) for k, r in items)
    return len(items), total


def _shares_prefix(spec: MemberSpec, config: Any | None) -> bool:
    """Whether the member's model shares a prompt between its replies (a decoder read
    through its built-in head); a guess from the config when it is here."""
    if spec.kind not in ("seq-rm", "causal-rm"):
        return False
    o = spec.options
    if o.get("class") or o.get("reward_output", "logits") != "logits" \
            or o.get("trust_remote_code"):
        return False
    from preflab.models.runtime import ENCODER_TYPES

    return config is None or getattr(config, "model_type", "") not in ENCODER_TYPES


def plan_member(spec: MemberSpec, pairs: Sequence[PreferencePair], device: str = DEFAULT_DEVICE,
                mfu: float = DEFAULT_MFU, max_batch_tokens: int = 4096) -> MemberPlan:
    """The cost of one member on `pairs`; nothing is loaded but configs and tokenizers."""
    o = spec.options
    model = o.get("model")
    precision = o.get("precision", "fp32")
    if spec.kind == "scores" or (spec.kind == "python" and not model):
        return MemberPlan(spec.name, spec.kind, model, None, "none", "-", None, None,
                          len(pairs), 0, False, False, 0.0, 0.0,
                          "nowhere (file)" if spec.kind == "scores" else "this process")
    config, _ = (_offline_config(model, bool(o.get("trust_remote_code")))
                 if spec.kind != "http-rm" else (None, None))
    params = _count_params(config) if config is not None else None
    source = "config (offline)" if params is not None else "unknown"
    if params is None and "params" in o:
        params, source = float(o["params"]), "declared"
    layers = o.get("layers") or (getattr(config, "num_hidden_layers", None) if config else None)
    hidden = o.get("hidden") or (getattr(config, "hidden_size", None) if config else None)
    counter = _tokenizer_counter(o.get("tokenizer") or model, o)
    shared = _shares_prefix(spec, config)
    units, tokens = _tokens(spec, pairs, counter, shared)
    width = BYTES.get(precision, 4)
    notes = []
    weights = params * width / 2**30 if params else None
    kv = (2 * layers * hidden * max_batch_tokens * width / 2**30
          if layers and hidden else None)
    flops = 2 * params * tokens if params else None
    peak, memory = DEVICES[device]
    seconds = flops / (peak * mfu) if flops else None
    if counter.estimated:
        notes.append(f"tokens estimated at {CHARS_PER_TOKEN:g} characters per token "
                     "(no tokenizer offline)")
    if weights is not None and weights + (kv or 0) > 0.9 * memory:
        gpus = math.ceil((weights + (kv or 0)) / (0.9 * memory))
        notes.append(f"over one {device}: device_map = \"auto\" across {gpus}")
    if params is None:
        notes.append("size unknown: declare params (and layers, hidden) in the committee")
    return MemberPlan(spec.name, spec.kind, model, params, source, precision, weights, kv,
                      units, tokens, counter.estimated, shared,
                      flops / 1e12 if flops else None, seconds,
                      "the server" if spec.kind == "http-rm" else "this device", notes)


_COUNTERS: dict[str, _Counter] = {}


def _tokenizer_counter(name: str, options: dict[str, Any]) -> _Counter:
    """One counter per tokenizer, so members that share one count once."""
    if name not in _COUNTERS:
        _COUNTERS[name] = _Counter(_tokenizer(name, options))
    return _COUNTERS[name]


def plan_committee(committee: Committee | str | Path, pairs: Sequence[PreferencePair],
                   device: str = DEFAULT_DEVICE, mfu: float = DEFAULT_MFU,
                   max_batch_tokens: int = 4096) -> dict[str, Any]:
    """The plan of a committee on `pairs`: per member and in total."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if not 0 < mfu <= 1:
        raise ValueError(f"mfu must lie in (0, 1], got {mfu}")
    spec = committee if isinstance(committee, Committee) else load_committee(committee)
    members = [plan_member(m, pairs, device, mfu, max_batch_tokens) for m in spec.members]
    local = [m for m in members if m.runs_on == "this device"]
    known = [m.seconds for m in local if m.seconds is not None]
    peak_memory = max(((m.weights_gib or 0) + (m.kv_gib or 0) for m in local), default=0.0)
    return {
        "committee": spec.name, "pairs": len(pairs), "device": device,
        "device_peak_tflops": DEVICES[device][0] / 1e12, "device_memory_gib": DEVICES[device][1],
        "mfu": mfu, "chars_per_token_estimate": CHARS_PER_TOKEN,
        "members": [asdict(m) for m in members],
        "total": {"tokens": sum(m.tokens for m in members),
                  "tflops": sum(m.tflops or 0 for m in members),
                  "seconds": sum(known) if known else None,
                  "members_unknown": [m.name for m in local if m.seconds is None],
                  "peak_memory_gib": peak_memory},
        "assumptions": (f"time = 2 x params x tokens / ({DEVICES[device][0] / 1e12:g} TFLOP/s "
                        f"x MFU {mfu:g}); forward passes only; members load one at a time "
                        "(peak memory = the largest member); memory = weights at the "
                        f"member's precision + one batch's KV cache ({max_batch_tokens} "
                        "tokens, no GQA: an upper bound)"),
    }


def plan_audit(data: str | Path, committee: str | Path = "cpu", limit: int | None = None,
               device: str = DEFAULT_DEVICE, mfu: float = DEFAULT_MFU,
               max_batch_tokens: int = 4096) -> dict[str, Any]:
    """:func:`plan_committee` for a preference file, as ``preflab audit --plan`` reads it."""
    from itertools import islice

    from preflab.data.read import iter_pairs, read_pairs

    spec = load_committee(committee)
    pairs = list(islice(iter_pairs(read_pairs(data).pairs), limit))
    if not pairs:
        raise ValueError(f"{data}: no pairs to plan for")
    return {"data": str(data), **plan_committee(spec, pairs, device, mfu, max_batch_tokens)}
