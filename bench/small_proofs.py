"""Which small estates the planner proves optimal in its default budget.

    python -m bench.small_proofs [--time-limit 30] [--seeds 5 6]

Plans generated estates of 30, 60 and 100 apps at 4, 8 and 12 waves (fixed seeds), and a
35-app estate shaped like DeathStarBench's social network (its services, each with a
memcached and a mongodb; qps, call rates and budgets drawn with a fixed seed; 12 waves of
4 apps, max_risk 0.15), with ``PlanOptions(time_limit=...)``, the defaults of ``migplan plan
--time-limit``, and prints a markdown table: blocks, wave literals (blocks x (K - 1), the
proof phase's gate), status, objective, quality (proof or gap), the cluster bound and its
work (``cluster_bound``), wall seconds and the work of each full-model run (the proof
phase's bound-first run, side by side with it, marked "lb tree").
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import replace

from bench.run import machine_line
from migplan.generate import generate_estate
from migplan.model import App, Dependency, Inventory, Scenario
from migplan.solve.pipeline import PlanOptions, plan

SIZES = (30, 60, 100)
WAVES = (4, 8, 12)
SOCIAL_SERVICES = (
    "compose-post", "home-timeline", "user-timeline", "social-graph", "user", "url-shorten",
    "media", "text", "unique-id", "user-mention", "post-storage", "write-home-timeline",
)  # fmt: skip
SOCIAL_CALLS = (
    ("compose-post", "text"), ("compose-post", "media"), ("compose-post", "unique-id"),
    ("compose-post", "user"), ("compose-post", "post-storage"), ("compose-post", "write-home-timeline"),
    ("compose-post", "user-timeline"), ("text", "url-shorten"), ("text", "user-mention"),
    ("home-timeline", "post-storage"), ("home-timeline", "social-graph"), ("user-timeline", "post-storage"),
    ("write-home-timeline", "social-graph"), ("social-graph", "user"),
)  # fmt: skip


def social_network(seed: int = 1) -> Inventory:
    """DeathStarBench's social-network layout with drawn numbers: a small, real-shaped mesh."""
    rng = random.Random(seed)
    apps = [App("nginx-web", 5000.0, kind="frontend")]
    deps: list[Dependency] = []
    for name in SOCIAL_SERVICES:
        apps.append(App(name, float(rng.randint(200, 3000))))
        for store, rate in (("memcached", 1.0), ("mongodb", 0.3)):
            if name != "unique-id":
                apps.append(
                    App(f"{name}-{store}", float(rng.randint(50, 2000)), kind="database", stateful=True)
                )
                deps.append(Dependency(name, f"{name}-{store}", float(rng.randint(50, 2000)), rate))
    deps += [
        Dependency("nginx-web", s, float(rng.randint(500, 3000))) for s in (*SOCIAL_SERVICES[:3], "user")
    ]
    deps += [
        Dependency(a, b, float(rng.randint(100, 2000)), round(rng.uniform(0.5, 2), 2))
        for a, b in SOCIAL_CALLS
    ]
    apps = [replace(a, latency_budget_ms=4.0 * rng.choice((40, 60, 100, 150))) for a in apps]
    scenario = Scenario(waves=12, rtt_ms=30.0, capacity_apps=4.0, max_risk=0.15)
    return Inventory(tuple(apps), tuple(deps), scenario)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[5, 6])
    args = parser.parse_args()
    print(machine_line())
    print(
        "| apps | waves | seed | blocks | literals | status | objective | quality | cluster bound (work)"
        " | wall s | phases (work) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in SIZES:
        for k in WAVES:
            for seed in args.seeds:
                try:
                    inv = generate_estate(n, seed, waves=k).inventory
                except ValueError as err:  # too few apps for the waves
                    print(f"| {n} | {k} | {seed} | | | {err} | | | | | |")
                    continue
                print(row(inv, str(n), str(seed), args.time_limit), flush=True)
    print(row(social_network(), "35 (social network)", "1", args.time_limit))


def row(inv: Inventory, apps: str, seed: str, time_limit: float) -> str:
    """One planner run as a table row."""
    started = time.perf_counter()
    result = plan(inv, PlanOptions(time_limit=time_limit, seed=0))
    wall = time.perf_counter() - started
    blocks = int(result.solver_info.get("blocks", 0))
    phases = result.stages[-1].get("phases", []) if result.stages else []
    work = " + ".join(
        f"{p['work']:.1f}{' full LP' if p['full_lp'] else ''}{' lb tree' if p.get('lb_tree_search') else ''}"
        for p in phases
    )
    bound = next((s for s in result.stages if s["name"] == "bound"), None)
    clusters = f"{bound['lower_bound']:,.0f} ({bound['work']:.2f})" if bound is not None else ""
    objective = f"{result.objective:,.0f}" if result.objective is not None else ""
    k = inv.K
    return (
        f"| {apps} | {k} | {seed} | {blocks} | {blocks * (k - 1)} | {result.status} "
        f"| {objective} | {result.solver_info.get('quality', '')} | {clusters} | {wall:.1f} | {work} |"
    )


if __name__ == "__main__":
    main()
