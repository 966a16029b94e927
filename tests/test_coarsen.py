"""Coarse levels: clusters that can share a wave, and plans that mean the same on both levels."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import planner_problem

from migplan.generate import generate_estate
from migplan.model import App, Dependency, Inventory, Rule, Scenario
from migplan.solve.coarsen import coarsen
from migplan.solve.cpsat import objective_units, violations
from migplan.solve.start import construct_blocks


@pytest.fixture(scope="module")
def estate() -> Inventory:
    return generate_estate(300, 4).inventory


@pytest.mark.parametrize("max_share", [0.05, 0.3])
def test_clusters_fit_their_size_and_their_members_ranges(estate: Inventory, max_share: float) -> None:
    blocks, problem = planner_problem(estate)
    level = coarsen(problem, 1.0, max_share, seed=0)
    coarse = level.problem.blocks
    assert not coarse.conflicts
    assert 1 < coarse.count < blocks.count  # it merged, and not into one lump
    cap = estate.scenario.capacity("apps")
    assert cap is not None
    limit = max_share * float(np.median(cap))
    load = blocks.load(estate, "apps")
    for c in range(coarse.count):
        inside = np.flatnonzero(level.cluster_of == c)
        assert len(inside) == 1 or load[inside].sum() <= limit
        # every fine block's range contains the cluster's range
        assert np.all(blocks.lo[inside] <= coarse.lo[c]) and np.all(blocks.hi[inside] >= coarse.hi[c])


def test_clusters_keep_ranges_narrower_than_the_pins(estate: Inventory) -> None:
    # narrowed ranges (narrow.py) exist only on the problem's blocks, not in the inventory
    blocks, problem = planner_problem(estate)
    rng = np.random.default_rng(0)
    lo = rng.integers(1, 4, size=blocks.count).clip(blocks.lo, blocks.hi)
    narrowed = replace(problem, blocks=replace(blocks, lo=lo, hi=np.maximum(blocks.hi, lo)))
    level = coarsen(narrowed, 1.0, 0.3, seed=0)
    coarse = level.problem.blocks
    assert np.all(coarse.lo[level.cluster_of] >= lo)
    assert np.all(coarse.lo <= coarse.hi)


def test_a_coarse_plan_costs_and_breaks_what_its_fine_plan_does(estate: Inventory) -> None:
    _, problem = planner_problem(estate)
    level = coarsen(problem, 1.0, 0.1, seed=1)
    coarse_waves = construct_blocks(estate, level.problem.blocks, 0)
    fine_waves = level.refine(coarse_waves)
    assert objective_units(level.problem, coarse_waves) == objective_units(problem, fine_waves)
    assert violations(level.problem, coarse_waves).count == violations(problem, fine_waves).count
    assert np.array_equal(level.restrict(fine_waves), coarse_waves)


def test_clusters_stay_inside_the_waves_of_a_given_plan(estate: Inventory) -> None:
    blocks, problem = planner_problem(estate)
    plan = construct_blocks(estate, blocks, 0)
    level = coarsen(problem, 1.0, 0.3, seed=2, plan=plan)
    for c in range(level.problem.count):
        assert len(set(plan[level.cluster_of == c].tolist())) == 1
    assert np.array_equal(level.refine(level.restrict(plan)), plan)


def test_rules_keep_their_apps_in_different_clusters() -> None:
    # one chatty clique; without the rules Louvain would put all five in one cluster
    ids = ["a", "b", "c", "d", "e"]
    apps = tuple(App(i, 1) for i in ids)
    deps = tuple(Dependency(x, y, 50, sync=False) for x in ids for y in ids if x < y)
    rules = (Rule("before", ("a", "b")), Rule("apart", ("c", "d")))
    scenario = Scenario(waves=3, capacity_apps=5.0, risk_weight=0.0, rules=rules)
    inv = Inventory(apps, deps, scenario)
    blocks, problem = planner_problem(inv, 0.0)
    assert blocks.count == 5
    level = coarsen(problem, 0.0, 1.0, seed=0)
    of = level.cluster_of[blocks.of]
    assert of[0] != of[1] and of[2] != of[3]
    assert level.problem.count < 5  # the others did merge


def test_pins_split_a_cluster_by_wave() -> None:
    apps = (App("a", 1, pinned_wave=1), App("b", 1, pinned_wave=3), App("c", 1))
    deps = (
        Dependency("a", "b", 50, sync=False),
        Dependency("b", "c", 50, sync=False),
        Dependency("a", "c", 50),
    )
    inv = Inventory(apps, deps, Scenario(waves=3, capacity_apps=3.0, risk_weight=0.0))
    blocks, problem = planner_problem(inv, 0.0)
    level = coarsen(problem, 0.0, 1.0, seed=0)
    of = level.cluster_of[blocks.of]
    assert of[0] != of[1]
    assert not level.problem.blocks.conflicts
    assert blocks.count == 3  # async calls: nothing was contracted before clustering
