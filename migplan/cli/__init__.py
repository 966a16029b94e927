"""Command line: parse arguments, call the core, print, exit code (0 ok, 1 infeasible, 2 bad input).

Each subcommand lives in its own module and registers itself on ``main``.
"""

from __future__ import annotations

import click

from migplan import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="migplan")
def main() -> None:
    """migplan: latency-aware data-center migration wave planning."""


# the subcommands attach themselves to ``main`` when imported (after ``main`` exists)
from migplan.cli import generate, inspect, plan  # noqa: E402, F401
