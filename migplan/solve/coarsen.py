"""Coarse levels: clusters of blocks that move as one, so a repair can move whole call clusters.

Why: on large estates the block-level repair stalls in a deep local optimum.  At 10,000
generated apps it left 24 violations after 300 s; a stuck row's fix moved an 11-app
block to the wave its team had in the planted plan and broke 14 budgets there, because
the rest of the team sat elsewhere.  Local sub-models cannot move the team.

A cluster is a set of blocks: a Louvain community (networkx, seeded) of the block graph
weighted by qps plus budget shares (``start.share_matrix``), split again until it holds
at most ``max_share`` of a median wave's apps capacity, and cut so that no cluster joins
blocks whose wave ranges do not meet, the two sides of a ``before`` or ``apart`` rule, or,
given a plan, blocks in different waves.  The clusters are ordinary ``Blocks`` of the
inventory, so ``build_problem`` gives a coarse ``Problem`` on which every stage runs
unchanged, and a coarse plan is a plan of the fine blocks (``refine``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import networkx as nx
import numpy as np
import scipy.sparse as sp

from migplan.model import IntArray
from migplan.solve.blocks import build_blocks
from migplan.solve.cpsat import Problem, build_problem
from migplan.solve.start import budget_shares, share_matrix

BUDGET_WEIGHT = 1.0  # budget shares weigh this times the total qps (as in the latency-aware start)


@dataclass(frozen=True)
class Level:
    """A coarse problem and the map from the fine blocks to its clusters."""

    problem: Problem
    cluster_of: IntArray  # (fine blocks,) cluster of each fine block

    def refine(self, coarse_waves: IntArray) -> IntArray:
        """The fine blocks' waves of a coarse plan."""
        return np.asarray(coarse_waves, dtype=np.int64)[self.cluster_of]

    def restrict(self, fine_waves: IntArray) -> IntArray:
        """The coarse plan of a fine plan whose clusters each sit in one wave."""
        waves = np.zeros(self.problem.count, dtype=np.int64)
        waves[self.cluster_of] = fine_waves
        return waves


def coarsen(
    problem: Problem, risk_weight: float, max_share: float, seed: int, plan: IntArray | None = None
) -> Level:
    """Cluster the blocks of ``problem`` (within the waves of ``plan`` if given) into a coarse level."""
    blocks = problem.blocks
    clusters = _communities(problem, max_share, seed, plan)
    separated = _separated(problem)
    groups = [g for c in clusters for g in _compatible(problem, c, plan, separated)]
    first = np.asarray([m[0] for m in blocks.members], dtype=np.int64)
    src = [m[0] for m in blocks.members for _ in m[1:]] + [int(first[g[0]]) for g in groups for _ in g[1:]]
    dst = [x for m in blocks.members for x in m[1:]] + [int(first[b]) for g in groups for b in g[1:]]
    coarse = build_blocks(problem.inv, (np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)))
    cluster_of = coarse.of[first]
    # a cluster's range is its blocks' common range: the blocks' may be narrower than the
    # pins and windows build_blocks reads (``narrow``), and a coarse plan must keep them
    lo, hi = coarse.lo.copy(), coarse.hi.copy()
    np.maximum.at(lo, cluster_of, blocks.lo)
    np.minimum.at(hi, cluster_of, blocks.hi)
    coarse = replace(coarse, lo=lo, hi=hi)
    latency = (problem.latency_source, problem.dropped_ms, problem.unbounded_edges)
    return Level(build_problem(problem.inv, coarse, risk_weight, latency), cluster_of)


def _communities(problem: Problem, max_share: float, seed: int, plan: IntArray | None) -> list[list[int]]:
    """Louvain communities of the block graph, split until each fits ``max_share`` of a wave."""
    scale = max(float(problem.adjacency.sum()), 1e-12)
    weights = sp.csr_matrix(problem.adjacency, dtype=np.float64) / scale
    shares = budget_shares(problem)
    if shares.any():
        weights = weights + share_matrix(problem, shares, BUDGET_WEIGHT) / scale
    weights = sp.coo_matrix(weights)
    if plan is not None:  # only calls inside a wave may join blocks
        keep = plan[weights.row] == plan[weights.col]
        inside = (weights.data[keep], (weights.row[keep], weights.col[keep]))
        weights = sp.coo_matrix(inside, shape=weights.shape)
    graph = nx.from_scipy_sparse_array(sp.csr_matrix(weights))
    load = problem.blocks.load(problem.inv, "apps")
    cap = problem.inv.scenario.capacity("apps")
    limit = max_share * (float(np.median(cap)) if cap is not None else problem.inv.n / problem.K)
    out: list[list[int]] = []
    pending = [(sorted(c), 1.0) for c in nx.community.louvain_communities(graph, seed=seed)]
    while pending:
        members, resolution = pending.pop()
        if load[members].sum() <= limit or len(members) == 1:
            out.append(members)
            continue
        sub = graph.subgraph(members)
        parts = nx.community.louvain_communities(sub, resolution=2 * resolution, seed=seed)
        if len(parts) == 1:  # no community structure left: halve in block order
            half = len(members) // 2
            parts = [members[:half], members[half:]]
        pending.extend((sorted(p), 2 * resolution) for p in parts)
    return sorted(out)


def _separated(problem: Problem) -> dict[int, set[int]]:
    """Per block, the blocks a ``before`` or ``apart`` rule keeps out of its wave."""
    out: dict[int, set[int]] = {}
    pairs = [(a, b) for a, b, _ in problem.before]
    pairs += [(a, b) for bs, _ in problem.apart for a in bs for b in bs if a != b]
    for a, b in pairs:
        out.setdefault(a, set()).add(b)
        out.setdefault(b, set()).add(a)
    return out


def _compatible(
    problem: Problem, members: list[int], plan: IntArray | None, separated: dict[int, set[int]]
) -> list[list[int]]:
    """Split a community into groups that can share a wave: ranges meet, no rule between them.

    Greedy, narrowest ranges first, so pinned blocks anchor the groups.
    """
    blocks = problem.blocks
    groups: list[tuple[list[int], list[int]]] = []  # ([lo, hi], members)
    for b in sorted(members, key=lambda x: (int(blocks.hi[x] - blocks.lo[x]), x)):
        lo_b, hi_b = int(blocks.lo[b]), int(blocks.hi[b])
        excluded = separated.get(b, set())
        for bounds, group in groups:
            lo, hi = max(bounds[0], lo_b), min(bounds[1], hi_b)
            same_wave = plan is None or plan[b] == plan[group[0]]
            if lo <= hi and same_wave and not excluded.intersection(group):
                bounds[0], bounds[1] = lo, hi
                group.append(b)
                break
        else:
            groups.append(([lo_b, hi_b], [b]))
    return [sorted(group) for _, group in groups]
