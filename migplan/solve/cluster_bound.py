"""A lower bound from call clusters that no single wave can hold.

Why: where waves are tight (apps, data or risk per wave), most of the chatty cost comes
from clusters of heavy calls that must spread over several waves whatever else the plan
does.  The spectral bound sees little of it, and CP-SAT's bound on the full model stays
near its LP relaxation, 0: on generated 60-app estates at 12 waves the planner reported
"gap unknown" or a gap of 88 %, where these clusters alone prove 60-70 % of the objective
(``bench.small_proofs``, ``bench/results/2026-12-06-small-proofs.md``).

Derivation.  The blocks are grouped into disjoint clusters, heaviest calls first, each of
at most CLUSTER_BLOCKS blocks (fewer past CLUSTER_LITERALS wave literals).  Take any plan of the model.
Its chatty cost is at least that of the calls inside the clusters, and restricted to one
cluster the plan is a plan of the cluster's own model (``restrict``): the same wave
ranges, per-wave capacities, max_risk and per-period link limit with only the cluster's
loads, the latency rows with only its calls' terms (coefficients are >= 0, so each row is
looser), and the rules among its blocks.  So the cluster's calls cost at least that
model's optimum, and at least CP-SAT's bound on it when the solve stops early.  A cluster
that fits one wave whole costs 0 there and is skipped.  The risk term (wave 1's share plus
the largest wave's) has a floor of its own (``risk_floor``).  Like
CP-SAT's bound on the full model, this bounds every plan of the model (whose latency rows
are the conservative ones of ``cpsat``).

Each cluster's bound is also a cut: a row of the full model saying its calls cost at least
that much (``add_cuts``), which the small estates' bound-first run holds (``pipeline``).
Several clusterings (``sizes``) give more cuts, and the best of their sums is the bound.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.cluster.hierarchy import DisjointSet

from migplan.model import IntArray
from migplan.solve.blocks import Blocks
from migplan.solve.cpsat import LatencyRows, ModelOptions, Problem, WaveModel
from migplan.solve.search import Budget, charged_solve

# cluster models of 16 blocks at 8 and 12 waves were solved to optimality in 0.1-0.9 work
# units on generated 60-100-app estates; at 25 blocks and 8 waves one was not in 1 unit
CLUSTER_BLOCKS = 16
CLUSTER_LITERALS = 176  # fewer blocks from 13 waves on
CLUSTER_WORK = 1.0  # at most this much work per cluster model
MIN_SPLIT = 3  # an unsolved cluster is split again while its halves have more blocks than this


@dataclass(frozen=True)
class Cut:
    """Blocks whose calls among themselves cost at least ``units`` in every plan of the model.

    Their cluster model's optimum (or bound): as a row of the full model (``add_cuts``) it
    lifts the LP's bound, which the XOR splits alone keep near 0.
    """

    members: IntArray
    units: int


@dataclass(frozen=True)
class ClusterBound:
    """A lower bound on the model's objective, in its units, and what it took."""

    units: int
    clusters: int  # clusters too large for one wave, whose models were solved
    proven: int  # of those, solved to optimality (the others count with CP-SAT's bound)
    work: float
    cuts: tuple[Cut, ...] = ()  # every cluster's own bound, from every clustering


