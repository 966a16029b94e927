"""Many waves: plan on merged pairs of waves first, then split each merged wave in two.

Why: at 20 waves and more the repair stalls.  Every sub-model holds each budget row once
per period, so steps cost more, and the start breaks more budgets: 1,000 generated apps
at 24 waves ended with 25 budgets broken after 42 work units, 2,000 apps at 48 waves
with 124 (bench/results/2026-12-06-many-waves.md).

Derivation.  Merge waves 2j-1 and 2j into wave j of an inventory with ceil(K/2) waves
(``merged_inventory``): capacities and max_risk add up, pins and windows map to the
merged wave that holds them (max_risk, one number for every wave, doubles also for the
lone last wave of an odd K), budgets and rules stay as they are (a ``before`` or
``apart`` rule on merged waves is stricter, so it only loses plans, never admits a wrong
one).  Lift a merged plan by putting each block of merged wave j in wave 2j-1 or 2j.
Period 2j (after wave 2j) then sees exactly the split calls of the merged plan's period j,
so every budget and link limit holds there as it did.  Period 2j-1 depends only on which
of merged wave j's blocks go first, and waves 2j-1 and 2j only on how they are shared:
each merged wave's split is an independent small model (``split``, one CP-SAT window
sub-model per merged wave, starting from a greedy split).  What the splits cannot meet
is left to the repair.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from migplan.model import App, Capacity, IntArray, Inventory
from migplan.solve.cpsat import ModelOptions, Problem, violations
from migplan.solve.search import Budget, sub_solve

SPLIT_WORK = 0.5  # deterministic seconds per merged wave's split model


def merged_waves(K: int) -> int:
    """The number of merged waves for K waves."""
    return (K + 1) // 2


def merged_inventory(inv: Inventory) -> Inventory:
    """``inv`` with waves 2j-1 and 2j merged into wave j (see the module docstring)."""
    sc = inv.scenario
    merged = merged_waves(sc.waves)
    scenario = replace(
        sc,
        waves=merged,
        capacity_apps=_merged_capacity(sc.capacity_apps, sc.waves, merged),
        capacity_instances=_merged_capacity(sc.capacity_instances, sc.waves, merged),
        capacity_data_gb=_merged_capacity(sc.capacity_data_gb, sc.waves, merged),
        max_risk=None if sc.max_risk is None else min(2 * sc.max_risk, 1.0),
    )
    return Inventory(tuple(_merged_app(a) for a in inv.apps), inv.dependencies, scenario)


def _merged_capacity(raw: Capacity, waves: int, merged: int) -> Capacity:
    """Per merged wave, the sum of its waves' capacities (a lone last wave keeps its own)."""
    if raw is None:
        return None
    per_wave = raw if isinstance(raw, tuple) else (raw,) * waves
    return tuple(float(sum(per_wave[2 * j : 2 * j + 2])) for j in range(merged))


def _merged_app(app: App) -> App:
    def half(wave: int | None) -> int | None:
        return None if wave is None else (wave + 1) // 2

    return replace(
        app,
        pinned_wave=half(app.pinned_wave),
        earliest_wave=half(app.earliest_wave),
        latest_wave=half(app.latest_wave),
    )


def split(
    problem: Problem,
    merged_plan: IntArray,
    budget: Budget,
    rng: np.random.Generator,
    workers: int = 1,
) -> IntArray:
    """A block plan of ``problem`` (K waves) from a per-app plan on the merged waves.

    Each merged wave j is split greedily (``_greedy``), then by a window sub-model on waves
    (2j-1, 2j) with the instances the greedy split breaks soft (never growing) and the
    chatty cost minimised after them; kept when it breaks no more than the greedy split.
    """
    blocks = problem.blocks
    # a block's apps share one merged wave (both inventories contract the same way)
    merged = np.asarray(merged_plan, dtype=np.int64)[[m[0] for m in blocks.members]]
    current = _greedy(problem, merged)
    score = violations(problem, current).score
    for j in range(1, merged_waves(problem.K) + 1):
        window = (2 * j - 1, min(2 * j, problem.K))
        if window[0] == window[1] or budget.exhausted():
            continue
        free = np.flatnonzero(merged == j)
        options = ModelOptions(soft=True, window=window)
        found = sub_solve(problem, current, free, options, budget, rng, SPLIT_WORK, workers)
        found_score = violations(problem, found).score if found is not None else np.inf
        if found is not None and found_score <= score:
            current, score = found, found_score
    return current


def _greedy(problem: Problem, merged: IntArray) -> IntArray:
    """Each merged wave j's blocks in wave 2j-1 while it has room, those that call (or are
    called by) earlier merged waves most first, those tied to later ones last; the others
    in wave 2j.  Clipped to each block's range."""
    K, adj = problem.K, problem.adjacency
    waves = np.minimum(2 * merged, K)
    # qps to earlier merged waves minus qps to later ones: who wants to go first
    pull = np.zeros(problem.count)
    rows = np.repeat(np.arange(problem.count), np.diff(adj.indptr))
    sign = np.sign(merged[rows] - merged[adj.indices])  # +1: the neighbour is in an earlier merged wave
    np.add.at(pull, rows, sign * adj.data)
    for j in range(1, merged_waves(K) + 1):
        if 2 * j > K:
            continue
        members = np.flatnonzero(merged == j)
        used = {res: 0 for res in problem.caps}
        risk = 0
        for b in members[np.argsort(-pull[members], kind="stable")].tolist():
            fits = all(used[r] + int(problem.loads[r][b]) <= int(problem.caps[r][2 * j - 2]) for r in used)
            fits = fits and (problem.risk_cap is None or risk + int(problem.risk_load[b]) <= problem.risk_cap)
            if fits and problem.blocks.lo[b] <= 2 * j - 1:
                waves[b] = 2 * j - 1
                for r in used:
                    used[r] += int(problem.loads[r][b])
                risk += int(problem.risk_load[b])
    return np.clip(waves, problem.blocks.lo, problem.blocks.hi).astype(np.int64)
