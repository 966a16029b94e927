"""Time metrics.evaluate and metrics.latency_coefficients on random layered estates.

Run: .venv/bin/python bench/bench_metrics.py [--sizes 2000 10000] [--waves 12]
Writes the table to bench/results/metrics.md as well as printing it.  The estates are
built here (not by migplan.generate) so the benchmark measures metrics alone.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

import numpy as np

from migplan import metrics
from migplan.model import App, Dependency, Inventory, Plan, Scenario


def layered_inventory(
    n: int, seed: int = 0, layers: int = 6, out_degree: float = 3.0, waves: int = 12
) -> Inventory:
    """n apps in ``layers`` tiers; each app calls ~out_degree apps in deeper tiers (mostly the next),
    ~80 % sync, calls_per_request log-normal around 0.8; a few small in-tier loops with cpr < 1."""
    rng = np.random.default_rng(seed)
    tier = np.sort(rng.integers(0, layers, n))
    apps = tuple(
        App(
            f"app{i:05d}",
            qps=float(rng.lognormal(4, 1.5)),
            criticality=int(rng.integers(1, 6)),
            latency_budget_ms=float(rng.choice([50, 100, 200, 400])),
            instances=int(rng.integers(1, 20)),
            data_gb=float(rng.exponential(50)),
            stateful=bool(tier[i] == layers - 1),
        )
        for i in range(n)
    )
    starts = np.searchsorted(tier, np.arange(layers + 1))
    pairs: set[tuple[int, int]] = set()
    deps: list[Dependency] = []
    for a in range(n):
        t = int(tier[a])
        if t == layers - 1:
            continue
        for _ in range(int(rng.poisson(out_degree))):
            t2 = min(layers - 1, t + 1 + int(rng.geometric(0.7)) - 1)
            b = int(rng.integers(starts[t2], starts[t2 + 1]))
            if (a, b) not in pairs:
                pairs.add((a, b))
                deps.append(
                    Dependency(
                        apps[a].app_id,
                        apps[b].app_id,
                        qps=float(rng.lognormal(3, 1.5)),
                        calls_per_request=float(min(rng.lognormal(-0.3, 0.5), 4.0)),
                        sync=bool(rng.random() < 0.8),
                        kb_per_call=float(rng.choice([1, 4, 16])),
                    )
                )
    for _ in range(max(1, n // 200)):  # small loops inside a tier, bounded (cpr product < 1)
        a = int(rng.integers(0, n))
        b = int(rng.integers(starts[tier[a]], starts[tier[a] + 1]))
        if a != b and (a, b) not in pairs and (b, a) not in pairs:
            pairs.update({(a, b), (b, a)})
            deps.append(Dependency(apps[a].app_id, apps[b].app_id, 5.0, 0.5))
            deps.append(Dependency(apps[b].app_id, apps[a].app_id, 5.0, 0.5))
    return Inventory(apps, tuple(deps), Scenario(waves=waves, link_gbps=10.0, max_risk=0.2))


def _time(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--waves", type=int, default=12)
    parser.add_argument("--out-degree", type=float, default=3.0, help="mean calls per app")
    args = parser.parse_args()
    header = [
        "apps",
        "deps",
        "first evaluate (builds caches) s",
        "evaluate, random plan s",
        "evaluate, one-wave plan s",
        "latency violations (random)",
        "latency_coefficients tol=0 s (incl. model)",
        "nnz",
        "peak MB",
        "tol=0.1% rtt s",
        "nnz",
    ]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for n in args.sizes:
        inv = layered_inventory(n, waves=args.waves, out_degree=args.out_degree)
        rng = np.random.default_rng(1)
        plan = Plan.from_array(rng.integers(1, args.waves + 1, n), args.waves)
        flat = Plan.from_array(np.ones(n, dtype=np.int64), args.waves)
        t0 = time.perf_counter()
        ev = metrics.evaluate(inv, plan)
        first = time.perf_counter() - t0
        t_rand = _time(lambda: metrics.evaluate(inv, plan))  # noqa: B023
        t_flat = _time(lambda: metrics.evaluate(inv, flat))  # noqa: B023
        fresh = inv.with_scenario(inv.scenario)  # a new object: no cached latency model or L
        tracemalloc.start()
        t0 = time.perf_counter()
        exact = metrics.latency_coefficients(fresh, 0.0)
        t_l0 = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        t0 = time.perf_counter()
        approx = metrics.latency_coefficients(fresh, 0.001 * inv.scenario.rtt_ms)
        t_l1 = time.perf_counter() - t0
        rows.append(
            f"| {n} | {inv.m} | {first:.3f} | {t_rand:.3f} | {t_flat:.3f} | {ev.violation_counts['latency']} "
            f"| {t_l0:.2f} | {exact.nnz} | {peak / 2**20:.0f} | {t_l1:.2f} | {approx.nnz} |"
        )
        print(rows[-1], flush=True)
    table = "\n".join(rows)
    print(table)
    out = Path(__file__).parent / "results" / "metrics.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("# metrics benchmark (bench/bench_metrics.py)\n\n" + table + "\n")


if __name__ == "__main__":
    main()
