"""The cluster bound: never above the best plan of the model, exact on one cluster no wave holds."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from conftest import planner_problem, random_apps, random_rules
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migplan.generate import generate_estate
from migplan.model import App, Dependency, IntArray, Inventory, Rule, Scenario
from migplan.solve import cluster_bound as cb
from migplan.solve import search
from migplan.solve.cpsat import (
    ModelOptions,
    Problem,
    SolveOutcome,
    build_model,
    objective_units,
    risk_term_units,
    solve,
    violations,
)
from migplan.solve.pipeline import PlanOptions, plan
from migplan.solve.search import Budget


def _inv(apps: list[App], deps: list[Dependency], **scenario: object) -> Inventory:
    return Inventory(tuple(apps), tuple(deps), Scenario(**scenario))  # type: ignore[arg-type]


def _budget() -> Budget:
    return Budget.start(20.0, 120.0, None)


def _best_plan(problem: Problem) -> tuple[int, IntArray] | None:
    """(objective units, block waves) of the model's best plan, by enumeration."""
    scored = [(objective_units(problem, w), w) for w in _plans(problem)]
    return min(scored, key=lambda s: s[0], default=None)


def _plans(problem: Problem) -> list[IntArray]:
    """Every plan of the model, by enumeration."""
    blocks = problem.blocks
    ranges = [range(int(lo), int(hi) + 1) for lo, hi in zip(blocks.lo, blocks.hi, strict=True)]
    every = (np.asarray(w, dtype=np.int64) for w in itertools.product(*ranges))
    return [w for w in every if violations(problem, w).count == 0]


