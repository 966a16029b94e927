"""The latency-aware start: budget-weighted mapping runs, the least violating one kept."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import planner_problem

from migplan.generate import generate_estate
from migplan.model import App, Dependency, Inventory, Scenario
from migplan.solve.blocks import build_blocks
from migplan.solve.cpsat import build_problem, latency_matrix, objective_units, violations
from migplan.solve.forced import contract_unsplittable
from migplan.solve.start import (
    LATENCY_WEIGHTS,
    budget_shares,
    construct_blocks,
    latency_aware_start,
    share_matrix,
    simple_start,
)


def test_weighted_starts_keep_the_least_violating_run_within_ranges() -> None:
    inv = generate_estate(200, 5).inventory
    blocks, problem = planner_problem(inv)
    start, tried = latency_aware_start(problem, 0, lambda: True)
    assert [t["weight"] for t in tried] == list(LATENCY_WEIGHTS)
    chosen = min(tried, key=lambda t: (t["score"], t["cost"]))  # fewest violations, then cheapest
    assert round(violations(problem, start).score, 3) == chosen["score"]
    assert objective_units(problem, start) == chosen["cost"]
    plain = next(t for t in tried if t["weight"] == 0)
    assert plain["score"] == round(violations(problem, construct_blocks(inv, blocks, 0)).score, 3)
    assert np.all((start >= blocks.lo) & (start <= blocks.hi))
    first, tried_once = latency_aware_start(problem, 0, lambda: False, max_runs=3)
    assert len(tried_once) == 1  # keep_going is asked before every run but the first
    assert np.array_equal(
        first,
        construct_blocks(inv, blocks, 0, share_matrix(problem, budget_shares(problem), LATENCY_WEIGHTS[0])),
    )


def test_past_12_waves_the_weights_grow_and_a_merged_waves_mapping_is_tried_too() -> None:
    """At 36 waves the first run weighs budgets 3 x, and maps onto the path and onto merged
    pairs of waves; the start is whichever breaks fewer budgets (then the cheaper)."""
    inv = generate_estate(120, 5, waves=36).inventory
    blocks, problem = planner_problem(inv)
    first, tried = latency_aware_start(problem, 0, lambda: False)
    assert [(t["weight"], t.get("merged", False)) for t in tried] == [(3.0, False), (3.0, True)]
    tripled = share_matrix(problem, budget_shares(problem), 3 * LATENCY_WEIGHTS[0])
    candidates = [construct_blocks(inv, blocks, 0, tripled, merged=m) for m in (False, True)]
    keys = [(round(violations(problem, c).score, 3), objective_units(problem, c)) for c in candidates]
    assert [(t["score"], t["cost"]) for t in tried] == keys
    assert np.array_equal(first, candidates[min(range(2), key=lambda i: keys[i])])
    assert np.all((candidates[1] >= blocks.lo) & (candidates[1] <= blocks.hi))


def test_budget_share_is_ms_per_split_over_the_budget() -> None:
    """fe (budget 50 ms) calls svc twice per request: splitting that call costs 60 ms, 1.2 budgets."""
    apps = [App("fe", 1, latency_budget_ms=50), App("svc", 1), App("x", 1)]
    deps = [Dependency("fe", "svc", 10, calls_per_request=2), Dependency("svc", "x", 5, sync=False)]
    inv = Inventory(tuple(apps), tuple(deps), Scenario(waves=2, rtt_ms=30, risk_weight=0.0))
    problem = build_problem(inv, build_blocks(inv), 0.0)
    share = budget_shares(problem)
    fe_svc = int(np.flatnonzero((problem.eu == 0) & (problem.ev == 1))[0])
    assert share[fe_svc] == pytest.approx(1.2, rel=1e-3)
    assert share.sum() == pytest.approx(1.2, rel=1e-3)  # the async call costs no budget
    extra = share_matrix(problem, share, 2.0)
    assert extra.sum() == pytest.approx(2 * 2 * 15.0)  # weight x total qps, both directions


def test_simple_start_fills_waves_in_order() -> None:
    inv = generate_estate(60, 1).inventory
    L, _, unsplittable = latency_matrix(inv)
    blocks, _ = contract_unsplittable(inv, L, unsplittable)
    waves = simple_start(inv, blocks)
    assert waves.min() >= 1 and waves.max() <= inv.K
    assert np.all((waves >= blocks.lo) & (waves <= blocks.hi))
