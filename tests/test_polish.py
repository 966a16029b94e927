"""Single-block moves: lower the objective, never make a constraint instance worse, repeat exactly."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import planner_problem

from migplan import metrics
from migplan.generate import generate_estate
from migplan.model import App, Dependency, Inventory, Plan, Rule, Scenario
from migplan.solve.blocks import build_blocks
from migplan.solve.cpsat import Problem, Violations, build_problem, objective_units, violations
from migplan.solve.polish import polish
from migplan.solve.search import Budget
from migplan.solve.start import construct_blocks


def _budget(work: float = 5.0) -> Budget:
    return Budget.start(work, 60, None)


def _problem(apps: list[App], deps: list[Dependency], **scenario: object) -> Problem:
    inv = Inventory(tuple(apps), tuple(deps), Scenario(risk_weight=0.0, **scenario))  # type: ignore[arg-type]
    return build_problem(inv, build_blocks(inv), 0.0)


def test_a_block_far_from_its_partner_moves_next_to_it() -> None:
    problem = _problem(
        [App(a, 1) for a in "abc"], [Dependency("a", "b", 100), Dependency("b", "c", 1)], waves=4
    )
    start = np.array([1, 4, 4])  # a -> b split for three periods: 300
    result = polish(problem, start, _budget())
    assert objective_units(problem, start) == 300 * problem.qps_scale
    assert result.waves.tolist() == [4, 4, 4]  # a joins b (gain 300), not b a (gain 297)
    assert result.objective == objective_units(problem, result.waves) == 0
    assert result.moves == 1


def test_a_move_that_would_break_a_latency_budget_is_not_made() -> None:
    """fe (budget 40 ms) already pays 30 ms for fe -> x in period 1; svc joining db in wave 1
    (500 qps) would split fe -> svc too (60 ms), so svc stays although db pulls it."""
    apps = [
        App("fe", 1, latency_budget_ms=40),
        App("svc", 1),
        App("x", 1, pinned_wave=1),
        App("db", 1, pinned_wave=1),
    ]
    deps = [Dependency("fe", "svc", 1), Dependency("fe", "x", 1), Dependency("db", "svc", 500)]
    problem = _problem(apps, deps, waves=2)
    start = np.array([2, 2, 1, 1])
    assert violations(problem, start).count == 0
    result = polish(problem, start, _budget())
    assert result.waves.tolist() == start.tolist()
    # with a looser budget the same move is made: the budget, not the cost, held it back
    loose = _problem([App("fe", 1, latency_budget_ms=100), *apps[1:]], deps, waves=2)
    assert polish(loose, start, _budget()).waves[1] == 1


def test_full_waves_and_ordering_rules_hold_moves_back() -> None:
    deps = [Dependency("a", "b", 100)]
    full = _problem([App(a, 1) for a in "abc"], deps, waves=2, capacity_apps=2.0)
    start = np.array([1, 2, 1])
    moved = polish(full, start, _budget()).waves
    assert moved.tolist() == [2, 2, 1]  # b may not join a in wave 1 (full), so a joins b
    ruled = _problem([App(a, 1) for a in "abc"], deps, waves=2, rules=(Rule("before", ("a", "b")),))
    assert polish(ruled, start, _budget()).waves.tolist() == start.tolist()


def _no_instance_worse(before: Violations, after: Violations) -> None:
    assert np.all(after.latency <= before.latency)
    for res, excess in before.capacity.items():
        assert np.all(after.capacity[res] <= excess)
    assert np.all(after.link <= before.link)
    assert np.all(after.risk <= before.risk)
    for name in ("before", "apart", "callees_first", "range"):
        assert np.all(np.asarray(getattr(after, name)) <= np.asarray(getattr(before, name)))


@pytest.mark.parametrize(("apps", "seed"), [(120, 1), (300, 4), (600, 7)])
def test_on_generated_estates_the_objective_falls_and_no_instance_gets_worse(apps: int, seed: int) -> None:
    """From the latency-blind start (infeasible) and from the planted plan (feasible)."""
    estate = generate_estate(apps, seed)
    inv = estate.inventory
    blocks, problem = planner_problem(inv)
    first = np.asarray([m[0] for m in blocks.members])
    planted = estate.planted.array[first]
    blind = construct_blocks(inv, blocks, seed)  # latency-blind: breaks budgets
    for start in (planted, blind):
        before = violations(problem, start)
        result = polish(problem, start, _budget())
        assert result.objective == objective_units(problem, result.waves)
        assert result.objective <= objective_units(problem, start)
        _no_instance_worse(before, violations(problem, result.waves))
        assert polish(problem, start, _budget()).waves.tolist() == result.waves.tolist()
    feasible = polish(problem, planted, _budget()).waves
    assert metrics.evaluate(inv, Plan.from_array(blocks.expand(feasible), inv.K)).feasible


def test_the_budget_bounds_the_work() -> None:
    inv = generate_estate(300, 4).inventory
    _, problem = planner_problem(inv)
    start = np.arange(problem.count) % problem.K + 1
    small = _budget(0.01)
    result = polish(problem, start, small)
    assert small.used < 0.01 + 0.02  # stops within one check batch of the limit
    assert result.checks < polish(problem, start, _budget()).checks
