"""Estates shaped unlike ``migplan.generate``, each with a planted plan: does the planner find one?

    python -m bench.shapes [--time-limit 60] [--cases ba:3000:8:0 chain:2000:3:0.2 layered:600:11:0:4 ...]

A case is SHAPE:APPS:SEED:SLACK[:WAVES], WAVES (default 12) waves of ceil(1.08 x APPS / WAVES)
apps.  Shapes (networkx graphs, every call sync with 85 % odds, 0.5-3 calls per request,
log-normal qps):

- ``ba``: hub and spoke (Barabási-Albert, 2 links per app, newer apps call older ones);
- ``layered``: frontends -> services -> middleware -> stores (10/50/20/20 %), each app calling
  1-5 of the next layer, drawn by a power-law popularity;
- ``chain``: a small-world ring lattice (Watts-Strogatz, 4 neighbours, 10 % rewired) called
  from lower to higher app number, so call chains run hundreds deep and added latencies reach
  past 1e100 ms where calls per request exceed 1.

The planted plan cuts the apps, in breadth-first order per connected component, into
equal waves.  Budgets are the planted plan's worst added latency x (1 + SLACK x U(0, 1)),
rounded up (SLACK 0: exactly what the planted plan needs); an app the planted plan adds no
latency to gets 30, 60, 100 or 200 ms.  So the planted plan meets every rule (checked), and
"no plan found" is the planner's failure.  ``--rules`` adds pins, windows, groups, ``before``
and ``apart`` rules, a link capacity and max_risk, all met by the planted plan
(``with_rules``).  Prints ``feasibility_sweep``'s table.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from functools import partial

import networkx as nx
import numpy as np

from bench.feasibility_sweep import add_limits, limits, print_sweep
from migplan import metrics
from migplan.model import App, Dependency, Inventory, Plan, Rule, Scenario

WAVES = 12
CASES = (
    "ba:1000:2:0.2",
    "ba:3000:8:0",
    "layered:1000:2:0.2",
    "layered:3000:8:0",
    "chain:1000:2:0.2",
    "chain:2000:3:0.2",
)


def calls(shape: str, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(caller, callee) pairs of one shape, over apps 0..n-1."""
    seed = int(rng.integers(1 << 30))
    if shape == "ba":
        return [(max(u, v), min(u, v)) for u, v in nx.barabasi_albert_graph(n, 2, seed=seed).edges()]
    if shape == "chain":
        ring = nx.connected_watts_strogatz_graph(n, 4, 0.1, seed=seed)
        return [(min(u, v), max(u, v)) for u, v in ring.edges()]
    if shape != "layered":
        raise ValueError(f"unknown shape {shape!r}: ba, layered or chain")
    sizes = [n // 10, n // 2, n // 5]
    start = np.cumsum([0, *sizes, n - sum(sizes)])
    pairs: set[tuple[int, int]] = set()
    for layer in range(3):
        lo, hi = int(start[layer + 1]), int(start[layer + 2])
        popularity = rng.permutation(1.0 / np.arange(1, hi - lo + 1) ** 0.8)
        for u in range(int(start[layer]), lo):
            k = min(int(rng.integers(1, 6)), hi - lo)
            chosen = rng.choice(np.arange(lo, hi), size=k, replace=False, p=popularity / popularity.sum())
            pairs.update((u, int(v)) for v in chosen)
    return sorted(pairs)


def planted_waves(n: int, pairs: list[tuple[int, int]], waves: int) -> np.ndarray:
    """Apps in breadth-first order per connected component, cut into ``waves`` equal waves."""
    graph = nx.Graph(pairs)
    graph.add_nodes_from(range(n))
    order = [v for part in nx.connected_components(graph) for v in nx.bfs_tree(graph, min(part))]
    planted = np.zeros(n, dtype=np.int64)
    planted[order] = np.minimum(np.arange(n) * waves // n, waves - 1) + 1
    return planted


def shaped_estate(case: str) -> tuple[Inventory, Plan]:
    """The estate of one SHAPE:APPS:SEED:SLACK[:WAVES] case and its planted plan."""
    shape, size, seed, slack, *rest = case.split(":")
    n, waves = int(size), int(rest[0]) if rest else WAVES
    rng = np.random.default_rng(int(seed))
    pairs = calls(shape, n, rng)
    ids = [f"app{i:05d}" for i in range(n)]
    qps = np.round(rng.lognormal(4, 1.5, len(pairs)), 1) + 0.1
    per_request = rng.choice([0.5, 1, 1, 1, 2, 3], len(pairs))
    sync = rng.random(len(pairs)) < 0.85
    deps = tuple(
        Dependency(ids[u], ids[v], float(q), float(c), bool(s))
        for (u, v), q, c, s in zip(pairs, qps, per_request, sync, strict=True)
    )
    scenario = Scenario(waves=waves, capacity_apps=float(math.ceil(1.08 * n / waves)))
    planted = Plan.from_array(planted_waves(n, pairs, waves), waves)
    first = tuple(App(i, float(rng.integers(10, 5000)), criticality=int(rng.integers(1, 6))) for i in ids)
    worst = metrics.added_latency(Inventory(first, deps, scenario), planted.array).max(axis=1)
    budget = np.where(
        worst > 0, np.ceil(worst * (1 + float(slack) * rng.random(n))), rng.choice([30.0, 60, 100, 200], n)
    )
    apps = tuple(
        App(a.app_id, a.qps, criticality=a.criticality, latency_budget_ms=float(b))
        for a, b in zip(first, budget, strict=True)
    )
    inv = Inventory(apps, deps, scenario)
    if not metrics.evaluate(inv, planted).feasible:
        raise AssertionError(f"{case}: the planted plan breaks a rule")
    return inv, planted


def with_rules(inv: Inventory, planted: Plan, seed: int = 0) -> Inventory:
    """``inv`` with rules the planted plan meets (``--rules``): 2 % of the apps pinned to its wave,
    5 % in a window of its wave ± 1, one group of 2-4 apps of one wave per 100 apps, one
    ``before`` or ``apart`` rule per 100 apps between two apps of different waves, and link
    capacity and max_risk at 1.05 x the planted plan's largest."""
    w, K, n = planted.array, inv.K, inv.n
    rng = np.random.default_rng(seed)
    apps = list(inv.apps)
    for i in rng.choice(n, n // 50, replace=False).tolist():
        apps[i] = replace(apps[i], pinned_wave=int(w[i]))
    for i in rng.choice(n, n // 20, replace=False).tolist():
        if apps[i].pinned_wave is None:
            apps[i] = replace(apps[i], earliest_wave=max(1, int(w[i]) - 1), latest_wave=min(K, int(w[i]) + 1))
    for g in range(n // 100):
        same = np.flatnonzero(w == int(rng.integers(1, K + 1)))
        for i in rng.choice(same, min(int(rng.integers(2, 5)), len(same)), replace=False).tolist():
            apps[i] = replace(apps[i], group=f"group-{g}")
    rules = []
    for _ in range(n // 100):
        a, b = rng.choice(n, 2, replace=False).tolist()
        if w[a] != w[b]:
            ids = (inv.ids[a], inv.ids[b])
            rules.append(Rule("before", ids) if w[a] < w[b] else Rule("apart", ids))
    grouped = Inventory(tuple(apps), inv.dependencies, inv.scenario)
    link = 1.05 * float(metrics.evaluate(grouped, planted).link_load_gbps.max())
    risk = min(1.05 * float(metrics.wave_risk_share(grouped, w).max()), 1.0)
    scenario = replace(inv.scenario, rules=tuple(rules), link_gbps=link if link > 0 else None, max_risk=risk)
    ruled = Inventory(tuple(apps), inv.dependencies, scenario)
    if not metrics.evaluate(ruled, planted).feasible:
        raise AssertionError("the planted plan breaks a rule")
    return ruled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_limits(parser)
    parser.add_argument("--cases", nargs="+", default=list(CASES), help="SHAPE:APPS:SEED:SLACK[:WAVES] ...")
    parser.add_argument("--rules", action="store_true", help="add pins, windows, groups, rules, limits")
    args = parser.parse_args()
    rules = " --rules" if args.rules else ""
    title = f"`python -m bench.shapes {limits(args)}{rules}`, planner seed 0"
    build = _ruled if args.rules else shaped_estate
    estates = [(_cells(case), partial(build, case)) for case in args.cases]
    print_sweep(title, ("shape", "apps", "seed", "slack", "waves"), estates, args.time_limit, args.work_limit)


def _ruled(case: str) -> tuple[Inventory, Plan]:
    inv, planted = shaped_estate(case)
    return with_rules(inv, planted), planted


def _cells(case: str) -> str:
    """A case's own table cells, the waves filled in."""
    parts = case.split(":")
    return " | ".join(parts if len(parts) == 5 else [*parts, str(WAVES)])


if __name__ == "__main__":
    main()
