"""What every search stage shares: the work budget, the stop event and neighbourhoods on blocks.

The work budget is counted in CP-SAT deterministic time, so a run repeats exactly for
the same seed; the wall clock is only a cap, and the budget records when it cut.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from migplan.model import IntArray
from migplan.solve.cpsat import ModelOptions, Problem, SolveOutcome, build_model, solve

BUILD_WORK_PER_CONSTRAINT = 2e-5  # model building is charged too, so the budget tracks real effort


@dataclass
class Budget:
    """Deterministic work left, a wall-clock deadline, and the user's stop request."""

    work: float  # CP-SAT deterministic seconds
    deadline: float  # time.monotonic() value
    stop: threading.Event = field(default_factory=threading.Event)
    used: float = 0.0
    wall_cut: bool = False

    @classmethod
    def start(
        cls, work: float, seconds: float, stop: threading.Event | None, since: float | None = None
    ) -> Budget:
        """``seconds`` of wall clock from ``since`` (a time.monotonic() reading; None: now)."""
        return cls(work, (time.monotonic() if since is None else since) + seconds, stop or threading.Event())

    @property
    def wall_left(self) -> float:
        return self.deadline - time.monotonic()

    def exhausted(self) -> bool:
        if self.stop.is_set():
            return True
        if self.wall_left <= 0 and self.used < self.work:
            self.wall_cut = True
        return self.used >= self.work or self.wall_left <= 0

    def charge(self, deterministic_time: float) -> None:
        self.used += deterministic_time

    def slice(self, wanted: float) -> float:
        """Deterministic time for the next sub-solve: ``wanted``, or what is left."""
        return max(min(wanted, self.work - self.used), 0.001)

    def child(self, share: float) -> Budget:
        """A stage budget: ``share`` of the remaining work, same deadline and stop event."""
        return Budget(self.used + share * (self.work - self.used), self.deadline, self.stop, self.used)

    def part(self, work: float) -> Budget:
        """A child budget of at most ``work`` more units, same deadline and stop event."""
        return Budget(min(self.used + work, self.work), self.deadline, self.stop, self.used)

    def absorb(self, child: Budget) -> None:
        self.used = child.used
        self.wall_cut = self.wall_cut or child.wall_cut


def ball(problem: Problem, seeds: IntArray, size: int, rng: np.random.Generator) -> IntArray:
    """Blocks reached breadth-first from ``seeds`` (all kept) until about ``size`` blocks.

    The order inside each BFS layer is shuffled by ``rng`` so repeated balls differ.
    """
    chosen: list[int] = list(dict.fromkeys(int(s) for s in seeds))
    seen = set(chosen)
    frontier = list(chosen)
    adj = problem.adjacency
    while frontier and len(chosen) < size:
        nxt: list[int] = []
        for b in frontier:
            nbrs = adj.indices[adj.indptr[b] : adj.indptr[b + 1]]
            for v in nbrs[rng.permutation(len(nbrs))].tolist():
                if v not in seen:
                    seen.add(v)
                    nxt.append(v)
        rng.shuffle(nxt)
        room = size - len(chosen)
        chosen.extend(nxt[:room])
        frontier = nxt[:room]
    return np.asarray(sorted(chosen), dtype=np.int64)


def sub_solve(
    problem: Problem,
    waves: IntArray,
    free: IntArray,
    options: ModelOptions,
    budget: Budget,
    rng: np.random.Generator,
    work: float,
    workers: int = 1,
) -> IntArray | None:
    """Re-optimise the ``free`` blocks of ``waves``; the block plan found, or None."""
    seed = int(rng.integers(1 << 30))
    return charged_solve(problem, waves, free, options, budget, work, seed, workers).waves


def charged_solve(
    problem: Problem,
    waves: IntArray,
    free: Iterable[int],
    options: ModelOptions,
    budget: Budget,
    work: float,
    seed: int,
    workers: int = 1,
) -> SolveOutcome:
    """Build and solve one model of ``free`` blocks (the others fixed at ``waves``), at most
    ``work`` of ``budget``.

    Charges the budget with CP-SAT's deterministic time plus a deterministic charge
    for building the model (proportional to its constraints).
    """
    wm = build_model(problem, waves, free, options)
    budget.charge(BUILD_WORK_PER_CONSTRAINT * len(wm.model.proto.constraints))
    outcome, _ = solve(
        wm,
        deterministic_time=budget.slice(work),
        wall_time=max(budget.wall_left, 0.01),
        workers=workers,
        seed=seed,
        stop=budget.stop,
    )
    budget.charge(outcome.deterministic_time)
    return outcome
