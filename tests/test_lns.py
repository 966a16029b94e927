"""Improvement by LNS: never worse, always feasible, repeatable for a seed and a work budget."""

from __future__ import annotations

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


def test_community_moves_shift_each_community_whole_and_keep_the_plan_feasible() -> None:
    """Communities share a wave; a step moves each one by a single shift, never apart."""
    from migplan.solve.lns import Communities
    from migplan.solve.search import sub_solve

    estate = generate_estate(250, 2)
    blocks, problem = planner_problem(estate.inventory)
    start = estate.planted.array[np.asarray([m[0] for m in blocks.members])]
    rng = np.random.default_rng(0)
    free, options = Communities(problem).neighbourhood(start, rng)
    members = np.concatenate([np.asarray(g) for g in options.rigid])
    assert len(members) == len(np.unique(members)) and np.array_equal(np.sort(members), free)
    assert all(len(set(start[list(g)].tolist())) == 1 for g in options.rigid)
    assert sum(len(g) > 1 for g in options.rigid) > 0  # not only singletons
    found = None
    for _ in range(5):  # until some community moves
        found = sub_solve(problem, start, free, options, Budget.start(2, 60, None), rng, 1.0)
        assert found is not None
        if np.any(found != start):
            break
        free, options = Communities(problem).neighbourhood(start, rng)
    assert found is not None and np.any(found != start)
    for group in options.rigid:
        assert len(set((found[list(group)] - start[list(group)]).tolist())) == 1
    assert violations(problem, found).count == 0
    assert objective_units(problem, found) <= objective_units(problem, start)
