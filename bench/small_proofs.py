"""Which small estates the planner proves optimal in its default budget.

    python -m bench.small_proofs [--time-limit 30] [--seeds 5 6]

Plans generated estates of 30, 60 and 100 apps at 4, 8 and 12 waves (fixed seeds) with
``PlanOptions(time_limit=...)``, the defaults of ``migplan plan --time-limit``, and prints a
markdown table: blocks, wave literals (blocks x (K - 1), the proof phase's gate), status,
objective, wall seconds and the work used by each full-model phase.
"""

from __future__ import annotations

import argparse
import platform
import time

from migplan.generate import generate_estate
from migplan.solve.pipeline import PlanOptions, plan

SIZES = (30, 60, 100)
WAVES = (4, 8, 12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[5, 6])
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print("| apps | waves | seed | blocks | literals | status | objective | wall s | phases (work) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in SIZES:
        for k in WAVES:
            for seed in args.seeds:
                try:
                    inv = generate_estate(n, seed, waves=k).inventory
                except ValueError as err:  # too few apps for the waves
                    print(f"| {n} | {k} | {seed} | | | {err} | | | |")
                    continue
                started = time.perf_counter()
                result = plan(inv, PlanOptions(time_limit=args.time_limit, seed=0))
                wall = time.perf_counter() - started
                blocks = int(result.solver_info.get("blocks", 0))
                phases = result.stages[-1].get("phases", []) if result.stages else []
                work = " + ".join(f"{p['work']:.1f}{' full LP' if p['full_lp'] else ''}" for p in phases)
                objective = f"{result.objective:,.0f}" if result.objective is not None else ""
                print(
                    f"| {n} | {k} | {seed} | {blocks} | {blocks * (k - 1)} | {result.status} "
                    f"| {objective} | {wall:.1f} | {work} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
