"""The planner, stage by stage: blocks -> precheck -> construction -> feasibility -> bound -> improvement.

Estates of MULTILEVEL_BLOCKS blocks or more are constructed and repaired on clusters of
blocks first (``coarsen``, ``feasibility.multilevel_repair``); smaller ones are repaired
that way in overtime, when their block-level repair found no plan.  From MERGE_FROM waves on
the start is constructed and repaired on merged pairs of waves (merged again while there
are more than MERGE_ABOVE of those), then split back wave pair by wave pair (``merge``).

Small estates (at most SMALL_BLOCKS blocks) skip the neighbourhood stages: the full model
is searched from the construction's hint, then (up to PROOF_MAX_LITERALS) proved by one
worker with a full LP, beside a bound-first run on the second core (which holds the
cluster bound's cuts); "optimal" is reported only when CP-SAT proves it there or a plan
reaches a lower bound (``_meets_bound``), and CP-SAT's bound on the model otherwise counts
as a lower bound.  Larger estates are repaired and improved with sub-models (a full model
at 10,000 apps takes ~30 s to presolve); the improvement gets at least IMPROVE_MIN_SHARE of
the work budget, past the budget where the repair found its plan late.  All search is
bounded by a deterministic work budget (CP-SAT deterministic seconds, derived from the time
limit when not given), so the same inventory, seed, workers and budget give the same plan;
the wall clock is a cap whose cutting is recorded.  The bound stage
(``cluster_bound``) adds a lower bound for the quality figures.  Every status but
"infeasible" / "no-plan-found" comes with a plan that metrics.evaluate finds feasible.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Literal

import numpy as np

from migplan import metrics
from migplan.model import Finding, IntArray, Inventory, Plan
from migplan.solve import bounds, explain, feasibility, lns, merge
from migplan.solve.blocks import Blocks, build_blocks
from migplan.solve.cluster_bound import ClusterBound, Cut, add_cuts, cluster_bound
from migplan.solve.coarsen import Level
from migplan.solve.cpsat import (
    ModelOptions,
    Problem,
    SolveOutcome,
    Violations,
    build_model,
    build_problem,
    latency_matrix,
    objective_value,
    relaxed_problem,
    solve,
    violations,
)
from migplan.solve.forced import contract
from migplan.solve.narrow import compact_ranges, narrow_ranges
from migplan.solve.search import Budget
from migplan.solve.start import LATENCY_WEIGHTS, latency_aware_start

SMALL_BLOCKS = 100
# ... or this many wave literals (blocks x (K - 1)): few waves make a larger full model
# tractable.  272 blocks at 4 waves (callees first, capacities adding up to the estate
# exactly): the repair ended 1 capacity violation short after 40 s, the relaxed full model
# from its plan was optimal in 2.3 units
SMALL_LITERALS = 900
# from this many blocks on, construction and repair start on clusters of blocks (coarsen):
# the block-level repair stalled at 10,000 apps (2,675 blocks) and still did well on
# NetEase (622 blocks), where the clusters did worse (8 left against 0, seed 0)
MULTILEVEL_BLOCKS = 1000
# work units per second of --time-limit: about 0.4 fit in 60 s on the 2-core box; keep a margin
WORK_PER_SECOND = 0.35
# small estates spend their work in CP-SAT runs on the full model, which did 0.65-1.0 units per
# second on the 2-core box, depending on its load (0.47 for a proof phase on 100 apps at 12
# waves: hence the size gate).  At 0.45 the 16 estates of bench.small_proofs ended after
# 0.6-20 s of their 30 (idle box); at 0.6 after 0.7-24.7 s, with 10 proven instead of 8
# (bench/results/2026-12-08-small-proofs-bound-first.md)
SMALL_WORK_PER_SECOND = 0.6
# the full model of a small estate is proved by one worker with every split's XOR in the LP
# (cpsat.solve full_lp): 60 and 100 apps at 8 waves in 5-6 units against no proof in 45 s with
# two interleaved workers; two workers with one such were no faster, interleaved ones slower.
# Past about 400 wave literals (blocks x (K - 1)) it proved nothing in the budget of 30 s
# (50 blocks at 12 waves), so larger small estates spend all their work on the search.
PROOF_WORKERS = 1
PROOF_MAX_LITERALS = 400
SEARCH_SHARE = 0.3  # of a small estate's full-model work: the search phase before the proof
REPAIR_SHARE = 0.9  # at most this share of the work goes to the feasibility stage
# a large estate with no plan when its work budget ends gets this share of the budget more,
# while the wall clock allows: the budget is calibrated on the slowest estates per unit
# (NetEase: 21 units in 40-57 s), and four hub-and-spoke estates of 2,000-3,000 apps at exact
# budgets (bench.shapes) stopped after 39-51 s of 60 with 13-39 violations; with overtime two
# were planned.  A fixed amount, so a run the clock does not cut still repeats exactly
OVERTIME_SHARE = 1.0
# the improvement gets at least this share of the work budget: where the repair used more
# (NetEase seed 2: 96 % of work 21), the budget grows by the difference, while the wall clock
# allows.  A fixed amount, like the overtime; the improvement only keeps better plans, so it
# can only lower the cost of the same run
IMPROVE_MIN_SHARE = 0.25
SMALL_REPAIR_SHARE = 0.3  # small estates: the rest goes to the full model
SMALL_REPAIR_MAX_WORK = 4.0
# ... and it stops after this many failed steps in a row: its sub-models cost next to no
# work, so a violation only the relaxed full model can clear (a budget met exactly) kept a
# 4-app estate's repair going for 2,116 steps, the whole 10 s time limit
SMALL_REPAIR_PATIENCE = 60
# at most this share of the work left goes to the cluster bound (cluster_bound), computed
# once a plan or a hint exists; it used 0.05-1.0 units on generated 60-100-app estates
BOUND_SHARE = 0.1
# small estates: clusterings at these factors of the cluster size, whose clusters become
# cuts of the proof phase's bound-first run (the bound is the best clustering's): 0.6-1.8
# units of work on bench.small_proofs' 8- and 12-wave estates
CUT_SIZES = (1.0, 0.5, 1.5, 0.75)
EXPLAIN_SHARE = 0.2  # the explanation may take at most this share of the time limit
EXPLAIN_FLOOR = 2.0  # seconds it may run past the limit when the search used it all
START_SHARE = 0.15  # share of the work (and at most of the wall clock) for the latency-aware start
# work charged per block and construction run: 6 s for 2,675 blocks on the 2-core box, at
# WORK_PER_SECOND that is about 0.001 per block
START_WORK_PER_BLOCK = 0.001
# from this many waves on the planner plans on merged pairs of waves first (``merge``), and
# merges those again while there are more than MERGE_ABOVE: generated estates of 1,000 apps
# at 20 and 36 waves got a plan in 21 work units (none in 42 without), 1,500 apps at 60 waves
# one at 0.72 x the cost; at 17-19 waves (500-800 apps) the direct start cost 5-42 % less
# (and needed no overtime), and 36 waves merged once instead of twice cost 1.37 x
# (bench/results/2026-12-06-merged-waves.md)
MERGE_FROM = 20
MERGE_ABOVE = 16
MERGED_SHARE = 0.5  # of the work left: the repair on merged waves
START_WAVES = 12  # the waves START_WORK_PER_BLOCK was measured at; a run costs more in proportion above
LEFT_OVER_SHOWN = 10

Status = Literal["optimal", "feasible", "infeasible", "no-plan-found", "interrupted"]


@dataclass(frozen=True)
class PlanOptions:
    time_limit: float = 60.0
    seed: int = 0
    workers: int = 2
    risk_weight: float | None = None  # None: the scenario's
    work_limit: float | None = None  # deterministic work budget; None: derived from time_limit
    # time.monotonic() when the time limit's clock started; None: when plan() starts.  The CLI
    # starts it before loading the inventory, so that --time-limit covers the whole command
    clock_from: float | None = None


@dataclass(frozen=True)
class Progress:
    stage: str
    objective: float | None
    violations: int | None
    elapsed: float
    fraction: float


WEAK_GAP = 0.9  # a gap at or above this says nothing about a plan's quality


def quality_label(status: str, gap: float | None) -> str:
    """How good a plan is known to be, in words (a gap of WEAK_GAP or more says nothing)."""
    if status in ("optimal", "infeasible"):
        return f"proven {status}"
    if gap is None:
        return "gap unknown"
    if gap >= WEAK_GAP:
        return "gap unknown (lower bound too weak)"
    return f"gap ≤ {gap:.1%}"


@dataclass(frozen=True)
class PlanResult:
    plan: Plan | None
    evaluation: metrics.Evaluation | None
    status: Status
    objective: float | None
    lower_bound: float | None
    gap: float | None  # None: unknown
    explanation: tuple[Finding, ...]
    stages: tuple[dict[str, Any], ...]
    solver_info: dict[str, Any]
    # no plan: the search's closest plan, which breaks what ``explanation`` lists (for the
    # lead who would rather relax one budget by 1 ms than give up the plan); else None
    closest: Plan | None = None


@dataclass
class _Run:
    """Bookkeeping of one planner run: stage log, progress reports, timings."""

    inv: Inventory
    options: PlanOptions
    progress: Callable[[Progress], None] | None
    budget: Budget
    started: float = field(default_factory=time.monotonic)
    stages: list[dict[str, Any]] = field(default_factory=list)
    live: Budget | None = None  # a stage's child budget, charged before the parent absorbs it
    overtime: float = 0.0  # work granted past the budget to a repair that had found no plan
    reserve: float = 0.0  # ... and to an improvement the repair left too little (IMPROVE_MIN_SHARE)
    bound: float | None = None  # the cluster bound, in objective (qps) units
    _stage_start: float = 0.0
    _relaxed: tuple[Problem, Problem] | None = None

    def relaxed(self, problem: Problem) -> Problem:
        """``cpsat.relaxed_problem`` of ``problem``, built once: proofs, bounds and optima
        come from it (the search's own model is safe, not exact)."""
        if self._relaxed is None or self._relaxed[0] is not problem:
            self._relaxed = (problem, relaxed_problem(problem, self.risk_weight))
        return self._relaxed[1]

    @property
    def risk_weight(self) -> float:
        return self.inv.scenario.risk_weight if self.options.risk_weight is None else self.options.risk_weight

    def begin(self, name: str) -> None:
        self._stage_start = time.monotonic()
        self.report(name, None, None)

    def end(self, name: str, objective: float | None, count: int | None, **extra: Any) -> None:
        entry = {
            "name": name,
            "seconds": round(time.monotonic() - self._stage_start, 3),
            "objective": objective,
            "violations": count,
        }
        entry.update(extra)
        self.stages.append(entry)
        self.report(name, objective, count)

    def report(self, stage: str, objective: float | None, count: int | None) -> None:
        if self.progress is not None:
            used = max(self.budget.used, self.live.used if self.live is not None else 0.0)
            fraction = min(used / self.budget.work, 1.0) if self.budget.work > 0 else 1.0
            label = f"{stage} (overtime)" if self.overtime or self.reserve else stage  # why the bar went back
            self.progress(Progress(label, objective, count, time.monotonic() - self.started, fraction))


def plan(
    inv: Inventory,
    options: PlanOptions,
    progress: Callable[[Progress], None] | None = None,
    stop: threading.Event | None = None,
) -> PlanResult:
    """Plan the waves of ``inv``; never raises for an infeasible or too hard estate."""
    work = options.work_limit if options.work_limit is not None else options.time_limit * WORK_PER_SECOND
    budget = Budget.start(work, options.time_limit, stop, options.clock_from)
    run = _Run(inv, options, progress, budget)
    risk_weight = run.risk_weight
    rng = np.random.default_rng(options.seed)

    run.begin("blocks")
    try:
        problem, forced = block_problem(inv, risk_weight)
    except metrics.LatencyModelTooLargeError as err:
        no_forced = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        return _finish(run, None, None, "no-plan-found", (_too_large(err),), risk_weight, no_forced)
    # estates searched on clusters use the ranges the budgets imply (the bench estate's
    # --seed 2 became feasible); on NetEase (622 blocks, one level) narrowed ranges left
    # 9-12 violations on seeds 0-2 where plain ones gave plans on seeds 0-3
    multilevel = problem.count >= MULTILEVEL_BLOCKS
    contracted = problem.blocks  # before narrowing: the precheck's messages name the user's own ranges
    problem, compacted = compact_ranges(problem)
    problem, narrowed = narrow_ranges(problem) if multilevel else (problem, 0)
    blocks = problem.blocks
    extra: dict[str, Any] = {"waves_used": compacted} if compacted else {}
    tol = metrics.planner_coefficients(inv).tol_ms
    if tol > 0:  # past metrics.MAX_COEFFICIENTS: the smallest latency coefficients left out
        extra["latency_tol_ms"] = tol
    counts = {"blocks": blocks.count, "forced_pairs": len(forced[0]), "narrowed_ranges": narrowed}
    run.end("blocks", None, None, **counts, **extra)
    if blocks.conflicts:  # pins against budgets: no plan; say which rules collide
        errors = _precheck(inv) or _proven(_explain(run, problem, "infeasible")[0], blocks.conflicts)
        return _finish(run, problem, None, "infeasible", errors, risk_weight, forced)

    run.begin("precheck")
    errors = _precheck(inv, contracted)
    run.end("precheck", None, len(errors))
    if errors:
        return _finish(run, problem, None, "infeasible", errors, risk_weight, forced)

    small = blocks.count <= SMALL_BLOCKS or blocks.count * (problem.K - 1) <= SMALL_LITERALS
    if small and options.work_limit is None:
        budget.work = options.time_limit * SMALL_WORK_PER_SECOND
    level = None
    # compacted ranges: merging the K waves would mostly merge waves no block may use
    merge = not small and problem.K >= MERGE_FROM and not compacted
    start = _merged_start(run, problem, rng) if merge else None
    if start is None and multilevel:
        level = feasibility.coarse_level(problem, risk_weight, budget, options.seed, cycle=0)
        start = level.refine(_construct(run, level.problem, clusters=level.problem.count))
    elif start is None:
        start = _construct(run, problem)

    run.begin("feasibility")
    # small estates: a short repair only gives the full model a feasible hint
    repair_budget = budget.child(REPAIR_SHARE)
    if small:
        repair_budget.work = min(
            repair_budget.work,
            budget.used + SMALL_REPAIR_SHARE * (budget.work - budget.used),
            budget.used + SMALL_REPAIR_MAX_WORK,
        )
    repaired = _repair(
        run, problem, start, repair_budget, rng, level, patience=SMALL_REPAIR_PATIENCE if small else None
    )
    search = problem  # the model the repair and the improvement work on
    if not small and not repaired.done and not budget.exhausted():
        # without a plan the improvement's reserve is idle: the repair goes on with it
        repaired = _repair_on(run, problem, repaired, rng)
    if not small and not repaired.done and _overtime_allowed(budget):
        run.overtime = OVERTIME_SHARE * work
        budget.work += run.overtime  # what the repair leaves of it goes to the improvement
        search, repaired = _overtime_repair(run, problem, repaired, rng)
    run.end(
        "feasibility",
        objective_value(problem, repaired.waves),
        repaired.violations.count,
        steps=repaired.steps,
        accepted=repaired.accepted,
        overtime_work=run.overtime,
        relaxed=search is not problem,  # the overtime repair worked on the relaxation
        passed=repaired.passed,  # metrics passed the plan while the model still counted violations
    )
    if small:
        cuts = _bound(run, problem, repaired.waves, CUT_SIZES).cuts
        return _solve_small(run, problem, repaired.waves, risk_weight, forced, cuts)
    feasible_start = repaired.waves
    # the model rounds coefficients up and takes dropped ones off the budgets, so a plan it
    # counts a few marginal violations in may still meet every rule (6 of 24 at 10,000 apps):
    # that plan is feasible, and the improvement keeps it so (its sub-models hold every row
    # they touch and leave the others' splits as they are)
    # counted on the safe model (the overtime repair's own count may be the relaxation's)
    unsafe = repaired.violations if search is problem else violations(problem, repaired.waves)
    # (a plan the repair's ``enough`` passed is one: metrics need not be asked again)
    closest = _evaluate(inv, problem, repaired.waves)[1] if unsafe.count > 0 and not repaired.passed else None
    if closest is not None and not closest.feasible:
        status: Status = "interrupted" if budget.stop.is_set() else "no-plan-found"
        why, found = _explain(run, problem, status)
        if found is None:
            why += _left_over(closest)
            return _finish(run, problem, None, status, why, risk_weight, forced, closest=repaired.waves)
        feasible_start = found

    floor = _bound(run, problem, feasible_start).units
    # a start the model counts violations in (the relaxation's, or the safe model's that
    # metrics passes): the improvement holds the rows its sub-models touch in the model, not
    # the rules, so a budget met exactly may be passed; only plans metrics passes are kept.
    # (A plan the explanation found replaced such a start; a safe model's plan among those
    # passes the check anyway.)
    checked = search is not problem or unsafe.count > 0
    _reserve_improvement(run, work)
    run.begin("improvement")
    improved = lns.improve(
        search,
        feasible_start,
        budget,
        rng,
        options.workers,
        on_step=lambda w, v: run.report("improvement", objective_value(problem, w), 0),
        floor=floor,
        keep=partial(_meets_rules, inv, problem) if checked else None,
    )
    run.end(
        "improvement",
        objective_value(problem, improved.waves),
        0,
        steps=improved.steps,
        accepted=improved.accepted,
        reserve_work=run.reserve,
    )
    status = "interrupted" if budget.stop.is_set() else "feasible"
    if problem.K == 1 and status == "feasible":
        status = "optimal"  # one wave: this plan is the only plan there is
    return _finish(run, problem, improved.waves, status, (), risk_weight, forced)


def block_problem(inv: Inventory, risk_weight: float) -> tuple[Problem, tuple[IntArray, IntArray]]:
    """The planner's first stage: (block problem, contracted app pairs).

    Unsplittable calls are contracted (on the full latency coefficients) and the latency
    rows' drops fitted to the blocks.  Raises metrics.LatencyModelTooLargeError past
    metrics.MAX_COEFFICIENTS.
    """
    blocks, forced = contract(inv)  # the coefficients are cached: latency_matrix reads them again
    return build_problem(inv, blocks, risk_weight, latency_matrix(inv, blocks)), forced


def _repair(
    run: _Run,
    problem: Problem,
    start: IntArray,
    stage: Budget,
    rng: np.random.Generator,
    level: Level | None = None,
    tidy: bool = True,
    label: str = "feasibility",
    patience: int | None = None,
) -> feasibility.RepairResult:
    """Stage 3 within ``stage`` (a child of the run's budget, absorbed back when done).

    Multilevel from MULTILEVEL_BLOCKS blocks on (``level``: the clusters ``start`` was
    built on, if any) and in overtime, on the blocks alone otherwise.  Why in overtime: a
    block-level repair that used its whole budget is stuck where single blocks cannot move
    without breaking their neighbours' budgets; clusters move whole call groups.  At
    ``--work-limit 21`` (bench/results/2026-12-07-overtime-clusters.md) the five plans found
    in overtime (four generated estates, NetEase seed 7) cost 0.52-1.10 x as much (geometric
    mean 0.83 x), and the estates still unplanned ended with as many or fewer violations.
    ``label``: the progress reports' stage.  ``patience``: stop after that many failed steps
    in a row (blocks alone only).
    """
    run.live = stage  # the progress bar moves with the repair's own charges
    options = run.options

    def on_step(w: IntArray, v: Violations) -> None:
        run.report(label, objective_value(problem, w), v.count)

    enough = partial(_meets_rules, run.inv, problem)
    if problem.count >= MULTILEVEL_BLOCKS or run.overtime > 0:
        repaired = feasibility.multilevel_repair(
            problem,
            start,
            level,
            run.risk_weight,
            stage,
            rng,
            options.seed,
            on_step,
            options.workers,
            tidy,
            enough=enough,
        )
    else:
        repaired = feasibility.repair(
            problem, start, stage, rng, on_step, options.workers, tidy=tidy, patience=patience, enough=enough
        )
    run.budget.absorb(stage)
    run.live = None
    return repaired


def _repair_on(
    run: _Run, problem: Problem, repaired: feasibility.RepairResult, rng: np.random.Generator
) -> feasibility.RepairResult:
    """The repair again from where it stopped, with all the run's work left; steps added up.

    Without tidy steps: the first pass found no plan, so every unit goes to the violations,
    and the improvement's polish takes back the cost when a plan is found.  Tidies took 15
    of the 42 units a 1,200-app estate (bench.feasibility_sweep's 1200:26) needed for a plan.
    At work limit 21 plus overtime (bench/results/2026-12-06-repair-passes.md), of five
    estates the first pass leaves unplanned, one more is planned (4 of 4 hub-and-spoke
    estates at exact budgets) and the others cost 0.85-1.00 x as much.
    """
    more = _repair(run, problem, repaired.waves, run.budget.child(1.0), rng, tidy=False)
    return replace(more, steps=repaired.steps + more.steps, accepted=repaired.accepted + more.accepted)


def _overtime_repair(
    run: _Run, problem: Problem, repaired: feasibility.RepairResult, rng: np.random.Generator
) -> tuple[Problem, feasibility.RepairResult]:
    """(the model it worked on, the result) of the overtime repair of ``repaired`` (a safe-model
    repair): on ``_overtime_model``'s choice, and where the relaxation's plan is refused by
    ``metrics`` (a hair past an exact budget: it rounds 0.001 ms a term its way), on with
    what is left on the exact relaxation, where only those hairs are violations."""
    search = _overtime_model(run, problem, repaired)
    repaired = _repair_on(run, search, repaired, rng)
    # the exact relaxation's plans meet every rule: only the relaxation's may be a hair over
    cleared = search is run.relaxed(problem) and repaired.violations.count == 0 and not run.budget.exhausted()
    if cleared and not _meets_rules(run.inv, problem, repaired.waves):
        search = relaxed_problem(problem, run.risk_weight, exact=True)
        repaired = _repair_on(run, search, repaired, rng)
    return search, repaired


def _overtime_model(run: _Run, problem: Problem, repaired: feasibility.RepairResult) -> Problem:
    """The model the overtime repair works on: the relaxation (``run.relaxed``) when it counts
    fewer of ``repaired``'s violations than the safe model (``repaired``'s own count) but
    some, the exact relaxation when it counts none, else the safe model itself.

    Why: the safe model drops small coefficients and rounds against the plan, so a budget
    that a plan meets exactly is broken in it.  Where many budgets are that tight, the
    repair chases violations no rule has: a generated 800-app estate with a tenth of its
    budgets at the planted plan's exact latency ended 43 violations short on the safe
    model, and was planned on the relaxation.  Its plans may pass an exact budget by a hair
    of its rounding (0.001 ms a term): the repair then goes on on the exact relaxation
    (``relaxed_problem(exact=True)``), whose units are fine enough for metrics' tolerance
    but whose repair was slower from the start: on 12 small tight estates (200-300 apps,
    ``bench.exact_budgets --search-path --work-limit 4``) it planned all 12 but used the
    overtime up, so the improvement never ran (up to 1.96 x the cost); the relaxation
    whenever it counts fewer planned 12, only when it counts at most half 11, the safe
    model 7.  With as many violations in the relaxation, the safe model's excess is real.
    """
    relaxed = run.relaxed(problem)
    loose = violations(relaxed, repaired.waves).count
    if loose == 0:  # the safe model counts its rounding, and metrics refuses hairs at most
        return relaxed_problem(problem, run.risk_weight, exact=True)
    return relaxed if loose < repaired.violations.count else problem


def _reserve_improvement(run: _Run, work: float) -> None:
    """Grow the budget so that the improvement gets IMPROVE_MIN_SHARE of ``work`` (the run's
    work budget before any overtime), unless the wall clock or the user ended the search."""
    budget = run.budget
    short = IMPROVE_MIN_SHARE * work - (budget.work - budget.used)
    if short > 0 and budget.wall_left > 0 and not budget.stop.is_set():
        run.reserve = short
        budget.work += short


def _overtime_allowed(budget: Budget) -> bool:
    """The work budget, not the wall clock or the user, ended a search that found no plan."""
    return budget.used >= budget.work and budget.wall_left > 0 and not budget.stop.is_set()


def _merged_start(run: _Run, problem: Problem, rng: np.random.Generator) -> IntArray | None:
    """Stage 2 from MERGE_FROM waves on: a plan on merged pairs of waves (constructed, or
    merged again past MERGE_ABOVE waves, then repaired with MERGED_SHARE of the work left),
    split into ``problem``'s waves (``merge``).  None when the merged waves' blocks conflict.

    The merged plan need not be feasible: its violations stay where they were after the
    split, and the repair on ``problem`` goes on from there.
    """
    inner, _ = block_problem(merge.merged_inventory(problem.inv), run.risk_weight)
    if inner.blocks.conflicts:
        return None
    start = _merged_start(run, inner, rng) if inner.K > MERGE_ABOVE else None
    if start is None:
        start = _construct(run, inner, waves=inner.K)
    run.begin("merged")
    label = f"feasibility on {inner.K} merged waves"
    repaired = _repair(run, inner, start, run.budget.child(MERGED_SHARE), rng, label=label)
    split = merge.split(problem, inner.blocks.expand(repaired.waves), run.budget, rng, run.options.workers)
    left, on_merged = violations(problem, split).count, repaired.violations.count
    run.end("merged", objective_value(problem, split), left, waves=inner.K, left_on_merged=on_merged)
    return split


def _construct(run: _Run, problem: Problem, **extra: Any) -> IntArray:
    """Stage 2: the latency-aware start; each construction run is charged to the work budget.

    ``extra`` goes into the stage log (e.g. the cluster count when ``problem`` is a coarse level).
    """
    run.begin("construction")
    budget, options = run.budget, run.options
    start_until = time.monotonic() + START_SHARE * options.time_limit
    # Mt-KaHyPar's mapping grows with the path's length: 0.4 s at 12 waves, 12 s at 60 (~780 blocks)
    per_run = problem.count * START_WORK_PER_BLOCK * max(1.0, problem.K / START_WAVES)
    allowance = budget.work * START_SHARE
    runs_allowed = int(allowance / max(per_run, 1e-9))
    anchored = per_run <= allowance  # a run the allowance cannot pay: one mapping, not three
    start, tried = latency_aware_start(
        problem,
        options.seed,
        lambda: time.monotonic() < start_until and not budget.stop.is_set(),
        runs_allowed,
        anchored=anchored,
        alive=lambda: budget.wall_left > 0 and not budget.stop.is_set(),
    )
    runs = sum(1 for t in tried if not t.get("merged"))  # a merged-waves variant rides along its run
    budget.charge(runs * per_run)
    if runs < min(runs_allowed, len(LATENCY_WEIGHTS)) and time.monotonic() >= start_until:
        budget.wall_cut = True  # the wall clock, not the work budget, ended the runs
    if budget.wall_left <= 0:
        budget.wall_cut = True  # ... or a mapping it had to drop
    count = violations(problem, start).count
    run.end("construction", objective_value(problem, start), count, runs=tried, anchored=anchored, **extra)
    return start


def _bound(run: _Run, problem: Problem, waves: IntArray, sizes: tuple[float, ...] = (1.0,)) -> ClusterBound:
    """The cluster bound in model units, on at most BOUND_SHARE of the work left (``waves``
    hints its sub-models); ``run.bound`` keeps it in qps for the quality figures."""
    run.begin("bound")
    budget = run.budget.part(BOUND_SHARE * (run.budget.work - run.budget.used))
    found = cluster_bound(run.relaxed(problem), waves, budget, run.options.seed, sizes)
    run.budget.absorb(budget)
    run.bound = found.units / problem.qps_scale
    extra = {"lower_bound": run.bound, "clusters": found.clusters, "proven": found.proven}
    run.end("bound", None, None, **extra, cuts=len(found.cuts), work=round(found.work, 3))
    return found


def _ended_by(budget: Budget) -> str:
    """What ended the run: "stop request", "work budget", "time limit" or "search done" (a
    proof, or nothing left to do).  ``wall_clock_cut`` says something else: whether the
    clock cut any stage short (the start's runs have their own share), so a rerun may differ."""
    if budget.stop.is_set():
        return "stop request"
    if budget.used >= budget.work:
        return "work budget"
    return "time limit" if budget.wall_left <= 0 else "search done"


def _solve_small(
    run: _Run,
    problem: Problem,
    start: IntArray,
    risk_weight: float,
    forced: tuple[IntArray, IntArray],
    cuts: tuple[Cut, ...],
) -> PlanResult:
    """Full model from the (repaired) start as hint; proves optimality or infeasibility when it can."""
    run.begin("full model")
    budget = run.budget
    outcome, phases, bound = _full_model(run, problem, start, cuts)
    if budget.wall_left <= 0 and outcome.status not in ("optimal", "infeasible"):
        budget.wall_cut = budget.wall_cut or budget.used < budget.work
    objective = objective_value(problem, outcome.waves) if outcome.waves is not None else None
    run.end(
        "full model",
        objective,
        0 if outcome.waves is not None else None,
        cp_sat_status=outcome.status,
        phases=phases,
    )
    if outcome.status == "infeasible":
        proof = Finding(
            "error",
            "infeasible",
            "no plan exists: CP-SAT proved that no plan meets every rule, but found no small set of"
            " conflicting rules to name in the time available (a longer --time-limit may find one)",
        )
        why = _proven(_explain(run, problem, "infeasible")[0], (proof,))
        return _finish(run, problem, None, "infeasible", why, risk_weight, forced)
    if outcome.waves is None:
        repaired = _evaluate(run.inv, problem, start)[1]
        if repaired.feasible:
            # the full model found nothing in the time left (1,000 waves: none was left): the
            # repaired start is a plan, as a large estate's would be
            kept: Status = "interrupted" if budget.stop.is_set() else "feasible"
            return _finish(run, problem, start, kept, (), risk_weight, forced, None)
        status: Status = "interrupted" if budget.stop.is_set() else "no-plan-found"
        why, found = _explain(run, problem, status)
        if found is None:
            why += _left_over(repaired)
            return _finish(run, problem, None, status, why, risk_weight, forced, closest=start)
        return _finish(run, problem, found, "feasible", (), risk_weight, forced)
    status = "optimal" if outcome.status == "optimal" else "feasible"
    if budget.stop.is_set() and status != "optimal":
        status = "interrupted"
    model_bound = None if bound is None else bound / problem.qps_scale
    return _finish(run, problem, outcome.waves, status, (), risk_weight, forced, model_bound)


def _full_model(
    run: _Run, problem: Problem, start: IntArray, cuts: tuple[Cut, ...]
) -> tuple[SolveOutcome, list[dict[str, Any]], float | None]:
    """Search on the search's safe model, then solve its relaxation (``run.relaxed``).

    The search phase (the user's workers) finds plans that meet every rule; the relaxed
    phase, hinted with the best of them, is what proves: its bound holds for every plan of
    the user's rules, its "infeasible" too, and its plan counts only when ``metrics`` finds
    it feasible (its rounding may pass a limit by a hair).  Below PROOF_MAX_LITERALS the
    relaxed phase is the proof phase: one worker and the full LP, which from the repaired
    start proved none of 60 and 100 apps at 8 waves in 18 units, hinted with the search
    phase's plan 5-10.  With two workers or more a bound-first run goes beside it
    (``_concurrent``), and the better bound counts; that run holds the cluster bound's
    ``cuts``.  Both phases have exact splits (``ModelOptions.exact_splits``).  Returns the
    proved, or else the best feasible, outcome (status "optimal" only when proved on the relaxation, or
    reached by the bound in ``_finish``), a log entry per run, and the relaxed phase's best
    bound (model units; None without it).
    """
    budget = run.budget
    proof = problem.count * (problem.K - 1) <= PROOF_MAX_LITERALS
    phases = [
        (SEARCH_SHARE, run.options.workers, False, False),
        (1.0, PROOF_WORKERS if proof else run.options.workers, proof, True),
    ]
    best: SolveOutcome | None = None  # meets every rule (by metrics)
    bound: float | None = None
    log: list[dict[str, Any]] = []
    outcome = SolveOutcome("unknown", None, None, None, 0.0, 0.0)
    for share, workers, full_lp, relaxed in phases:
        model = run.relaxed(problem) if relaxed else problem
        hint = best.waves if best is not None and best.waves is not None else start
        # the proof phase leaves a core idle: a bound-first search there (below)
        bound_first = (False, True) if full_lp and run.options.workers > PROOF_WORKERS else (False,)
        work = budget.slice(share * (budget.work - budget.used))
        runs = _concurrent(run, model, hint, cuts, work, workers, full_lp, bound_first)
        budget.charge(max(o.deterministic_time for o in runs))  # side by side: the longer one
        for lb_tree, outcome in zip(bound_first, runs, strict=True):
            log.append(
                {
                    "workers": workers,
                    "full_lp": full_lp,
                    "relaxed": relaxed,
                    "lb_tree_search": lb_tree,
                    "cp_sat_status": outcome.status,
                    "work": round(outcome.deterministic_time, 3),
                    "seconds": round(outcome.wall_time, 3),
                    "bound": outcome.bound if relaxed else None,  # model units, for every plan of the rules
                }
            )
            if relaxed and outcome.bound is not None:
                # objectives are whole units: a bound above n - 1 proves n
                bound = max(bound or 0.0, float(np.ceil(outcome.bound - 1e-6)))
            if relaxed and outcome.status == "infeasible":
                return outcome, log, bound
            feasible = outcome.waves is not None and _meets_rules(run.inv, problem, outcome.waves)
            if feasible and relaxed and outcome.status == "optimal":
                return outcome, log, bound
            if feasible and (
                best is None or best.objective is None or (outcome.objective or 0) <= best.objective
            ):
                best = replace(outcome, status="feasible")  # optimal only on the relaxation
        if budget.exhausted():
            break
    unknown = SolveOutcome("unknown", None, None, None, outcome.deterministic_time, outcome.wall_time)
    return (best if best is not None else unknown), log, bound


def _concurrent(
    run: _Run,
    model: Problem,
    hint: IntArray,
    cuts: tuple[Cut, ...],
    work: float,
    workers: int,
    full_lp: bool,
    lb_tree: tuple[bool, ...],
) -> list[SolveOutcome]:
    """One CP-SAT run per entry of ``lb_tree``, side by side, each on its own copy of the model.

    Why: the proof phase is one worker (PROOF_WORKERS) and leaves the second core idle.
    CP-SAT's lb_tree_search there raises the bound faster than the full-LP worker on the
    estates that worker does not prove (100 apps at 8 waves, seed 6: 442,801 against
    368,872 model units after 30 and 60 units), and the two bounds and plans are combined.
    The cluster bound's cuts lift its bound further (60 apps at 8 waves, seed 6: 447,996 of
    the optimum 524,844 after 12 units, against 356,665 after 16 without); in the proving
    run they cost two of the ten proofs of ``bench.small_proofs``, so it has none.  Each run
    is one worker with its own deterministic budget, so the pair repeats exactly.
    """

    def one(bound_first: bool, stop: threading.Event) -> SolveOutcome:
        wm = build_model(model, hint, range(model.count), ModelOptions(exact_splits=True))
        if bound_first:  # the cuts lift its bound; the proving run was slower with them
            add_cuts(wm, cuts)
        return solve(
            wm,
            deterministic_time=work,
            wall_time=max(run.budget.wall_left, 0.01),
            workers=workers,
            seed=run.options.seed,
            stop=stop,
            full_lp=full_lp,
            lb_tree=bound_first,
        )[0]

    if len(lb_tree) == 1:
        return [one(lb_tree[0], run.budget.stop)]
    # the second run stops once the first has proved (its result would go unused) or the user
    # stops; never the other way round, so which plan is returned does not depend on timing
    second = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        later = pool.submit(one, lb_tree[1], second)
        first = one(lb_tree[0], run.budget.stop)
        if first.status in ("optimal", "infeasible"):
            second.set()
        while not later.done():
            if run.budget.stop.is_set():
                second.set()
            wait([later], timeout=0.05)
        return [first, later.result()]


def _too_large(err: metrics.LatencyModelTooLargeError) -> Finding:
    """The memory limit in the user's terms, with what they can do about it."""
    return Finding(
        "error",
        err.code,
        f"{err}; the planner stops here rather than run out of memory (it needs about 100 bytes"
        " per coefficient). The call graph is deep: most apps reach most calls below them."
        " Plan the estate in parts (e.g. one domain at a time, pinning the other parts' apps),"
        " or mark calls that are not on a request's critical path sync=false",
    )


def _app_plan(inv: Inventory, problem: Problem, block_waves: IntArray) -> Plan:
    """The plan of every app, each in its block's wave."""
    return Plan.from_array(problem.blocks.expand(block_waves), inv.K)


def _evaluate(inv: Inventory, problem: Problem, block_waves: IntArray) -> tuple[Plan, metrics.Evaluation]:
    """The app plan of a block plan and ``metrics.evaluate``'s verdict on it (the truth, not the model's)."""
    candidate = _app_plan(inv, problem, block_waves)
    return candidate, metrics.evaluate(inv, candidate)


def _meets_rules(inv: Inventory, problem: Problem, block_waves: IntArray) -> bool:
    """``metrics`` passes the block plan: every rule, on exact figures (the planner's ``Check``)."""
    return _evaluate(inv, problem, block_waves)[1].feasible


def _precheck(inv: Inventory, contracted: Blocks | None = None) -> tuple[Finding, ...]:
    """Errors that make every plan infeasible (``precheck.no_plan_findings``: the plain
    blocks' conflicts and checks, then the checks on ``contracted``)."""
    try:
        module = importlib.import_module("migplan.solve.precheck")
    except ModuleNotFoundError:
        return tuple(build_blocks(inv).conflicts)
    found = module.no_plan_findings(inv, build_blocks(inv), contracted)
    return tuple(f for f in found if f.severity == "error")


def _explain(
    run: _Run, problem: Problem, status: Status, hint: IntArray | None = None
) -> tuple[tuple[Finding, ...], IntArray | None]:
    """Why no plan: (a proven core or "not proven", or a plan the proof search found per block)."""
    if status == "interrupted":
        return (Finding("error", "interrupted", "interrupted before a feasible plan was found"),), None
    run.begin("explanation")
    # what is left of --time-limit (it is a cap), but at least EXPLAIN_FLOOR seconds to say why
    wall = max(min(EXPLAIN_SHARE * run.options.time_limit, run.budget.wall_left), EXPLAIN_FLOOR)
    app_hint = problem.blocks.expand(hint) if hint is not None else None
    found = explain.explain(run.inv, problem, run.budget, wall, app_hint)
    waves = None
    plan_found = Plan.from_array(found.waves, run.inv.K) if found.waves is not None else None
    # the proof model is relaxed (explain): its plan counts only when it meets every rule,
    # and then every contracted pair shares a wave
    if plan_found is not None and metrics.evaluate(run.inv, plan_found).feasible:
        first = np.asarray([m[0] for m in problem.blocks.members], dtype=np.int64)
        waves = np.asarray(found.waves, dtype=np.int64)[first]
    run.end(
        "explanation", objective_value(problem, waves) if waves is not None else None, len(found.findings)
    )
    return found.findings, waves


def _proven(why: tuple[Finding, ...], fallback: tuple[Finding, ...]) -> tuple[Finding, ...]:
    """The reasons for a proven infeasibility: the explanation's core, else ``fallback``.

    The explanation's own "no rule conflict could be proven in time" is dropped: the
    status says proven, and a message saying the opposite beside it confused the demo
    at 20 waves ("no feasible plan found in time" above "no feasible plan exists (proven)").
    """
    kept = tuple(f for f in why if f.code != "no-plan-found")
    return kept if kept else fallback


def _left_over(evaluation: metrics.Evaluation) -> tuple[Finding, ...]:
    """What the best plan found still breaks, as metrics words it (the first LEFT_OVER_SHOWN)."""
    broken = {k: v for k, v in evaluation.violation_counts.items() if v}
    head = Finding(
        "info",
        "best-infeasible-plan",
        "the closest plan found still breaks: " + ", ".join(f"{v} {k}" for k, v in broken.items()),
    )
    errors = [f for f in evaluation.findings if f.severity == "error"][:LEFT_OVER_SHOWN]
    return (head, *errors) if broken else ()


def _meets_bound(problem: Problem, block_waves: IntArray, objective: float, lower: float | None) -> bool:
    """Whether a plan is proven optimal by a bound it reaches: a cost of 0 always is (no
    plan costs less), one at a positive bound when it is a plan of the model (which the
    model's bounds are bounds of)."""
    if objective <= 0:
        return True
    reached = lower is not None and objective <= lower * (1 + 1e-12)
    return reached and violations(problem, block_waves).count == 0


def _finish(
    run: _Run,
    problem: Problem | None,
    block_waves: IntArray | None,
    status: Status,
    explanation: tuple[Finding, ...],
    risk_weight: float,
    forced: tuple[IntArray, IntArray],
    model_bound: float | None = None,
    closest: IntArray | None = None,
) -> PlanResult:
    """Expand to apps, evaluate with metrics, add bounds and the solver record.

    ``model_bound``: CP-SAT's bound on the full model (small estates), in objective units;
    the lower bound reported is the best of it, the cluster bound and the spectral bound.
    ``closest``: with no plan, the block plan nearest to one (``PlanResult.closest``).
    """
    inv, budget, options = run.inv, run.budget, run.options
    plan_out: Plan | None = None
    evaluation = None
    objective = lower = gap = None
    if block_waves is not None and problem is not None:
        candidate, evaluation = _evaluate(inv, problem, block_waves)
        if evaluation.feasible:
            plan_out = candidate
            objective = objective_value(problem, block_waves)
        else:  # the model's rounding makes this unreachable; never hand out an infeasible plan
            status = "no-plan-found"
            explanation = evaluation.findings
            evaluation = None
            closest = block_waves
    if plan_out is not None and objective is not None and problem is not None and block_waves is not None:
        if status == "optimal":
            lower, gap = objective, 0.0
        else:
            # a plan past the model's conservative rounding (large estates may keep one) is
            # not bounded by the model's bounds: a bound above it is dropped, not a gap of 0
            candidates = (bounds.spectral_lower_bound(inv), model_bound, run.bound)
            found = [b for b in candidates if b is not None and 0 < b <= objective]
            lower = max(found, default=None)
            gap = (objective - lower) / objective if lower is not None and objective > 0 else None
            if status == "feasible" and _meets_bound(problem, block_waves, objective, lower):
                status, lower, gap = "optimal", objective, 0.0
    if plan_out is not None:
        # the model rounds qps and risk: report the figure evaluate gives, and the gap to it
        objective = metrics.objective(inv, plan_out.array, risk_weight)
        if lower is not None and objective > 0:
            lower = objective if status == "optimal" else min(lower, objective)
            gap = (objective - lower) / objective
    info = {
        "status": status,
        "seed": options.seed,
        "workers": options.workers,
        "time_limit": options.time_limit,
        "work_limit": budget.work - run.overtime - run.reserve,
        "overtime_work": run.overtime,
        "reserve_work": run.reserve,
        "work_used": round(budget.used, 3),
        "wall_clock_cut": budget.wall_cut,
        "ended_by": _ended_by(budget),
        "risk_weight": risk_weight,
        "ortools": importlib.metadata.version("ortools"),
        "blocks": problem.count if problem is not None else None,
        "unsplittable_calls_contracted": len(forced[0]),
        "objective": objective,
        "lower_bound": lower,
        "gap": gap,
        "quality": quality_label(status, gap),
        "stages": run.stages,
        "seconds": round(time.monotonic() - run.started, 3),
    }
    near = None
    if plan_out is None and closest is not None and problem is not None:
        near = _app_plan(inv, problem, closest)
    return PlanResult(
        plan_out, evaluation, status, objective, lower, gap, explanation, tuple(run.stages), info, near
    )
