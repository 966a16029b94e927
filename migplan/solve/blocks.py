"""Blocks: apps that every feasible plan puts in one wave, contracted to one unit.

A block is a connected set under "must share a wave": a move-together ``group``,
a ``together`` rule, and (unless ``split_cycles``) a circular dependency.  Every
stage of the planner works on blocks, so these rules hold by construction and
the search space shrinks.  Pins and windows of the members are intersected
into one allowed wave range per block; an empty range is a conflict reported
as a finding (the plan is then infeasible whatever the solver does).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from migplan.model import Finding, FloatArray, IntArray, Inventory, Resource
from migplan.text import listing


@dataclass(frozen=True)
class Blocks:
    """The contraction of an inventory; block ids are 0..count-1, ordered by first member."""

    of: IntArray  # (n,) block of each app
    members: tuple[tuple[int, ...], ...]  # apps of each block, ascending
    lo: IntArray  # (count,) earliest allowed wave, 1..K
    hi: IntArray  # (count,) latest allowed wave, 1..K (lo > hi: conflict)
    conflicts: tuple[Finding, ...]

    @property
    def count(self) -> int:
        return len(self.members)

    def expand(self, block_waves: IntArray) -> IntArray:
        """Per-app waves from per-block waves."""
        return np.asarray(block_waves, dtype=np.int64)[self.of]

    def load(self, inv: Inventory, resource: Resource) -> FloatArray:
        """Per-block sum of a capacity resource."""
        return np.bincount(self.of, weights=inv.load(resource), minlength=self.count).astype(np.float64)

    def weights(self, values: FloatArray) -> FloatArray:
        """Per-block sum of any per-app quantity (risk, qps, ...)."""
        return np.bincount(self.of, weights=values, minlength=self.count).astype(np.float64)


def same_wave_pairs(inv: Inventory) -> tuple[IntArray, IntArray]:
    """App pairs (i, j) that must share a wave: groups, together rules, cycles."""
    src: list[int] = []
    dst: list[int] = []
    first_of_group: dict[str, int] = {}
    for i, app in enumerate(inv.apps):
        if app.group:
            j = first_of_group.setdefault(app.group, i)
            if j != i:
                src.append(j)
                dst.append(i)
    for rule in inv.scenario.rules:
        if rule.kind == "together":
            ids = [inv.index[a] for a in rule.apps]
            src.extend(ids[:1] * (len(ids) - 1))
            dst.extend(ids[1:])
    s = np.asarray(src, dtype=np.int64)
    d = np.asarray(dst, dtype=np.int64)
    if not inv.scenario.split_cycles and inv.m:
        calls = sp.csr_matrix((np.ones(inv.m), (inv.caller, inv.callee)), shape=(inv.n, inv.n))
        _, scc = connected_components(calls, directed=True, connection="strong")
        # within a strongly connected component every edge joins two members
        inside = scc[inv.caller] == scc[inv.callee]
        s = np.concatenate([s, inv.caller[inside]])
        d = np.concatenate([d, inv.callee[inside]])
    return s, d


def build_blocks(inv: Inventory, extra_pairs: tuple[IntArray, IntArray] | None = None) -> Blocks:
    """Contract every must-share-a-wave relation and intersect the members' wave ranges.

    ``extra_pairs`` adds app pairs the caller has proven must share a wave
    (e.g. a call whose split alone would break a latency budget).
    """
    n, K = inv.n, inv.K
    s, d = same_wave_pairs(inv)
    if extra_pairs is not None:
        s = np.concatenate([s, np.asarray(extra_pairs[0], dtype=np.int64)])
        d = np.concatenate([d, np.asarray(extra_pairs[1], dtype=np.int64)])
    graph = sp.csr_matrix((np.ones(len(s)), (s, d)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    # renumber blocks by first member so block ids are stable and readable
    _, first = np.unique(label, return_index=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    of = rank[label].astype(np.int64)
    count = len(order)
    members = [[] for _ in range(count)]  # type: list[list[int]]
    for i, b in enumerate(of.tolist()):
        members[b].append(i)

    app_lo = np.ones(n, dtype=np.int64)
    app_hi = np.full(n, K, dtype=np.int64)
    for i, app in enumerate(inv.apps):
        if app.earliest_wave is not None:
            app_lo[i] = max(app_lo[i], app.earliest_wave)
        if app.latest_wave is not None:
            app_hi[i] = min(app_hi[i], app.latest_wave)
        if app.pinned_wave is not None:
            app_lo[i] = max(app_lo[i], app.pinned_wave)
            app_hi[i] = min(app_hi[i], app.pinned_wave)
    lo = np.full(count, 1, dtype=np.int64)
    hi = np.full(count, K, dtype=np.int64)
    np.maximum.at(lo, of, app_lo)
    np.minimum.at(hi, of, app_hi)

    latency_merged = (
        set() if extra_pairs is None else set(of[np.asarray(extra_pairs[0], dtype=np.int64)].tolist())
    )
    conflicts = tuple(
        _conflict(inv, tuple(members[b]), int(lo[b]), int(hi[b]), b in latency_merged)
        for b in np.flatnonzero(lo > hi)
    )
    return Blocks(of, tuple(tuple(m) for m in members), lo, hi, conflicts)


def _why_together(inv: Inventory, members: tuple[int, ...], latency_merged: bool) -> str:
    """The user-facing reasons a set of apps must share a wave."""
    ids = {inv.apps[i].app_id for i in members}
    groups = {g for i in members if (g := inv.apps[i].group)}
    reasons = [f"group {g!r}" for g in sorted(groups)]
    if any(r.kind == "together" and ids & set(r.apps) for r in inv.scenario.rules):
        reasons.append("a together rule")
    if latency_merged:
        reasons.append("calls whose split alone would break a latency budget")
    inside = np.isin(inv.caller, members) & np.isin(inv.callee, members)
    if not inv.scenario.split_cycles and inside.any():
        reasons.append("a circular dependency")
    return ", ".join(reasons) or "a move-together rule"


def _conflict(inv: Inventory, members: tuple[int, ...], lo: int, hi: int, latency_merged: bool) -> Finding:
    """Name the apps whose pins and windows leave a must-move-together set no wave."""
    constrained = [
        inv.apps[i]
        for i in members
        if inv.apps[i].pinned_wave is not None
        or inv.apps[i].earliest_wave is not None
        or inv.apps[i].latest_wave is not None
    ]
    parts = []
    for app in constrained[:8]:
        if app.pinned_wave is not None:
            parts.append(f"{app.app_id} pinned to wave {app.pinned_wave}")
        else:
            lo_a = app.earliest_wave or 1
            hi_a = app.latest_wave or inv.K
            parts.append(f"{app.app_id} allowed waves {lo_a}..{hi_a}")
    ids = tuple(inv.apps[i].app_id for i in members)
    shown = listing(ids, 8)
    why = "; ".join(parts) if len(members) > 1 else parts[0] if parts else ""
    message = (
        f"no wave fits {shown}: they must move together ({_why_together(inv, members, latency_merged)})"
        f" but {why} (earliest {lo}, latest {hi})"
        if len(members) > 1
        else f"no wave fits {shown}: {why}"
    )
    return Finding("error", "no-wave-fits", message, apps=ids)


def block_graph(inv: Inventory, blocks: Blocks) -> sp.csr_matrix:
    """Symmetric block adjacency weighted by qps (both directions summed); no self-loops.

    Chatty cost of a block plan = Σ over the upper triangle of w·|Δwave|.
    """
    bu, bv = blocks.of[inv.caller], blocks.of[inv.callee]
    keep = bu != bv
    mat = sp.coo_matrix(
        (inv.edge_qps[keep], (bu[keep], bv[keep])), shape=(blocks.count, blocks.count)
    ).tocsr()
    mat = (mat + mat.T).tocsr()
    mat.sum_duplicates()
    return mat


def block_calls(inv: Inventory, blocks: Blocks) -> tuple[IntArray, sp.csr_matrix]:
    """The pairs of blocks a dependency joins (keys lo * count + hi, ascending) and the
    (m, pairs) 0/1 matrix from dependencies to them: ``L @ matrix`` sums L per pair."""
    bu, bv = blocks.of[inv.caller], blocks.of[inv.callee]
    cross = np.flatnonzero(bu != bv)
    pair = np.minimum(bu[cross], bv[cross]) * blocks.count + np.maximum(bu[cross], bv[cross])
    keys, column = np.unique(pair, return_inverse=True)
    matrix = sp.csr_matrix((np.ones(len(cross)), (cross, column)), shape=(inv.m, len(keys)))
    return keys.astype(np.int64), matrix
