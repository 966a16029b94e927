"""The planner end to end: statuses, feasibility of every returned plan, determinism, interruption."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.exact_budgets import exact_budgets
from migplan import metrics
from migplan.generate import generate_estate
from migplan.model import App, Dependency, Finding, IntArray, Inventory, Rule, Scenario
from migplan.solve import bounds, explain, feasibility, lns, pipeline
from migplan.solve.cpsat import Problem, relaxed_problem, violations
from migplan.solve.pipeline import PlanOptions, PlanResult, Progress, plan
from migplan.solve.search import Budget

RepairBody = Callable[[Problem, IntArray, Budget], feasibility.RepairResult]


def _inv(apps: list[App], deps: list[Dependency], **scenario: object) -> Inventory:
    return Inventory(tuple(apps), tuple(deps), Scenario(**scenario))  # type: ignore[arg-type]


def _repair_stub(
    body: RepairBody, tidies: list[bool] | None = None
) -> Callable[..., feasibility.RepairResult]:
    """A stand-in for ``feasibility.repair`` with its signature; ``body`` says what it does,
    ``tidies`` collects each call's ``tidy``."""

    def stub(
        problem: Problem,
        waves: IntArray,
        budget: Budget,
        rng: np.random.Generator,
        on_step: object = None,
        workers: int = 1,
        tidy: bool = True,
        kicks: bool = True,
        patience: int | None = None,
        enough: object = None,
    ) -> feasibility.RepairResult:
        if tidies is not None:
            tidies.append(tidy)
        return body(problem, waves, budget)

    return stub


def test_small_estate_is_proven_optimal_with_zero_gap() -> None:
    apps = [App(x, 1.0) for x in "abcd"]
    deps = [Dependency("a", "b", 10), Dependency("b", "c", 5), Dependency("c", "d", 1)]
    result = plan(_inv(apps, deps, waves=2, capacity_apps=2.0, risk_weight=0.0), PlanOptions(time_limit=20))
    assert result.status == "optimal"
    assert result.plan is not None and result.evaluation is not None
    assert result.evaluation.chatty_cost == 5
    assert result.objective == 5 and result.lower_bound == 5 and result.gap == 0
    assert [s["name"] for s in result.stages] == [
        "blocks",
        "precheck",
        "construction",
        "feasibility",
        "bound",
        "full model",
    ]
    assert result.solver_info["risk_weight"] == 0.0


def test_a_plan_of_cost_0_is_proven_optimal_without_a_search() -> None:
    # 120 apps (more than SMALL_BLOCKS blocks, 9 waves: more than SMALL_LITERALS literals),
    # each caller with its own callee: waves of 40 apps hold every pair, so no call is ever
    # split; before, the improvement searched on until the time limit and the gap was unknown
    apps = [App(f"a{i}", 1.0) for i in range(120)]
    deps = [Dependency(f"a{i}", f"a{i + 1}", 10.0, sync=False) for i in range(0, 120, 2)]
    inv = _inv(apps, deps, waves=9, capacity_apps=40.0, risk_weight=0.0)
    result = plan(inv, PlanOptions(time_limit=60, seed=0))
    assert result.solver_info["blocks"] > pipeline.SMALL_BLOCKS
    assert result.solver_info["blocks"] * 8 > pipeline.SMALL_LITERALS
    assert (result.status, result.objective, result.gap) == ("optimal", 0.0, 0.0)
    improvement = next(s for s in result.stages if s["name"] == "improvement")
    assert improvement["steps"] == 0


def test_a_plan_reaching_a_model_bound_is_optimal_only_if_it_is_a_plan_of_the_model() -> None:
    apps = [App(x, 1.0) for x in "abcd"]
    deps = [Dependency("a", "b", 10, sync=False), Dependency("c", "d", 5, sync=False)]
    problem = pipeline.block_problem(_inv(apps, deps, waves=2, capacity_apps=2.0, risk_weight=0.0), 0.0)[0]
    fits, overfull = np.array([1, 1, 2, 2]), np.array([1, 1, 1, 2])
    assert pipeline._meets_bound(problem, fits, 0.0, None)
    assert pipeline._meets_bound(problem, fits, 5.0, 5.0)
    assert not pipeline._meets_bound(problem, fits, 5.0, 4.0)
    assert not pipeline._meets_bound(problem, overfull, 5.0, 5.0)  # three apps in a wave of two


