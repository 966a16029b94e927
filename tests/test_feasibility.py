"""The feasibility stage: violation-following repair reaches zero and never lets a violation grow."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
from conftest import planner_problem

from migplan import metrics
from migplan.generate import generate_estate
from migplan.model import App, Dependency, Inventory, Plan, Scenario
from migplan.solve import feasibility
from migplan.solve.blocks import build_blocks
from migplan.solve.coarsen import coarsen
from migplan.solve.cpsat import ModelOptions, Problem, build_problem, objective_units, violations
from migplan.solve.feasibility import (
    CUT_MAX_BLOCKS,
    DAMAGE_LIMIT,
    LEVEL_SHARES,
    _at_cut,
    _kick_window,
    _latency_seeds,
    _make_room,
    _neighbourhood,
    multilevel_repair,
    repair,
)
from migplan.solve.search import Budget, sub_solve
from migplan.solve.start import construct_blocks


def test_repair_moves_the_callee_back_under_budget() -> None:
    apps = [App("fe", 1, latency_budget_ms=45), App("svc", 1), App("db", 1), App("x", 1), App("y", 1)]
    deps = [Dependency("fe", "svc", 10), Dependency("svc", "db", 10), Dependency("x", "y", 1)]
    inv = Inventory(tuple(apps), tuple(deps), Scenario(waves=3, capacity_apps=3.0, risk_weight=0.0))
    problem = build_problem(inv, build_blocks(inv), 0.0)
    start = np.array([1, 3, 2, 1, 1])  # period 2: fe -> svc and svc -> db split, fe pays 60 ms
    assert violations(problem, start).count > 0
    result = repair(problem, start, Budget.start(20, 20, None), np.random.default_rng(0))
    assert result.violations.count == 0
    assert metrics.evaluate(inv, Plan.from_array(result.waves, 3)).feasible


def _one_violation_and_a_chatty_pair() -> tuple[Inventory, np.ndarray]:
    """fe (budget 35 ms) pays 75 ms in period 2 (fe -> svc, svc -> db, svc -> db2 split);
    x -> y carries 1,000 qps and sits in one wave."""
    apps = [
        App(a, 1, latency_budget_ms=35 if a == "fe" else None) for a in ("fe", "svc", "db", "db2", "x", "y")
    ]
    deps = [
        Dependency("fe", "svc", 10),
        Dependency("svc", "db", 10),
        Dependency("svc", "db2", 10, 0.5),
        Dependency("x", "y", 1000),
    ]
    inv = Inventory(tuple(apps), tuple(deps), Scenario(waves=3, capacity_apps=6.0, risk_weight=0.0))
    return inv, np.array([1, 3, 2, 2, 1, 1])


def _offer(plan: np.ndarray, seen: list[ModelOptions] | None = None) -> Callable[..., np.ndarray]:
    """A stand-in for ``sub_solve`` that charges 1 unit and offers ``plan``; ``seen`` collects
    each call's options."""

    def fake(
        problem: Problem,
        waves: np.ndarray,
        free: np.ndarray,
        options: ModelOptions,
        budget: Budget,
        *rest: object,
    ) -> np.ndarray:
        if seen is not None:
            seen.append(options)
        budget.charge(1.0)
        return plan.copy()

    return fake


def test_a_costly_step_that_clears_no_violation_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    inv, start = _one_violation_and_a_chatty_pair()
    problem = build_problem(inv, build_blocks(inv), 0.0)
    shrink = np.array([1, 3, 2, 3, 3, 1])  # db2 follows svc (75 -> 60 ms), x leaves y: +2,000 qps
    clear = np.array([1, 2, 2, 2, 3, 1])  # svc joins its callees: fe pays 30 ms, x still leaves y
    before = violations(problem, start)
    assert (
        violations(problem, shrink).count == before.count and violations(problem, shrink).score < before.score
    )
    assert violations(problem, clear).count == 0
    assert objective_units(problem, shrink) > DAMAGE_LIMIT * objective_units(problem, start)

    monkeypatch.setattr(feasibility, "sub_solve", _offer(shrink))
    kept = repair(problem, start, Budget.start(5, 60, None), np.random.default_rng(0))
    assert kept.accepted == 0 and kept.steps > 0
    assert np.array_equal(kept.waves, start)
    monkeypatch.setattr(feasibility, "sub_solve", _offer(clear))
    cleared = repair(problem, start, Budget.start(5, 60, None), np.random.default_rng(0))
    assert cleared.accepted == 1 and cleared.violations.count == 0


