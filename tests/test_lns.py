"""Improvement by LNS: never worse, always feasible, repeatable for a seed and a work budget."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from conftest import planner_problem

from migplan.generate import generate_estate
from migplan.solve.cpsat import objective_units, violations
from migplan.solve.lns import improve
from migplan.solve.search import Budget


def test_lns_improves_the_planted_plan_repeatably() -> None:
    estate = generate_estate(250, 2)
    inv = estate.inventory
    blocks, problem = planner_problem(inv)
    first_member = np.asarray([m[0] for m in blocks.members])
    start = estate.planted.array[first_member]
    # the planted plan is feasible, so it keeps every unsplittable call whole
    assert np.all(blocks.expand(start) == estate.planted.array)
    assert violations(problem, start).count == 0
    runs = [improve(problem, start, Budget.start(1.5, 300, None), np.random.default_rng(4)) for _ in range(2)]
    assert runs[0].waves.tolist() == runs[1].waves.tolist()
    assert runs[0].objective <= objective_units(problem, start)
    assert runs[0].objective == objective_units(problem, runs[0].waves)
    assert violations(problem, runs[0].waves).count == 0


def test_balls_are_centred_where_the_chatty_cost_is_paid() -> None:
    """Half the balls start at a block drawn by the cost of its split calls, not uniformly."""
    from migplan.solve.lns import GUIDED_SHARE, _ball_centre

    inv = generate_estate(250, 2).inventory
    _, problem = planner_problem(inv)
    waves = np.ones(problem.count, dtype=np.int64)
    heaviest = int(np.argmax(problem.weight))
    moved = int(problem.ev[heaviest])
    waves[moved] = 2  # the only block moved: its calls are the only split ones
    paying = (
        {moved}
        | set(problem.eu[problem.ev == moved].tolist())
        | set(problem.ev[problem.eu == moved].tolist())
    )
    rng = np.random.default_rng(0)
    draws = [_ball_centre(problem, waves, rng) for _ in range(400)]
    share = sum(d in paying for d in draws) / len(draws)
    uniform = len(paying) / problem.count
    assert share > GUIDED_SHARE * 0.8 > 3 * uniform


def test_one_wave_leaves_nothing_to_search() -> None:
    """With K = 1 every plan is the same plan: no sub-solve is spent on it."""
    inv = generate_estate(250, 2).inventory
    one_wave = replace(
        inv,
        scenario=replace(
            inv.scenario,
            waves=1,
            capacity_apps=None,
            capacity_instances=None,
            capacity_data_gb=None,
            max_risk=None,
        ),
    )
    _, problem = planner_problem(one_wave)
    budget = Budget.start(1.0, 60, None)
    result = improve(problem, np.ones(problem.count, dtype=np.int64), budget, np.random.default_rng(0))
    assert result.steps == 0
    assert budget.used == 0.0


def test_a_plan_at_the_lower_bound_is_not_searched_further() -> None:
    estate = generate_estate(250, 2)
    _, problem = planner_problem(estate.inventory)
    blocks = planner_problem(estate.inventory)[0]
    start = estate.planted.array[np.asarray([m[0] for m in blocks.members])]
    value = objective_units(problem, start)
    budget = Budget.start(1.0, 60, None)
    result = improve(problem, start, budget, np.random.default_rng(0), floor=value)
    assert (result.steps, budget.used, result.objective) == (0, 0.0, value)
    unbounded = improve(problem, start, Budget.start(0.3, 60, None), np.random.default_rng(0))
    assert unbounded.steps > 0


def test_windows_only_where_three_waves_are_a_small_part_of_the_plan() -> None:
    """At 4 waves a window of 3 is nearly the full model (slow, and worse than balls)."""
    from migplan.solve.lns import MIN_WINDOW_WAVES, _neighbourhood

    def window_share(waves: int) -> float:
        inv = generate_estate(250, 2, waves=waves).inventory
        _, problem = planner_problem(inv)
        plan = np.arange(problem.count) % waves + 1
        rng = np.random.default_rng(0)
        draws = [_neighbourhood(problem, plan, rng)[1].window for _ in range(200)]
        return sum(w is not None for w in draws) / len(draws)

    assert window_share(MIN_WINDOW_WAVES - 2) == 0
    assert 0.2 < window_share(MIN_WINDOW_WAVES + 2) < 0.4  # 30 % of the draws


def test_only_plans_that_keep_holds_for_are_kept() -> None:
    estate = generate_estate(250, 2)
    blocks, problem = planner_problem(estate.inventory)
    start = estate.planted.array[np.asarray([m[0] for m in blocks.members])]
    seen: list[np.ndarray] = []

    def keep(waves: np.ndarray) -> bool:
        seen.append(waves.copy())
        return bool(waves[0] == start[0])  # a rule the model does not know: block 0 stays

    free = improve(problem, start, Budget.start(1.5, 300, None), np.random.default_rng(4))
    held = improve(problem, start, Budget.start(1.5, 300, None), np.random.default_rng(4), keep=keep)
    assert free.objective < objective_units(problem, start)  # plans better than the start exist
    assert seen  # ... and were offered, and only those keep allows were taken
    assert held.waves[0] == start[0] and held.objective == objective_units(problem, held.waves)
    refused = improve(
        problem, start, Budget.start(1.5, 300, None), np.random.default_rng(4), keep=lambda w: False
    )
    assert refused.waves.tolist() == start.tolist() and refused.accepted == 0