def test_the_proof_phase_proves_what_the_search_alone_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    # 40 apps, 8 waves: two interleaved workers end without a proof in 10 units, the
    # one-worker full-LP phase hinted with their plan proves it (seed 6 since the full model
    # is the relaxed one: the search alone proves seed 5's estate)
    estate = generate_estate(40, 6, waves=8).inventory
    options = PlanOptions(time_limit=60, work_limit=10.0)
    proved = plan(estate, options)
    assert proved.status == "optimal"
    phases = proved.stages[-1]["phases"]
    assert [(p["workers"], p["full_lp"], p["relaxed"]) for p in phases] == [
        (2, False, False),
        (1, True, True),
    ]
    assert phases[-1]["cp_sat_status"] == "optimal"
    monkeypatch.setattr(pipeline, "PROOF_MAX_LITERALS", 0)  # no proof phase: two searches
    searched = plan(estate, options)
    assert searched.status == "feasible"
    assert [(p["workers"], p["full_lp"]) for p in searched.stages[-1]["phases"]] == [(2, False), (2, False)]
    assert proved.objective is not None and searched.objective is not None
    assert proved.objective <= searched.objective


def test_the_idle_core_searches_for_a_bound_beside_the_proof_phase() -> None:
    # 60 apps, 8 waves: the full-LP worker does not prove it in 8 units; a bound-first run
    # (lb_tree_search) beside it raises the bound, and the pair repeats exactly
    estate = generate_estate(60, 6, waves=8).inventory
    options = PlanOptions(time_limit=120, work_limit=8.0)
    first, again = plan(estate, options), plan(estate, options)
    proof = [p for p in first.stages[-1]["phases"] if p["full_lp"]]
    assert [p["lb_tree_search"] for p in proof] == [False, True]
    scale = pipeline.block_problem(estate, 1.0)[0].qps_scale
    assert first.lower_bound is not None and first.objective is not None
    assert first.lower_bound >= max(p["bound"] for p in proof) / scale * (1 - 1e-9)
    assert proof[1]["bound"] > proof[0]["bound"]  # what the second run is there for
    assert first.plan is not None and again.plan is not None
    assert (first.plan.array == again.plan.array).all()

    def without_seconds(result: PlanResult) -> list[dict[str, Any]]:
        return [{k: v for k, v in p.items() if k != "seconds"} for p in result.stages[-1]["phases"]]

    assert without_seconds(first) == without_seconds(again)
    alone = plan(estate, replace(options, workers=1))
    assert [p["lb_tree_search"] for p in alone.stages[-1]["phases"] if p["full_lp"]] == [False]


def test_an_unproven_small_plan_reports_cp_sat_s_bound_on_the_full_model() -> None:
    # the spectral bound says nothing here (about 9 against an optimum near 29,000); the
    # full model's bound is a lower bound on every plan of the model, so it gives a gap
    estate = generate_estate(30, 6, waves=8).inventory
    proved = plan(estate, PlanOptions(time_limit=60, work_limit=7.0))
    cut_short = plan(estate, PlanOptions(time_limit=60, work_limit=3.0))
    assert proved.status == "optimal" and cut_short.status == "feasible"
    assert proved.objective is not None and cut_short.objective is not None
    lower = cut_short.lower_bound
    spectral = bounds.spectral_lower_bound(estate)
    assert lower is not None and spectral is not None and lower > 100 * spectral
    assert lower <= proved.objective <= cut_short.objective
    assert cut_short.gap == pytest.approx((cut_short.objective - lower) / cut_short.objective)
    assert cut_short.solver_info["quality"].startswith("gap ≤")


def test_one_wave_is_reported_as_proven_optimal_on_the_large_path() -> None:
    """K = 1 has one plan only; past SMALL_BLOCKS (no full model) it is still called optimal."""
    n = pipeline.SMALL_BLOCKS + 20
    apps = [App(f"a{i:03d}", 10.0) for i in range(n)]
    deps = [Dependency(f"a{i:03d}", f"a{i + 1:03d}", 5.0, sync=False) for i in range(0, n - 1, 2)]
    result = plan(_inv(apps, deps, waves=1), PlanOptions(time_limit=20))
    assert result.solver_info["blocks"] > pipeline.SMALL_BLOCKS
    assert result.status == "optimal"
    assert result.gap == 0.0
    assert result.plan is not None and set(result.plan.waves) == {1}


def test_risk_weight_option_overrides_the_scenario() -> None:
    apps = [App(x, 1.0, criticality=1 if x == "a" else 5) for x in "abcd"]
    inv = _inv(apps, [Dependency("a", "b", 1)], waves=2, risk_weight=0.0)
    risky = plan(inv, PlanOptions(time_limit=20, risk_weight=5.0))
    assert risky.solver_info["risk_weight"] == 5.0
    assert risky.plan is not None and risky.evaluation is not None
    # the pilot term keeps the riskiest app out of wave 1
    assert risky.plan.waves[0] == 2


