"""The CP-SAT wave model over blocks, in the order encoding, for any free subset of blocks.

Variables (paper notation): for a free block b and period k = 1..K-1,
``x[b,k] = [wave(b) <= k]`` with ``x[b,k] => x[b,k+1]``; ``x[b,0] = 0`` and ``x[b,K] = 1``
are constants, so wave(b) = K - sum_k x[b,k] and "b moves in wave j" is
``x[b,j] - x[b,j-1]``.  A block outside the free set keeps its current wave: its
literals are the constants 0/1 and every term that touches only fixed blocks folds
into a constant.  The full model is simply ``free = all blocks``.

Split of block edge e = (u, v) in period k: ``s[e,k] >= |x[u,k] - x[v,k]|``.  Only this
lower bound is stated: the objective and every budget use s with positive weights,
so a solver never gains by setting s above the true split, and each solution is
read back from x alone.

Constraint families (one function each, all called from ``build_model``): ranges
(pins and windows), capacity per resource and wave, ``before`` rules, ``apart`` rules,
callees_first, link load per period, max_risk per wave, latency budget per
(app, period).  Groups, ``together`` rules and cycles are already blocks.

Floats become integers only through ``scaled``: loads and coefficients round UP,
capacities and budgets round DOWN, so every model solution is truly feasible.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from ortools.sat.python import cp_model

from migplan import metrics
from migplan.model import RESOURCES, FloatArray, IntArray, Inventory, Resource
from migplan.solve.blocks import Blocks, block_calls, block_graph
from migplan.solve.forced import latency_source
from migplan.solve.integers import roundings, scaled

# Fixed-point resolutions (units per 1 of the float quantity).
LATENCY_SCALE = 1000.0  # 0.001 ms: ceil per (app, block edge) costs at most that per term
# a latency row whose budget passes this many units gets a coarser unit, so that every row's
# sums stay far inside int64 (deep call chains with calls_per_request > 1 reach 1e16 ms)
ROW_UNITS = float(2**40)
CAPACITY_UNITS = 1e6  # a capacity maps to about this many units (a power-of-ten scale)
OBJECTIVE_RESOLUTION = 1e8  # the whole estate's qps maps to at most this many objective units
LATENCY_DROP_SHARE = 0.01  # per app, drop coefficients summing to at most 1 % of its budget

RULE_PENALTY = 100_000  # a broken rule instance weighs like 100 ms of excess latency (soft mode)


@dataclass(frozen=True)
class LatencyRows:
    """Latency budgets as integer rows over block edges: sum_e coef[r,e] * s[e,k] <= budget[r].

    Only apps whose budget some plan could break get a row (sum of coefficients above
    the budget); ``app`` maps rows back to apps.  A unit of row r is ``factor[r]`` /
    LATENCY_SCALE ms: 1 / LATENCY_SCALE unless the budget is past ROW_UNITS of those.
    """

    coef: sp.csr_matrix  # (R, E) int64
    budget: IntArray  # (R,)
    app: IntArray  # (R,)
    by_edge: sp.csc_matrix  # same matrix, column access: rows touching an edge
    factor: FloatArray  # (R,) ms per unit x LATENCY_SCALE


@dataclass(frozen=True)
class Problem:
    """Block-level data every model and neighbourhood reads; built once per planner run."""

    inv: Inventory
    blocks: Blocks
    K: int
    eu: IntArray  # (E,) block edge endpoints, eu < ev
    ev: IntArray
    edge_of: IntArray  # (m,) block edge of each dependency, -1 inside a block
    weight: IntArray  # (E,) objective units per period split (qps, scaled)
    qps_scale: float
    gbps: IntArray  # (E,) link load, scaled up
    link: int | None  # link capacity, scaled down
    link_scale: float
    loads: dict[Resource, IntArray]  # per block, scaled up
    caps: dict[Resource, IntArray]  # per wave, scaled down
    load_scale: dict[Resource, float]
    risk: FloatArray  # per block share of total risk
    risk_load: IntArray  # per block, its risk scaled up (for max_risk)
    risk_cap: int | None  # max_risk x total risk, scaled down
    risk_scale: float  # risk_load units per unit of risk share
    risk_units: IntArray  # per block, objective units of its risk share (weight included)
    risk_weight_units: int  # 1 with a risk term, 0 without
    before: tuple[tuple[int, int, int], ...]  # (earlier block, later block, rule index)
    apart: tuple[tuple[tuple[int, ...], int], ...]  # (blocks, rule index)
    callees_first: tuple[tuple[int, int], ...]  # (callee block, caller block)
    latency: LatencyRows
    adjacency: sp.csr_matrix  # block graph (qps weights), for neighbourhoods
    incidence: sp.csr_matrix  # (B, E) block -> incident block edges
    dropped_ms: FloatArray  # per app, budget taken off for dropped coefficients
    latency_source: sp.csr_matrix  # (n, m) ms per split dependency, from metrics, less the dropped
    unbounded_edges: IntArray  # dependencies whose split makes some app's latency unbounded

    @property
    def count(self) -> int:
        return self.blocks.count

    @property
    def E(self) -> int:
        return len(self.eu)


def latency_matrix(
    inv: Inventory, blocks: Blocks | None = None
) -> tuple[sp.csr_matrix, FloatArray, IntArray]:
    """(L, dropped_ms, dependencies that must never be split) from metrics.latency_coefficients.

    Small coefficients are dropped per app, smallest first, while their sum stays within
    LATENCY_DROP_SHARE of the app's budget; that sum comes off the budget (safe: any
    plan the model accepts is within budget).  Capping the drop per app matters: an app
    above a wide fan-out has thousands of tiny coefficients (45 ms of them at 10,000
    apps), and taking all of that off its budget cut feasible plans away.  With ``blocks``
    (the contraction) the drop is also capped so that every call between two blocks that
    the true budget lets split alone still fits the net budget: on a 10,000-app estate a
    call of 10.95 ms against a 11 ms budget, 10.89 ms net, was the last violation left.
    A split below a divergent cycle makes latency unbounded, so those dependencies are
    returned for contraction.  Coefficients metrics left out (past its MAX_COEFFICIENTS) count
    as dropped already: their bound comes off the allowance and off the budget.
    """
    full, left_out, unsplittable = latency_source(inv)
    allowance = LATENCY_DROP_SHARE * inv.budgets
    if blocks is not None:
        allowance = np.minimum(allowance, _room_beside_largest_call(inv, blocks, full))
    L, dropped = _drop_small_coefficients(full, np.maximum(allowance - left_out, 0.0))
    return L, dropped + left_out, unsplittable


def _room_beside_largest_call(inv: Inventory, blocks: Blocks, L: sp.csr_matrix) -> FloatArray:
    """Per app: budget minus its largest splittable call between two blocks, less the rounding
    of LATENCY_SCALE (coefficients round up, budgets down); inf without such calls."""
    per_call = (L @ block_calls(inv, blocks)[1]).tocoo()
    budget = inv.budgets
    splittable = per_call.data <= budget[per_call.row]
    largest = np.zeros(inv.n)
    np.maximum.at(largest, per_call.row[splittable], per_call.data[splittable])
    room = budget - largest - 2.0 / LATENCY_SCALE
    return np.where(largest > 0, np.maximum(room, 0.0), np.inf)


def _drop_small_coefficients(L: sp.csr_matrix, allowance: FloatArray) -> tuple[sp.csr_matrix, FloatArray]:
    """Drop each row's smallest entries while their running sum stays <= the row's allowance."""
    coo = L.tocoo()
    rows = coo.row.astype(np.int64)
    # each entry in shares of its row's allowance, capped at 2: one cumsum over all rows is
    # exact only while the rows' figures are alike (a row of 1e152 ms, below a deep call chain,
    # wiped out the sums of the rows after it, and 780 ms were dropped from a 226 ms budget)
    share = np.where(coo.data > 0, 2.0, 0.0)
    np.divide(coo.data, allowance[rows], out=share, where=allowance[rows] > 0)
    np.minimum(share, 2.0, out=share)
    # by row, then ascending share, in one float sort (rows 4 apart, shares in [0, 2]): a
    # lexsort of the 21 M coefficients of 20,000 apps took 14 s.  Shares closer than the
    # key's precision may swap; any order drops a valid set (the running sums below are
    # the sums of what is dropped)
    order = np.argsort(rows * 4.0 + share, kind="stable")
    rows, ordered = rows[order], share[order]
    running = np.cumsum(ordered)
    per_row = np.bincount(rows, minlength=L.shape[0])
    starts = (np.cumsum(per_row) - per_row)[rows]  # each entry's row's first position
    before_row = np.where(starts > 0, running[np.maximum(starts - 1, 0)], 0.0)
    drop = running - before_row <= 1.0
    vals = coo.data[order]
    dropped = np.bincount(rows[drop], weights=vals[drop], minlength=L.shape[0]).astype(np.float64)
    keep = order[~drop]
    kept = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=L.shape)
    return kept, dropped


def build_problem(
    inv: Inventory,
    blocks: Blocks,
    risk_weight: float,
    latency: tuple[sp.csr_matrix, FloatArray, IntArray] | None = None,
    relaxed: bool = False,
    exact: bool = False,
) -> Problem:
    """Aggregate apps and dependencies into blocks and scale every number once.

    Safe by default: loads, coefficients and link loads round up, capacities, budgets and
    limits down, so a plan the model accepts meets every rule.  ``relaxed``: the other way
    round (``relaxed_problem``), so every plan that meets the rules is a plan of the model.
    ``exact`` (with ``relaxed``): latency rows as relaxed ones in finer units (``_exact_units``),
    every other limit safe, so that every plan of the model meets every rule.
    """
    up, down = roundings(relaxed and not exact)
    K = inv.K
    bu, bv = blocks.of[inv.caller], blocks.of[inv.callee]
    lo_end, hi_end = np.minimum(bu, bv), np.maximum(bu, bv)
    cross = lo_end != hi_end
    keys = lo_end * blocks.count + hi_end
    uniq, inverse = np.unique(keys[cross], return_inverse=True)
    eu, ev = (uniq // blocks.count).astype(np.int64), (uniq % blocks.count).astype(np.int64)
    E = len(uniq)
    edge_of = np.full(inv.m, -1, dtype=np.int64)
    edge_of[cross] = inverse
    qps = np.bincount(inverse, weights=inv.edge_qps[cross], minlength=E)
    total_qps = float(inv.edge_qps.sum())
    qps_scale = _qps_scale(total_qps, K)
    gbps = np.bincount(inverse, weights=(inv.edge_qps * inv.edge_kb * 8.0 / 1e6)[cross], minlength=E)
    sc = inv.scenario

    loads: dict[Resource, IntArray] = {}
    caps: dict[Resource, IntArray] = {}
    load_scale: dict[Resource, float] = {}
    for res in RESOURCES:
        cap = sc.capacity(res)
        if cap is not None:
            load = blocks.load(inv, res)
            cap = np.minimum(cap, load.sum())  # past the whole estate's load a capacity is unlimited
            load_scale[res] = decimal_scale(float(max(cap.max(), load.max(initial=0))))
            loads[res] = scaled(load, load_scale[res], up)
            caps[res] = scaled(cap, load_scale[res], down)
    link_scale = decimal_scale(sc.link_gbps or 0.0)
    link = None if sc.link_gbps is None else int(scaled(sc.link_gbps, link_scale, down))
    # the link maps to at most CAPACITY_UNITS: a call past twice that breaks it alone, as twice
    # that does (and fits int64)
    gbps_units = np.zeros_like(eu)
    if link is not None:
        gbps_units = scaled(np.minimum(gbps * link_scale, 2 * CAPACITY_UNITS), 1.0, up)

    app_risk = np.asarray(metrics.risk_scores(inv), dtype=np.float64)
    total_risk = float(app_risk.sum())
    block_risk = blocks.weights(app_risk)
    risk = block_risk / total_risk if total_risk > 0 else np.zeros(blocks.count)
    # max_risk on the risk itself, not on shares: share <= max_risk is risk <= max_risk x total,
    # and decimal risks stay exact at a power-of-ten scale.  Shares (risk 1 of 3, max_risk 1/3)
    # rounded up to 1e-5 made a plan that meets max_risk exactly "proven infeasible"
    risk_scale = decimal_scale(total_risk)
    risk_load = scaled(block_risk, risk_scale, up)
    risk_cap = None
    if sc.max_risk is not None:
        # from 1 (all the risk) on, max_risk binds nothing: the whole load, as for capacities
        unlimited = sc.max_risk + metrics.REL_TOL >= 1
        risk_cap = (
            int(risk_load.sum()) if unlimited else int(scaled(sc.max_risk * total_risk, risk_scale, down))
        )
    # risk term in objective units: risk_weight x RISK_SCALE_SHARE x total qps x K per unit of share
    per_share = risk_weight * metrics.RISK_SCALE_SHARE * total_qps * K * qps_scale
    risk_units = scaled(risk * per_share, 1.0, "nearest")
    risk_weight_units = 1 if risk_weight > 0 and total_risk > 0 else 0

    L, dropped, unbounded = latency if latency is not None else latency_matrix(inv)
    lat = _latency_rows(inv, blocks, L, dropped, edge_of, E, relaxed, exact)
    incidence = sp.csr_matrix(
        (np.ones(2 * E), (np.concatenate([eu, ev]), np.tile(np.arange(E), 2))), shape=(blocks.count, E)
    )
    return Problem(
        inv=inv,
        blocks=blocks,
        K=K,
        eu=eu,
        ev=ev,
        edge_of=edge_of,
        weight=scaled(qps, qps_scale, "nearest"),
        qps_scale=qps_scale,
        gbps=gbps_units,
        link=link,
        link_scale=link_scale,
        loads=loads,
        caps=caps,
        load_scale=load_scale,
        risk=risk,
        risk_load=risk_load,
        risk_cap=risk_cap,
        risk_scale=risk_scale * total_risk if total_risk > 0 else 1.0,
        risk_units=risk_units,
        risk_weight_units=risk_weight_units,
        before=_before_pairs(inv, blocks),
        apart=_apart_sets(inv, blocks),
        callees_first=_callee_pairs(inv, blocks) if sc.callees_first else (),
        latency=lat,
        adjacency=block_graph(inv, blocks),
        incidence=incidence,
        dropped_ms=dropped,
        latency_source=sp.csr_matrix(L),
        unbounded_edges=np.asarray(unbounded, dtype=np.int64),
    )


def relaxed_problem(
    problem: Problem, risk_weight: float, blocks: Blocks | None = None, exact: bool = False
) -> Problem:
    """``problem`` as a relaxation of the user's rules: every latency coefficient kept (none
    dropped), coefficients and loads rounded down, budgets and limits up (on ``blocks`` when
    given: the proof search's own blocks, else ``problem``'s).

    Why: the search's model is safe, not exact.  It drops small coefficients (taking their
    sum off the budget) and rounds against the plan, so a budget met exactly (two calls of
    30 ms under a 60 ms budget, beside a 0.03 ms call) was broken in it, and the planner
    called an estate with a plan "proven infeasible".  A proof, a bound or an optimum must
    come from this model instead; a plan it gives is checked by ``metrics`` before use.
    ``exact``: latency rows in units fine enough that its plans pass that check
    (``_exact_units``), and capacities, link and max_risk safe (the relaxation's rounding
    put a wave 0.1400 of the risk against max_risk 0.14); the search's model on budgets
    met exactly (``pipeline._overtime_repair``): every plan of it meets every rule.
    """
    # every coefficient, not the search's (``problem.latency_source`` lacks the small ones):
    # without them an exact relaxation passed a 32.86 ms budget by 0.07 ms that metrics counts.
    # Past metrics.MAX_COEFFICIENTS the smallest are left out even here: the exact one takes
    # their bound off the budgets (its plans must meet them), the plain one does not (a bound)
    L, left_out, _ = latency_source(problem.inv)
    dropped = left_out if exact else np.zeros(problem.inv.n)
    latency = (L, dropped, problem.unbounded_edges)
    own = problem.blocks if blocks is None else blocks
    return build_problem(problem.inv, own, risk_weight, latency, relaxed=True, exact=exact)


def decimal_scale(top: float, units: float = CAPACITY_UNITS) -> float:
    """A power of ten mapping ``top`` to at most ``units``: decimal inputs stay exact where they fit."""
    if top <= 0:
        return 1.0
    return float(10.0 ** np.floor(np.log10(units / top)))


def _qps_scale(total_qps: float, K: int) -> float:
    """Objective units per qps: a power of ten, so integer and decimal qps stay exact where they fit."""
    if total_qps <= 0:
        return 1.0
    exponent = np.floor(np.log10(OBJECTIVE_RESOLUTION / (total_qps * max(K - 1, 1))))
    return float(10.0**exponent)


def _latency_rows(
    inv: Inventory,
    blocks: Blocks,
    L: sp.csr_matrix,
    dropped: FloatArray,
    edge_of: IntArray,
    E: int,
    relaxed: bool = False,
    exact: bool = False,
) -> LatencyRows:
    """Aggregate L (apps x dependencies) onto block edges and keep the rows a plan could break
    (``relaxed``: coefficients round down and budgets up, see ``build_problem``; ``exact``:
    in units fine enough for metrics' tolerance, ``_exact_units``)."""
    up, down = roundings(relaxed)
    cross = np.flatnonzero(edge_of >= 0)
    to_edges = sp.csr_matrix((np.ones(len(cross)), (cross, edge_of[cross])), shape=(inv.m, E))
    Lb = (sp.csr_matrix(L) @ to_edges).tocsr()
    budget_ms = np.maximum(inv.budgets - dropped, 0.0)
    if exact:
        per_ms = _exact_units(budget_ms, np.diff(Lb.indptr))
    else:
        # units per ms: LATENCY_SCALE, fewer where the budget would pass ROW_UNITS (a row's own
        # factor keeps the rounding's direction: safe or relaxed, as for every other row)
        per_ms = LATENCY_SCALE / np.maximum(1.0, budget_ms / (ROW_UNITS / LATENCY_SCALE))
    factor = LATENCY_SCALE / per_ms
    budget = scaled(budget_ms * per_ms, 1.0, down)
    # a coefficient past 2 x ROW_UNITS breaks its row alone, as 2 x ROW_UNITS does (and fits int64)
    row_of = np.repeat(np.arange(Lb.shape[0]), np.diff(Lb.indptr))
    Lb.data = scaled(np.minimum(Lb.data * per_ms[row_of], 2 * ROW_UNITS), 1.0, up).astype(np.float64)
    Lb.eliminate_zeros()
    reachable = np.asarray(Lb.sum(axis=1)).ravel()
    rows = np.flatnonzero(reachable > budget)
    coef = sp.csr_matrix(Lb[rows].astype(np.int64))
    return LatencyRows(
        coef=coef, budget=budget[rows], app=rows.astype(np.int64), by_edge=coef.tocsc(), factor=factor[rows]
    )


def _exact_units(budget_ms: FloatArray, terms: IntArray) -> FloatArray:
    """Units per ms of each row of an exact relaxation (``relaxed_problem(exact=True)``).

    A relaxed row rounds its terms down and its budget up, each by less than a unit, so a
    plan it accepts passes the true budget by less than (terms + 1) units.  At (terms + 1) /
    (REL_TOL / 2 x max(1, budget)) units per ms that stays within half of the tolerance
    ``metrics`` allows: a plan of the model meets every budget by metrics' own check, and
    every plan that meets them is a plan of the model.  At 0.001 ms, plans the relaxation
    gave (NetEase, and estates with budgets at a planted plan's exact latency) passed
    budgets by such hairs and were refused at the end.  A budget never passes ROW_UNITS
    units (int64 room), so rows of more than ~500 terms may stay a little coarser.
    """
    exact = (terms + 1.0) / (metrics.REL_TOL / 2 * np.maximum(1.0, budget_ms))
    return np.minimum(exact, ROW_UNITS / np.maximum(budget_ms, 1.0 / LATENCY_SCALE))


def _before_pairs(inv: Inventory, blocks: Blocks) -> tuple[tuple[int, int, int], ...]:
    pairs: list[tuple[int, int, int]] = []
    for r, rule in enumerate(inv.scenario.rules):
        if rule.kind == "before":
            ids = [int(blocks.of[inv.index[a]]) for a in rule.apps]
            pairs.extend((a, b, r) for a, b in itertools.pairwise(ids))
    return tuple(pairs)


def _apart_sets(inv: Inventory, blocks: Blocks) -> tuple[tuple[tuple[int, ...], int], ...]:
    return tuple(
        (tuple(int(blocks.of[inv.index[a]]) for a in rule.apps), r)
        for r, rule in enumerate(inv.scenario.rules)
        if rule.kind == "apart"
    )


def _callee_pairs(inv: Inventory, blocks: Blocks) -> tuple[tuple[int, int], ...]:
    callee, caller = blocks.of[inv.callee], blocks.of[inv.caller]
    keep = callee != caller
    pairs = np.unique(np.stack([callee[keep], caller[keep]], axis=1), axis=0)
    return tuple((int(a), int(b)) for a, b in pairs)


# ---------------------------------------------------------------------------------------------
# Measuring a block plan with the model's own integers (what "violation" means to the search)


@dataclass(frozen=True)
class Violations:
    """Excess of every constraint instance of a block plan, in the model's integer units."""

    latency: IntArray  # (R, K-1)
    capacity: dict[Resource, IntArray]  # (K,)
    link: IntArray  # (K-1,)
    risk: IntArray  # (K,)
    before: BoolArray_ = field(default_factory=lambda: np.zeros(0, dtype=bool))
    apart: BoolArray_ = field(default_factory=lambda: np.zeros(0, dtype=bool))
    callees_first: BoolArray_ = field(default_factory=lambda: np.zeros(0, dtype=bool))
    range: BoolArray_ = field(default_factory=lambda: np.zeros(0, dtype=bool))
    relative_excess: float = 0.0  # capacity, link and risk excess as shares of their limits
    latency_ms: float = 0.0  # latency excess in ms, summed over rows and periods

    @property
    def count(self) -> int:
        """Number of violated instances (what the progress bar shows)."""
        return int(
            np.count_nonzero(self.latency)
            + sum(np.count_nonzero(v) for v in self.capacity.values())
            + np.count_nonzero(self.link)
            + np.count_nonzero(self.risk)
            + self.before.sum()
            + self.apart.sum()
            + self.callees_first.sum()
            + self.range.sum()
        )

    @property
    def score(self) -> float:
        """One scalar to decrease: ms of excess latency + 100 per unit of other excess (capacity
        share, link share, risk share) + 100 per broken rule instance."""
        return (
            self.latency_ms
            + 100.0 * self.relative_excess
            + 100.0
            * float(self.before.sum() + self.apart.sum() + self.callees_first.sum() + self.range.sum())
        )


BoolArray_ = Any  # numpy bool arrays; alias keeps the dataclass readable


def splits(problem: Problem, waves: IntArray) -> np.ndarray:
    """(E, K-1) bool: block edge e split in period k (column k-1)."""
    k = np.arange(1, problem.K)[None, :]
    return (waves[problem.eu][:, None] <= k) != (waves[problem.ev][:, None] <= k)


def wave_sums(values: np.ndarray, waves: IntArray, K: int) -> np.ndarray:
    """Per-wave sum of a per-block quantity."""
    return np.bincount(waves - 1, weights=values, minlength=K)[:K]


def before_holds(waves: IntArray, earlier: int, later: int) -> bool:
    """A ``before`` rule instance: ``earlier`` moves in a strictly earlier wave than ``later``."""
    return bool(waves[earlier] < waves[later])


def apart_holds(waves: IntArray, blocks: Sequence[int]) -> bool:
    """An ``apart`` rule: every named block in a wave of its own."""
    return len({int(waves[b]) for b in blocks}) == len(blocks)


def callee_first_holds(waves: IntArray, callee: int, caller: int) -> bool:
    """``callees_first``: a callee never moves after its caller."""
    return bool(waves[callee] <= waves[caller])


def violations(problem: Problem, waves: IntArray) -> Violations:
    """Every constraint instance's excess for a block plan (0 everywhere = feasible)."""
    K = problem.K
    S = splits(problem, waves).astype(np.int64)
    lat = problem.latency
    latency = (
        np.maximum(np.asarray(lat.coef @ S) - lat.budget[:, None], 0)
        if len(lat.app)
        else np.zeros((0, K - 1), dtype=np.int64)
    )
    capacity = {
        res: np.maximum(np.rint(wave_sums(load, waves, K)).astype(np.int64) - problem.caps[res], 0)
        for res, load in problem.loads.items()
    }
    link = (
        np.maximum(problem.gbps @ S - problem.link, 0)
        if problem.link is not None
        else np.zeros(K - 1, dtype=np.int64)
    )
    risk = (
        np.maximum(np.rint(wave_sums(problem.risk_load, waves, K)).astype(np.int64) - problem.risk_cap, 0)
        if problem.risk_cap is not None
        else np.zeros(K, dtype=np.int64)
    )
    before = np.array([not before_holds(waves, a, b) for a, b, _ in problem.before], dtype=bool)
    apart = np.array([not apart_holds(waves, bs) for bs, _ in problem.apart], dtype=bool)
    callees = np.array([not callee_first_holds(waves, a, b) for a, b in problem.callees_first], dtype=bool)
    rng = (waves < problem.blocks.lo) | (waves > problem.blocks.hi)
    relative = (
        sum(float(v.sum()) / max(float(problem.caps[r].max()), 1.0) for r, v in capacity.items())
        + float(link.sum()) / max(float(problem.link or 1), 1.0)
        + float(risk.sum()) / problem.risk_scale
    )
    latency_ms = float(latency.sum(axis=1) @ lat.factor) / LATENCY_SCALE if len(lat.app) else 0.0
    return Violations(latency, capacity, link, risk, before, apart, callees, rng, relative, latency_ms)


def objective_value(problem: Problem, waves: IntArray) -> float:
    """The planner's objective in qps units: chatty cost + risk_weight x scale x (pilot + spread)."""
    chatty = float(problem.weight @ np.abs(waves[problem.eu] - waves[problem.ev])) / problem.qps_scale
    if problem.risk_weight_units == 0:
        return chatty
    return chatty + float(problem.risk_weight_units * risk_term_units(problem, waves)) / problem.qps_scale


def objective_units(problem: Problem, waves: IntArray) -> int:
    """The model's integer objective of a block plan (what sub-solves compare)."""
    chatty = int(problem.weight @ np.abs(waves[problem.eu] - waves[problem.ev]))
    return chatty + problem.risk_weight_units * risk_term_units(problem, waves)


def risk_term_units(problem: Problem, waves: IntArray) -> int:
    """Pilot (risk share of wave 1) + spread (largest wave's risk share), in risk units."""
    return pilot_plus_spread(np.rint(wave_sums(problem.risk_units, waves, problem.K)).astype(np.int64))


def pilot_plus_spread(per_wave: IntArray) -> int:
    """The risk term of per-wave risk units: wave 1's plus the largest wave's."""
    return int(per_wave[0] + per_wave.max())


# ---------------------------------------------------------------------------------------------
# The model


Term = Any  # int constant or a CP-SAT linear expression


@dataclass
class WaveModel:
    """A built CP-SAT model plus what is needed to read a block plan back and hint it."""

    model: cp_model.CpModel
    problem: Problem
    base: IntArray  # the block plan the fixed blocks keep (and the hint)
    free: IntArray
    x: dict[tuple[int, int], cp_model.IntVar] = field(default_factory=dict)
    hints: dict[int, tuple[cp_model.IntVar, int]] = field(default_factory=dict)
    assumptions: dict[int, tuple[str, tuple[Any, ...]]] = field(default_factory=dict)  # var index -> reason
    assumption_vars: list[cp_model.IntVar] = field(default_factory=list)
    penalties: list[tuple[str, Any]] = field(default_factory=list)  # (name, penalised term)
    const: dict[tuple[int, int], int] = field(default_factory=dict)  # free blocks' fixed literals
    clear_row: int | None = None  # a kick's latency row: hard here, and broken by the hint
    split: SplitTable | None = None  # the touched edges' splits, for rows added after the build

    def lit(self, b: int, k: int) -> Term:
        """x[b,k] as a variable or the constant 0/1 (a fixed block's literal follows its wave)."""
        var = self.x.get((b, k))
        if var is not None:
            return var
        value = self.const.get((b, k))
        return int(self.base[b] <= k) if value is None else value

    def hint(self, var: cp_model.IntVar, value: int) -> None:
        self.hints[var.index] = (var, int(value))

    def apply_hints(self) -> None:
        self.model.clear_hints()
        for var, value in self.hints.values():
            self.model.add_hint(var, value)

    def assume(self, reason: str, *details: Any) -> cp_model.IntVar:
        """A fresh assumption literal standing for one constraint instance (for explanations)."""
        var = self.model.new_bool_var(reason)
        self.assumptions[var.index] = (reason, details)
        self.assumption_vars.append(var)
        return var

    def waves(self, solver: cp_model.CpSolver) -> IntArray:
        """The block plan of a solution: free blocks read from x, others unchanged."""
        out = self.base.copy()
        for b in self.free.tolist():
            out[b] = self.problem.K - sum(
                int(solver.value(t)) if not isinstance(t, int) else t for t in self._row(b)
            )
        return out

    def _row(self, b: int) -> list[Term]:
        return [self.lit(b, k) for k in range(1, self.problem.K)]


@dataclass(frozen=True)
class ModelOptions:
    """What a model contains beyond the hard constraints over the free blocks."""

    radius: int | None = None  # free blocks move at most this many waves from their current one
    window: tuple[int, int] | None = None  # free blocks stay within these waves (inclusive)
    soft: bool = False  # instances the current plan violates get a penalised slack
    assumptions: bool = False  # one assumption literal per rule / pin / budget / capacity family
    objective: bool = True
    trade: bool = False  # soft: latency rows may also gain (penalised) excess, for a larger total drop
    chatty: bool = True  # False: with soft constraints, minimise the violation alone (fast repair)
    ranges: bool = True  # False (with assumptions): pins and windows become assumptions
    # soft: capacity, risk and link limits may be exceeded by any amount (penalised), the
    # first half of a kick (feasibility); clear_row: that latency row must lose its excess
    relax_limits: bool = False
    clear_row: int | None = None
    # s[e,k] = x[u,k] XOR x[v,k] exactly, not only >=: two more clauses per split, so the LP
    # cannot meet a cut (cluster_bound.add_cuts) with splits the plan does not make
    exact_splits: bool = False


def build_model(problem: Problem, base: IntArray, free: Iterable[int], options: ModelOptions) -> WaveModel:
    """The wave model with ``free`` blocks variable and the others at their wave in ``base``."""
    free_arr = np.unique(np.asarray(list(free), dtype=np.int64))
    base_arr = np.asarray(base, dtype=np.int64).copy()
    wm = WaveModel(cp_model.CpModel(), problem, base_arr, free_arr, clear_row=options.clear_row)
    current = violations(problem, wm.base) if options.soft else None
    _add_wave_literals(wm, options)
    base_splits = splits(problem, wm.base).astype(np.int64)
    split = wm.split = _add_splits(wm, _touched_edges(problem, free_arr), base_splits, options.exact_splits)
    if options.assumptions and not options.ranges:
        add_pins_and_windows(wm)
    add_capacity(wm, options, current)
    add_before(wm, options, current)
    add_apart(wm, options, current)
    add_callees_first(wm, options, current)
    add_link(wm, split, base_splits, options, current)
    add_max_risk(wm, options, current)
    add_latency_budgets(wm, split, base_splits, options, current)
    if options.objective:
        set_objective(wm, split, options.chatty or not wm.penalties)
    wm.apply_hints()
    return wm


def _add_wave_literals(wm: WaveModel, options: ModelOptions) -> None:
    """x[b,k] for the free blocks inside their allowed range (and radius), with x[b,k] => x[b,k+1]."""
    p, K, m = wm.problem, wm.problem.K, wm.model
    for b in wm.free.tolist():
        lo, hi = (1, K) if not options.ranges else (int(p.blocks.lo[b]), int(p.blocks.hi[b]))
        lo, hi = min(lo, hi), max(lo, hi)  # an empty range only happens in explanations
        w = int(wm.base[b])
        if options.radius is not None:
            lo, hi = max(lo, w - options.radius), min(hi, w + options.radius)
        if options.window is not None:
            lo, hi = max(lo, options.window[0]), min(hi, options.window[1])
        if options.radius is not None or options.window is not None:
            lo, hi = min(lo, w), max(hi, w)  # the current wave always stays allowed (the hint)
        prev = None
        for k in range(1, K):
            if k < lo or k >= hi:  # 0 before the range, 1 from its end on
                wm.const[(b, k)] = int(k >= hi)
                continue
            var = m.new_bool_var(f"x{b}_{k}")
            wm.x[(b, k)] = var
            wm.hint(var, int(wm.base[b] <= k))
            if prev is not None:
                m.add_implication(prev, var)
            prev = var


def _touched_edges(problem: Problem, free: IntArray) -> IntArray:
    """Block edges with at least one free endpoint."""
    if len(free) == 0 or problem.E == 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(problem.incidence[free].indices).astype(np.int64)


@dataclass(frozen=True)
class SplitTable:
    """s[e,k] of the touched edges as ``const + sign * lits[var]`` (var -1: a constant).

    Arrays instead of per-term Python expressions: the budget rows of a neighbourhood
    at 10,000 apps hold ~60,000 terms, and summing them term by term took most of a
    repair step.
    """

    edges: IntArray  # (m,) touched block edges
    var: IntArray  # (m, K-1) index into lits, -1 where the split is a constant
    sign: IntArray  # (m, K-1) +1 or -1 (0 where constant)
    const: IntArray  # (m, K-1) 0 / 1
    lits: list[cp_model.IntVar]

    def expr(self, cols: IntArray, coefs: IntArray, k: int) -> Term:
        """sum_j coefs[j] * s[edges[cols[j]], k] as a constant or a linear expression."""
        var, sign, const = self.var[cols, k - 1], self.sign[cols, k - 1], self.const[cols, k - 1]
        return self._weighted(var, coefs * sign, int(coefs @ const))

    def total(self, coefs: IntArray) -> Term:
        """sum_e sum_k coefs[e] * s[e,k] over every touched edge and period."""
        constant = int((coefs[:, None] * self.const).sum())
        return self._weighted(self.var, coefs[:, None] * self.sign, constant)

    def _weighted(self, var: IntArray, weights: IntArray, constant: int) -> Term:
        """constant + sum of weights x lits[var] over the entries with a variable (var >= 0)."""
        live = var >= 0
        if not live.any():
            return constant
        terms = [self.lits[i] for i in var[live].tolist()]
        return cp_model.LinearExpr.weighted_sum(terms, weights[live].tolist()) + constant


def _literal_arrays(wm: WaveModel, blocks: IntArray) -> tuple[IntArray, IntArray, list[cp_model.IntVar]]:
    """(var index or -1, constant value) of x[b,k] for ``blocks`` x periods, and the variables."""
    K = wm.problem.K
    var = np.full((len(blocks), K - 1), -1, dtype=np.int64)
    const = (wm.base[blocks][:, None] <= np.arange(1, K)[None, :]).astype(np.int64)
    lits: list[cp_model.IntVar] = []
    index: dict[int, int] = {}
    free = set(wm.free.tolist())
    for i, b in enumerate(blocks.tolist()):
        if b not in free:
            continue
        for k in range(1, K):
            lit = wm.lit(b, k)
            if isinstance(lit, int):
                const[i, k - 1] = lit
                continue
            at = index.setdefault(lit.index, len(lits))
            if at == len(lits):
                lits.append(lit)
            var[i, k - 1] = at
    return var, const, lits


def _add_splits(wm: WaveModel, edges: IntArray, base_splits: IntArray, exact: bool = False) -> SplitTable:
    """s[e,k] >= |x[u,k] - x[v,k]| per touched edge (= with ``exact``); an edge to a fixed
    block is a plain literal."""
    p, m = wm.problem, wm.model
    ends, where = np.unique(np.concatenate([p.eu[edges], p.ev[edges]]), return_inverse=True)
    xvar, xconst, lits = _literal_arrays(wm, ends)
    iu, iv = where[: len(edges)], where[len(edges) :]
    vu, vv, cu, cv = xvar[iu], xvar[iv], xconst[iu], xconst[iv]
    var = np.where(vu < 0, vv, vu)
    # u constant: s = xv (cu = 0) or 1 - xv; v constant: s = xu (cv = 0) or 1 - xu
    sign = np.where(vu < 0, 1 - 2 * cu, 1 - 2 * cv)
    const = np.where(vu < 0, cu, cv)
    both_const = (vu < 0) & (vv < 0)
    const[both_const] = (cu != cv)[both_const]
    sign[both_const] = 0
    both_var = (vu >= 0) & (vv >= 0)
    const[both_var], sign[both_var] = 0, 1
    for i, k in zip(*np.nonzero(both_var), strict=True):
        xu, xv = lits[vu[i, k]], lits[vv[i, k]]
        s = m.new_bool_var(f"s{int(edges[i])}_{int(k) + 1}")
        m.add_bool_or([xu.Not(), xv, s])  # s >= xu - xv
        m.add_bool_or([xv.Not(), xu, s])  # s >= xv - xu
        if exact:
            m.add_bool_or([xu, xv, s.Not()])  # s <= xu + xv
            m.add_bool_or([xu.Not(), xv.Not(), s.Not()])  # s <= 2 - xu - xv
        wm.hint(s, int(base_splits[edges[i], k]))
        var[i, k] = len(lits)
        lits.append(s)
    return SplitTable(edges, var, sign, const, lits)


def _moves_in(wm: WaveModel, b: int, j: int) -> Term:
    """[wave(b) = j] = x[b,j] - x[b,j-1]."""
    return _x(wm, b, j) - _x(wm, b, j - 1)


def _x(wm: WaveModel, b: int, k: int) -> Term:
    """x[b,k] including the constant ends x[b,0] = 0 and x[b,K] = 1."""
    if k <= 0:
        return 0
    if k >= wm.problem.K:
        return 1
    return wm.lit(b, k)


def _wave_of(wm: WaveModel, b: int) -> Term:
    """wave(b) = K - sum_k x[b,k]."""
    return wm.problem.K - sum(_x(wm, b, k) for k in range(1, wm.problem.K))


def _soft_or_hard(
    wm: WaveModel,
    expr: Term,
    rhs: int,
    violated_by: int,
    soft: bool,
    name: str,
    assumption: cp_model.IntVar | None = None,
    room: int = 0,
    unit: int = 1,
) -> None:
    """expr <= rhs; with a penalised slack when soft and the current plan already breaks it.

    The slack never exceeds the current excess (a violation may shrink, never grow),
    unless ``room`` allows new excess (trading, relaxed limits): up to ``room`` of it, penalised.
    It counts in steps of ``unit`` (an exact latency row's units are far finer than 0.001
    ms: steps of about that keep its penalty in line with every other row's, and in int64).
    """
    if isinstance(expr, int):  # every term fixed: either true or a contradiction
        if expr > rhs and not (soft and violated_by > 0):
            _false(wm, assumption)
        return
    if soft and max(violated_by, room) > 0:
        steps = -(-max(violated_by, room) // unit)
        slack = wm.model.new_int_var(0, steps, f"slack_{name}")
        wm.hint(slack, -(-violated_by // unit))
        ct = wm.model.add(expr - unit * slack <= rhs)
        wm.penalties.append((name, slack))
    else:
        ct = wm.model.add(expr <= rhs)
    if assumption is not None:
        ct.only_enforce_if(assumption)


def _false(wm: WaveModel, enforce: cp_model.IntVar | None) -> None:
    """A constraint that cannot hold (only under ``enforce`` when given)."""
    ct = wm.model.add_bool_or([])
    if enforce is not None:
        ct.only_enforce_if(enforce)


def add_pins_and_windows(wm: WaveModel) -> None:
    """Per app pin / window as assumption literals (explanations only; otherwise ranges are domains)."""
    inv, p = wm.problem.inv, wm.problem
    free = set(wm.free.tolist())
    for i, app in enumerate(inv.apps):
        b = int(p.blocks.of[i])
        if b not in free:
            continue
        lo = max(app.earliest_wave or 1, app.pinned_wave or 1)
        hi = min(app.latest_wave or p.K, app.pinned_wave or p.K)
        if lo == 1 and hi == p.K:
            continue
        lit = wm.assume("pin" if app.pinned_wave is not None else "window", i, lo, hi)
        wave = _wave_of(wm, b)
        wm.model.add(wave >= lo).only_enforce_if(lit)
        wm.model.add(wave <= hi).only_enforce_if(lit)


def add_capacity(wm: WaveModel, options: ModelOptions, current: Violations | None) -> None:
    """Per resource and wave: sum_b load_b [wave(b) = j] <= capacity_j (fixed blocks' load taken off)."""
    p = wm.problem
    fixed = np.ones(p.count, dtype=bool)
    fixed[wm.free] = False
    for res, load in p.loads.items():
        lit = wm.assume("capacity", res) if options.assumptions else None
        used = np.rint(wave_sums(np.where(fixed, load, 0), wm.base, p.K)).astype(np.int64)
        room = int(load[wm.free].sum()) if options.relax_limits else 0
        for j in range(1, p.K + 1):
            expr = sum(int(load[b]) * _moves_in(wm, b, j) for b in wm.free.tolist() if load[b])
            over = int(current.capacity[res][j - 1]) if current is not None else 0
            rhs = int(p.caps[res][j - 1] - used[j - 1])
            _soft_or_hard(wm, expr, rhs, over, options.soft, f"cap_{res}_{j}", lit, room)


def add_before(wm: WaveModel, options: ModelOptions, current: Violations | None) -> None:
    """``before`` a -> b: wave(a) < wave(b), i.e. x[b,k] => x[a,k-1] for k = 1..K."""
    free = set(wm.free.tolist())
    for i, (a, b, rule) in enumerate(wm.problem.before):
        if a not in free and b not in free and not options.assumptions:
            continue
        enforce = _rule_literal(
            wm, options, current is not None and bool(current.before[i]), "before", rule, a, b
        )
        for k in range(1, wm.problem.K + 1):
            _implies(wm, _x(wm, b, k), _x(wm, a, k - 1), enforce)


def add_apart(wm: WaveModel, options: ModelOptions, current: Violations | None) -> None:
    """``apart``: pairwise different waves."""
    free = set(wm.free.tolist())
    for i, (bs, rule) in enumerate(wm.problem.apart):
        if not free.intersection(bs) and not options.assumptions:
            continue
        enforce = _rule_literal(wm, options, current is not None and bool(current.apart[i]), "apart", rule)
        for j, a in enumerate(bs):
            for b in bs[j + 1 :]:
                wa, wb = _wave_of(wm, a), _wave_of(wm, b)
                if isinstance(wa, int) and isinstance(wb, int):
                    if wa == wb:
                        _false(wm, enforce)
                    continue
                ct = wm.model.add(wa != wb)
                if enforce is not None:
                    ct.only_enforce_if(enforce)


def add_callees_first(wm: WaveModel, options: ModelOptions, current: Violations | None) -> None:
    """callees_first: wave(callee) <= wave(caller), i.e. x[caller,k] => x[callee,k]."""
    free = set(wm.free.tolist())
    family = wm.assume("callees_first") if options.assumptions and wm.problem.callees_first else None
    for i, (callee, caller) in enumerate(wm.problem.callees_first):
        if callee not in free and caller not in free:
            continue
        broken = current is not None and bool(current.callees_first[i])
        enforce = family
        if options.soft and broken:
            enforce = wm.model.new_bool_var(f"ok_cf{i}")
            wm.hint(enforce, 0)
            wm.penalties.append(("callees_first", RULE_PENALTY * (1 - enforce)))
        for k in range(1, wm.problem.K):
            _implies(wm, _x(wm, caller, k), _x(wm, callee, k), enforce)


def _rule_literal(
    wm: WaveModel, options: ModelOptions, broken: bool, kind: str, rule: int, *details: int
) -> cp_model.IntVar | None:
    """Enforcement literal of one rule instance: an assumption, a penalised switch, or none (hard)."""
    if options.assumptions:
        return wm.assume(kind, rule, *details)
    if options.soft and broken:
        ok = wm.model.new_bool_var(f"ok_{kind}{rule}")
        wm.hint(ok, 0)
        wm.penalties.append((kind, RULE_PENALTY * (1 - ok)))
        return ok
    return None


def _implies(wm: WaveModel, p: Term, q: Term, enforce: cp_model.IntVar | None) -> None:
    """p => q for literals that may be constants."""
    m = wm.model
    if (isinstance(p, int) and p == 0) or (isinstance(q, int) and q == 1):
        return
    if isinstance(p, int):  # p == 1: q must hold
        ct = m.add(q == 1)
    elif isinstance(q, int):  # q == 0: p must not hold
        ct = m.add(p == 0)
    else:
        ct = m.add_implication(p, q)
    if enforce is not None:
        ct.only_enforce_if(enforce)


def add_link(
    wm: WaveModel,
    split: SplitTable,
    base_splits: IntArray,
    options: ModelOptions,
    current: Violations | None,
) -> None:
    """Per period: sum_e gbps_e s[e,k] <= link (untouched edges' load taken off)."""
    p = wm.problem
    edges = split.edges
    if p.link is None or len(edges) == 0:
        return
    lit = wm.assume("link") if options.assumptions else None
    touched = np.zeros(p.E, dtype=bool)
    touched[edges] = True
    fixed_load = (p.gbps * ~touched) @ base_splits
    cols = np.flatnonzero(p.gbps[edges])
    room = int(p.gbps[edges[cols]].sum()) if options.relax_limits else 0
    for k in range(1, p.K):
        expr = split.expr(cols, p.gbps[edges[cols]], k)
        over = int(current.link[k - 1]) if current is not None else 0
        rhs = int(p.link - fixed_load[k - 1])
        _soft_or_hard(wm, expr, rhs, over, options.soft, f"link_{k}", lit, room)


def add_max_risk(wm: WaveModel, options: ModelOptions, current: Violations | None) -> None:
    """Per wave: risk share <= max_risk."""
    p = wm.problem
    if p.risk_cap is None:
        return
    lit = wm.assume("max_risk") if options.assumptions else None
    fixed = np.ones(p.count, dtype=bool)
    fixed[wm.free] = False
    used = np.rint(wave_sums(np.where(fixed, p.risk_load, 0), wm.base, p.K)).astype(np.int64)
    room = int(p.risk_load[wm.free].sum()) if options.relax_limits else 0
    for j in range(1, p.K + 1):
        expr = sum(int(p.risk_load[b]) * _moves_in(wm, b, j) for b in wm.free.tolist() if p.risk_load[b])
        over = int(current.risk[j - 1]) if current is not None else 0
        _soft_or_hard(wm, expr, int(p.risk_cap - used[j - 1]), over, options.soft, f"risk_{j}", lit, room)


def add_latency_budgets(
    wm: WaveModel,
    split: SplitTable,
    base_splits: IntArray,
    options: ModelOptions,
    current: Violations | None,
) -> None:
    """Per (app, period): sum_e L[a,e] s[e,k] <= budget_a - dropped_a, for rows touching a free block.

    The untouched edges' part is a constant per period; a row-period that cannot
    exceed its budget even with every touched edge split is left out.
    """
    p, edges = wm.problem, split.edges
    lat = p.latency
    if len(lat.app) == 0 or len(edges) == 0:
        return
    rows = np.unique(lat.by_edge[:, edges].indices)
    if len(rows) == 0:
        return
    sub = lat.coef[rows]
    S = base_splits
    free_part = sub[:, edges].tocsr()  # columns renumbered: column j is block edge edges[j]
    free_part.eliminate_zeros()
    fixed_part = np.asarray(sub @ S) - np.asarray(free_part @ S[edges])
    units = np.maximum(np.floor(1.0 / lat.factor[rows]), 1.0).astype(np.int64).tolist()  # per 0.001 ms
    for i, r in enumerate(rows.tolist()):
        lit = wm.assume("latency", int(lat.app[r])) if options.assumptions else None
        start, end = free_part.indptr[i], free_part.indptr[i + 1]
        cols, coefs = free_part.indices[start:end].astype(np.int64), free_part.data[start:end]
        if len(cols) == 0:
            continue
        top = int(coefs.sum())
        for k in range(1, p.K):
            rhs = int(lat.budget[r] - fixed_part[i, k - 1])
            if top <= rhs:
                continue  # cannot be broken by this neighbourhood
            expr = split.expr(cols, coefs, k)
            over = int(current.latency[r, k - 1]) if current is not None else 0
            room = top - rhs if options.trade else 0
            soft = options.soft and r != options.clear_row
            _soft_or_hard(wm, expr, rhs, over, soft, f"lat_{r}_{k}", lit, room, units[i])


def set_objective(wm: WaveModel, split: SplitTable, chatty_too: bool) -> None:
    """Chatty cost of the touched edges + risk term; soft slacks dominate when present.

    Risk term: risk_weight_units x (risk share of wave 1 + largest wave risk share);
    with risk_weight 0 the objective is exactly the chatty cost.  ``chatty_too`` False:
    the penalised slacks alone.
    """
    p, m = wm.problem, wm.model
    if not chatty_too:
        m.minimize(sum(var for _, var in wm.penalties))
        return
    edges = split.edges
    chatty = split.total(p.weight[edges])
    terms: list[Any] = [chatty]
    if p.risk_weight_units > 0 and len(wm.free):
        terms.append(p.risk_weight_units * _risk_term(wm))
    objective: Any = sum(terms)
    if wm.penalties:
        big = int(p.weight[edges].sum()) * (p.K - 1) + 2 * int(p.risk_units.sum()) + 1
        objective = objective + big * sum(var for _, var in wm.penalties)
    m.minimize(objective)


def _risk_term(wm: WaveModel) -> Any:
    """pilot (share of wave 1) + spread (max share over waves), in risk units."""
    p, m = wm.problem, wm.model
    fixed = np.ones(p.count, dtype=bool)
    fixed[wm.free] = False
    base_load = np.rint(wave_sums(np.where(fixed, p.risk_units, 0), wm.base, p.K)).astype(np.int64)
    per_wave: list[Term] = []
    for j in range(1, p.K + 1):
        expr = sum(int(p.risk_units[b]) * _moves_in(wm, b, j) for b in wm.free.tolist() if p.risk_units[b])
        per_wave.append(int(base_load[j - 1]) + expr)
    total = int(p.risk_units.sum())
    spread = m.new_int_var(0, max(total, 1), "max_wave_risk")
    for term in per_wave:
        m.add(spread >= term)
    wm.hint(spread, int(np.rint(wave_sums(p.risk_units, wm.base, p.K)).max()))
    return per_wave[0] + spread


# ---------------------------------------------------------------------------------------------
# Solving


@dataclass(frozen=True)
class SolveOutcome:
    status: str  # "optimal" | "feasible" | "infeasible" | "unknown"
    waves: IntArray | None
    objective: float | None
    bound: float | None
    deterministic_time: float
    wall_time: float


def solve(
    wm: WaveModel,
    *,
    deterministic_time: float,
    wall_time: float,
    workers: int = 1,
    seed: int = 0,
    stop: threading.Event | None = None,
    assumptions: Sequence[cp_model.IntVar] = (),
    full_lp: bool = False,
    lb_tree: bool = False,
) -> tuple[SolveOutcome, cp_model.CpSolver]:
    """One bounded CP-SAT run: deterministic budget first, wall clock as a cap, stop event honoured.

    With one worker and a deterministic budget the run repeats exactly; more workers
    use ``interleave_search``, which also repeats under a deterministic budget.
    ``full_lp`` puts every split's XOR in the LP from the start (linearization level 2,
    not lazily): the bound then rises under branching, which is what proves small full
    models (pipeline; lazily added rows took 1-2x as long on 60-100 apps, 8 waves).
    """
    solver = cp_model.CpSolver()
    if stop is not None and stop.is_set():
        return SolveOutcome("unknown", None, None, None, 0.0, 0.0), solver
    # CP-SAT 9.15 aborts the whole process ("Check failed: heuristics.fixed_search !=
    # nullptr") when an interleaved search is hinted with a plan that breaks a model which
    # has no plan at all: 272 blocks at 4 waves, hinted with a repaired plan one capacity
    # violation short.  A hard model gets no hint from a plan that breaks it.  A kick's
    # model keeps its hint (the plan it should stay near) and is solved by one worker,
    # which reports the same model infeasible: a kick on a generated 1,800-app estate
    # (seed 120, 16 waves) aborted with two
    if workers > 1 and wm.clear_row is not None:
        workers = 1
    configure(solver, deterministic_time, wall_time, workers, seed, full_lp, lb_tree)
    if workers > 1 and not wm.penalties and violations(wm.problem, wm.base).count > 0:
        wm.model.clear_hints()
    if assumptions:
        wm.model.clear_assumptions()
        wm.model.add_assumptions(list(assumptions))
    watcher = _StopWatcher(solver, stop) if stop is not None else None
    try:
        status = solver.solve(wm.model)
    finally:
        if watcher is not None:
            watcher.close()
    name = {
        cp_model.OPTIMAL: "optimal",
        cp_model.FEASIBLE: "feasible",
        cp_model.INFEASIBLE: "infeasible",
    }.get(status, "unknown")
    has = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    return (
        SolveOutcome(
            name,
            wm.waves(solver) if has else None,
            solver.objective_value if has else None,
            solver.best_objective_bound if has else None,
            solver.deterministic_time,
            solver.wall_time,
        ),
        solver,
    )


def configure(
    solver: cp_model.CpSolver,
    deterministic_time: float,
    wall_time: float,
    workers: int,
    seed: int,
    full_lp: bool = False,
    lb_tree: bool = False,
) -> None:
    """The parameters of every CP-SAT run (``solve``); ``lb_tree``: bound-first search (the
    pipeline's run beside its proof phase)."""
    prm = solver.parameters
    prm.max_deterministic_time = max(deterministic_time, 0.001)
    prm.max_time_in_seconds = max(wall_time, 0.01)
    prm.num_workers = max(workers, 1)
    prm.random_seed = seed
    prm.catch_sigint_signal = False  # Ctrl-C belongs to the command line (it sets ``stop``)
    # CP-SAT 9.15's presolve of "at most one + linear" (google/or-tools#5293, open) made a
    # repair sub-model whose hint met every constraint "infeasible" (with two workers and the
    # hint: a process abort); at 0 that rule does not run
    prm.presolve_inclusion_work_limit = 0
    prm.interleave_search = workers > 1
    if full_lp:
        prm.linearization_level = 2
        prm.add_lp_constraints_lazily = False
    prm.optimize_with_lb_tree_search = lb_tree


class _StopWatcher:
    """Calls StopSearch on a running solver once the stop event is set.

    CP-SAT aborts (std::bad_function_call) when StopSearch arrives after the solver
    object is set up but before its search has started, so the watcher waits for the
    first log line, which the search itself emits, before it may stop it.
    """

    def __init__(self, solver: cp_model.CpSolver, stop: threading.Event) -> None:
        self._done = threading.Event()
        self._started = threading.Event()
        self._solver = solver
        self._stop = stop
        solver.parameters.log_search_progress = True
        solver.parameters.log_to_stdout = False
        solver.log_callback = self._on_log
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _on_log(self, line: str) -> None:
        self._started.set()

    def _watch(self) -> None:
        # waits on ``_done`` so that close() returns at once when the solve ends
        while not self._done.wait(0.05):
            if self._stop.is_set() and self._started.is_set():
                self._solver.stop_search()
                self._done.wait(0.5)

    def close(self) -> None:
        self._done.set()
        self._thread.join()
