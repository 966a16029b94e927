"""Stage 4: improve a feasible plan by large-neighbourhood search with CP-SAT sub-models.

Two neighbourhood kinds, alternated by the seeded generator (SOLVER-NOTES, 2,000 apps):
breadth-first balls of 40-120 blocks that may move one wave either way, and windows of
three adjacent waves whose blocks may be re-ordered among those waves.  Every
constraint is hard and the current plan is the hint, so each sub-solve returns a
feasible plan no worse than its start; a strictly better one is kept.

Half the balls are centred on a block drawn in proportion to the chatty cost of its
split calls.  On the NetEase dataset at the default budget of ``--time-limit 60`` this
lowered the objective on 8 of seeds 0-9 (mean 2.21 M against 2.33 M, run one after the other); on
generated 200- and 2,000-app estates (seeds 0, 1) it was within noise (0.97-1.11).

Before the first sub-solve and after every step it keeps, single-block moves (``polish``)
take what is left at once: the repair can leave blocks waves away from their partners
(NetEase seed 7: 5.5 M after the step that cleared its last violation), which balls that
move one wave at a time recover only slowly (that seed ended at 3.93 M without the
polish, 2.14 M with it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from migplan.model import IntArray
from migplan.solve.cpsat import ModelOptions, Problem, objective_units
from migplan.solve.polish import BlockCalls, polish
from migplan.solve.search import Budget, ball, sub_solve

SUB_SOLVE_WORK = 0.4  # deterministic seconds per sub-solve
BALL_SIZES = (40, 120)
WINDOW = 3
WINDOW_MAX_BLOCKS = 400
# windows only from this many waves on: with fewer, three waves hold most of the estate, and
# a window's sub-model is nearly the full model (its sub-solves took 6.6 s of wall per unit of
# CP-SAT work on a 600-app, 4-wave estate, NetEase's 2).  bench.shapes at 4-5 waves (600-1,000
# apps, bench/results/2026-12-06-shapes.md): balls alone cost 0.88-0.97 x as much on three
# estates, 1.01 x on the fourth (both runs cut by the clock); generate_estate(600, 3) at 4
# waves: 0.95 x.  At 6 waves balls alone were mixed (-4 % and +2.6 %), at 8 3 % worse.
MIN_WINDOW_WAVES = 2 * WINDOW
GUIDED_SHARE = 0.5  # share of balls centred by cost (the rest uniformly)


@dataclass(frozen=True)
class ImproveResult:
    waves: IntArray
    objective: int
    steps: int
    accepted: int


def improve(
    problem: Problem,
    waves: IntArray,
    budget: Budget,
    rng: np.random.Generator,
    workers: int = 1,
    on_step: Callable[[IntArray, int], None] | None = None,
    floor: int = 0,
    keep: Callable[[IntArray], bool] | None = None,
) -> ImproveResult:
    """Keep the best of many neighbourhood re-optimisations until the budget runs out.

    ``floor``: a lower bound on every plan's objective (model units); a plan that reaches
    it is optimal and the search stops.  Without it a plan of cost 0 (calls that never
    need splitting) was searched on until the time limit.  ``keep``: a better plan is
    kept only when this holds (its polished form, else the sub-solve's own plan): on a
    relaxed model (pipeline), that ``metrics`` finds it feasible.
    """
    current = np.asarray(waves, dtype=np.int64).copy()
    best = objective_units(problem, current)
    steps = accepted = 0
    if problem.count < 2 or problem.K < 2 or best <= floor:  # nothing to search, or optimal
        return ImproveResult(current, best, 0, 0)
    calls = BlockCalls(problem)  # built once: every polish below reads the same calls
    polished = polish(problem, current, budget, calls)
    if polished.objective < best and (keep is None or keep(polished.waves)):
        current, best = polished.waves, polished.objective
        if on_step is not None:
            on_step(current, best)
    while best > floor and not budget.exhausted():
        free, options = _neighbourhood(problem, current, rng)
        found = sub_solve(problem, current, free, options, budget, rng, SUB_SOLVE_WORK, workers)
        steps += 1
        if found is None:
            continue
        value = objective_units(problem, found)
        if value < best:
            polished = polish(problem, found, budget, calls)
            better = (polished.waves, polished.objective), (found, value)
            kept = next((plan for plan in better if keep is None or keep(plan[0])), None)
            if kept is None:
                continue
            current, best = kept
            accepted += 1
            if on_step is not None:
                on_step(current, best)
    return ImproveResult(current, best, steps, accepted)


def _neighbourhood(
    problem: Problem, waves: IntArray, rng: np.random.Generator
) -> tuple[IntArray, ModelOptions]:
    """A ball (radius 1) or, from MIN_WINDOW_WAVES waves on, a window of three adjacent waves,
    chosen by ``rng``."""
    K = problem.K
    if K >= MIN_WINDOW_WAVES and rng.random() < 0.3:
        first = int(rng.integers(1, K - WINDOW + 2))
        window = (first, first + WINDOW - 1)
        inside = np.flatnonzero((waves >= window[0]) & (waves <= window[1]))
        if len(inside) > WINDOW_MAX_BLOCKS:
            start = inside[int(rng.integers(len(inside)))]
            inside = np.intersect1d(ball(problem, np.array([start]), WINDOW_MAX_BLOCKS * 2, rng), inside)
        return inside, ModelOptions(window=window)
    size = int(rng.integers(BALL_SIZES[0], BALL_SIZES[1] + 1))
    return ball(problem, np.array([_ball_centre(problem, waves, rng)]), size, rng), ModelOptions(radius=1)


def _ball_centre(problem: Problem, waves: IntArray, rng: np.random.Generator) -> int:
    """A block drawn in proportion to the chatty cost of its split calls (GUIDED_SHARE of the
    time), else uniformly: the cost sits where calls are split, so balls there can lower it."""
    paid = problem.weight * np.abs(waves[problem.eu] - waves[problem.ev]).astype(np.float64)
    per_block = np.bincount(problem.eu, paid, problem.count) + np.bincount(problem.ev, paid, problem.count)
    total = float(per_block.sum())
    if rng.random() < GUIDED_SHARE and total > 0:
        return int(rng.choice(problem.count, p=per_block / total))
    return int(rng.integers(problem.count))
