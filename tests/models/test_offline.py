from __future__ import annotations

import pytest

from preflab.models import offline
from preflab.models.offline import (
    OFFLINE_MODELS,
    OfflineModel,
    OfflineModelMissing,
    is_prepared,
    load_causal_lm,
    load_tokenizer,
    prepare,
    resolve,
)
from preflab.models.tiny import tiny_causal_lm


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_unknown_preset() -> None:
    with pytest.raises(KeyError, match="unknown preset"):
        prepare("no-such-model")


def test_missing_package_says_how_to_install(cache, monkeypatch) -> None:
    ghost = OfflineModel(name="ghost", package="ghost-model", module="preflab_ghost_model_pkg",
                   install="pip install ghost-model==1.0", kind="causal-lm",
                   description="", license="", gguf="ghost.gguf")
    monkeypatch.setitem(OFFLINE_MODELS, "ghost", ghost)
    with pytest.raises(OfflineModelMissing, match=r"pip install ghost-model==1.0"):
        prepare("ghost")


def test_paths_and_hub_ids_pass_straight_through(tmp_path, tiny_tok) -> None:
    model = tiny_causal_lm(tiny_tok)
    model.save_pretrained(tmp_path / "m")
    tiny_tok.save_pretrained(tmp_path / "m")
    assert resolve(tmp_path / "m") == str(tmp_path / "m")
    assert resolve("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert load_causal_lm(tmp_path / "m").num_parameters() == model.num_parameters()
    assert len(load_tokenizer(tmp_path / "m")) == len(tiny_tok)


def test_minilm_preset_loads_from_its_package() -> None:
    from transformers import AutoModel

    path = prepare("minilm-l6")
    model = AutoModel.from_pretrained(path)
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6


def test_prepare_smollm2_then_load_fast(cache) -> None:
    assert not is_prepared("smollm2-135m-instruct")
    path = prepare("smollm2-135m-instruct")
    assert is_prepared("smollm2-135m-instruct") and path == offline.prepared_dir(
        "smollm2-135m-instruct")
    assert not path.with_name(path.name + ".partial").exists()
    assert any(path.glob("*.safetensors"))
    written = {f.name: f.stat().st_mtime_ns for f in path.iterdir()}
    # fast: the converted safetensors load, never the GGUF again (no clock needed)
    model = load_causal_lm("smollm2-135m-instruct")
    tok = load_tokenizer("smollm2-135m-instruct")
    assert model.name_or_path == tok.name_or_path == str(path)
    assert model.config.num_hidden_layers == 30 and 134e6 < model.num_parameters() < 135e6
    assert tok.chat_template and tok.eos_token == "<|im_end|>"
    assert prepare("smollm2-135m-instruct") == path  # idempotent, no second conversion
    assert {f.name: f.stat().st_mtime_ns for f in path.iterdir()} == written
