"""Narrower wave ranges that lose no plan worth having.

``compact_ranges``: with more waves than blocks, every block may stay in the first
(blocks + 1) waves; see its docstring.

``narrow_ranges``: the ranges the latency budgets imply: a block's first or last allowed
wave is dropped when placing it there breaks some budget in every plan.

Why: the construction is latency-blind, so a block whose calls to blocks pinned later
already exceed a budget when it sits early is started there anyway, and the repair then
has to move it and everything around it.  On a 10,000-app estate the last broken budget
of a run was of that kind: a 341-app block in wave 10 calls two blocks pinned to 11 and
11-12, whose two calls alone add 40.03 ms to an app with 40 ms; no neighbourhood moved
the block (and its callees) a wave later.  The planner narrows the ranges of
estates searched on clusters (1,000+ blocks, ``pipeline``) only: on NetEase (622 blocks)
narrowed ranges did worse (9-12 violations left on seeds 0-2, against plans on 0-3).

Soundness.  With every block inside its range, block edge e = (u, v) is split in period k
in every plan when hi_u <= k < lo_v (or the other way round).  The sum of a row's
coefficients over the edges split in every plan is a lower bound on its latency in
period k.  Testing block b at wave w replaces, for b's own edges, "split in every plan"
by "split with b at w": if that lower bound exceeds the row's budget in some period, no
plan of the model puts b at w.  Only the ends of a range are tested, so ranges stay
intervals; rounds repeat until nothing changes.  The model's rows (budgets net of the
dropped coefficients) are used, so the narrowed model accepts exactly the plans the
model accepted.  An emptied range proves the model infeasible: the narrowing then stops
and leaves the ranges as they were, so the precheck and the explanation say why in the
user's terms.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from migplan.model import BoolArray, IntArray
from migplan.solve.cpsat import Problem

MAX_ROUNDS_PER_WAVE = 4  # rounds stop after 4 K (each round moves every narrowed end by one)


def compact_ranges(problem: Problem) -> tuple[Problem, int]:
    """(``problem`` with every range cut to waves 1..B + 1, B + 1) when K > B + 1 (B blocks)
    and the cut is sound; else (``problem``, 0).

    Why: 40 apps (23 blocks) at 250 or 1,000 waves got no plan in 10 s: every model held
    B x (K - 1) wave literals, and the repair could not even clear one ``before`` rule.

    Sound when no block has a pin or window (but wave 1) and waves 2..K have the same
    capacities.  Take any plan; keep wave 1 as it is and renumber the occupied waves after it 2, 3, ... in
    order: at most B + 1 waves.  The map keeps the order of waves (strictly), so every
    ``before``, ``apart`` and callees-first rule still holds, and |w(u) - w(v)| only shrinks.
    Each new period moves the same apps as some old period, so its split calls, link load
    and added latency are those of that period.  Every wave keeps its apps (capacities are
    the same from wave 2 on; max_risk and the risk term's shares are unchanged, wave 1's
    included).  So the compacted plan is feasible and costs no more: the optimum, and any
    proof of infeasibility, are the same in the cut ranges.
    """
    B, K = problem.count, problem.K
    lo, hi = problem.blocks.lo, problem.blocks.hi
    if K <= B + 1:
        return problem, 0
    free = bool(np.all(lo == 1) and np.all((hi == K) | (hi == 1)))  # wave 1 stays as it is
    uniform = all(bool(np.all(cap[1:] == cap[1])) for cap in problem.caps.values())
    if not free or not uniform:
        return problem, 0
    cut = np.minimum(hi, B + 1).astype(np.int64)
    return replace(problem, blocks=replace(problem.blocks, hi=cut)), B + 1


def narrow_ranges(problem: Problem) -> tuple[Problem, int]:
    """``problem`` with the blocks' ranges narrowed, and how many blocks were narrowed."""
    lo = problem.blocks.lo.astype(np.int64).copy()
    hi = problem.blocks.hi.astype(np.int64).copy()
    if problem.K < 2 or problem.latency.coef.nnz == 0 or np.any(lo > hi):
        return problem, 0
    coo = problem.latency.coef.tocoo()
    row, edge, coef = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(np.int64)
    for _ in range(MAX_ROUNDS_PER_WAVE * problem.K):
        step = _one_round(problem, row, edge, coef, lo, hi)
        if step is None or np.any(step[0] > step[1]):
            return problem, 0  # no plan: the precheck and the explanation say why
        if np.array_equal(step[0], lo) and np.array_equal(step[1], hi):
            break
        lo, hi = step
    narrowed = int(np.count_nonzero((lo != problem.blocks.lo) | (hi != problem.blocks.hi)))
    if narrowed == 0:
        return problem, 0
    return replace(problem, blocks=replace(problem.blocks, lo=lo, hi=hi)), narrowed


