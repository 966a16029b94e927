"""``migplan generate``: write a synthetic NetEase-like inventory folder and its planted plan."""

from __future__ import annotations

from pathlib import Path

import click

from migplan.cli import main
from migplan.cli.common import EXIT_BAD_INPUT, SEED, fail, file_errors_exit

MAX_APPS = 200_000  # 4 x the largest estate measured (50,000 apps); more only exhausts memory


@main.command()
@click.option(
    "--apps",
    "n_apps",
    type=click.IntRange(1, MAX_APPS),
    required=True,
    help=f"Number of applications (at least 20, at most {MAX_APPS:,}).",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed (same seed, same files).")
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Inventory folder to write."
)
@click.option("--waves", type=int, default=12, show_default=True, help="Number of waves K.")
@click.option(
    "--rtt-ms", type=float, default=30.0, show_default=True, help="Extra cross-site round-trip time."
)
def generate(n_apps: int, seed: int, out_dir: Path, waves: int, rtt_ms: float) -> None:
    """Write a synthetic estate (apps.csv, dependencies.csv, scenario.toml) to OUT.

    The estate is built around a planted plan, written as planted-waves.csv: every
    budget, capacity and limit is set so that this plan is feasible.
    """
    # imported here so other subcommands do not pay for the generator at start-up
    from migplan.generate import generate_estate
    from migplan.io.writer import PLANTED_FILE, plan_writer, write_inventory

    try:
        estate = generate_estate(n_apps, seed, waves=waves, rtt_ms=rtt_ms)
    except ValueError as exc:
        fail(EXIT_BAD_INPUT, str(exc))
    inv = estate.inventory
    with file_errors_exit("write"):
        write_inventory(out_dir, inv, {PLANTED_FILE: plan_writer(inv, estate.planted)})
    entry = sum(a.qps for a in inv.apps if a.kind in ("frontend", "gateway"))
    click.echo(
        f"wrote {inv.n} apps, {inv.m} dependencies, {inv.K} waves to {out_dir} "
        f"(entry traffic {entry:,.0f} QPS; planted plan in {PLANTED_FILE})"
    )
