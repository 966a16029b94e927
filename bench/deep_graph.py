"""How the latency coefficients grow on deep call graphs: one entry per (app, reachable call).

A random DAG where service i calls ``--fan-out`` services among the next 200 reaches most
of the graph below it, so the coefficient matrix holds about n x (reachable calls) entries
(see the README's known limits).  Prints entries, seconds and peak memory; with
``--plan-time-limit`` the whole planner runs instead (status, seconds, peak memory).

    .venv/bin/python -m bench.deep_graph --apps 5000 --fan-out 4 --calls-per-request 0.5
    .venv/bin/python -m bench.deep_graph --apps 5000 --plan-time-limit 60
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from migplan import metrics
from migplan.model import App, Dependency, Inventory, Scenario

WINDOW = 200  # callees are drawn among the next WINDOW services


def deep_inventory(n: int, fan_out: int, calls_per_request: float, seed: int = 0) -> Inventory:
    """n services in a random DAG, each calling up to ``fan_out`` of the next WINDOW."""
    rng = np.random.default_rng(seed)
    apps = tuple(App(f"s{i}", 1.0, latency_budget_ms=200) for i in range(n))
    deps = [
        Dependency(f"s{i}", f"s{j}", 10.0, calls_per_request=calls_per_request)
        for i in range(n - 1)
        for j in sorted(set(rng.integers(i + 1, min(n, i + WINDOW), size=fan_out).tolist()))
    ]
    return Inventory(apps, tuple(deps), Scenario(waves=8, capacity_apps=float(n // 6)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=5000)
    parser.add_argument("--fan-out", type=int, default=4)
    parser.add_argument("--calls-per-request", type=float, default=0.5)
    parser.add_argument("--tol-ms", type=float, default=0.0)
    parser.add_argument("--plan-time-limit", type=float, default=None)
    args = parser.parse_args()
    inv = deep_inventory(args.apps, args.fan_out, args.calls_per_request)
    started = time.perf_counter()
    if args.plan_time_limit is not None:
        from migplan.solve.pipeline import PlanOptions, plan

        result = plan(inv, PlanOptions(time_limit=args.plan_time_limit))
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        codes = sorted({f.code for f in result.explanation})
        print(
            f"apps {inv.n:,}: planner {result.status} ({', '.join(codes)}), "
            f"{time.perf_counter() - started:.1f} s, peak {peak_mb:,.0f} MB"
        )
        return
    coefficients = metrics.latency_coefficients(inv, args.tol_ms)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"apps {inv.n:,}, dependencies {inv.m:,}: {coefficients.matrix.nnz:,} coefficients, "
        f"{seconds:.1f} s, peak {peak_mb:,.0f} MB"
    )


if __name__ == "__main__":
    main()
