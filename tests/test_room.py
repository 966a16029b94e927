"""Opening an empty wave beside a full one: a re-numbering that keeps every period's cut."""

from __future__ import annotations

from collections import Counter

import numpy as np
from conftest import planner_problem

from migplan.generate import generate_estate
from migplan.model import App, Dependency, Inventory, Scenario
from migplan.solve import feasibility
from migplan.solve.blocks import build_blocks
from migplan.solve.cpsat import Problem, build_problem, objective_units, splits, violations
from migplan.solve.room import open_beside


def _moved_sets(problem: Problem, waves: np.ndarray) -> set[frozenset[int]]:
    return {frozenset(np.flatnonzero(waves <= k).tolist()) for k in range(1, problem.K)}


def test_opening_a_wave_keeps_every_cut_and_costs_the_repeated_one() -> None:
    inv = generate_estate(120, 4, waves=10).inventory
    _, problem = planner_problem(inv, 0.0)
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(30):
        waves = rng.integers(1, 8, size=problem.count)  # waves 8-10 stay empty
        waves = np.clip(waves, problem.blocks.lo, problem.blocks.hi)
        full = int(rng.integers(1, 8))
        if not np.any(waves == full):
            continue
        opened = open_beside(problem, waves, full)
        assert opened is not None
        out, pair = opened
        beside = pair[1] if pair[0] == full else pair[0]
        assert full in pair and abs(pair[1] - pair[0]) == 1
        assert not np.any(out == beside) and np.array_equal(out == full, waves == full)
        assert np.all((out >= problem.blocks.lo) & (out <= problem.blocks.hi))
        assert _moved_sets(problem, out) <= _moved_sets(problem, waves)
        before, after = violations(problem, waves), violations(problem, out)
        for r in range(len(problem.latency.app)):  # a row's excess per period: only values it had
            assert set(after.latency[r].tolist()) <= set(before.latency[r].tolist())
        assert before.before.sum() == after.before.sum() and before.apart.sum() == after.apart.sum()
        # the cost: period full's cut is repeated in place of a repeated (or empty) one
        old = (problem.weight[:, None] * splits(problem, waves)).sum(axis=0).tolist()
        new = (problem.weight[:, None] * splits(problem, out)).sum(axis=0).tolist()
        assert Counter(new) - Counter(old) <= Counter([old[full - 1]])
        assert objective_units(problem, out) - objective_units(problem, waves) == sum(new) - sum(old)
        checked += 1
    assert checked > 20


def test_a_pinned_block_in_the_way_turns_the_opening_to_the_other_side() -> None:
    # waves 1: a | 2: b | 3: c (full) | 4: d pinned | 5: empty ; wave 1 may take nothing new
    apps = [App("a", 1), App("b", 1), App("c", 1), App("d", 1, pinned_wave=4), App("e", 1)]
    inv = Inventory(tuple(apps), (Dependency("a", "b", 1),), Scenario(waves=6, risk_weight=0.0))
    problem = build_problem(inv, build_blocks(inv), 0.0)
    waves = np.array([2, 3, 3, 4, 5])  # wave 1 and wave 6 empty
    opened = open_beside(problem, waves, 3)
    assert opened is not None
    out, pair = opened
    # later: d (pinned to 4) would have to move; so waves 2 move one earlier, wave 2 is opened
    assert pair == (2, 3) and out.tolist() == [1, 3, 3, 4, 5]
    assert open_beside(problem, np.array([1, 2, 3, 4, 5]), 3) is None  # no empty wave at all


def test_a_full_wave_is_tried_with_an_empty_wave_moved_beside_it() -> None:
    apps = [App(name, 1) for name in "abcdef"]
    deps = [Dependency(u, v, 1) for u, v in ("ab", "cd", "de", "ef")]
    inv = Inventory(tuple(apps), tuple(deps), Scenario(waves=5, capacity_apps=2.0, risk_weight=0.0))
    problem = build_problem(inv, build_blocks(inv), 0.0)
    waves = np.array([1, 1, 2, 2, 2, 3])  # wave 2 holds three apps, waves 4 and 5 are empty
    state = violations(problem, waves)
    failures = np.zeros(len(problem.latency.app), dtype=np.int64)
    bases = []
    for seed in range(20):
        _, _, options, base = feasibility._neighbourhood(
            problem, waves, state, failures, np.random.default_rng(seed)
        )
        if base is not waves:
            bases.append(base.tolist())
            assert options.window in (None, (2, 3))
    assert bases and all(b == [1, 1, 2, 2, 2, 4] for b in bases)
