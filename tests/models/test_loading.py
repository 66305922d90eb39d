"""Every transformers load goes through load_pretrained: a model that needs its own code
loads only with trust_remote_code (never a "[y/N]" prompt on stdin), and a hub id with
the hub unreachable fails at once in one line."""

from __future__ import annotations

import ast
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from preflab.committee.spec import CommitteeError, load_committee
from preflab.models.bi_encoder import MODEL_TYPE
from preflab.models.offline import RemoteCodeRefused, load_tokenizer, prepare

SRC = Path(__file__).resolve().parents[2] / "src" / "preflab"
SCRIPT = str(Path(sys.executable).with_name("preflab"))
CUSTOM_CONFIG = '''from transformers import BertConfig


class CustomConfig(BertConfig):
    model_type = "preflab-test-custom"
'''


@pytest.fixture(scope="module")
def custom_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT whose config names a model type of its own, defined by code in the
    folder (auto_map): transformers asks before running that code."""
    folder = tmp_path_factory.mktemp("custom") / "model"
    shutil.copytree(prepare("tiny-bert"), folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="preflab-test-custom",
                  auto_map={"AutoConfig": "configuration_custom.CustomConfig"})
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "configuration_custom.py").write_text(CUSTOM_CONFIG)
    return folder


def _committee(tmp_path: Path, model: Path, trust: bool | None) -> Path:
    line = "" if trust is None else f"trust_remote_code = {str(trust).lower()}\n"
    path = tmp_path / "committee.toml"
    path.write_text('name = "served"\n[[member]]\nname = "served"\nkind = "http-rm"\n'
                    f'url = "http://127.0.0.1:{_closed_port()}"\nmodel = "{model}"\n{line}')
    return path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE",
                        "HF_ENDPOINT")}
    return {**env, "NO_COLOR": "1", "COLUMNS": "200", **extra}


def test_http_rm_on_a_custom_code_folder_fails_in_one_line_without_asking(
        custom_folder: Path, tmp_path: Path) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps({"prompt": "Say hi", "chosen": "Hi!", "rejected": "No."}) + "\n")
    committee = _committee(tmp_path, custom_folder, trust=None)
    r = subprocess.run([SCRIPT, "audit", str(data), "--committee", str(committee),
                        "--out", str(tmp_path / "audit")], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, env=_env(), check=False)
    assert "[y/N]" not in r.stdout + r.stderr
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert str(custom_folder) in lines[0] and "trust_remote_code = true" in lines[0]


def test_custom_code_loads_only_when_trusted(custom_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(RemoteCodeRefused, match="auto_map"):
        load_tokenizer(custom_folder)
    # trusted: the folder's code runs (in a child, so its module cache is a temporary one)
    code = ("from preflab.engine.http_client import HttpOptions\n"
            "from preflab.engine.http_reward import HttpRewardScorer\n"
            f"o = HttpOptions('http://127.0.0.1:9', model={str(custom_folder)!r})\n"
            "s = HttpRewardScorer(o, trust_remote_code=True)\n"
            "print(type(s.tokenizer).__name__)\n")
    r = subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, check=False,
                       env=_env(HF_MODULES_CACHE=str(tmp_path / "modules")))
    assert r.returncode == 0 and r.stdout.strip().endswith("Backend"), r.stderr[-2000:]


def test_http_rm_takes_trust_remote_code_as_a_boolean(custom_folder: Path,
                                                      tmp_path: Path) -> None:
    spec = load_committee(_committee(tmp_path, custom_folder, trust=True)).members[0]
    assert spec.options["trust_remote_code"] is True
    path = tmp_path / "bad.toml"
    path.write_text(_committee(tmp_path, custom_folder, trust=None).read_text()
                    + 'trust_remote_code = "yes"\n')
    with pytest.raises(CommitteeError, match="'trust_remote_code' must be true or false"):
        load_committee(path)


def test_preflab_bi_encoder_folders_need_no_remote_code(tmp_path: Path) -> None:
    """train-rm's bi-encoder folders carry auto_map for other programs; preflab knows
    the class, so they load without trust_remote_code."""
    from transformers import AutoConfig

    from preflab.models.offline import load_pretrained, resolve
    from preflab.models.reward_base import load_bi_encoder, save_reward_model

    path = resolve("minilm-l6")
    model = load_bi_encoder(path, load_pretrained(AutoConfig, path))
    save_reward_model(model, load_tokenizer("minilm-l6"), tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["auto_map"]
    # a fresh process, where nothing registered the class before the load
    code = ("from transformers import AutoConfig\n"
            "from preflab.models.offline import load_pretrained, load_tokenizer\n"
            f"print(load_pretrained(AutoConfig, {str(tmp_path)!r}).model_type)\n"
            f"print(load_tokenizer({str(tmp_path)!r}).pad_token)\n")
    r = subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, check=False, env=_env())
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == [MODEL_TYPE, "[PAD]"]


def test_every_auto_class_load_goes_through_load_pretrained() -> None:
    """No ``Auto*.from_pretrained`` outside models/offline.py: a load elsewhere would
    leave trust_remote_code to transformers (None: a prompt on stdin)."""
    found = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "from_pretrained"
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id.startswith("Auto")):
                found.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert found == []


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, "closed endpoint"])
def test_hub_model_with_the_hub_unreachable_fails_at_once(env: dict[str, str] | str) -> None:
    if env == "closed endpoint":
        env = {"HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"}
    r = subprocess.run([SCRIPT, "serve", "someone/model", "--port", "0"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       env=_env(**env), check=False)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: someone/model") and "hub" in lines[0]
    assert "unreachable" in lines[0] and "Retry" not in r.stderr
