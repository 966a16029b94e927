"""``migplan generate``: write a synthetic NetEase-like inventory folder and its planted plan."""

from __future__ import annotations

from pathlib import Path

import click

from migplan.cli import main
from migplan.cli.common import EXIT_BAD_INPUT, SEED, fail, file_errors_exit
from migplan.generate_options import MAX_APPS, MAX_RTT_MS, MIN_APPS, MIN_WAVES, option_problems
from migplan.io.scenario import MAX_WAVES


@main.command()
@click.option(
    "--apps",
    "n_apps",
    type=int,  # range checked with the other options, so one run names every bad one
    required=True,
    help=f"Number of applications: at least max({MIN_APPS}, 3 x waves), at most {MAX_APPS:,}.",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed (same seed, same files).")
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Inventory folder to write."
)
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
def generate(n_apps: int, seed: int, out_dir: Path, waves: int, rtt_ms: float) -> None:
    """Write a synthetic estate (apps.csv, dependencies.csv, scenario.toml) to OUT.

    The estate is built around a planted plan, written as planted-waves.csv: every
    budget, capacity and limit is set so that this plan is feasible.
    """
    problems = option_problems(n_apps, waves, rtt_ms)
    if problems:
        listed = "; ".join(
            f"--{name.replace('_', '-')} {value}: expected {expected}" for name, value, expected in problems
        )
        fail(EXIT_BAD_INPUT, f"{len(problems)} bad option(s): {listed}; nothing was written")
    # imported here so other subcommands do not pay for the generator at start-up
    from migplan.generate import generate_estate
    from migplan.io.writer import PLANTED_FILE, plan_writer, write_inventory

    estate = generate_estate(n_apps, seed, waves=waves, rtt_ms=rtt_ms)
    inv = estate.inventory
    with file_errors_exit("write"):
        write_inventory(out_dir, inv, {PLANTED_FILE: plan_writer(inv, estate.planted)})
    entry = sum(a.qps for a in inv.apps if a.kind in ("frontend", "gateway"))
    click.echo(
        f"wrote {inv.n} apps, {inv.m} dependencies, {inv.K} waves to {out_dir} "
        f"(entry traffic {entry:,.0f} QPS; planted plan in {PLANTED_FILE})"
    )