def _tight_inventory(seed: int) -> Inventory:
    """Up to 8 apps, 2-4 waves of few apps, chatty calls, budgets, max_risk, link and rules."""
    rng = np.random.default_rng(seed)
    n, K = int(rng.integers(3, 9)), int(rng.integers(2, 5))
    apps = random_apps(rng, n, K, 100, [40, 70, 200])
    deps: dict[tuple[int, int], Dependency] = {}
    for _ in range(int(rng.integers(1, 3 * n))):
        i, j = (int(x) for x in rng.choice(n, 2, replace=False))
        deps[(i, j)] = Dependency(f"a{i}", f"a{j}", float(rng.integers(1, 50)), sync=bool(rng.random() < 0.7))
    rules = random_rules(rng, n)
    return _inv(
        apps,
        list(deps.values()),
        waves=K,
        capacity_apps=float(-(-n // K) + rng.integers(0, 2)),
        rules=rules,
        callees_first=bool(rng.random() < 0.2),
        link_gbps=0.0005 if rng.random() < 0.2 else None,
        max_risk=float(rng.choice([0.4, 0.6])) if rng.random() < 0.4 else None,
        split_cycles=bool(rng.random() < 0.5),
        risk_weight=float(rng.choice([0.0, 1.0])),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6))
def test_the_bound_never_exceeds_the_best_plan_of_the_model(seed: int) -> None:
    inv = _tight_inventory(seed)
    problem = planner_problem(inv, inv.scenario.risk_weight)[1]
    best = _best_plan(problem)
    if best is None:
        return  # no plan: nothing to bound
    found = cb.cluster_bound(problem, best[1], _budget(), seed=0)
    assert found.units <= best[0]


def _chain(qps: list[float], **scenario: object) -> Inventory:
    """a0 -> a1 -> ... with the given qps per call, async (no latency rows)."""
    apps = [App(f"a{i}", 1.0) for i in range(len(qps) + 1)]
    deps = [Dependency(f"a{i}", f"a{i + 1}", q, sync=False) for i, q in enumerate(qps)]
    return _inv(apps, deps, risk_weight=0.0, **scenario)


def test_one_cluster_no_wave_holds_counts_with_its_optimum() -> None:
    # four apps, two per wave: the cheapest cut is the 5-qps middle call, split for one period
    problem = planner_problem(_chain([10, 5, 10], waves=2, capacity_apps=2.0), 0.0)[1]
    found = cb.cluster_bound(problem, np.array([1, 1, 2, 2]), _budget(), seed=0)
    assert (found.clusters, found.proven) == (1, 1)
    assert found.units / problem.qps_scale == pytest.approx(5.0)


def test_clusters_that_fit_one_wave_are_not_solved() -> None:
    problem = planner_problem(_chain([10, 5, 10], waves=2, capacity_apps=4.0), 0.0)[1]
    found = cb.cluster_bound(problem, np.array([1, 1, 1, 1]), _budget(), seed=0)
    assert (found.units, found.clusters, found.work) == (0, 0, 0.0)


def test_a_rule_between_two_blocks_keeps_their_cluster_out_of_one_wave() -> None:
    inv = _chain([10], waves=3, rules=(Rule("before", ("a0", "a1")),))
    problem = planner_problem(inv, 0.0)[1]
    assert not cb.fits_one_wave(problem, np.array([0, 1]))
    found = cb.cluster_bound(problem, np.array([1, 2]), _budget(), seed=0)
    assert found.units / problem.qps_scale == pytest.approx(10.0)


def test_the_risk_floor_counts_the_largest_block_and_two_blocks_sharing_a_wave() -> None:
    # risk grows with criticality: three waves for four apps, so two share a wave; the
    # best such plan puts the two least risky together and leaves the pilot empty
    apps = [App(f"a{i}", 1.0, criticality=c) for i, c in enumerate((1, 2, 4, 5))]
    inv = _inv(apps, [Dependency("a0", "a1", 100.0, sync=False)], waves=3, risk_weight=1.0)
    problem = planner_problem(inv, 1.0)[1]
    best = min(risk_term_units(problem, np.asarray(w)) for w in itertools.product(range(1, 4), repeat=4))
    assert problem.risk_units.max() < cb.risk_floor(problem) <= best


def test_the_risk_floor_is_met_by_an_empty_pilot_and_even_later_waves() -> None:
    apps = [App(f"a{i}", 1.0, criticality=3) for i in range(3)]
    inv = _inv(apps, [Dependency("a0", "a1", 100.0, sync=False)], waves=4, risk_weight=1.0)
    # the risk term is priced in qps: 1 % of (total qps x K) per unit of risk share
    problem = planner_problem(inv, 1.0)[1]
    assert cb.risk_floor(problem) == risk_term_units(problem, np.array([2, 3, 4]))
    assert cb.risk_floor(problem) < risk_term_units(problem, np.array([1, 2, 3]))
    assert cb.risk_floor(planner_problem(inv, 0.0)[1]) == 0


def test_a_cluster_model_keeps_only_its_own_calls_loads_and_rules() -> None:
    inv = _chain([10, 5, 10], waves=2, capacity_apps=2.0, rules=(Rule("before", ("a2", "a3")),))
    problem = planner_problem(inv, 0.0)[1]
    sub = cb.restrict(problem, np.array([2, 3]))
    assert sub.count == 2 and sub.E == 1
    assert sub.weight.tolist() == [problem.weight[2]]
    assert sub.before == ((0, 1, 0),)
    assert sub.loads["apps"].tolist() == problem.loads["apps"][2:].tolist()
    assert sub.risk_weight_units == 0


def test_an_unsolved_cluster_is_clustered_again_at_half_the_size(monkeypatch: pytest.MonkeyPatch) -> None:
    # 8 apps in a chain, 2 per wave: one cluster of 8 blocks; its model "stops early" with a
    # bound of 0 (stand-in), so its halves of 4 blocks are solved and give the bound
    calls: list[int] = []
    real = search.solve

    def stopped_early_when_large(wm: Any, **kw: Any) -> Any:
        outcome, solver = real(wm, **kw)
        calls.append(wm.problem.count)
        if wm.problem.count == 8:
            return SolveOutcome("feasible", outcome.waves, outcome.objective, 0.0, 0.1, 0.1), solver
        return outcome, solver

    monkeypatch.setattr(search, "solve", stopped_early_when_large)
    monkeypatch.setattr(cb, "CLUSTER_BLOCKS", 8)
    problem = planner_problem(_chain([10, 9, 8, 1, 8, 9, 10], waves=4, capacity_apps=2.0), 0.0)[1]
    found = cb.cluster_bound(problem, np.array([1, 1, 2, 2, 3, 3, 4, 4]), _budget(), seed=0)
    assert calls == [8, 4, 4]
    # each 4-app half needs two waves of two apps at best: its cheapest cut is its 9-qps call
    # (the whole chain's optimum is 9 + 1 + 9)
    assert found.units / problem.qps_scale == pytest.approx(18.0)
    assert (found.clusters, found.proven) == (3, 2)


def test_the_planner_reports_the_cluster_bound_when_it_is_the_best() -> None:
    # 60 apps at 12 waves: the full model proves nothing in this budget; the clusters do
    inv = generate_estate(60, 5, waves=12).inventory
    result = plan(inv, PlanOptions(time_limit=120, seed=0, workers=1, work_limit=8.0))
    stage = next(s for s in result.stages if s["name"] == "bound")
    assert stage["clusters"] >= 1 and stage["lower_bound"] > 0
    assert result.objective is not None and result.lower_bound is not None
    assert stage["lower_bound"] <= result.objective
    assert result.lower_bound >= stage["lower_bound"]
    assert result.gap == pytest.approx((result.objective - result.lower_bound) / result.objective)


def _inside_cost(problem: Problem, waves: IntArray, members: IntArray) -> int:
    inside = np.zeros(problem.count, dtype=bool)
    inside[members] = True
    among = inside[problem.eu] & inside[problem.ev]
    return int((problem.weight[among] * np.abs(waves[problem.eu[among]] - waves[problem.ev[among]])).sum())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6))