def test_precheck_errors_make_the_status_infeasible_with_their_findings() -> None:
    apps = [App("a", 1, group="g", pinned_wave=1), App("b", 1, group="g", pinned_wave=2)]
    result = plan(_inv(apps, [], waves=2), PlanOptions(time_limit=10))
    assert result.status == "infeasible"
    assert result.plan is None
    assert any("a pinned to wave 1" in f.message for f in result.explanation)


def test_latency_that_pins_make_impossible_is_infeasible_and_explained() -> None:
    apps = [App("svc", 1, latency_budget_ms=40, pinned_wave=1), App("db", 1, pinned_wave=3)]
    result = plan(
        _inv(apps, [Dependency("svc", "db", 10, calls_per_request=2)], waves=3), PlanOptions(time_limit=10)
    )
    assert result.status == "infeasible"
    assert any("svc" in f.message and "db" in f.message for f in result.explanation)


def test_a_block_that_budgets_tie_and_no_wave_holds_is_refused_before_any_search() -> None:
    """svc -> db at 2 calls/request adds 60 ms to svc (budget 40 ms): they share a wave, which holds 1 app.

    The plain blocks pass every check, so only the precheck on the contracted blocks can say it;
    at 20 waves of 5 apps the demo's like case took the full model 60 s, with no reason given.
    """
    apps = [App("svc", 1, latency_budget_ms=40), App("db", 1), *(App(f"x{i}", 1) for i in range(4))]
    inv = _inv(apps, [Dependency("svc", "db", 10, calls_per_request=2)], waves=8, capacity_apps=1.0)
    result = plan(inv, PlanOptions(time_limit=10))
    assert result.status == "infeasible"
    assert [f.code for f in result.explanation] == ["capacity-block-apps"]
    assert "splitting svc → db alone adds 60 ms to svc's latency" in result.explanation[0].message
    assert [s["name"] for s in result.stages] == ["blocks", "precheck"]


def test_unsplittable_calls_are_contracted_and_counted() -> None:
    apps = [App("svc", 1, latency_budget_ms=20), App("db", 1), App("x", 1), App("y", 1)]
    deps = [Dependency("svc", "db", 10), Dependency("x", "y", 1)]
    result = plan(_inv(apps, deps, waves=2, capacity_apps=2.0, risk_weight=0.0), PlanOptions(time_limit=10))
    assert result.solver_info["unsplittable_calls_contracted"] == 1
    assert result.plan is not None
    assert result.plan.waves[0] == result.plan.waves[1]