def test_a_repair_without_tidy_never_minimises_the_chatty_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each accepted step is tidied (a sub-solve with the chatty cost in its objective) unless
    ``tidy`` is False."""
    inv, start = _one_violation_and_a_chatty_pair()
    problem = build_problem(inv, build_blocks(inv), 0.0)
    clear = np.array([1, 2, 2, 2, 3, 1])
    seen: list[ModelOptions] = []
    monkeypatch.setattr(feasibility, "sub_solve", _offer(clear, seen))
    for tidy, expected in ((True, [False, True]), (False, [False])):
        seen.clear()
        result = repair(problem, start, Budget.start(5, 60, None), np.random.default_rng(0), tidy=tidy)
        assert result.violations.count == 0 and [o.chatty for o in seen] == expected


def test_a_stalled_repair_kicks_every_other_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """One broken row, no step ever found: kicks come on the 5th failure only (every 5th step)
    until STALL_STEPS failures in a row; from then on at least every other step is one."""
    inv, start = _one_violation_and_a_chatty_pair()
    problem = build_problem(inv, build_blocks(inv), 0.0)
    seen: list[ModelOptions] = []
    monkeypatch.setattr(feasibility, "sub_solve", _nothing_found(seen))
    result = repair(problem, start, Budget.start(16, 60, None), np.random.default_rng(0))
    kicked = [o.clear_row is not None for o in seen]
    assert result.steps == len(kicked) == 16 and result.accepted == 0
    first = feasibility.STALL_STEPS
    assert not any(kicked[:first] if first <= feasibility.KICK else kicked[: feasibility.KICK])
    assert all(kicked[first::2])  # every other step from the stall on
    assert sum(kicked) > len(kicked) // feasibility.ATTEMPT_KINDS + 1  # more than the cycle alone gives
    seen.clear()
    without = repair(problem, start, Budget.start(6, 60, None), np.random.default_rng(0), kicks=False)
    assert without.steps == 6 and not any(o.clear_row is not None for o in seen)  # a kick's repair


def test_a_rows_successive_kicks_widen_their_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """fe's budget breaks in period 3 only (waves 3 | 4): its kicks free waves 3-4, then 2-5,
    then 1-6 (one more wave each side per kick, within 1..K), then 3-4 again."""
    inv, _ = _one_violation_and_a_chatty_pair()
    inv = Inventory(inv.apps, inv.dependencies, Scenario(waves=6, capacity_apps=6.0, risk_weight=0.0))
    problem = build_problem(inv, build_blocks(inv), 0.0)
    start = np.array([3, 4, 3, 3, 1, 1])  # fe -> svc, svc -> db and svc -> db2 split in period 3
    assert np.array_equal(np.flatnonzero(violations(problem, start).latency.sum(axis=0)), [2])
    seen: list[ModelOptions] = []
    monkeypatch.setattr(feasibility, "sub_solve", _nothing_found(seen))
    repair(problem, start, Budget.start(16, 60, None), np.random.default_rng(0))
    windows = [o.window for o in seen if o.clear_row is not None]
    assert len(windows) >= 4 and feasibility.KICK_WIDENINGS == 3
    assert windows[:4] == [(3, 4), (2, 5), (1, 6), (3, 4)]


def test_a_kicks_own_repair_gives_up_after_failing_patience_steps_in_a_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Steps of 0.01 units that never find anything: a plain repair spends its whole budget,
    a kick's make-room repair stops after KICK_REPAIR_PATIENCE of them."""
    inv, start = _one_violation_and_a_chatty_pair()
    problem = build_problem(inv, build_blocks(inv), 0.0)
    seen: list[ModelOptions] = []
    monkeypatch.setattr(feasibility, "sub_solve", _nothing_found(seen, 0.01))
    plain = repair(problem, start, Budget.start(1, 60, None), np.random.default_rng(0), kicks=False)
    assert plain.steps == len(seen) >= 100
    seen.clear()
    budget = Budget.start(20, 60, None)
    _make_room(problem, start, budget, np.random.default_rng(0), 1)
    assert len(seen) == feasibility.KICK_REPAIR_PATIENCE < feasibility.KICK_REPAIR_WORK / 0.01
    assert budget.used == pytest.approx(0.01 * feasibility.KICK_REPAIR_PATIENCE)


def _nothing_found(seen: list[ModelOptions], charge: float = 1.0) -> Callable[..., None]:
    """A stand-in for ``sub_solve`` that charges ``charge`` units, finds nothing and records
    the options."""

    def fake(
        problem: Problem,
        waves: np.ndarray,
        free: np.ndarray,
        options: ModelOptions,
        budget: Budget,
        *rest: object,
    ) -> None:
        seen.append(options)
        budget.charge(charge)

    return fake


