"""Many waves: the merged inventory, and splits that keep every even period of the merged plan."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import planner_problem

from migplan.generate import generate_estate
from migplan.model import App, Dependency, Inventory, Scenario
from migplan.solve import merge
from migplan.solve.cpsat import Problem, splits, violations
from migplan.solve.search import Budget
from migplan.solve.start import construct_blocks


def test_merged_waves_add_up_capacities_and_hold_pins_and_windows() -> None:
    apps = (
        App("a", 10.0, pinned_wave=4),
        App("b", 10.0, earliest_wave=3, latest_wave=5),
        App("c", 10.0, latest_wave=1),
        App("d", 10.0),
    )
    scenario = Scenario(waves=5, capacity_apps=(1.0, 2.0, 3.0, 4.0, 5.0), capacity_data_gb=7.0, max_risk=0.3)
    merged = merge.merged_inventory(Inventory(apps, (Dependency("a", "b", 5.0),), scenario))
    sc = merged.scenario
    assert sc.waves == 3
    assert sc.capacity_apps == (3.0, 7.0, 5.0)
    assert sc.capacity_data_gb == (14.0, 14.0, 7.0)  # one number per wave: the lone wave 5 keeps 7
    assert sc.capacity_instances is None
    assert sc.max_risk == pytest.approx(0.6)
    assert [(a.pinned_wave, a.earliest_wave, a.latest_wave) for a in merged.apps] == [
        (2, None, None),
        (None, 2, 3),
        (None, None, 1),
        (None, None, None),
    ]
    assert merged.dependencies == (Dependency("a", "b", 5.0),)


@pytest.fixture(scope="module")
def estate() -> tuple[Problem, Problem, np.ndarray]:
    """A 20-wave estate, its merged problem and a merged plan of that (the construction's)."""
    inv = generate_estate(300, 4, waves=20).inventory
    _, problem = planner_problem(inv)
    _, inner = planner_problem(merge.merged_inventory(inv))
    return problem, inner, inner.blocks.expand(construct_blocks(inner.inv, inner.blocks, 0))


def _split(problem: Problem, merged_plan: np.ndarray, work: float) -> np.ndarray:
    budget = Budget.start(work, 600, None)
    return merge.split(problem, merged_plan, budget, np.random.default_rng(0), workers=1)


@pytest.mark.parametrize("work", [0.0, 5.0])
def test_a_split_keeps_each_block_in_its_merged_wave_and_every_even_period(
    estate: tuple[Problem, Problem, np.ndarray], work: float
) -> None:
    problem, inner, merged_plan = estate
    waves = _split(problem, merged_plan, work)
    merged_of_block = merged_plan[[m[0] for m in problem.blocks.members]]
    assert np.all((waves + 1) // 2 == merged_of_block)
    assert np.all((waves >= problem.blocks.lo) & (waves <= problem.blocks.hi))
    # period 2j sees the merged plan's period j: the same calls split, the same budgets kept
    inner_waves = merged_plan[[m[0] for m in inner.blocks.members]]
    assert np.array_equal(splits(problem, waves)[:, 1::2], splits(inner, inner_waves))


def test_the_split_models_break_less_than_the_greedy_split(
    estate: tuple[Problem, Problem, np.ndarray],
) -> None:
    problem, _, merged_plan = estate
    greedy = violations(problem, _split(problem, merged_plan, 0.0))  # no work: the greedy split alone
    solved = violations(problem, _split(problem, merged_plan, 5.0))
    assert greedy.count > 0
    assert solved.score < greedy.score
