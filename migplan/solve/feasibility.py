"""Stage 3: drive every violation of a start plan to zero with neighbourhoods that follow it.

Random neighbourhoods remove latency violations only slowly (SOLVER-NOTES): the blocks
that matter for an over-budget app are the ones on its split call paths.  Each step
picks one violated instance, frees the blocks that cause it (for a latency row: the
app's block and the endpoints of its split edges with a coefficient, grown
breadth-first), and solves a sub-model where the instances the plan already breaks
are soft (penalised slack, never allowed to grow) and all others hard.  A step is kept
when the total violation score drops, so the search is monotone and any sub-solve
result is at least as feasible as its start.

Failed attempts on one latency row cycle through five neighbourhoods: a ball, a ball
where other budgets may trade some excess, the seeds plus all their callers and
callees, the two waves at the cut of the row's worst period (``_at_cut``), and a kick
(``_make_room``).  The cut cleared the final 1-3 violations on NetEase where the first
three got stuck (seeds 1-3 of 4).  A kick clears the row with capacity, risk and link limits
relaxed, then repairs those limits: at 10,000 apps the last broken budget could only be
cleared by moving 35 blocks a wave later, which overfilled that wave, so every step with
hard limits failed.  A row's successive kicks free one wave more on each side each time
(0, 1, 2, then 0 again): a kick kept to the broken periods' waves can only overfill them,
and where max_risk held every wave around near its limit, that excess could not be
repaired (``_kick_window``).  Capacity, risk and link instances are tried with a ball or
with the blocks of the two waves around them, a window that widens to the waves within 1,
then 2, of the full wave while the repair stalls (``_widened``: at work 21, 22 of 22
generated estates of 300-3,000 apps got a plan against 19,
bench/results/2026-12-07-widened-windows.md).  Where some wave is empty, half of the
attempts on a full wave first move the nearest empty wave beside it (``room``: the waves
between shift by one and no period's cut changes), so the full wave's blocks can spill
into it.  At ``--work-limit 21`` a generated 600-app estate at 24 waves (seed 2) ended one
app over in wave 6, with waves 18-24 empty, and got no plan; it gets one now, and one of
1,200 apps at 40 waves (seed 9) a 0.82 x cheaper one (bench/results/2026-12-07-room.md).

A repair that stalls kicks more often: once STALL_STEPS steps in a row have failed, every
other step is a kick, whatever the row's own count (a row's count is halved by every
accepted step, so a stuck plan with many broken rows rarely reached its fifth attempt).
Measured at ``--time-limit 60`` (``python -m bench.feasibility_sweep``, ten generated
estates of 700-1,500 apps): 9 of 10 planned against 8 of 10; after 4 failed steps instead
of 8, NetEase seeds 3 and 7 got no plan (a kick can use 9 of the repair's ~16 units).
NetEase seeds 0-9 never stall that long and get the same plans as before.

Sub-solves run with the planner's worker count (CP-SAT's interleaved search, which
repeats under a deterministic budget).  On the NetEase dataset at the default budget of
``--time-limit 60``, seeds 0-9: one worker left 1 and 6 violations on seeds 5 and 8,
two workers found a plan on all ten, in less wall time (29-38 s against 35-58 s), with
the same chatty cost on average over the eight seeds both solved (within 2 %).

Large estates are repaired on two levels (``multilevel_repair``, used by the planner
from 1,000 blocks on): each cycle repairs on clusters of blocks (``coarsen``), so whole
call clusters change waves, then on the blocks.  At 10,000 generated apps
(``--time-limit 300``, seeds 0-2) it left 1-2 violations by ``metrics.evaluate``'s
count, where the block-level repair left 18; with kicks, 3 of 5 runs (4 estates) found
a plan at that work budget, against 2 of the same 5 before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from migplan.model import IntArray
from migplan.solve.coarsen import Level, coarsen
from migplan.solve.cpsat import ModelOptions, Problem, Violations, objective_units, splits, violations
from migplan.solve.room import open_beside
from migplan.solve.search import Budget, ball, sub_solve

SUB_SOLVE_WORK = 0.5  # deterministic seconds per repair sub-solve
TIDY_WORK = 0.3  # deterministic seconds per tidy sub-solve
# a step that clears no violated instance (only shrinks an excess) is kept only when it
# raises the objective at most this much (after its tidy step)
DAMAGE_LIMIT = 1.5
EXTRA = (10, 60)  # blocks added breadth-first around the violated instance's own blocks
MAX_SEEDS = 120
MAX_FREE = 160  # blocks in a seeds-plus-neighbours neighbourhood
ATTEMPT_KINDS = 5  # ball, ball with trading, seeds plus neighbours, the two waves at the cut, kick
KICK = ATTEMPT_KINDS - 1  # the kick comes last, so a repair without kicks cycles through the rest
CUT_MAX_BLOCKS = 300  # a cut neighbourhood keeps the blocks of its two waves nearest the seeds
KICK_MAX_BLOCKS = 600  # the same for a kick's waves
# after this many steps in a row without an accepted one, every other step is a kick
STALL_STEPS = 8
KICK_WORK = 3.0  # deterministic seconds for a kick's relaxed sub-solve
KICK_REPAIR_WORK = 6.0  # at most this for the repair of the limits a kick exceeded
# ... which also ends after this many failed steps in a row: on a generated 1,800-app
# estate (seed 48) two such repairs each spent their 6 units on 123-144 failures in a row
KICK_REPAIR_PATIENCE = 40
# a row's successive kicks widen their window by 0, 1, 2, 0, ... waves on each side
KICK_WIDENINGS = 3
# a capacity, risk or link instance: this share of its attempts frees the two waves around it
# (a 10,000-app estate ended with one wave 0.8 % over on data_gb where balls found nothing)
OTHER_WINDOW_SHARE = 0.5
OPEN_SHARE = 0.5  # of a full wave's window attempts, where some wave is empty (``room``)
# ... whose windows widen every WIDEN_STEPS failed steps in a row: the full wave and 1, then
# 2 waves on each side (``_widened``), then the two waves again
WIDEN_STEPS = 4
OTHER_WIDENINGS = 3
RADIUS: int | None = None  # free blocks may take any wave of their range
# multilevel repair: cluster sizes (share of a wave's apps) alternate by cycle; each cycle
# repairs on the clusters, then on the blocks, with these shares of the stage's work
LEVEL_SHARES = (0.15, 0.1)
COARSE_WORK_SHARE = 0.2
FINE_WORK_SHARE = 0.1
COARSEN_WORK_PER_BLOCK = 0.0005  # Louvain and the coarse problem: ~1 s at 2,675 blocks
# ``enough`` is asked only of plans with at most this many violations in the model: the
# model's excess over the rules is its rounding, which a few marginal rows show, not hundreds
ENOUGH_BELOW = 64
Check = Callable[[IntArray], bool]  # the planner's verdict on a plan (``enough``)


@dataclass(frozen=True)
class RepairResult:
    waves: IntArray
    violations: Violations  # in the repair's model
    steps: int
    accepted: int
    passed: bool = False  # ``enough`` held for ``waves``: a plan, whatever the model still counts

    @property
    def done(self) -> bool:
        """No violation left in the model, or the plan passed ``enough`` (the rules themselves)."""
        return self.violations.count == 0 or self.passed


def _passes(enough: Check | None, waves: IntArray, state: Violations) -> bool:
    return enough is not None and 0 < state.count <= ENOUGH_BELOW and enough(waves)


def repair(
    problem: Problem,
    waves: IntArray,
    budget: Budget,
    rng: np.random.Generator,
    on_step: Callable[[IntArray, Violations], None] | None = None,
    workers: int = 1,
    kicks: bool = True,
    tidy: bool = True,
    patience: int | None = None,
    enough: Check | None = None,
) -> RepairResult:
    """Remove violations from ``waves`` until none are left, ``enough`` holds, or the budget
    runs out.

    Each repair step that lowers the violation score is followed by a tidy step on the
    same blocks: the new violations stay capped (soft, never growing) while the chatty
    cost is minimised, so repairs do not scatter the construction's good structure.  A
    step that clears no instance and still costs more than DAMAGE_LIMIT times the
    objective is rejected: on NetEase (seed 5, work 21) one such step freed 160 blocks,
    shrank an excess and raised the objective from 2.5 M to 6.6 M, which the tidy could
    not undo and the rest of the budget never recovered.  ``kicks`` False: no kick
    attempts (a kick's own repair).  ``tidy`` False: no tidy steps (the planner's later
    passes, when the first found no plan: tidies took a third of a repair's work).
    ``patience``: give up after that many failed steps in a row (a kick's own repair).
    ``enough``: the planner's check of a plan against the rules (``metrics``), asked after
    every accepted step.  The model rounds against the plan, so a plan may meet every rule
    with violations left in the model; the repair's own goal is met then, and its steps
    would chase rounding (or, worse, trade a marginal row for a real excess).
    """
    current = np.asarray(waves, dtype=np.int64).copy()
    state = violations(problem, current)
    passed = _passes(enough, current, state)
    steps = accepted = 0
    failures = np.zeros(len(problem.latency.app), dtype=np.int64)  # failed attempts per latency row
    kicked = np.zeros(len(problem.latency.app), dtype=np.int64)  # kicks per latency row
    stalled = 0  # steps since the last accepted one
    while state.count > 0 and not passed and not budget.exhausted():
        if patience is not None and stalled >= patience:
            break
        kick_now = kicks and stalled >= STALL_STEPS and (stalled - STALL_STEPS) % 2 == 0
        widen = (stalled // WIDEN_STEPS) % OTHER_WIDENINGS
        row, free, options, base = _neighbourhood(
            problem, current, state, failures, rng, kicks, kick_now, kicked, widen
        )
        kick = options.clear_row is not None
        if kick:
            kicked[options.clear_row] += 1
        work = KICK_WORK if kick else SUB_SOLVE_WORK
        found = sub_solve(problem, base, free, options, budget, rng, work, workers)
        if kick and found is not None:
            found = _make_room(problem, found, budget, rng, workers)
        steps += 1
        after = violations(problem, found) if found is not None else None
        if found is not None and after is not None and after.score < state.score - 1e-9:
            if tidy:
                found, after = _tidy(problem, found, after, free, budget, rng, workers)
            cleared = after.count < state.count
            if cleared or objective_units(problem, found) <= DAMAGE_LIMIT * objective_units(problem, current):
                current, state = found, after
                accepted += 1
                stalled = 0
                failures //= 2  # the plan changed: old failures say less
                passed = _passes(enough, current, state)
                if on_step is not None:
                    on_step(current, state)
                continue
        stalled += 1
        if row is not None:
            failures[row] += 1
    return RepairResult(current, state, steps, accepted, passed)


def _tidy(
    problem: Problem,
    found: IntArray,
    state: Violations,
    free: IntArray,
    budget: Budget,
    rng: np.random.Generator,
    workers: int,
) -> tuple[IntArray, Violations]:
    """``found`` with the chatty cost of ``free`` minimised, its violations capped (soft, never
    growing); ``found`` itself when that is no better."""
    tidy = sub_solve(problem, found, free, ModelOptions(soft=True), budget, rng, TIDY_WORK, workers)
    if tidy is None:
        return found, state
    tidy_state = violations(problem, tidy)
    better = objective_units(problem, tidy) < objective_units(problem, found)
    if tidy_state.score <= state.score + 1e-9 and better:
        return tidy, tidy_state
    return found, state


def multilevel_repair(
    problem: Problem,
    start: IntArray,
    first: Level | None,
    risk_weight: float,
    budget: Budget,
    rng: np.random.Generator,
    seed: int,
    on_step: Callable[[IntArray, Violations], None] | None = None,
    workers: int = 1,
    tidy: bool = True,
    enough: Check | None = None,
) -> RepairResult:
    """Repair in cycles: on clusters of blocks (``coarsen``), then on the blocks themselves.

    Each cycle clusters again, with the next size and seed and only inside the waves of
    the current plan, so the clusters differ and every cycle starts where the last ended.
    ``first``: the level ``start`` was built on (its clusters each in one wave), or None.
    """
    current = np.asarray(start, dtype=np.int64).copy()
    state = violations(problem, current)
    passed = _passes(enough, current, state)
    total = budget.work - budget.used
    steps = accepted = cycle = 0
    while state.count > 0 and not passed and not budget.exhausted():
        if first is None:
            first = coarse_level(problem, risk_weight, budget, seed, cycle, current)
        for level in (first, None):
            part = budget.part((COARSE_WORK_SHARE if level else FINE_WORK_SHARE) * total)
            if level is not None:
                coarse_start = level.restrict(current)
                found = repair(
                    level.problem,
                    coarse_start,
                    part,
                    rng,
                    _lifted(level, on_step),
                    workers,
                    tidy=tidy,
                    enough=_lifted_check(level, enough),
                )
                current = level.refine(found.waves)
            else:
                found = repair(problem, current, part, rng, on_step, workers, tidy=tidy, enough=enough)
                current = found.waves
            budget.absorb(part)
            steps, accepted = steps + found.steps, accepted + found.accepted
            state = violations(problem, current)
            passed = found.passed
            if state.count == 0 or passed or budget.exhausted():
                break
        cycle, first = cycle + 1, None
    return RepairResult(current, state, steps, accepted, passed)


def coarse_level(
    problem: Problem, risk_weight: float, budget: Budget, seed: int, cycle: int, plan: IntArray | None = None
) -> Level:
    """The clusters of a repair cycle (size and seed by cycle), charged to ``budget``."""
    share = LEVEL_SHARES[cycle % len(LEVEL_SHARES)]
    budget.charge(COARSEN_WORK_PER_BLOCK * problem.count)
    return coarsen(problem, risk_weight, share, seed + cycle, plan)


def _lifted(
    level: Level, on_step: Callable[[IntArray, Violations], None] | None
) -> Callable[[IntArray, Violations], None] | None:
    """A coarse repair's step report, in fine blocks."""
    if on_step is None:
        return None
    return lambda waves, state: on_step(level.refine(waves), state)


def _lifted_check(level: Level, enough: Check | None) -> Check | None:
    """A coarse repair's ``enough``: the check of its plan in fine blocks."""
    if enough is None:
        return None
    return lambda waves: enough(level.refine(waves))


def _neighbourhood(
    problem: Problem,
    waves: IntArray,
    state: Violations,
    failures: IntArray,
    rng: np.random.Generator,
    kicks: bool = True,
    kick_now: bool = False,
    kicked: IntArray | None = None,
    widen: int = 0,
) -> tuple[int | None, IntArray, ModelOptions, IntArray]:
    """(latency row or None, free blocks, sub-model options, the plan they start from) around
    one violated instance.

    Attempts on a row cycle with its failures: plain ball, ball where other budgets may
    absorb some excess (for a larger total drop), seeds plus all their neighbours, the
    two waves at the cut, a kick (when ``kicks``; ``kicked``: the kicks each row had so
    far, which widen its next one).  Other instances get a ball or, for
    capacity, risk and link, the blocks of the two waves around them (OTHER_WINDOW_SHARE).
    """
    others = state.count - int(np.count_nonzero(state.latency))
    # latency rows and other violated instances take turns in proportion to their counts
    row = None if rng.random() * state.count < others else _pick_row(state, failures, rng)
    if row is None:
        seeds, around, full = _other_seeds(problem, waves, state, rng)
        # where some wave is empty, half of the attempts on a full wave first move the
        # nearest empty wave beside it (``room``), and a window attempt takes those two waves
        opened = open_beside(problem, waves, full) if full is not None else None
        base = waves
        if opened is not None and rng.random() < OPEN_SHARE:
            base, around = opened
        if around is not None and rng.random() < OTHER_WINDOW_SHARE:
            around = _widened(around, full, widen, problem.K)
            free = _in_waves(problem, base, around, seeds, CUT_MAX_BLOCKS, rng)
            return None, free, ModelOptions(soft=True, chatty=False, window=around), base
        options = ModelOptions(soft=True, radius=RADIUS, chatty=False)
        return None, _ball_around(problem, seeds, rng), options, base
    seeds = _latency_seeds(problem, row)
    kind = KICK if kick_now else failures[row] % (ATTEMPT_KINDS if kicks else KICK)
    window: tuple[int, int] | None = None
    if kind == KICK:
        wider = int(kicked[row]) % KICK_WIDENINGS if kicked is not None else 0
        free, window = _kick_window(problem, waves, state, row, seeds, rng, wider)
        options = ModelOptions(soft=True, chatty=False, window=window, relax_limits=True, clear_row=row)
        return row, free, options, waves
    if kind == 2:
        free = _with_neighbours(problem, seeds, rng)
    elif kind == 3:
        free, window = _at_cut(problem, waves, state, row, seeds, rng)
    else:
        free = _ball_around(problem, seeds, rng)
    options = ModelOptions(soft=True, radius=RADIUS, chatty=False, trade=kind == 1, window=window)
    return row, free, options, waves


def _widened(pair: tuple[int, int], full: int | None, widen: int, K: int) -> tuple[int, int]:
    """``pair``, or with ``widen`` > 0 the waves within ``widen`` of the full wave (of the pair
    for a link instance's period).

    Why: with the waves on both sides of a full wave near their limits too, no move
    between two waves clears it; a chain across three can (one app out to the wave
    before while another moves on from there to the wave after).  On three generated
    estates of 1,000-1,200 apps at 12-18 waves the last wave over its apps or risk limit
    survived 21 units of overtime; from two of those plans the waves j-1..j+1 cleared it
    in one sub-solve of 0.5 units, where both pairs were proven infeasible at once (the
    third, a risk excess, took the repair's own path; all three are planned now).
    """
    if widen == 0:
        return pair
    lo, hi = (full, full) if full is not None else pair
    return max(lo - widen, 1), min(hi + widen, K)


def _ball_around(problem: Problem, seeds: IntArray, rng: np.random.Generator) -> IntArray:
    """The seeds and EXTRA more blocks breadth-first."""
    return ball(problem, seeds, len(seeds) + int(rng.integers(EXTRA[0], EXTRA[1] + 1)), rng)


def _at_cut(
    problem: Problem, waves: IntArray, state: Violations, row: int, seeds: IntArray, rng: np.random.Generator
) -> tuple[IntArray, tuple[int, int]]:
    """The blocks of waves k and k+1, free to swap across the cut of the row's worst period k.

    A budget broken in one period is often fixed by moving a few small blocks across
    that one cut, with others moving back to keep capacities: a chain the balls around
    the violation miss when the blocks are not call neighbours.
    """
    k = int(np.argmax(state.latency[row])) + 1
    return _in_waves(problem, waves, (k, k + 1), seeds, CUT_MAX_BLOCKS, rng), (k, k + 1)


def _make_room(
    problem: Problem, kicked: IntArray, budget: Budget, rng: np.random.Generator, workers: int
) -> IntArray:
    """The second half of a kick: repair the limits the kicked plan exceeds (a nested
    repair of at most KICK_REPAIR_WORK, without kicks, that gives up after
    KICK_REPAIR_PATIENCE failed steps in a row).

    A kick's sub-model clears one latency row with capacity, risk and link limits relaxed.
    When every move that clears a row overfills a wave, the steps that keep limits hard
    reject them all: on a 10,000-app estate the last broken budget needed 35 blocks moved
    a wave later together, which overfilled it by 273 apps; making room was easy once the
    latency side was settled (the nested repair did it in 2 units).
    """
    part = budget.part(KICK_REPAIR_WORK)
    mended = repair(problem, kicked, part, rng, workers=workers, kicks=False, patience=KICK_REPAIR_PATIENCE)
    budget.absorb(part)
    return mended.waves


def _kick_window(
    problem: Problem,
    waves: IntArray,
    state: Violations,
    row: int,
    seeds: IntArray,
    rng: np.random.Generator,
    widen: int = 0,
) -> tuple[IntArray, tuple[int, int]]:
    """The blocks of the waves from the row's first broken period to its last + 1 (moves
    among them change only those periods), ``widen`` more waves on each side.

    Why widen: a kick inside the two waves of one broken period can only overfill one of
    them, and when every wave around is at its limit the repair of that excess fails.  On
    ``generate_estate(900, 45)``, whose max_risk held waves 4-9 at 94-100 % of the cap,
    the last broken budget (period 9) outlived 100 s of repair: each kick put 1.4 % of the
    risk too much in wave 9.  From that plan, one wave more on each side let the kick clear
    it with no excess at all (blocks of waves 8-10 moved on to the empty wave 11).
    """
    periods = np.flatnonzero(state.latency[row]) + 1
    first, last = int(periods.min()) - widen, int(periods.max()) + 1 + widen
    window = (max(first, 1), min(last, problem.K))
    return _in_waves(problem, waves, window, seeds, KICK_MAX_BLOCKS, rng), window


def _in_waves(
    problem: Problem,
    waves: IntArray,
    window: tuple[int, int],
    seeds: IntArray,
    most: int,
    rng: np.random.Generator,
) -> IntArray:
    """The blocks in the waves of ``window``; past ``most`` of them, those nearest the seeds."""
    inside = np.flatnonzero((waves >= window[0]) & (waves <= window[1]))
    if len(inside) > most:
        near = ball(problem, seeds, max(2 * most, len(seeds)), rng)
        in_window = (waves[seeds] >= window[0]) & (waves[seeds] <= window[1])
        inside = np.union1d(np.intersect1d(near, inside), seeds[in_window])
    return inside.astype(np.int64)


def _with_neighbours(problem: Problem, seeds: IntArray, rng: np.random.Generator) -> IntArray:
    """The seeds and their direct callers and callees (a random MAX_FREE of them if more).

    The callers matter: moving a shared callee to fix one app splits it from its other
    callers, whose budgets then have to move with it.
    """
    adj = problem.adjacency
    ring = np.setdiff1d(np.unique(adj[seeds].indices), seeds)
    room = max(MAX_FREE - len(seeds), 0)
    if len(ring) > room:
        ring = np.sort(rng.choice(ring, room, replace=False))
    return np.union1d(seeds, ring).astype(np.int64)


def _pick_row(state: Violations, failures: IntArray, rng: np.random.Generator) -> int | None:
    """A violated latency row; rows that failed repeatedly are tried less often (tabu-like)."""
    rows = (
        np.flatnonzero(state.latency.sum(axis=1) > 0) if state.latency.size else np.zeros(0, dtype=np.int64)
    )
    if len(rows) == 0:
        return None
    weight = 1.0 / (1.0 + failures[rows]) ** 2
    return int(rng.choice(rows, p=weight / weight.sum()))


def _latency_seeds(problem: Problem, r: int) -> IntArray:
    """The violated app's block and the endpoints of the calls that add latency to it.

    All of the app's downstream calls, not only the split ones: fixing a violation
    often means pulling a whole call subtree into one wave.
    """
    lat = problem.latency
    start, end = lat.coef.indptr[r], lat.coef.indptr[r + 1]
    edges = lat.coef.indices[start:end]
    app_block = int(problem.blocks.of[lat.app[r]])
    # largest coefficients first: those calls matter most for this app
    order = np.argsort(-lat.coef.data[start:end], kind="stable")[: MAX_SEEDS // 2]
    ends = np.concatenate([problem.eu[edges[order]], problem.ev[edges[order]]])
    return np.unique(np.concatenate([[app_block], ends])).astype(np.int64)


def _other_seeds(
    problem: Problem, waves: IntArray, state: Violations, rng: np.random.Generator
) -> tuple[IntArray, tuple[int, int] | None, int | None]:
    """Blocks involved in a violated capacity, link, risk, rule or range instance; for a
    capacity or risk instance of wave j or a link instance of period j, the waves (j, j + 1)
    or (j - 1, j) around it; and for a capacity or risk instance, its wave j."""
    K = problem.K
    candidates: list[tuple[IntArray, tuple[int, int] | None, int | None]] = []
    for res, over in state.capacity.items():
        for j in np.flatnonzero(over > 0).tolist():
            in_wave = np.flatnonzero((waves == j + 1) & (problem.loads[res] > 0))
            candidates.append((rng.permutation(in_wave)[:20], _around(j + 1, K, rng), j + 1))
    if state.risk.any():
        for j in np.flatnonzero(state.risk > 0).tolist():
            in_wave = np.flatnonzero(waves == j + 1)
            candidates.append((rng.permutation(in_wave)[:20], _around(j + 1, K, rng), j + 1))
    if state.link.any():
        S = splits(problem, waves)
        for k in np.flatnonzero(state.link > 0).tolist():
            heavy = np.flatnonzero(S[:, k])
            heavy = heavy[np.argsort(-problem.gbps[heavy], kind="stable")[:10]]
            ends = np.concatenate([problem.eu[heavy], problem.ev[heavy]])
            candidates.append((ends, (k + 1, k + 2), None))
    for i in np.flatnonzero(state.before):
        a, b, _ = problem.before[i]
        candidates.append((np.array([a, b]), None, None))
    for i in np.flatnonzero(state.apart):
        candidates.append((np.array(problem.apart[i][0]), None, None))
    for i in np.flatnonzero(state.callees_first):
        candidates.append((np.array(problem.callees_first[i]), None, None))
    candidates.append((np.flatnonzero(state.range), None, None))
    candidates = [c for c in candidates if len(c[0])]
    if not candidates:
        return rng.integers(problem.count, size=1), None, None
    seeds, window, full = candidates[int(rng.integers(len(candidates)))]
    return np.unique(seeds).astype(np.int64), window, full


def _around(j: int, K: int, rng: np.random.Generator) -> tuple[int, int] | None:
    """Wave j and one of its neighbours, drawn by ``rng`` (None with a single wave)."""
    if K < 2:
        return None
    first = j - int(rng.integers(2)) if 1 < j < K else (j if j < K else j - 1)
    return first, first + 1
