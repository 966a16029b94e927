"""Wave ranges narrowed by the latency budgets: what they remove, and that no feasible plan is lost."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migplan.generate import generate_estate
from migplan.model import App, Dependency, Inventory, Rule, Scenario
from migplan.solve.cpsat import Problem, objective_units, violations
from migplan.solve.narrow import compact_ranges, narrow_ranges
from migplan.solve.pipeline import block_problem


def _problem(inv: Inventory) -> Problem:
    """The block problem the planner narrows (estates of 1,000+ blocks)."""
    return block_problem(inv, 1.0)[0]


def _inv(budget: float, second_call: bool, waves: int = 3) -> Inventory:
    apps = [
        App("svc", 1, latency_budget_ms=budget),
        App("db1", 1, pinned_wave=waves),
        App("db2", 1, pinned_wave=waves),
    ]
    deps = [Dependency("svc", "db1", 5)] + ([Dependency("svc", "db2", 5)] if second_call else [])
    return Inventory(tuple(apps), tuple(deps), Scenario(waves=waves))


def test_two_calls_to_a_later_pin_that_only_together_break_the_budget_pin_the_caller() -> None:
    # each call adds 30 ms (under 50) when split; both split, before wave 3, add 60
    problem, narrowed = narrow_ranges(_problem(_inv(50, second_call=True)))
    svc = int(problem.blocks.of[0])
    assert narrowed == 1
    assert (problem.blocks.lo[svc], problem.blocks.hi[svc]) == (3, 3)


def test_ranges_stay_when_every_wave_can_hold_the_budget() -> None:
    for inv in (_inv(50, second_call=False), _inv(70, second_call=True)):
        problem, narrowed = narrow_ranges(_problem(inv))
        assert narrowed == 0
        svc = int(problem.blocks.of[0])
        assert (problem.blocks.lo[svc], problem.blocks.hi[svc]) == (1, 3)


def test_an_infeasible_model_keeps_its_ranges_for_the_explanation() -> None:
    # two callees pinned to wave 1, two to wave 3, 15 ms each against 20: every wave breaks
    apps = [App("svc", 1, latency_budget_ms=20)]
    apps += [App(f"db{i}", 1, pinned_wave=1 if i < 2 else 3) for i in range(4)]
    deps = [Dependency("svc", f"db{i}", 5, 0.5) for i in range(4)]
    problem = _problem(Inventory(tuple(apps), tuple(deps), Scenario(waves=3)))
    narrowed_problem, narrowed = narrow_ranges(problem)
    assert narrowed == 0
    assert np.array_equal(narrowed_problem.blocks.lo, problem.blocks.lo)
    assert np.array_equal(narrowed_problem.blocks.hi, problem.blocks.hi)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6))
def test_no_plan_the_model_accepts_is_outside_the_narrowed_ranges(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, K = 6, 3
    apps = [
        App(
            f"a{i}",
            1,
            latency_budget_ms=float(rng.choice([35, 50, 70, 100])),
            pinned_wave=int(rng.integers(1, K + 1)) if rng.random() < 0.4 else None,
        )
        for i in range(n)
    ]
    deps = [
        Dependency(f"a{i}", f"a{j}", float(rng.integers(1, 50)), float(rng.choice([0.3, 0.6, 1.0])))
        for i, j in itertools.permutations(range(n), 2)
        if i < j and rng.random() < 0.45
    ]
    problem = _problem(Inventory(tuple(apps), tuple(deps), Scenario(waves=K, rtt_ms=30.0)))
    narrowed, _ = narrow_ranges(problem)
    for waves in itertools.product(range(1, K + 1), repeat=problem.count):
        plan = np.asarray(waves, dtype=np.int64)
        if violations(problem, plan).count == 0:
            assert np.all((plan >= narrowed.blocks.lo) & (plan <= narrowed.blocks.hi)), plan


def test_a_generated_estate_keeps_its_planted_plan_inside_the_narrowed_ranges() -> None:
    estate = generate_estate(800, 2, waves=6)
    problem = _problem(estate.inventory)
    narrowed, count = narrow_ranges(problem)
    planted = np.asarray(estate.planted.waves)[[m[0] for m in problem.blocks.members]]
    assert violations(problem, planted).count == 0  # budgets are 1.1 x the planted latency
    assert count > 0
    assert np.all((planted >= narrowed.blocks.lo) & (planted <= narrowed.blocks.hi))


def _best(problem: Problem) -> int | None:
    """The least objective over every plan inside the blocks' ranges (None: no plan)."""
    best = None
    ranges = [
        range(int(lo), int(hi) + 1) for lo, hi in zip(problem.blocks.lo, problem.blocks.hi, strict=True)
    ]
    for waves in itertools.product(*ranges):
        plan = np.asarray(waves, dtype=np.int64)
        if violations(problem, plan).count == 0:
            value = objective_units(problem, plan)
            best = value if best is None else min(best, value)
    return best


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6))
def test_compacted_ranges_keep_the_optimum_and_the_verdict(seed: int) -> None:
    """More waves than blocks: cutting the ranges to waves 1..B + 1 loses no better plan and
    no feasible one (brute force over every plan of 4 apps at 7 waves, rules, budgets,
    a pilot-sized wave 1, max_risk and the risk term)."""
    rng = np.random.default_rng(seed)
    n, K = 4, 7
    apps = [
        App(
            f"a{i}",
            float(rng.integers(1, 9)),
            latency_budget_ms=float(rng.choice([35, 70, 100])),
            risk=float(rng.integers(0, 4)),
            pinned_wave=1 if rng.random() < 0.2 else None,
        )
        for i in range(n)
    ]
    deps = [
        Dependency(f"a{i}", f"a{j}", float(rng.integers(1, 50)), float(rng.choice([0.5, 1.0])))
        for i, j in itertools.permutations(range(n), 2)
        if i < j and rng.random() < 0.5
    ]
    rules = (Rule("before", ("a3", "a0")),) if rng.random() < 0.5 else ()
    pilot = float(rng.integers(1, 3))
    scenario = Scenario(
        waves=K,
        rtt_ms=30.0,
        capacity_apps=(pilot, *([2.0] * (K - 1))),
        max_risk=float(rng.choice([0.5, 0.8])) if sum(a.risk or 0 for a in apps) else None,
        rules=rules,
    )
    problem = _problem(Inventory(tuple(apps), tuple(deps), scenario))
    compacted, used = compact_ranges(problem)
    assert used == problem.count + 1 and int(compacted.blocks.hi.max()) <= used
    assert _best(compacted) == _best(problem)


def test_ranges_stay_with_a_window_or_capacities_that_change_after_wave_1() -> None:
    apps = (App("a", 1), App("b", 1, earliest_wave=3), App("c", 1))
    deps = (Dependency("a", "b", 1), Dependency("b", "c", 1))
    assert compact_ranges(_problem(Inventory(apps, deps, Scenario(waves=9))))[1] == 0
    plain = tuple(App(x, 1) for x in "abc")
    assert compact_ranges(_problem(Inventory(plain, deps, Scenario(waves=9))))[1] == 4
    ramp = Scenario(waves=9, capacity_apps=(1.0, 1.0, *([2.0] * 7)))
    assert compact_ranges(_problem(Inventory(plain, deps, ramp)))[1] == 0
    assert compact_ranges(_problem(Inventory(plain, deps, Scenario(waves=4))))[1] == 0  # K <= B + 1
    one = Scenario(waves=1, capacity_apps=5.0)  # one wave: its capacity array has one number
    assert compact_ranges(_problem(Inventory(plain, deps, one)))[1] == 0
