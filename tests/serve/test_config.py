"""`preflab serve` settings: one ServeConfig (its Limits a table of it), read from
``--config FILE`` with the options given on the command line over it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from preflab.cli import app
from preflab.serve.config import ServeConfig
from preflab.serve.limits import Limits
from preflab.serve.server import make_server

runner = CliRunner()


def test_a_settings_file_sets_the_limits_and_options_win(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text('port = 0\nquiet = true\n\n[limits]\nmax_queue = 2\nrequest_timeout = 0\n')
    with pytest.raises(ValueError, match=r"request_timeout \(--request-timeout\) must be "
                                         "greater than 0"):
        ServeConfig.from_file(path)
    bad = runner.invoke(app, ["serve", "no-such-model", "--config", str(path)])
    assert bad.exit_code == 2 and "request_timeout (--request-timeout)" in bad.output
    # the option given wins over the file: the settings are good, the model is not
    over = runner.invoke(app, ["serve", "no-such-model", "--config", str(path),
                               "--request-timeout", "5"])
    assert over.exit_code != 0 and "request_timeout" not in over.output
    assert "no-such-model" in over.output
    path.write_text(path.read_text().replace("request_timeout = 0", "request_timeout = 5"))
    config = ServeConfig.from_file(path)
    assert config.limits == Limits(max_queue=2, request_timeout=5) and config.quiet


def test_make_server_takes_the_config(serve_cache: str) -> None:
    config = ServeConfig(port=0, quiet=True, served_name="judge", limits=Limits(max_queue=2))
    server = make_server("tiny-llama", config)
    try:
        assert server.limits.max_queue == 2 and server.judge.name == "judge"
        assert server.server_address[1] != 0  # bound before serving
    finally:
        server.sock.close()