def cluster_bound(
    problem: Problem, waves: IntArray, budget: Budget, seed: int, sizes: tuple[float, ...] = (1.0,)
) -> ClusterBound:
    """The best clustering's sum of cluster optima (or bounds), plus the risk term's floor.

    ``waves`` (a plan of ``problem``) hints each cluster model; the bound does not depend
    on it, only how fast it is found.  ``sizes``: one clustering per factor of the cluster
    size limit, while the budget lasts; each gives a bound of its own, and all their
    clusters are cuts.
    """
    start = budget.used
    limit = max(min(CLUSTER_BLOCKS, CLUSTER_LITERALS // max(problem.K - 1, 1)), 2)
    best = solved = proven = 0
    cuts: list[Cut] = []
    for factor in sizes:
        if budget.exhausted():
            break
        found = _clusters_bound(problem, waves, budget, seed, max(int(limit * factor), 2))
        best, solved, proven = max(best, found[0]), solved + found[1], proven + found[2]
        cuts += found[3]
    return ClusterBound(best + risk_floor(problem), solved, proven, budget.used - start, tuple(cuts))


def _clusters_bound(
    problem: Problem, waves: IntArray, budget: Budget, seed: int, limit: int
) -> tuple[int, int, int, list[Cut]]:
    """(bound units, models solved, models proven, cuts) over the clusters of at most ``limit`` blocks.

    A cluster whose model is not solved to optimality in CLUSTER_WORK is clustered again at
    half the size inside its own model, and counts with the better of the two bounds: on
    60 apps at 8 waves (seed 6) one of two clusters stopped near 0, and the whole bound rose
    from 22,849 to 155,240 units so.
    """
    spread = [c for c in heavy_clusters(problem, limit) if not fits_one_wave(problem, c)]
    spread.sort(key=lambda c: -_inside_weight(problem, c))
    total = solved = proven = 0
    cuts: list[Cut] = []
    exact = ModelOptions(exact_splits=True)
    for members in spread:
        if budget.exhausted():
            break
        sub = restrict(problem, members)
        every = range(len(members))
        outcome = charged_solve(sub, waves[members], every, exact, budget, CLUSTER_WORK, seed)
        solved += 1
        units = max(int(np.floor(outcome.bound + 1e-6)), 0) if outcome.bound is not None else 0
        if outcome.status == "optimal":
            proven += 1
        elif limit > 2 * MIN_SPLIT:
            inner = _clusters_bound(sub, waves[members], budget, seed, limit // 2)
            units, solved, proven = max(units, inner[0]), solved + inner[1], proven + inner[2]
            cuts += [Cut(members[c.members], c.units) for c in inner[3]]
        if units > 0:
            cuts.append(Cut(members, units))
        total += units
    return total, solved, proven, cuts


def add_cuts(wm: WaveModel, cuts: Iterable[Cut]) -> None:
    """One row per cut: the chatty cost of the calls among its blocks is at least its units.

    Valid for every plan of the model the cuts came from (and of any model whose plans are
    among its plans).  Calls no free block touches count with their cost in ``wm.base``.
    """
    p, split = wm.problem, wm.split
    if split is None:
        return
    fixed_cost = p.weight * np.abs(wm.base[p.eu] - wm.base[p.ev])
    touched = np.zeros(p.E, dtype=bool)
    touched[split.edges] = True
    for cut in cuts:
        inside = np.zeros(p.count, dtype=bool)
        inside[cut.members] = True
        among = inside[p.eu] & inside[p.ev]
        coefs = np.where(among[split.edges], p.weight[split.edges], 0)
        constant = int(fixed_cost[among & ~touched].sum())
        wm.model.add(split.total(coefs) + constant >= cut.units)


def risk_floor(problem: Problem) -> int:
    """The risk term's least value, in objective units: pilot + largest wave >= largest wave.

    With r in wave 1 and T in all, the largest wave holds at least r and at least
    (T - r) / (K - 1), so the term is >= r + (T - r) / (K - 1) >= T / (K - 1).  Blocks do
    not split, so the largest wave also holds at least the largest block, and, of the K + 1
    largest blocks, two share a wave (the makespan bounds of scheduling).
    """
    if problem.risk_weight_units == 0:
        return 0
    risk = np.sort(problem.risk_units)[::-1]
    total = int(risk.sum())
    if problem.K == 1:
        return 2 * total
    pair = int(risk[problem.K - 1] + risk[problem.K]) if len(risk) > problem.K else 0
    return max(-(-total // (problem.K - 1)), int(risk[0]), pair)


def heavy_clusters(problem: Problem, limit: int) -> list[IntArray]:
    """Disjoint clusters of 2 to ``limit`` blocks, merged along the heaviest calls first,
    ordered by their first block."""
    sets = DisjointSet(range(problem.count))
    for e in np.argsort(-problem.weight, kind="stable").tolist():
        a, b = int(problem.eu[e]), int(problem.ev[e])
        if not sets.connected(a, b) and sets.subset_size(a) + sets.subset_size(b) <= limit:
            sets.merge(a, b)
    groups = [np.array(sorted(s), dtype=np.int64) for s in sets.subsets() if len(s) > 1]
    return sorted(groups, key=lambda g: int(g[0]))


def fits_one_wave(problem: Problem, members: IntArray) -> bool:
    """Whether one wave can hold every block of ``members`` under the per-wave rules (cost 0)."""
    lo, hi = int(problem.blocks.lo[members].max()), int(problem.blocks.hi[members].min())
    inside = set(members.tolist())
    if any(a in inside and b in inside for a, b, _ in problem.before):
        return False
    if any(len(inside.intersection(bs)) > 1 for bs, _ in problem.apart):
        return False
    risk_ok = problem.risk_cap is None or int(problem.risk_load[members].sum()) <= problem.risk_cap
    return risk_ok and any(
        all(int(load[members].sum()) <= int(problem.caps[res][j - 1]) for res, load in problem.loads.items())
        for j in range(lo, hi + 1)
    )


def restrict(problem: Problem, members: IntArray) -> Problem:
    """The model of ``members`` alone: their calls, loads, rules and latency terms; no risk term.

    Apps outside ``members`` map to block -1; dependency-level fields are left empty
    (the cluster model is solved, never evaluated against the inventory).
    """
    p = problem
    index = np.full(p.count, -1, dtype=np.int64)
    index[members] = np.arange(len(members))
    edges = np.flatnonzero((index[p.eu] >= 0) & (index[p.ev] >= 0))
    lat = p.latency
    coef = sp.csr_matrix(lat.coef[:, edges])
    rows = np.flatnonzero(np.asarray(coef.sum(axis=1)).ravel() > lat.budget)  # rows it could break
    coef = sp.csr_matrix(coef[rows])
    kept = index >= 0
    return Problem(
        inv=p.inv,
        blocks=Blocks(
            of=np.where(kept[p.blocks.of], index[p.blocks.of], -1),
            members=tuple(p.blocks.members[b] for b in members.tolist()),
            lo=p.blocks.lo[members],
            hi=p.blocks.hi[members],
            conflicts=(),
        ),
        K=p.K,
        eu=index[p.eu[edges]],
        ev=index[p.ev[edges]],
        edge_of=np.full(p.inv.m, -1, dtype=np.int64),
        weight=p.weight[edges],
        qps_scale=p.qps_scale,
        gbps=p.gbps[edges],
        link=p.link,
        link_scale=p.link_scale,
        loads={res: load[members] for res, load in p.loads.items()},
        caps=p.caps,
        load_scale=p.load_scale,
        risk=p.risk[members],
        risk_load=p.risk_load[members],
        risk_cap=p.risk_cap,
        risk_scale=p.risk_scale,
        risk_units=p.risk_units[members],
        risk_weight_units=0,
        before=tuple((int(index[a]), int(index[b]), r) for a, b, r in p.before if kept[a] and kept[b]),
        apart=tuple(
            (kept_bs, r)
            for bs, r in p.apart
            if len(kept_bs := tuple(int(index[b]) for b in bs if kept[b])) > 1
        ),
        callees_first=tuple(
            (int(index[a]), int(index[b])) for a, b in p.callees_first if kept[a] and kept[b]
        ),
        latency=LatencyRows(coef, lat.budget[rows], lat.app[rows], coef.tocsc(), lat.factor[rows]),
        adjacency=sp.csr_matrix(p.adjacency[members][:, members]),
        incidence=sp.csr_matrix(p.incidence[members][:, edges]),
        dropped_ms=p.dropped_ms,
        latency_source=p.latency_source,
        unbounded_edges=np.zeros(0, dtype=np.int64),
    )


def _inside_weight(problem: Problem, members: IntArray) -> int:
    """Objective units per period of the calls inside ``members``."""
    inside = np.zeros(problem.count, dtype=bool)
    inside[members] = True
    return int(problem.weight[inside[problem.eu] & inside[problem.ev]].sum())