def test_every_cut_holds_for_every_plan_of_the_model(seed: int) -> None:
    inv = _tight_inventory(seed)
    problem = planner_problem(inv, inv.scenario.risk_weight)[1]
    plans = _plans(problem)
    if not plans:
        return
    found = cb.cluster_bound(problem, plans[0], _budget(), seed=0, sizes=(1.0, 0.5, 1.5))
    for cut in found.cuts:
        assert min(_inside_cost(problem, w, cut.members) for w in plans) >= cut.units


def test_each_clustering_is_a_bound_and_every_cluster_a_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    # a chain of 8 apps at 2 per wave: clusters of 8 blocks (one, the whole chain: 9 + 1 + 9
    # at best) and of 4 (two halves, 9 each); the bound is the better clustering's sum
    monkeypatch.setattr(cb, "CLUSTER_BLOCKS", 8)
    problem = planner_problem(_chain([10, 9, 8, 1, 8, 9, 10], waves=4, capacity_apps=2.0), 0.0)[1]
    waves = np.array([1, 1, 2, 2, 3, 3, 4, 4])
    found = cb.cluster_bound(problem, waves, _budget(), seed=0, sizes=(0.5, 1.0))
    assert found.units / problem.qps_scale == pytest.approx(19.0)
    units = sorted((len(c.members), c.units / problem.qps_scale) for c in found.cuts)
    assert units == [(4, pytest.approx(9.0)), (4, pytest.approx(9.0)), (8, pytest.approx(19.0))]
    alone = cb.cluster_bound(problem, waves, _budget(), seed=0, sizes=(0.5,))
    assert alone.units / problem.qps_scale == pytest.approx(18.0)


def test_a_cut_is_a_row_of_the_model() -> None:
    # four apps, two per wave: the optimum splits the 5-qps middle call; a cut above its cost
    # leaves the best plan that meets the cut (by enumeration), which costs more.  With exact
    # splits: otherwise the model may meet the cut with splits its plan does not make
    problem = planner_problem(_chain([10, 5, 10], waves=2, capacity_apps=2.0), 0.0)[1]
    every, plans = np.arange(problem.count), _plans(problem)
    optimum = min(objective_units(problem, w) for w in plans)
    for units in (optimum, optimum + 1):
        wm = build_model(problem, np.array([1, 1, 2, 2]), every, ModelOptions(exact_splits=True))
        cb.add_cuts(wm, [cb.Cut(every, units)])
        outcome = solve(wm, deterministic_time=5.0, wall_time=30.0)[0]
        best = min(objective_units(problem, w) for w in plans if _inside_cost(problem, w, every) >= units)
        assert outcome.status == "optimal"
        assert outcome.objective == pytest.approx(best)
    assert best > optimum