def _one_round(
    problem: Problem, row: IntArray, edge: IntArray, coef: IntArray, lo: IntArray, hi: IntArray
) -> tuple[IntArray, IntArray] | None:
    """Ranges after testing every block's two ends once; None when some row breaks in every plan."""
    K = problem.K
    restricted = (lo > 1) | (hi < K)
    touches = restricted[problem.eu] | restricted[problem.ev]
    keep = touches[edge]  # a call between two unrestricted blocks is never split in every plan
    if not keep.any():
        return lo, hi
    r, e, c = row[keep], edge[keep], coef[keep]
    u, v = problem.eu[e], problem.ev[e]
    base = _sums(r, c[:, None] * _always_split(lo[u], hi[u], lo[v], hi[v], K), len(problem.latency.budget))
    if np.any(base > problem.latency.budget[:, None]):
        return None
    # each entry from both ends: block b (tested), the other end o
    b, o = np.concatenate([u, v]), np.concatenate([v, u])
    rr, cc = np.concatenate([r, r]), np.concatenate([c, c])
    new_lo, new_hi = lo.copy(), hi.copy()
    for end, out, step in ((lo, new_lo, 1), (hi, new_hi, -1)):
        w = end[b]
        old = _always_split(lo[b], hi[b], lo[o], hi[o], K)
        new = _always_split(w, w, lo[o], hi[o], K)
        moved = np.any(old != new, axis=1)
        if not moved.any():
            continue
        delta = cc[moved, None] * (new[moved].astype(np.int64) - old[moved])
        bad = _breaks(problem, rr[moved], b[moved], delta, base)
        out[bad] += step
    return new_lo, new_hi


def _always_split(a_lo: IntArray, a_hi: IntArray, b_lo: IntArray, b_hi: IntArray, K: int) -> BoolArray:
    """(N, K-1): periods in which every placement within the ranges splits the pair."""
    k = np.arange(1, K)[None, :]
    first = (a_hi[:, None] <= k) & (k < b_lo[:, None])
    second = (b_hi[:, None] <= k) & (k < a_lo[:, None])
    return first | second


def _sums(rows: IntArray, values: np.ndarray, count: int) -> np.ndarray:
    """(count, K-1): per-row column sums of ``values``."""
    columns = [np.bincount(rows, weights=values[:, k], minlength=count) for k in range(values.shape[1])]
    return np.rint(np.stack(columns, axis=1)).astype(np.int64)  # float sums of integers, exact below 2^53


def _breaks(
    problem: Problem, rows: IntArray, blocks: IntArray, delta: np.ndarray, base: np.ndarray
) -> IntArray:
    """Blocks whose tested wave breaks some row: base plus the row's change from that block."""
    key = rows * problem.count + blocks
    groups, inverse = np.unique(key, return_inverse=True)
    change = _sums(inverse, delta, len(groups))
    g_row = groups // problem.count
    over = np.any(base[g_row] + change > problem.latency.budget[g_row, None], axis=1)
    return np.unique(groups[over] % problem.count)
