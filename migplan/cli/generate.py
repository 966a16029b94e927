"""``migplan generate``: write a synthetic NetEase-like inventory folder and its planted plan."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from migplan.cli import main
from migplan.cli.common import EXIT_BAD_INPUT, SEED, fail, file_errors_exit, is_terminal
from migplan.generate_options import MAX_APPS, MAX_RTT_MS, MIN_APPS, MIN_WAVES, option_problems
from migplan.io.inventory import APPS_FILE, DEPENDENCIES_FILE
from migplan.io.planfiles import out_dir_findings
from migplan.io.scenario import FILE as SCENARIO_FILE
from migplan.io.scenario import MAX_WAVES
from migplan.text import listing

INVENTORY_FILES = (APPS_FILE, DEPENDENCIES_FILE, SCENARIO_FILE)


@main.command()
@click.option(
    "--apps",
    "n_apps",
    type=int,  # range checked with the other options, so one run names every bad one
    required=True,
    help=f"Number of applications: at least max({MIN_APPS}, 3 x waves), at most {MAX_APPS:,}.",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed (same seed, same files).")
@click.option("--out", "out_text", type=str, required=True, help="Inventory folder to write.")
@click.option("--force", is_flag=True, help="Overwrite the inventory files already in OUT.")
@click.option(
    "--waves", type=int, default=12, show_default=True, help=f"Number of waves K, {MIN_WAVES} to {MAX_WAVES}."
)
@click.option(
    "--rtt-ms",
    type=float,
    default=30.0,
    show_default=True,
    help=f"Extra cross-site round-trip time, 0 to {MAX_RTT_MS:,.0f} ms.",
)
def generate(n_apps: int, seed: int, out_text: str, force: bool, waves: int, rtt_ms: float) -> None:
    """Write a synthetic estate (apps.csv, dependencies.csv, scenario.toml) to OUT.

    The estate is built around a planted plan, written as planted-waves.csv: every
    budget, capacity and limit is set so that this plan is feasible.
    """
    # imported here so other subcommands do not pay for the generator at start-up
    from migplan.generate import generate_estate
    from migplan.io.writer import PLANTED_FILE, plan_writer, write_inventory

    problems = [
        f"--{name.replace('_', '-')} {value}: expected {expected}"
        for name, value, expected in option_problems(n_apps, waves, rtt_ms)
    ]
    out_findings = out_dir_findings(out_text)
    problems += [f"{f.message}: expected {f.expected}" for f in out_findings]
    out_dir = Path(out_text)
    # a folder out_dir_findings refused may not even be stat-able (a name too long)
    names = () if out_findings else (*INVENTORY_FILES, PLANTED_FILE)
    existing = [name for name in names if (out_dir / name).exists()]
    if existing and not force and not problems:
        problems.append(
            f"--out {out_text} already holds {listing(existing)}: expected a new or empty folder "
            "(or --force to overwrite them)"
        )
    if problems:
        fail(EXIT_BAD_INPUT, f"{len(problems)} bad option(s): {'; '.join(problems)}; nothing was written")

    with _phases(f"generating {n_apps:,} apps") as say:
        estate = generate_estate(n_apps, seed, waves=waves, rtt_ms=rtt_ms, progress=say)
        inv = estate.inventory
        say("writing files")
        with file_errors_exit("write"):
            write_inventory(out_dir, inv, {PLANTED_FILE: plan_writer(inv, estate.planted)})
    entry = sum(a.qps for a in inv.apps if a.kind in ("frontend", "gateway"))
    click.echo(
        f"wrote {inv.n} apps, {inv.m} dependencies, {inv.K} waves to {out_dir} "
        f"(entry traffic {entry:,.0f} QPS; planted plan in {PLANTED_FILE})"
    )


@contextlib.contextmanager
def _phases(what: str) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr naming the phase, on a terminal only (logs stay clean): 200,000
    apps take minutes, and a silent wait looks like a hang."""
    if not is_terminal(sys.stderr):
        yield lambda _phase: None
        return
    from rich.console import Console

    with Console(stderr=True).status(what) as status:
        yield lambda phase: status.update(f"{what}: {phase}")