def test_a_kick_clears_a_budget_whose_fix_overfills_a_wave() -> None:
    # waves 1: a b | 2: c d | 3: e f, two apps per wave; a -> c split costs a 30 ms of its 10.
    # a can only join c in wave 2 (b is pinned to 1, d may not come before 2), which overfills
    # it: d must go on to wave 3 and e or f back to wave 1, beyond the two waves at the cut
    apps = [
        App("a", 1, latency_budget_ms=10),
        App("b", 1, pinned_wave=1),
        App("c", 1),
        App("d", 1, earliest_wave=2),
        App("e", 1),
        App("f", 1),
    ]
    async_chain = [Dependency(u, v, 1, sync=False) for u, v in ("bd", "cd", "de", "ef")]
    deps = [Dependency("a", "c", 10), *async_chain]
    inv = Inventory(tuple(apps), tuple(deps), Scenario(waves=3, capacity_apps=2.0, risk_weight=0.0))
    problem = build_problem(inv, build_blocks(inv), 0.0)
    start = np.array([1, 1, 2, 2, 3, 3])
    state = violations(problem, start)
    row = int(np.flatnonzero(state.latency.sum(axis=1))[0])
    rng = np.random.default_rng(0)
    free, window = _kick_window(problem, start, state, row, _latency_seeds(problem, row), rng)
    assert window == (1, 2) and sorted(free.tolist()) == [0, 1, 2, 3]
    cut = ModelOptions(soft=True, chatty=False, window=window)
    plain = sub_solve(problem, start, free, cut, Budget.start(5, 60, None), rng, 5.0)
    assert plain is not None and violations(problem, plain).count == 1  # limits hard: no way out
    kick = ModelOptions(soft=True, chatty=False, window=window, relax_limits=True, clear_row=row)
    kicked = sub_solve(problem, start, free, kick, Budget.start(5, 60, None), rng, 5.0)
    assert kicked is not None and violations(problem, kicked).count == 1  # a limit, not the row
    assert violations(problem, kicked).latency.sum() == 0
    mended = _make_room(problem, kicked, Budget.start(20, 60, None), rng, 1)
    assert violations(problem, mended).count == 0
    assert metrics.evaluate(inv, Plan.from_array(mended, 3)).feasible


def test_an_overfull_wave_is_also_tried_with_a_neighbouring_wave() -> None:
    apps = [App(name, 1) for name in "abcdef"]
    deps = [Dependency(u, v, 1) for u, v in ("ab", "cd", "de", "ef")]
    inv = Inventory(tuple(apps), tuple(deps), Scenario(waves=3, capacity_apps=2.0, risk_weight=0.0))
    problem = build_problem(inv, build_blocks(inv), 0.0)
    waves = np.array([1, 1, 2, 2, 2, 3])  # wave 2 holds three apps
    state = violations(problem, waves)
    failures = np.zeros(len(problem.latency.app), dtype=np.int64)
    windows = set()
    for seed in range(20):
        rng = np.random.default_rng(seed)
        row, free, options, base = _neighbourhood(problem, waves, state, failures, rng)
        assert row is None and options.soft and base is waves  # no wave is empty: nothing to shift
        if options.window is not None:
            windows.add(options.window)
            assert set(waves[free].tolist()) <= set(range(options.window[0], options.window[1] + 1))
    assert windows == {(1, 2), (2, 3)}
    result = repair(problem, waves, Budget.start(5, 60, None), np.random.default_rng(0))
    assert result.violations.count == 0


def _chain_estate() -> tuple[Problem, np.ndarray]:
    """Wave 2 holds three apps of two; the only fix is a chain over three waves: x (waves 1-2
    only) moves to wave 1 while a, not called by anyone, moves on from wave 1 to wave 3."""
    apps = [
        App("a", 1),
        App("b", 1, pinned_wave=1),
        App("x", 1, earliest_wave=1, latest_wave=2),
        App("p", 1, pinned_wave=2),
        App("q", 1, pinned_wave=2),
        App("c", 1, pinned_wave=3),
    ]
    inv = Inventory(tuple(apps), (), Scenario(waves=3, capacity_apps=2.0, risk_weight=0.0))
    problem = build_problem(inv, build_blocks(inv), 0.0)
    return problem, np.array([1, 1, 2, 2, 2, 3])