def _random_inventory(seed: int) -> Inventory:
    """Up to 9 apps, random calls (sync, calls_per_request), budgets, pins and capacities."""
    rng = np.random.default_rng(seed)
    n, K = int(rng.integers(2, 10)), int(rng.integers(2, 5))
    apps = [
        App(
            f"a{i}",
            float(rng.integers(1, 100)),
            latency_budget_ms=float(rng.choice([20, 45, 70, 200])),
            pinned_wave=int(rng.integers(1, K + 1)) if rng.random() < 0.15 else None,
        )
        for i in range(n)
    ]
    deps: dict[tuple[int, int], Dependency] = {}
    for _ in range(int(rng.integers(0, 2 * n))):
        i, j = (int(x) for x in rng.choice(n, 2, replace=False))
        deps[(i, j)] = Dependency(
            f"a{i}",
            f"a{j}",
            float(rng.integers(1, 50)),
            calls_per_request=float(rng.choice([0.5, 1.0, 2.0])),
            sync=bool(rng.random() < 0.8),
        )
    return _inv(apps, list(deps.values()), waves=K, capacity_apps=float(-(-n // K) + rng.integers(0, 3)))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6))
def test_every_returned_plan_is_feasible_by_metrics(seed: int) -> None:
    inv = _random_inventory(seed)
    result = plan(inv, PlanOptions(time_limit=3, workers=1))
    if result.plan is not None:
        assert metrics.evaluate(inv, result.plan).feasible
        assert result.status in ("optimal", "feasible")
    else:
        assert result.status in ("infeasible", "no-plan-found")
        assert result.explanation


def test_same_seed_and_work_limit_give_the_same_plan() -> None:
    inv = generate_estate(60, 7).inventory
    options = PlanOptions(time_limit=300, seed=5, workers=1, work_limit=0.5)
    first, second = plan(inv, options), plan(inv, options)
    assert first.status == second.status
    assert first.plan is not None and second.plan is not None
    assert first.plan.waves == second.plan.waves
    assert first.solver_info["wall_clock_cut"] is False
    assert first.solver_info["ended_by"] in ("work budget", "search done")


def test_the_time_limit_counts_from_clock_from_when_given() -> None:
    """The CLI starts the clock before loading: time already spent comes off the limit."""
    inv = generate_estate(60, 7).inventory
    options = PlanOptions(time_limit=300, seed=5, workers=1, work_limit=0.5)
    fresh = plan(inv, options)
    late = plan(inv, replace(options, clock_from=time.monotonic() - 300))
    assert fresh.solver_info["ended_by"] in ("work budget", "search done")
    assert late.solver_info["ended_by"] == "time limit" and late.solver_info["wall_clock_cut"] is True


def test_stop_event_interrupts_a_running_solve_promptly() -> None:
    inv = generate_estate(120, 7).inventory
    stop = threading.Event()
    seen: list[Progress] = []
    timer = threading.Timer(1.0, stop.set)
    timer.start()
    try:
        result = plan(inv, PlanOptions(time_limit=300, workers=1), seen.append, stop)
    finally:
        timer.cancel()
    assert result.status in ("interrupted", "optimal")
    if result.status == "interrupted":
        assert result.solver_info["ended_by"] == "stop request"
    assert seen and seen[0].stage == "blocks"
    if result.plan is not None:
        assert metrics.evaluate(inv, result.plan).feasible
    assert result.solver_info["seconds"] < 60  # a 300 s run stopped after about one second


def test_quality_label_never_passes_a_useless_bound_off_as_a_gap() -> None:
    from migplan.solve.pipeline import quality_label

    assert quality_label("optimal", 0.0) == "proven optimal"
    assert quality_label("infeasible", None) == "proven infeasible"
    assert quality_label("feasible", None) == "gap unknown"
    assert quality_label("feasible", 0.123) == "gap ≤ 12.3%"
    assert quality_label("feasible", 0.9998).startswith("gap unknown")


def test_progress_fraction_moves_during_the_feasibility_stage() -> None:
    """The repair charges its own stage budget; the bar must follow it, not wait for the stage end."""
    inv = generate_estate(300, 4).inventory
    seen: list[Progress] = []
    plan(inv, PlanOptions(time_limit=120, work_limit=6, workers=1), seen.append)
    repair = [p.fraction for p in seen if p.stage == "feasibility"]
    assert len(repair) >= 3, [p.stage for p in seen]
    assert all(b >= a for a, b in itertools.pairwise(repair))
    assert repair[-2] > repair[0]  # reports inside the stage already show progress
    fractions = [p.fraction for p in seen]
    assert all(0.0 <= f <= 1.0 for f in fractions)


def test_a_failed_repair_goes_on_with_the_improvement_reserve_then_overtime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a plan the improvement stage never runs: its share of the work goes to the repair,
    and when the work budget ends with time on the clock, OVERTIME_SHARE of it more.  Only the
    first pass tidies its steps: the later ones spend all their work on the violations.  The
    overtime repairs on clusters of blocks too (``multilevel_repair``), as large estates do."""
    from migplan.solve import pipeline

    calls: list[tuple[float, float]] = []
    sizes: list[int] = []  # blocks of each repaired problem

    def stuck(problem: Problem, waves: IntArray, budget: Budget) -> feasibility.RepairResult:
        calls.append((budget.used, budget.work))
        sizes.append(problem.count)
        budget.charge(budget.work - budget.used)  # spends its stage and removes nothing
        return feasibility.RepairResult(waves, violations(problem, waves), 3, 1)

    tidies: list[bool] = []
    monkeypatch.setattr(feasibility, "repair", _repair_stub(stuck, tidies))
    inv = generate_estate(300, 4).inventory
    seen: list[Progress] = []
    result = plan(inv, PlanOptions(time_limit=120, work_limit=4, workers=1), seen.append)
    assert result.status == "no-plan-found"
    assert "feasibility (overtime)" in {p.stage for p in seen}  # the bar says why it starts again
    assert len(calls) > 3 and tidies == [True] + [False] * (len(calls) - 1)
    (_, end1), (used2, end2), (used3, _) = calls[:3]
    assert end1 < 4 * (pipeline.REPAIR_SHARE + 0.01)  # the first pass leaves the reserve
    assert used2 == pytest.approx(end1) and end2 == pytest.approx(4)
    blocks = result.solver_info["blocks"]
    # the overtime starts where the budget ended, after the clusters' charge
    assert used3 == pytest.approx(4 + feasibility.COARSEN_WORK_PER_BLOCK * blocks)
    assert calls[-1][1] == pytest.approx(4 * (1 + pipeline.OVERTIME_SHARE))
    assert sizes[:2] == [blocks, blocks] and min(sizes[2:]) < blocks  # clusters in overtime
    stage = next(s for s in result.stages if s["name"] == "feasibility")
    assert stage["steps"] == 3 * len(calls) and stage["accepted"] == len(calls)
    assert stage["overtime_work"] == result.solver_info["overtime_work"] == 4 * pipeline.OVERTIME_SHARE
    assert result.solver_info["work_limit"] == 4  # the budget as given; the overtime apart


def test_an_improvement_the_repair_left_too_little_work_gets_the_difference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_repair, real_improve = feasibility.repair, lns.improve
    left: list[float] = []

    def hungry(problem: Problem, waves: IntArray, budget: Budget, *args: Any, **kwargs: Any) -> Any:
        result = real_repair(problem, waves, budget, *args, **kwargs)
        budget.charge(budget.work - budget.used)  # a plan found at the end of the repair's share
        return result

    def improve(problem: Problem, waves: IntArray, budget: Budget, *args: Any, **kwargs: Any) -> Any:
        left.append(budget.work - budget.used)
        return real_improve(problem, waves, budget, *args, **kwargs)

    monkeypatch.setattr(feasibility, "repair", hungry)
    monkeypatch.setattr(lns, "improve", improve)
    seen: list[Progress] = []
    options = PlanOptions(time_limit=300, work_limit=4, workers=1)
    result = plan(generate_estate(300, 4).inventory, options, seen.append)
    assert result.status == "feasible"
    assert left == [pytest.approx(pipeline.IMPROVE_MIN_SHARE * 4)]
    assert "improvement (overtime)" in {p.stage for p in seen}  # the bar says why it went back
    improvement = next(s for s in result.stages if s["name"] == "improvement")
    reserve = improvement["reserve_work"]
    assert 0 < reserve == result.solver_info["reserve_work"] < pipeline.IMPROVE_MIN_SHARE * 4
    assert improvement["steps"] > 0 and result.solver_info["work_used"] > 4
    assert result.solver_info["work_limit"] == 4 and result.solver_info["overtime_work"] == 0


def test_no_reserve_where_the_repair_left_the_improvement_enough() -> None:
    result = plan(generate_estate(300, 4).inventory, PlanOptions(time_limit=300, work_limit=4, workers=1))
    improvement = next(s for s in result.stages if s["name"] == "improvement")
    assert improvement["reserve_work"] == 0 and result.solver_info["reserve_work"] == 0


def test_no_overtime_when_the_wall_clock_ended_the_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """Overtime is for a search the work budget stopped; past the time limit there is none."""
    calls: list[float] = []

    def stuck(problem: Problem, waves: IntArray, budget: Budget) -> feasibility.RepairResult:
        calls.append(budget.work)
        time.sleep(max(budget.wall_left, 0.0) + 0.05)  # a repair that runs into the time limit
        return feasibility.RepairResult(waves, violations(problem, waves), 1, 0)

    monkeypatch.setattr(feasibility, "repair", _repair_stub(stuck))
    result = plan(generate_estate(300, 4).inventory, PlanOptions(time_limit=3, work_limit=4, workers=1))
    assert result.status == "no-plan-found" and len(calls) == 1
    assert result.solver_info["overtime_work"] == 0


def test_a_plan_the_model_rounds_into_a_violation_is_kept_when_every_budget_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The model takes a dropped 0.9 ms call off a's 100 ms budget; the real latency is 99.3 ms.

    Two calls make up the 99.3 ms: one call alone that close to the budget would cap the drop
    (``cpsat.latency_matrix``), and the model would not count the violation.
    """
    from conftest import planner_problem

    from migplan.model import Plan
    from migplan.solve import explain, pipeline

    apps = [App("a", 1, latency_budget_ms=100), App("b", 1), App("c", 1), App("d", 1), App("x", 1)]
    deps = [
        Dependency("a", "b", 10, calls_per_request=3.0),
        Dependency("a", "d", 10, calls_per_request=0.31),
        Dependency("a", "c", 10, calls_per_request=0.03),
    ]
    inv = _inv(apps, deps, waves=2, capacity_apps=3.0, risk_weight=0.0)
    marginal = np.array([1, 2, 1, 2, 1])  # a -> b and a -> d split (90 + 9.3 ms), a -> c not
    _, problem = planner_problem(inv)
    assert violations(problem, marginal).count > 0
    assert metrics.evaluate(inv, Plan.from_array(marginal, 2)).feasible

    def stuck(problem: Problem, waves: IntArray, budget: Budget) -> feasibility.RepairResult:
        return feasibility.RepairResult(marginal, violations(problem, marginal), 1, 0)

    def no_explanation(*args: object, **kwargs: object) -> None:
        raise AssertionError("a feasible plan needs no explanation")

    monkeypatch.setattr(feasibility, "repair", _repair_stub(stuck))
    monkeypatch.setattr(explain, "explain", no_explanation)
    monkeypatch.setattr(pipeline, "SMALL_BLOCKS", 0)  # through the large-estate path
    result = plan(inv, PlanOptions(time_limit=30, work_limit=1, workers=1))
    # kept, and improved: one cluster holds the whole estate, so the bound is its optimum
    assert result.status in ("feasible", "optimal")
    assert result.plan is not None and metrics.evaluate(inv, result.plan).feasible


def test_an_estate_past_the_coefficient_limit_gets_a_finding_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    apps = [App(f"s{i}", 1) for i in range(12)]
    deps = [Dependency(f"s{i}", f"s{i + 1}", 1) for i in range(11)]
    monkeypatch.setattr(metrics, "MAX_COEFFICIENTS", 30)  # the chain has 66
    result = plan(_inv(apps, deps, waves=3), PlanOptions(time_limit=10))
    assert result.status == "no-plan-found" and result.plan is None
    (finding,) = result.explanation
    assert finding.code == "latency-model-too-large"
    assert "more than 30 coefficients" in finding.message


def test_past_the_coefficient_limit_an_estate_whose_deep_calls_add_little_is_still_planned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At 0.01 calls per request a call three levels down adds 3e-7 ms to the app above: those
    coefficients are left out (metrics.planner_coefficients), and the rest fit the limit.
    s5 -> s6 adds 0.3 ms to s5, over its 0.2 ms budget: the chain must be cut elsewhere."""
    apps = [App(f"s{i}", 1, latency_budget_ms=0.2 if i == 5 else None) for i in range(12)]
    deps = [Dependency(f"s{i}", f"s{i + 1}", 1, calls_per_request=0.01) for i in range(11)]
    monkeypatch.setattr(metrics, "MAX_COEFFICIENTS", 40)  # the chain has 66, 33 of 1e-5 ms or more
    inv = _inv(apps, deps, waves=2, capacity_apps=6.0)
    result = plan(inv, PlanOptions(time_limit=30, workers=1))
    assert result.status == "optimal" and result.plan is not None
    assert metrics.evaluate(inv, result.plan).feasible
    assert result.plan.waves[5] == result.plan.waves[6]
    blocks = next(s for s in result.stages if s["name"] == "blocks")
    assert blocks["latency_tol_ms"] == metrics.FALLBACK_TOL_MS


def test_multilevel_path_gives_a_feasible_plan_and_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "MULTILEVEL_BLOCKS", 1)  # the 10,000-app path on a 300-app estate
    calls: list[int] = []
    real = feasibility.multilevel_repair

    def counted(*args: Any, **kwargs: Any) -> feasibility.RepairResult:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(feasibility, "multilevel_repair", counted)
    inv = generate_estate(300, 3).inventory
    options = PlanOptions(time_limit=300, seed=2, workers=1, work_limit=12)
    first, second = plan(inv, options), plan(inv, options)
    assert calls
    construction = next(s for s in first.stages if s["name"] == "construction")
    assert 1 < construction["clusters"] < first.solver_info["blocks"]
    assert first.plan is not None and metrics.evaluate(inv, first.plan).feasible
    assert second.plan is not None and first.plan.waves == second.plan.waves


def test_a_proven_infeasibility_without_a_core_never_says_not_proven(monkeypatch: pytest.MonkeyPatch) -> None:
    """svc before both dbs, one app per wave: svc goes first and both its calls split in period 1
    (60 ms > 50 ms).  No precheck sees it; the full model proves it.  When the core search finds
    nothing in time, the findings must not claim "no feasible plan found in time" beside the proof."""
    apps = [App("svc", 1, latency_budget_ms=50), App("db1", 1), App("db2", 1)]
    deps = [Dependency("svc", "db1", 10), Dependency("svc", "db2", 10)]
    rules = (Rule("before", ("svc", "db1")), Rule("before", ("svc", "db2")))
    inv = _inv(apps, deps, waves=3, capacity_apps=1.0, rules=rules)
    result = plan(inv, PlanOptions(time_limit=10))
    assert result.status == "infeasible"
    assert result.explanation and result.explanation[0].code == "infeasible"  # the core, found

    not_found = Finding("error", "no-plan-found", "no feasible plan found in time: none proven")
    monkeypatch.setattr(pipeline.explain, "explain", lambda *args, **kw: explain.Explanation((not_found,)))
    result = plan(inv, PlanOptions(time_limit=10))
    assert result.status == "infeasible"
    assert [f.code for f in result.explanation] == ["infeasible"]
    assert "CP-SAT proved that no plan meets every rule" in result.explanation[0].message


def test_a_construction_run_costs_more_at_many_waves_and_maps_once_when_short(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run is charged per block x K / START_WAVES: at 60 waves a work budget that pays 12-wave
    runs pays one run with a single mapping (Mt-KaHyPar took 12 s per mapping there)."""
    seen: list[tuple[int, bool]] = []
    real = pipeline.latency_aware_start

    def spy(
        problem: Problem,
        seed: int,
        keep_going: Any,
        max_runs: int = 3,
        anchored: bool = True,
        alive: Any = None,
    ) -> Any:
        seen.append((max_runs, anchored))
        return real(problem, seed, keep_going, max_runs, anchored, alive)

    monkeypatch.setattr(pipeline, "latency_aware_start", spy)
    monkeypatch.setattr(pipeline, "MERGE_FROM", 61)  # construct on the 60 waves themselves
    stop = threading.Event()
    for waves in (12, 60):
        inv = generate_estate(200, 1, waves=waves).inventory
        problem, _ = pipeline.block_problem(inv, 1.0)
        per_run_at_12 = problem.count * pipeline.START_WORK_PER_BLOCK
        work = 2.5 * per_run_at_12 / pipeline.START_SHARE  # the start's share pays 2.5 runs at 12 waves
        stop.clear()
        result = plan(
            inv, PlanOptions(time_limit=60, work_limit=work), progress=lambda p: stop.set(), stop=stop
        )
        assert result.stages[2]["anchored"] is (waves == 12)
    assert seen == [(2, True), (0, False)]


def test_from_merge_from_waves_the_start_is_planned_on_merged_waves_then_split() -> None:
    inv = generate_estate(300, 4, waves=20).inventory
    options = PlanOptions(time_limit=300, seed=0, workers=1, work_limit=3)
    result = plan(inv, options)
    names = [s["name"] for s in result.stages]
    assert names[:5] == ["blocks", "precheck", "construction", "merged", "feasibility"]
    construction, merged = result.stages[2], result.stages[3]
    assert construction["waves"] == merged["waves"] == 10  # constructed and repaired on 10 waves
    assert result.plan is not None and metrics.evaluate(inv, result.plan).feasible
    assert result.plan.waves == plan(inv, options).plan.waves  # type: ignore[union-attr]


def test_far_more_waves_than_apps_still_plan_within_the_first_blocks_plus_one() -> None:
    """12 apps at 300 waves with a before rule and a pilot wave: the models had 11 x 299
    wave literals per app and the demo got no plan at 250 waves; ranges are now cut to
    waves 1..13 (``narrow.compact_ranges``)."""
    apps = tuple(App(f"s{i}", 10.0 * (i + 1), latency_budget_ms=70.0) for i in range(12))
    deps = tuple(Dependency(f"s{i}", f"s{i + 1}", 50.0 + i) for i in range(11))
    rules = (Rule("before", ("s11", "s0")),)
    inv = Inventory(apps, deps, Scenario(waves=300, capacity_apps=(2.0, *([3.0] * 299)), rules=rules))
    result = plan(inv, PlanOptions(time_limit=60, work_limit=3.0))
    assert result.status in ("feasible", "optimal") and result.plan is not None
    assert metrics.evaluate(inv, result.plan).feasible
    assert result.stages[0]["waves_used"] == 13 and max(result.plan.waves) <= 13
    assert result.plan.waves[11] < result.plan.waves[0]


def test_a_repaired_small_plan_is_kept_when_the_full_model_finds_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At 1,000 waves no time was left for the full model, and the feasible repaired plan
    was thrown away ("no plan found")."""
    from migplan.solve.cpsat import SolveOutcome

    def nothing(
        run: Any, problem: Problem, start: IntArray, cuts: Any
    ) -> tuple[SolveOutcome, list[Any], None]:
        return SolveOutcome("unknown", None, None, None, 0.0, 0.0), [], None

    monkeypatch.setattr(pipeline, "_full_model", nothing)
    # nor does the explanation's own search (it found none there either)
    monkeypatch.setattr(pipeline, "_explain", lambda *args, **kwargs: ((), None))
    inv = generate_estate(40, 3, waves=4).inventory
    result = plan(inv, PlanOptions(time_limit=60, work_limit=3.0))
    assert result.status == "feasible" and result.plan is not None
    assert metrics.evaluate(inv, result.plan).feasible
    assert next(s for s in result.stages if s["name"] == "feasibility")["violations"] == 0


def test_a_budget_met_exactly_is_a_plan_not_a_proof_of_infeasibility() -> None:
    """a (60 ms) must be apart from b and c, each call adding 30 ms: 60 ms, exactly the
    budget.  The search's model drops b -> d's 0.03 ms and takes it off a's budget, and
    the planner said "no feasible plan exists (proven)"; the relaxed model finds the plan."""
    apps = [App("a", 10.0, latency_budget_ms=60.0), *(App(x, 10.0) for x in "bcd")]
    deps = [Dependency("a", "b", 10.0), Dependency("a", "c", 10.0), Dependency("b", "d", 1.0, 0.001)]
    rules = (Rule("apart", ("a", "b")), Rule("apart", ("a", "c")))
    inv = _inv(apps, deps, waves=2, rules=rules)
    problem = pipeline.block_problem(inv, 1.0)[0]
    exact = np.zeros(problem.count, dtype=np.int64)
    exact[problem.blocks.of] = [1, 2, 2, 2]  # per block: a alone first
    assert violations(problem, exact).count > 0  # the safe model refuses the exact plan ...
    assert violations(relaxed_problem(problem, 1.0), exact).count == 0  # ... the relaxed one does not
    result = plan(inv, PlanOptions(time_limit=20))
    assert result.status == "optimal", result.explanation
    assert result.plan is not None and metrics.evaluate(inv, result.plan).feasible


def _on_the_search_path(monkeypatch: pytest.MonkeyPatch, inv: Inventory) -> tuple[PlanResult, dict[str, Any]]:
    """``plan(inv)`` at work 4 with no full-model path (the search, as for larger estates), and
    its feasibility stage."""
    monkeypatch.setattr(pipeline, "SMALL_BLOCKS", 10)
    monkeypatch.setattr(pipeline, "SMALL_LITERALS", 10)
    result = plan(inv, PlanOptions(time_limit=300, work_limit=4.0))
    return result, next(s for s in result.stages if s["name"] == "feasibility")


def test_budgets_met_exactly_by_many_apps_are_planned_on_the_relaxation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A generated estate where 3 in 10 apps have their budget at the planted plan's exact
    worst latency: the safe model (drops, rounding against the plan) breaks those rows in
    the planted plan itself, and its repair, overtime included, found no plan.  The
    overtime repair on the relaxation does, and metrics finds the plan feasible."""
    tight, planted = exact_budgets(200, 1, 6, 0.3)  # checks that the planted plan meets every rule
    assert metrics.evaluate(tight, planted).feasible
    result, repair = _on_the_search_path(monkeypatch, tight)
    assert result.status == "feasible" and result.plan is not None
    assert metrics.evaluate(tight, result.plan).feasible
    assert repair["overtime_work"] > 0 and repair["relaxed"]
    monkeypatch.setattr(pipeline, "_overtime_model", lambda run, problem, repaired: problem)
    monkeypatch.setattr(feasibility, "ENOUGH_BELOW", 0)  # nor a plan metrics passes ends the repair
    alone, stage = _on_the_search_path(monkeypatch, tight)  # the safe model alone ...
    assert stage["violations"] > 0  # ... ends with real violations, left to the explanation
    assert "explanation" in {s["name"] for s in alone.stages}  # (whose proof search may find a plan)


def test_a_repair_ends_at_a_plan_metrics_passes_whatever_the_safe_model_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """exact_budgets(300, 1, 8, 0.2): the repair reaches a plan that meets every rule while the
    safe model still counts violations (its rounding at budgets met exactly); the repair
    stops there (``enough``), with no overtime.  Without the check it chases the rounding
    into overtime."""
    tight, _ = exact_budgets(300, 1, 8, 0.2)
    result, repair = _on_the_search_path(monkeypatch, tight)
    assert result.status == "feasible" and result.plan is not None
    assert metrics.evaluate(tight, result.plan).feasible
    assert repair["violations"] > 0 and repair["passed"] and repair["overtime_work"] == 0
    monkeypatch.setattr(feasibility, "ENOUGH_BELOW", 0)  # never asked
    assert _on_the_search_path(monkeypatch, tight)[1]["overtime_work"] > 0
