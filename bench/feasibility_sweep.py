"""How often the planner finds a plan for mid-size estates that are known to have one.

    python -m bench.feasibility_sweep [--time-limit 60] [--estates 800:25 1200:26:24 ...]

Estates are APPS:SEED (12 waves) or APPS:SEED:WAVES.  Every ``generate_estate(n, seed,
waves)`` estate has a planted plan that meets every rule, and its budgets, capacities and
risk cap are fitted to that plan (budgets at 1.1 x its added latency), so "no plan found"
is always the planner's failure, never the estate's.  Runs ``pipeline.plan`` with
``PlanOptions(time_limit=...)`` (the defaults of ``migplan plan --time-limit``) on each
estate and prints a markdown table: blocks, status, chatty cost (planner and planted
plan), wall seconds, whether the wall clock cut the work budget, the overtime work granted
(``pipeline.OVERTIME_SHARE``) and the violations the feasibility stage left.  The last
line counts the plans found.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from functools import partial

from bench.run import machine_line
from migplan import metrics
from migplan.generate import generate_estate
from migplan.model import Inventory, Plan
from migplan.solve.pipeline import PlanOptions, plan

# (apps, seed): 12 waves each; sizes where the block-level repair does all the work
ESTATES = (
    (700, 33),
    (700, 34),
    (800, 24),
    (800, 25),
    (1000, 30),
    (1000, 31),
    (1000, 32),
    (1200, 26),
    (1400, 35),
    (1500, 27),
)


def _estate(text: str) -> tuple[int, int, int]:
    apps, seed, *waves = text.split(":")
    return int(apps), int(seed), int(waves[0]) if waves else 12


def generated(n: int, seed: int, waves: int = 12) -> tuple[Inventory, Plan]:
    """``generate_estate(n, seed, waves)`` and its planted plan."""
    estate = generate_estate(n, seed, waves=waves)
    return estate.inventory, estate.planted


def plan_row(
    cells: str, inv: Inventory, planted: Plan, time_limit: float, work_limit: float | None = None
) -> tuple[str, bool]:
    """``cells`` (the estate's own columns) and one planner run's columns; whether it found a plan."""
    planted_cost = metrics.evaluate(inv, planted).chatty_cost
    started = time.perf_counter()
    result = plan(inv, PlanOptions(time_limit=time_limit, seed=0, work_limit=work_limit))
    wall = time.perf_counter() - started
    info = result.solver_info
    repair = next((s for s in result.stages if s["name"] == "feasibility"), {})
    chatty = f"{result.evaluation.chatty_cost:,.0f}" if result.evaluation is not None else ""
    text = (
        f"| {cells} | {info.get('blocks', '')} | {result.status} | {chatty} "
        f"| {planted_cost:,.0f} | {wall:.1f} | {info.get('wall_clock_cut', '')} "
        f"| {info.get('overtime_work', 0):g} | {repair.get('violations', '')} |"
    )
    return text, result.plan is not None


HEADER = (
    "| blocks | status | chatty cost | planted plan's | wall s | wall cut | overtime work | left by repair |"
)


def print_sweep(
    title: str,
    columns: Sequence[str],
    estates: Sequence[tuple[str, Callable[[], tuple[Inventory, Plan]]]],
    time_limit: float,
    work_limit: float | None = None,
) -> None:
    """The table: machine, ``title``, one planner row per (cells, estate builder), plans found.

    ``work_limit``: a fixed work budget (runs then repeat exactly unless the clock cuts them).
    """
    print(machine_line())
    print(title)
    print()
    print(f"| {' | '.join(columns)} {HEADER}")
    print("|---" * (len(columns) + HEADER.count("|") - 1) + "|")
    found = 0
    for cells, build in estates:
        text, ok = plan_row(cells, *build(), time_limit, work_limit)
        found += ok
        print(text, flush=True)
    print()
    print(f"plans found: {found} of {len(estates)}")


def add_limits(parser: argparse.ArgumentParser) -> None:
    """--time-limit and --work-limit, as every sweep takes them."""
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--work-limit", type=float, default=None, help="fixed work budget (repeatable runs)")


def limits(args: argparse.Namespace) -> str:
    """The command line's limit options, as given."""
    work = f" --work-limit {args.work_limit:g}" if args.work_limit is not None else ""
    return f"--time-limit {args.time_limit:g}{work}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_limits(parser)
    default = [(n, seed, 12) for n, seed in ESTATES]
    parser.add_argument("--estates", type=_estate, nargs="+", default=default, help="APPS:SEED[:WAVES] ...")
    args = parser.parse_args()
    title = f"`python -m bench.feasibility_sweep {limits(args)}`, planner seed 0"
    estates = [(f"{n} | {seed} | {k}", partial(generated, n, seed, k)) for n, seed, k in args.estates]
    print_sweep(title, ("apps", "estate seed", "waves"), estates, args.time_limit, args.work_limit)


if __name__ == "__main__":
    main()
