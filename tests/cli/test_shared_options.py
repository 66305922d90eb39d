"""The shared options of docs/cli.md are on every command the page names; --threads
reaches torch on audit and serve; train-rm takes --limit and --sample; transformers'
"Token indices sequence length" warning never reaches the console."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import torch
import typer.main
from typer.testing import CliRunner

from preflab.cli import app
from preflab.data.write import write_pairs
from tests.train.helpers import short_pairs

runner = CliRunner()
DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
SCRIPT = str(Path(sys.executable).with_name("preflab"))


def commands() -> dict[str, Any]:
    """Every command by its full name ('steer extract'), from typer's click group."""
    def walk(group: Any, prefix: list[str]) -> dict[str, Any]:
        found = {}
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                found |= walk(command, [*prefix, name])
            else:
                found[" ".join([*prefix, name])] = command
        return found

    return walk(typer.main.get_command(app), [])


def documented() -> list[tuple[str, str]]:
    """(option, command) for each command the Shared options table puts an option on."""
    section = DOC.read_text().split("## Shared options", 1)[1].split("\n## ", 1)[0]
    found = []
    for row in section.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]
        if len(cells) != 3 or not cells[0].startswith("`--"):
            continue
        options = re.findall(r"`(--[\w-]+)", cells[0])
        for part in cells[2].split(";"):
            own = re.match(r"\s*`(--[\w-]+)`:", part)
            names = re.findall(r"`([a-z][\w -]*)`", part[own.end():] if own else part)
            found += [(o, n) for o in ([own.group(1)] if own else options) for n in names]
    return found


def test_every_shared_option_is_on_every_command_the_docs_name() -> None:
    pairs = documented()
    assert len({o for o, _ in pairs}) == 12 and len(pairs) > 140
    assert ("--threads", "audit") in pairs and ("--threads", "serve") in pairs
    assert ("--limit", "train-rm") in pairs and ("--sample", "train-rm") in pairs
    found = commands()
    missing = [(o, n) for o, n in pairs
               if n not in found or not any(o in p.opts for p in found[n].params)]
    assert missing == []


@pytest.fixture
def threads_restored() -> Any:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_threads_reach_torch_on_audit_and_serve(tmp_path: Path, threads_restored: None
                                                ) -> None:
    write_pairs(short_pairs(4), tmp_path / "p.jsonl")
    n = 3 if torch.get_num_threads() != 3 else 2
    done = runner.invoke(app, ["audit", str(tmp_path / "p.jsonl"), "--committee", "tiny",
                               "--plan", "--plan-device", "cpu", "--threads", str(n)])
    assert done.exit_code == 0, done.output
    assert torch.get_num_threads() == n
    with socket.socket() as taken:  # serve stops at the port, after taking --threads
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = runner.invoke(app, ["serve", "tiny-bert", "--port",
                                   str(taken.getsockname()[1]), "--threads", "1"])
    assert done.exit_code == 2 and "already in use" in done.stderr
    assert torch.get_num_threads() == 1


def test_train_rm_takes_limit_and_sample(tmp_path: Path) -> None:
    write_pairs(short_pairs(12), tmp_path / "p.jsonl")
    done = runner.invoke(app, ["train-rm", str(tmp_path / "p.jsonl"), "--base", "tiny-bert",
                               "--out", str(tmp_path / "rm"), "--epochs", "1",
                               "--batch-size", "2", "--limit", "6", "--sample", "4",
                               "--seed", "3", "--threads", "1", "--json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["stages"][-1]["n_pairs"] == 4 and summary["stages"][-1]["steps"] == 2
    config = tomllib.loads((tmp_path / "rm" / "config.toml").read_text())
    assert (config["limit"], config["sample"], config["seed"]) == (6, 4, 3)  # reruns it
    done = runner.invoke(app, ["train-rm", str(tmp_path / "p.jsonl"), "--limit", "0"])
    assert done.exit_code == 2 and "--limit" in done.stderr


def test_no_token_indices_warning_on_the_console(tmp_path: Path) -> None:
    """The plan counts whole texts with MiniLM's tokenizer (512 positions): transformers
    warned once per tokenizer; preflab truncates every input itself."""
    long = " ".join(["tell me about the ships that sailed the northern sea"] * 80)
    (tmp_path / "p.jsonl").write_text(
        json.dumps({"prompt": long, "chosen": "A long tale.", "rejected": "No."}) + "\n")
    done = subprocess.run([SCRIPT, "audit", str(tmp_path / "p.jsonl"), "--committee",
                           "cpu-fast", "--plan", "--plan-device", "cpu"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "plan: committee cpu-fast" in done.stdout
    assert "Token indices sequence length" not in done.stdout + done.stderr