def test_an_overfull_waves_window_widens_while_the_repair_stalls(monkeypatch: pytest.MonkeyPatch) -> None:
    problem, waves = _chain_estate()
    state = violations(problem, waves)
    failures = np.zeros(len(problem.latency.app), dtype=np.int64)
    for widen, widths in ((0, {2}), (1, {3})):  # (1, 2) or (2, 3); one wave more each side, clipped
        seen = set()
        for seed in range(20):
            _, _, options, _ = _neighbourhood(
                problem, waves, state, failures, np.random.default_rng(seed), widen=widen
            )
            if options.window is not None:
                seen.add(options.window[1] - options.window[0] + 1)
        assert seen == widths
    result = repair(problem, waves, Budget.start(5, 60, None), np.random.default_rng(0), patience=40)
    assert result.violations.count == 0 and result.waves.tolist() == [3, 1, 1, 2, 2, 3]
    # two waves at a time, or a ball (a calls no one), never find the chain
    monkeypatch.setattr(feasibility, "OTHER_WIDENINGS", 1)
    stuck = repair(problem, waves, Budget.start(5, 60, None), np.random.default_rng(0), patience=40)
    assert stuck.violations.count == 1


def test_repair_on_a_generated_estate_only_lowers_the_violation_score() -> None:
    inv = generate_estate(200, 3).inventory
    blocks, problem = planner_problem(inv)
    start = construct_blocks(inv, blocks, 0)
    scores: list[float] = [violations(problem, start).score]
    result = repair(
        problem,
        start,
        Budget.start(3, 60, None),
        np.random.default_rng(1),
        lambda w, v: scores.append(v.score),
    )
    assert all(b < a for a, b in itertools.pairwise(scores))
    assert result.violations.score == scores[-1]
    assert np.all((result.waves >= blocks.lo) & (result.waves <= blocks.hi))


def test_cut_neighbourhood_frees_the_two_waves_at_the_worst_period() -> None:
    inv = generate_estate(200, 3).inventory
    blocks, problem = planner_problem(inv)
    waves = construct_blocks(inv, blocks, 0)
    state = violations(problem, waves)
    rows = np.flatnonzero(state.latency.sum(axis=1) > 0)
    assert len(rows) > 0  # the latency-blind construction breaks budgets here
    row = int(rows[0])
    seeds = _latency_seeds(problem, row)
    free, window = _at_cut(problem, waves, state, row, seeds, np.random.default_rng(0))
    k = int(np.argmax(state.latency[row])) + 1
    assert window == (k, k + 1)
    assert set(waves[free].tolist()) <= {k, k + 1}
    assert len(free) <= CUT_MAX_BLOCKS + len(seeds)
    in_window = seeds[np.isin(waves[seeds], window)]
    assert set(in_window.tolist()) <= set(free.tolist())


def test_multilevel_repair_reports_fine_plans_and_never_ends_worse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feasibility, "ENOUGH_BELOW", 10**9)  # enough is asked after every accepted step
    inv = generate_estate(300, 3).inventory
    blocks, problem = planner_problem(inv)
    level = coarsen(problem, 1.0, LEVEL_SHARES[0], seed=0)
    start = level.refine(construct_blocks(inv, level.problem.blocks, 0))
    before = violations(problem, start)
    assert before.count > 0
    seen: list[int] = []
    asked: list[int] = []

    def enough(waves: np.ndarray) -> bool:
        asked.append(len(waves))
        return False  # never satisfied: the repair runs as without it

    result = multilevel_repair(
        problem,
        start,
        level,
        1.0,
        Budget.start(6, 120, None),
        np.random.default_rng(0),
        seed=0,
        on_step=lambda w, v: seen.append(len(w)),
        enough=enough,
    )
    assert seen and set(seen) == {problem.count}  # coarse steps are reported as block plans
    assert asked and set(asked) == {problem.count}  # ... and checked as block plans
    assert not result.passed
    assert result.violations.score < before.score
    assert np.all((result.waves >= blocks.lo) & (result.waves <= blocks.hi))


def test_a_repair_stops_at_the_first_plan_that_passes_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    """``enough`` (the planner's metrics check) is asked only of plans with at most
    ENOUGH_BELOW violations in the model; the first it passes ends the repair, with the
    model's violations left (its rounding, which the rules themselves may not have)."""
    inv = generate_estate(200, 3).inventory
    blocks, problem = planner_problem(inv)
    start = construct_blocks(inv, blocks, 0)
    before = violations(problem, start).count
    plain = repair(problem, start, Budget.start(3, 60, None), np.random.default_rng(1))
    assert not plain.passed and plain.violations.count < before - 1  # the repair would go on past...
    below = before - 1  # ... a plan with one violation fewer than the start
    monkeypatch.setattr(feasibility, "ENOUGH_BELOW", below)
    asked: list[int] = []

    def enough(waves: np.ndarray) -> bool:
        asked.append(violations(problem, waves).count)
        return True

    result = repair(problem, start, Budget.start(3, 60, None), np.random.default_rng(1), enough=enough)
    assert result.passed and result.done
    assert len(asked) == 1 and 0 < asked[0] <= below  # never asked of the start (over the limit)
    assert result.violations.count == asked[0] and result.steps < plain.steps
