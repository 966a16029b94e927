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
