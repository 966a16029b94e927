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


def _register() -> None:
    """Import the subcommand modules so they attach to ``main``; a missing one is skipped."""
    import importlib

    for name in ("inspect", "generate", "plan"):
        try:
            importlib.import_module(f"migplan.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"migplan.cli.{name}":
                raise


_register()
