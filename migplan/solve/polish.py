"""Single-block moves: a cheap descent that takes what the CP-SAT neighbourhoods leave behind.

Why: the repair's sub-models minimise violations, not cost, and leave many blocks in waves
far from their partners.  On the NetEase dataset (seed 0) the repaired plan's objective of
3.73 M fell to 2.50 M by 113 single-block moves (1,802 checked) in 0.27 s; the LNS's ball
sub-solves (one wave either way, about a second each) need many steps for the same.
Capacity is what refuses most moves there (1,306 of about 1,800 in the first sweeps);
swaps with a block of the full wave were tried and gave nothing on seeds 0-4.

A move sends one block to any wave of its range.  It is made when it lowers the objective
(chatty cost plus risk term, the model's integers) and makes no constraint instance worse:
no latency row, capacity, link or risk limit goes further over its limit than it already
is, and no rule that held breaks.  So a feasible plan stays feasible, and an infeasible one
(the repair's) never gets more infeasible.  The state (latency loads per row and period,
wave loads, link loads) is updated incrementally, so a check costs a few sparse products
over the block's own calls.  Deterministic: candidates are tried in a fixed order, and
the work charged is a fixed amount per check.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from migplan.model import IntArray
from migplan.solve.cpsat import (
    Problem,
    apart_holds,
    before_holds,
    callee_first_holds,
    objective_units,
    pilot_plus_spread,
    splits,
    wave_sums,
)
from migplan.solve.search import Budget

# work units charged per move checked and per block whose candidates are listed: about the
# CP-SAT work the same wall time buys (0.35 units per second on the 2-core box)
CHECK_WORK = 1e-4
LIST_WORK = 2e-5
MAX_SWEEPS = 50


@dataclass(frozen=True)
class PolishResult:
    waves: IntArray
    objective: int
    moves: int
    checks: int


@dataclass(frozen=True)
class _Calls:
    """A block's calls: edge ids, the block at the other end, qps weights, and the latency
    rows that read them (row ids and the rows' coefficients on these edges)."""

    edges: IntArray
    other: IntArray
    weight: IntArray
    rows: IntArray
    coef: sp.csr_matrix  # (len(rows), len(edges))


class BlockCalls:
    """Each block's calls (``_Calls``), built on first use and kept for every polish of a run.

    Building them is most of a polish's cost when it is rebuilt each time (0.15 s of about
    0.25 s per polish on NetEase, 0.46 s for all blocks at 10,000 apps), and they depend
    on the problem only, not on the plan.
    """

    def __init__(self, problem: Problem) -> None:
        self.p = problem
        self._of: dict[int, _Calls] = {}

    def __getitem__(self, b: int) -> _Calls:
        if b not in self._of:
            p = self.p
            inc = p.incidence
            edges = inc.indices[inc.indptr[b] : inc.indptr[b + 1]].astype(np.int64)
            other = np.where(p.eu[edges] == b, p.ev[edges], p.eu[edges])
            sub = p.latency.by_edge[:, edges].tocsr()
            rows = np.flatnonzero(np.diff(sub.indptr))
            self._of[b] = _Calls(edges, other, p.weight[edges], rows, sub[rows])
        return self._of[b]


class _State:
    """The current plan and every load a move can change, kept up to date move by move."""

    def __init__(self, problem: Problem, waves: IntArray, calls: BlockCalls) -> None:
        self.p = problem
        self.calls = calls
        self.waves = np.asarray(waves, dtype=np.int64).copy()
        S = splits(problem, self.waves).astype(np.int64)
        lat = problem.latency
        self.latency = np.asarray(lat.coef @ S) if len(lat.app) else np.zeros((0, problem.K - 1), np.int64)
        self.link = problem.gbps @ S if problem.link is not None else None
        K = problem.K
        self.loads = {
            r: np.rint(wave_sums(v, self.waves, K)).astype(np.int64) for r, v in problem.loads.items()
        }
        self.risk = (
            np.rint(wave_sums(problem.risk_load, self.waves, K)).astype(np.int64)
            if problem.risk_cap is not None
            else None
        )
        self.risk_units = np.rint(wave_sums(problem.risk_units, self.waves, K)).astype(np.int64)
        self.objective = objective_units(problem, self.waves)
        self._rules = _rules_by_block(problem)

    def chatty_gains(self, b: int) -> IntArray:
        """(K,) change of the chatty cost if block b moved to each wave (index wave - 1)."""
        c = self.calls[b]
        w_other = self.waves[c.other]
        targets = np.arange(1, self.p.K + 1)
        now = int(c.weight @ np.abs(self.waves[b] - w_other))
        return np.abs(targets[:, None] - w_other[None, :]) @ c.weight - now

    def risk_change(self, b: int, t: int) -> int:
        if self.p.risk_weight_units == 0:
            return 0
        units = self.risk_units.copy()
        units[self.waves[b] - 1] -= int(self.p.risk_units[b])
        units[t - 1] += int(self.p.risk_units[b])
        return self.p.risk_weight_units * (pilot_plus_spread(units) - pilot_plus_spread(self.risk_units))

    def try_move(self, b: int, t: int) -> bool:
        """Move block b to wave t when that lowers the objective and worsens no constraint."""
        p, w = self.p, int(self.waves[b])
        if t == w or t < p.blocks.lo[b] or t > p.blocks.hi[b]:
            return False
        c = self.calls[b]
        w_other = self.waves[c.other]
        delta = int(c.weight @ (np.abs(t - w_other) - np.abs(w - w_other))) + self.risk_change(b, t)
        if delta >= 0 or not self._loads_fit(b, t) or not self._rules_hold(b, t):
            return False
        periods = np.arange(min(w, t), max(w, t))  # 1-based periods whose splits change
        before = (w <= periods[None, :]) != (w_other[:, None] <= periods[None, :])
        after = (t <= periods[None, :]) != (w_other[:, None] <= periods[None, :])
        change = after.astype(np.int64) - before.astype(np.int64)  # (edges, periods)
        cols = periods - 1
        lat_change = np.asarray(c.coef @ change) if len(c.rows) else None
        if lat_change is not None:
            old = self.latency[np.ix_(c.rows, cols)]
            limit = np.maximum(p.latency.budget[c.rows][:, None], old)
            if np.any(old + lat_change > limit):
                return False
        link_change = None
        if self.link is not None and p.link is not None:
            link_change = p.gbps[c.edges] @ change
            old_link = self.link[cols]
            if np.any(old_link + link_change > np.maximum(p.link, old_link)):
                return False
        # the move is made: update every load
        if lat_change is not None:
            self.latency[np.ix_(c.rows, cols)] += lat_change
        if link_change is not None and self.link is not None:
            self.link[cols] += link_change
        for res, load in p.loads.items():
            self.loads[res][w - 1] -= load[b]
            self.loads[res][t - 1] += load[b]
        if self.risk is not None:
            self.risk[w - 1] -= p.risk_load[b]
            self.risk[t - 1] += p.risk_load[b]
        share = int(p.risk_units[b])
        self.risk_units[w - 1] -= share
        self.risk_units[t - 1] += share
        self.waves[b] = t
        self.objective += delta
        return True

    def _loads_fit(self, b: int, t: int) -> bool:
        """Wave t's capacity and risk loads stay within their limits (or within their excess)."""
        p = self.p
        for res, load in p.loads.items():
            new = self.loads[res][t - 1] + load[b]
            if load[b] > 0 and new > max(int(p.caps[res][t - 1]), int(self.loads[res][t - 1])):
                return False
        if self.risk is not None and p.risk_cap is not None and p.risk_load[b] > 0:
            new = self.risk[t - 1] + p.risk_load[b]
            if new > max(p.risk_cap, int(self.risk[t - 1])):
                return False
        return True

    def _rules_hold(self, b: int, t: int) -> bool:
        """No before/apart/callees-first rule involving b breaks that held before the move."""
        waves = self.waves
        for rule in self._rules.get(b, ()):
            held = _holds(rule, waves)
            old = int(waves[b])
            waves[b] = t
            now = _holds(rule, waves)
            waves[b] = old
            if held and not now:
                return False
        return True


Rule = tuple[str, tuple[int, ...]]


def _rules_by_block(problem: Problem) -> dict[int, list[Rule]]:
    """Every ordering rule instance, listed under each block it names."""
    found: dict[int, list[Rule]] = defaultdict(list)
    for a, b, _ in problem.before:
        found[a].append(("before", (a, b)))
        found[b].append(("before", (a, b)))
    for bs, _ in problem.apart:
        for b in set(bs):
            found[b].append(("apart", bs))
    for a, b in problem.callees_first:
        found[a].append(("callee", (a, b)))
        found[b].append(("callee", (a, b)))
    return found


def _holds(rule: Rule, waves: IntArray) -> bool:
    kind, bs = rule
    if kind == "before":
        return before_holds(waves, bs[0], bs[1])
    if kind == "callee":
        return callee_first_holds(waves, bs[0], bs[1])
    return apart_holds(waves, bs)


def polish(
    problem: Problem, waves: IntArray, budget: Budget, calls: BlockCalls | None = None
) -> PolishResult:
    """Sweep single-block moves, best listed gain first, until a sweep makes none or the budget ends.

    The objective never rises and no constraint instance gets worse (module docstring).
    ``calls``: the problem's ``BlockCalls``, shared by repeated polishes of one problem.
    """
    state = _State(problem, waves, calls if calls is not None else BlockCalls(problem))
    moves = checks = 0
    for _ in range(MAX_SWEEPS):
        if budget.exhausted():
            break
        candidates = _candidates(state)
        budget.charge(LIST_WORK * problem.count)
        moved: set[int] = set()
        for _gain, b, t in candidates:
            if b in moved:
                continue
            checks += 1
            budget.charge(CHECK_WORK)
            if state.try_move(b, t):
                moved.add(b)
                moves += 1
            if checks % 64 == 0 and budget.exhausted():
                break
        if not moved:
            break
    return PolishResult(state.waves, state.objective, moves, checks)


def _candidates(state: _State) -> list[tuple[int, int, int]]:
    """(chatty gain, block, wave) for every move that lowers the chatty cost, or that keeps it
    and may lower the risk term, best first; ties broken by block and wave (deterministic)."""
    p = state.p
    found: list[tuple[int, int, int]] = []
    for b in range(p.count):
        gains = state.chatty_gains(b)
        lo, hi = int(p.blocks.lo[b]), int(p.blocks.hi[b])
        waves_ok = np.arange(1, p.K + 1)
        keep = (waves_ok >= lo) & (waves_ok <= hi) & (waves_ok != state.waves[b])
        keep &= gains < 0 if p.risk_weight_units == 0 else gains <= 0
        found.extend((int(gains[t - 1]), b, int(t)) for t in waves_ok[keep])
    found.sort()
    return found
