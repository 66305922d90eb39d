"""The ``preflab`` command line (typer): one module per stage, registered in :mod:`app`."""

from preflab.cli.app import app, main

__all__ = ["app", "main"]
