"""Hemma's composition root: the `hemma` command line (`hemma.cli`, its subcommands in `hemma.cli_services`
and `hemma.cli_care`) and the demo (`hemma.demo`).
It wires the services together; no other package imports it (tests/test_layers.py)."""

__version__ = "0.1.0"
