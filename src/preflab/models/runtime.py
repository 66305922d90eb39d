"""Loading scoring models: device, precision, and a fingerprint of what was loaded."""

from __future__ import annotations

import contextlib
import hashlib
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ENCODER_TYPES = {"bert", "preflab_bi_encoder", "roberta", "deberta", "deberta-v2",
                 "distilbert", "electra", "xlm-roberta", "modernbert", "mpnet", "albert"}
PRECISIONS = ("fp32", "bf16-autocast", "bf16", "fp16")
# Encoders that number positions from pad_token_id + 1 (RoBERTa's scheme): their
# max_position_embeddings (514) holds pad_token_id + 1 (2) unused rows, so 512 tokens fit.
PADDED_POSITION_TYPES = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert",
                         "roberta-prelayernorm", "data2vec-text", "ibert", "longformer",
                         "mpnet", "xmod", "luke"}


@dataclass(frozen=True)
class Runtime:
    """Where and how a scorer runs.

    `precision`: fp32; bf16-autocast (weights fp32, matmuls in bf16: fast on CPUs
    with AVX-512 BF16 and on GPUs); bf16 or fp16 weights (GPU).
    """

    device: str = "auto"
    precision: str = "fp32"
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if (self.precision.startswith("bf16") and self.torch_device().type == "cpu"
                and not cpu_has_bf16()):
            warnings.warn("this CPU has no bf16 instructions (AVX-512 BF16 / AMX): bf16 runs "
                          "tens of times slower than fp32 here; use precision fp32",
                          stacklevel=2)

    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def weight_dtype(self) -> torch.dtype:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision, torch.float32)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        if self.precision == "bf16-autocast":
            with torch.autocast(self.torch_device().type, dtype=torch.bfloat16):
                yield
        else:
            yield

    def apply_threads(self) -> None:
        set_threads(self.threads)


def set_threads(threads: int | None) -> None:
    """torch's CPU threads in this process (None: torch's choice). A committee
    member's own ``threads`` setting still applies while it runs."""
    if threads:
        torch.set_num_threads(threads)


def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 matrix instructions (AVX-512 BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def model_fingerprint(name_or_path: str, resolved: str) -> str:
    """Identity of a model's weights: for local folders, the config and each weight
    file's size and modification time (a model retrained in place is a new model)."""
    parts: list[Any] = [name_or_path]
    path = Path(resolved)
    if path.is_dir():
        config = path / "config.json"
        parts.append(config.read_text() if config.exists() else "")
        parts.append(sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns)
                            for f in path.iterdir()
                            if f.suffix in (".safetensors", ".bin", ".npz")))
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def model_context(model: Any, tokenizer: Any = None) -> int | None:
    """The most tokens the model reads at once (its position embeddings), when its config
    or, failing that, its tokenizer says; None when neither does. A RoBERTa-family
    encoder (:data:`PADDED_POSITION_TYPES`) reads ``pad_token_id + 1`` fewer than its
    ``max_position_embeddings``: 512 of 514."""
    config = model.config
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length",
                 "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            if name == "max_position_embeddings" \
                    and getattr(config, "model_type", "") in PADDED_POSITION_TYPES:
                pad = getattr(config, "pad_token_id", None)
                value -= (pad if isinstance(pad, int) and pad >= 0 else 1) + 1
            return value
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < 10**7 else None


def within_context(max_length: int, model: Any, tokenizer: Any = None) -> int:
    """`max_length` capped at the model's context (:func:`model_context`): what a scorer
    truncates its inputs to, so no input is longer than the model's positions."""
    context = model_context(model, tokenizer)
    return max_length if context is None else min(max_length, context)


def is_encoder(config: Any) -> bool:
    return getattr(config, "model_type", "") in ENCODER_TYPES


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()
                          ).hexdigest()[:16]


def load_scoring_lm(model: str, runtime: Runtime | None = None
                    ) -> tuple[Runtime, str, Any, Any]:
    """A causal LM ready to score: (runtime with its threads applied, resolved path,
    tokenizer with a pad token, model in eval mode on the runtime's device)."""
    from transformers import AutoModelForCausalLM

    from preflab.models.offline import load_pretrained, load_tokenizer, resolve

    runtime = runtime or Runtime()
    runtime.apply_threads()
    resolved = resolve(model)
    tokenizer = load_tokenizer(model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    lm = load_pretrained(AutoModelForCausalLM, model, dtype=runtime.weight_dtype()).to(
        runtime.torch_device()).eval()
    return runtime, resolved, tokenizer, lm
