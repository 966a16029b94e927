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

After RIGID_STALL steps in a row without a gain, one step shifts whole communities
(``Communities``): moves no ball makes, e.g. a team's blocks trading waves with another
team's.  NetEase, ``plan(inv, PlanOptions(time_limit=270, work_limit=63, seed=N))``,
seeds 0-3: objective 0.95 / 0.97 / 0.99 / 0.95 of the balls-only search; at the default
budget (work 21) the search rarely stalls: the same plan on seeds 0-3, 1.04 on seed 4.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx
import numpy as np

from migplan.model import IntArray
from migplan.solve.cpsat import ModelOptions, Problem, objective_units
from migplan.solve.search import Budget, ball, sub_solve

SUB_SOLVE_WORK = 0.4  # deterministic seconds per sub-solve
BALL_SIZES = (40, 120)
WINDOW = 3
WINDOW_MAX_BLOCKS = 400
GUIDED_SHARE = 0.5  # share of balls centred by cost (the rest uniformly)
RIGID_STALL = 8  # after this many steps without a gain, one step shifts whole communities
RIGID_NEAR = 60  # communities met in a ball of this many blocks around the centre move...
RIGID_CLUSTERS = 15  # ...with up to this many of them, and this many drawn at random


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
) -> ImproveResult:
    """Keep the best of many neighbourhood re-optimisations until the budget runs out."""
    current = np.asarray(waves, dtype=np.int64).copy()
    best = objective_units(problem, current)
    steps = accepted = 0
    if problem.count < 2:
        return ImproveResult(current, best, 0, 0)
    communities = Communities(problem)
    stalled = 0
    while not budget.exhausted():
        if stalled >= RIGID_STALL:
            stalled = 0
            free, options = communities.neighbourhood(current, rng)
        else:
            free, options = _neighbourhood(problem, current, rng)
        found = sub_solve(problem, current, free, options, budget, rng, SUB_SOLVE_WORK, workers)
        steps += 1
        if found is None:
            continue
        value = objective_units(problem, found)
        stalled += 1
        if value < best:
            current, best, stalled = found, value, 0
            accepted += 1
            if on_step is not None:
                on_step(current, best)
    return ImproveResult(current, best, steps, accepted)


class Communities:
    """Communities of blocks that share a wave, shifted whole: a move no ball can make.

    Louvain (networkx, fixed seed) on the calls inside each wave, recomputed when the
    plan changes.  A step frees the communities around a cost-guided centre plus some
    drawn at random, each moving by one shift of waves (``ModelOptions.rigid``), so a
    team's worth of blocks can trade places with another team's across several waves.
    """

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self._for: bytes = b""
        self._groups: list[list[int]] = []
        self._of: IntArray = np.zeros(0, dtype=np.int64)

    def neighbourhood(self, waves: IntArray, rng: np.random.Generator) -> tuple[IntArray, ModelOptions]:
        self._update(waves)
        centre = _ball_centre(self.problem, waves, rng)
        near = np.unique(self._of[ball(self.problem, np.array([centre]), RIGID_NEAR, rng)])[:RIGID_CLUSTERS]
        drawn = rng.choice(len(self._groups), min(RIGID_CLUSTERS, len(self._groups)), replace=False)
        chosen = np.union1d(near, drawn)
        groups = tuple(tuple(self._groups[c]) for c in chosen.tolist())
        free = np.unique(np.concatenate([np.asarray(g, dtype=np.int64) for g in groups]))
        return free, ModelOptions(rigid=groups)

    def _update(self, waves: IntArray) -> None:
        key = np.asarray(waves, dtype=np.int64).tobytes()
        if key == self._for:
            return
        p = self.problem
        graph = nx.Graph()
        graph.add_nodes_from(range(p.count))
        same = waves[p.eu] == waves[p.ev]
        weights = (p.weight[same] + 1).tolist()  # +1: calls of 0 qps still hold a community together
        graph.add_weighted_edges_from(zip(p.eu[same].tolist(), p.ev[same].tolist(), weights, strict=True))
        self._groups = [sorted(c) for c in nx.community.louvain_communities(graph, seed=0)]
        self._of = np.empty(p.count, dtype=np.int64)
        for i, members in enumerate(self._groups):
            self._of[members] = i
        self._for = key


def _neighbourhood(
    problem: Problem, waves: IntArray, rng: np.random.Generator
) -> tuple[IntArray, ModelOptions]:
    """A ball (radius 1) or a window of three adjacent waves, chosen by ``rng``."""
    K = problem.K
    if K > WINDOW and rng.random() < 0.3:
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
