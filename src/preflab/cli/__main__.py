"""``python -m preflab.cli``."""

from preflab.cli.app import main

main()
