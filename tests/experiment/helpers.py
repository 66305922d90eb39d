"""What the experiment tests share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from preflab.cli import app


def rerun_from_config(command: str, data: Path, out: Path) -> dict[str, Any]:
    """``preflab experiment COMMAND DATA --config OUT/config.toml --out OUT --json``:
    the run's summary (the same experiment resumes: every stage is done)."""
    result = CliRunner().invoke(app, ["experiment", command, str(data), "--config",
                                      str(out / "config.toml"), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])
