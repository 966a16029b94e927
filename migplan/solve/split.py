"""Exact and greedy sub-problems shared by the construction and the baselines.

All of them work on *blocks* (see ``blocks.py``) and on the qps-weighted block
graph ``A`` (``block_graph``), where the chatty cost of a block plan ``w`` is
Σ over the upper triangle of A·|w(u) − w(v)| = Σ over periods of the prefix cut.

- ``WaveLimits``: every per-wave limit of a scenario as one (R, K) array
  (apps, instances, data_gb and, best effort, risk), with the blocks' windows.
- ``dp_split``: split a fixed block order into K consecutive waves, exactly.
- ``part_order``: order P parts along a path, exactly (DP over subsets).
- ``repair``: move blocks until windows and capacities hold (greedy, cheapest).
- ``refine``: local search, single-block moves and two-block swaps.
- ``fiedler_order``: spectral block order, per connected component.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import eigsh

from migplan import metrics
from migplan.model import RESOURCES, BoolArray, FloatArray, IntArray, Inventory
from migplan.solve.blocks import Blocks
from migplan.solve.integers import scaled

_DENSE_EIGEN_MAX = 800  # components up to this size: dense eigh (exact, fast enough)
EXACT_ORDER_MAX_PARTS = 14  # 2^14·14 DP steps: instant; above that a greedy order
_REL_TOL = 1e-9  # capacities are floats: a load within this relative slack fits


def fits(used: FloatArray, caps: FloatArray) -> BoolArray:
    """used ≤ caps with a relative tolerance (both (R, ...) arrays; inf caps always fit)."""
    return np.asarray(used <= caps + _REL_TOL * np.maximum(1.0, np.abs(np.where(np.isinf(caps), 0, caps))))


def risk_per_app(inv: Inventory) -> FloatArray | None:
    """Per-app risk (``metrics.risk_scores``) if the scenario caps risk, else None."""
    if inv.scenario.max_risk is None:
        return None
    return np.asarray(metrics.risk_scores(inv), dtype=np.float64)


@dataclass(frozen=True)
class WaveLimits:
    """Per-wave limits as arrays: block ``b`` adds ``loads[:, b]`` to its wave, wave ``k``
    (0-based column) may hold ``caps[:, k]`` (inf = unlimited); ``allowed[b, k]`` says
    the block's pins and windows allow wave k+1."""

    names: tuple[str, ...]
    loads: FloatArray  # (R, B)
    caps: FloatArray  # (R, K)
    allowed: BoolArray  # (B, K)

    @property
    def K(self) -> int:
        return int(self.caps.shape[1])

    @property
    def count(self) -> int:
        return int(self.allowed.shape[0])

    @classmethod
    def of(cls, inv: Inventory, blocks: Blocks) -> WaveLimits:
        """Capacities of the scenario, plus max_risk as a capacity on risk when scores exist."""
        K = inv.K
        names: list[str] = []
        loads: list[FloatArray] = []
        caps: list[FloatArray] = []
        for res in RESOURCES:
            cap = inv.scenario.capacity(res)
            if cap is not None:
                names.append(res)
                loads.append(blocks.load(inv, res))
                caps.append(np.asarray(cap, dtype=np.float64))
        risk = risk_per_app(inv)
        if risk is not None and inv.scenario.max_risk is not None:
            names.append("risk")
            loads.append(blocks.weights(risk))
            caps.append(np.full(K, float(inv.scenario.max_risk) * float(risk.sum())))
        return cls.build(tuple(names), loads, caps, blocks.lo, blocks.hi, K)

    @classmethod
    def build(
        cls,
        names: tuple[str, ...],
        loads: list[FloatArray],
        caps: list[FloatArray],
        lo: IntArray,
        hi: IntArray,
        K: int,
    ) -> WaveLimits:
        """Assemble from per-resource arrays; a block whose window is empty may go anywhere
        (its conflict is reported by ``build_blocks``; here it must not block the others)."""
        B = len(lo)
        waves = np.arange(1, K + 1)
        allowed = (waves[None, :] >= np.asarray(lo)[:, None]) & (waves[None, :] <= np.asarray(hi)[:, None])
        allowed[~allowed.any(axis=1)] = True
        load_arr = np.vstack(loads) if loads else np.zeros((0, B))
        cap_arr = np.vstack(caps) if caps else np.zeros((0, K))
        return cls(names, load_arr.astype(np.float64), cap_arr.astype(np.float64), allowed)

    def used(self, waves: IntArray) -> FloatArray:
        """(R, K) load of every wave under a block plan."""
        out = np.zeros((len(self.names), self.K))
        for r in range(len(self.names)):
            out[r] = np.bincount(waves - 1, weights=self.loads[r], minlength=self.K)
        return out

    def norm(self) -> FloatArray:
        """Per-resource scale that makes excesses of different resources comparable."""
        finite = np.where(np.isfinite(self.caps), self.caps, np.nan)
        with np.errstate(all="ignore"):
            scale = np.nanmean(finite, axis=1) if finite.size else np.zeros(0)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        return np.asarray(scale, dtype=np.float64)

    def excess(self, used: FloatArray) -> FloatArray:
        """(K,) normalized overload of every wave (0 where all limits hold)."""
        over = np.where(fits(used, self.caps), 0.0, used - self.caps)
        return np.asarray((over / self.norm()[:, None]).sum(axis=0), dtype=np.float64)

    def feasible(self, waves: IntArray) -> bool:
        """Every window and capacity holds."""
        ok_window = bool(self.allowed[np.arange(self.count), waves - 1].all())
        return ok_window and bool(fits(self.used(waves), self.caps).all())


def block_cost(graph: sp.csr_matrix, waves: IntArray) -> float:
    """Σ A·|Δwave| over the upper triangle of the block graph: the search's inner objective.

    Equals ``metrics.chatty_cost`` of the expanded plan (edges inside a block never
    split); that function stays the one reported figure, this one needs no expansion.
    """
    coo = sp.triu(graph, k=1).tocoo()
    return float((coo.data * np.abs(waves[coo.row] - waves[coo.col])).sum())


def scale_to_int(load: FloatArray, capacity: FloatArray) -> tuple[IntArray, IntArray]:
    """Integer weights for the partitioner: loads rounded UP, capacities rounded DOWN.

    So an integer solution that fits is a real solution that fits.  Integral
    loads keep scale 1 (exact); otherwise the total load is scaled to 10^6.
    Infinite capacities become the total scaled load (nothing can exceed it).
    """
    load = np.asarray(load, dtype=np.float64)
    integral = bool(np.all(load == np.round(load)))
    total = float(load.sum())
    scale = 1.0 if integral or total <= 0 else 1e6 / total
    w = scaled(load, scale, "up")
    capacity = np.asarray(capacity, dtype=np.float64)
    finite = np.isfinite(capacity)
    cap = np.full(capacity.shape, int(w.sum()), dtype=np.int64)
    cap[finite] = scaled(capacity[finite], scale, "down")
    return w, np.maximum(cap, 0)


def prefix_cuts(graph: sp.csr_matrix, order: IntArray) -> FloatArray:
    """cut[p] = qps between the first p blocks of ``order`` and the rest, p = 0..B."""
    B = len(order)
    pos = np.empty(B, dtype=np.int64)
    pos[order] = np.arange(B)
    coo = sp.triu(graph, k=1).tocoo()
    a, b = pos[coo.row], pos[coo.col]
    first, last = np.minimum(a, b), np.maximum(a, b)
    # edge (first, last) is cut by prefixes of length first+1 .. last
    diff = np.zeros(B + 1)
    np.add.at(diff, first + 1, coo.data)
    np.add.at(diff, last + 1, -coo.data)
    return np.asarray(np.cumsum(diff), dtype=np.float64)


def dp_split(
    order: IntArray,
    loads: Mapping[str, FloatArray],
    capacities: Mapping[str, FloatArray | None],
    lo: IntArray,
    hi: IntArray,
    graph: sp.csr_matrix | None = None,
    K: int | None = None,
) -> IntArray:
    """Per-block waves 1..K cutting ``order`` into K consecutive (possibly empty) waves.

    Minimizes the chatty cost on ``graph`` (Σ of the K−1 prefix cuts; without a
    graph: any feasible split, earliest boundaries) under every capacity and
    window.  DP over (wave, boundary) with a sliding-window minimum: O(K·B).
    If no split honours the windows they are dropped; if no split honours the
    capacities either, capacities are scaled up until one does.  The result is
    then best effort: callers run ``repair``.
    """
    order = np.asarray(order, dtype=np.int64)
    B = len(order)
    if K is None:
        caps_known = [c for c in capacities.values() if c is not None]
        if not caps_known:
            raise ValueError("dp_split needs K when no capacity array is given")
        K = len(caps_known[0])
    cuts = prefix_cuts(graph, order) if graph is not None else np.zeros(B + 1)
    names = [r for r in capacities if capacities[r] is not None]
    prefix = [
        np.concatenate([[0.0], np.cumsum(np.asarray(loads[r], dtype=np.float64)[order])]) for r in names
    ]
    cap_list = [np.asarray(capacities[r], dtype=np.float64) for r in names]
    lo_o, hi_o = np.asarray(lo)[order], np.asarray(hi)[order]
    attempts = [(1.0, True), (1.0, False)] + [(1.1**t, False) for t in range(1, 60)] + [(np.inf, False)]
    for factor, honour_windows in attempts:
        scaled = [c * factor if np.isfinite(factor) else np.full_like(c, np.inf) for c in cap_list]
        bounds = _split_bounds(cuts, prefix, scaled, lo_o, hi_o, K, honour_windows)
        if bounds is not None:
            waves = np.empty(B, dtype=np.int64)
            for k in range(K):
                waves[order[bounds[k] : bounds[k + 1]]] = k + 1
            return waves
    raise AssertionError("unreachable: without capacities or windows every split is feasible")


def _split_bounds(
    cuts: FloatArray,
    prefix: list[FloatArray],
    caps: list[FloatArray],
    lo_o: IntArray,
    hi_o: IntArray,
    K: int,
    honour_windows: bool,
) -> list[int] | None:
    """Boundaries 0 = p_0 ≤ p_1 ≤ … ≤ p_K = B of the cheapest feasible split, or None."""
    B = len(cuts) - 1
    inf = np.inf
    f_prev = np.full(B + 1, inf)
    f_prev[0] = 0.0
    arg: list[IntArray] = []
    idx = np.arange(B + 1)
    for k in range(1, K + 1):
        # earliest start a of a wave-k segment ending at b: capacities (monotone in b)
        start = np.zeros(B + 1, dtype=np.int64)
        for pre, cap in zip(prefix, caps, strict=True):
            c = cap[k - 1]
            if np.isfinite(c):
                tol = _REL_TOL * max(1.0, abs(c))
                start = np.maximum(start, np.searchsorted(pre, pre - c - tol, side="left"))
        if honour_windows:
            bad = (lo_o > k) | (hi_o < k)
            # last bad position before b: the segment must start after it
            last_bad = np.maximum.accumulate(np.where(bad, np.arange(1, B + 1), 0))
            start = np.maximum(start, np.concatenate([[0], last_bad]))
        start = np.minimum(start, idx)
        f_cur = np.full(B + 1, inf)
        choice = np.zeros(B + 1, dtype=np.int64)
        window: deque[int] = deque()
        nxt = 0
        fp = f_prev.tolist()
        st = start.tolist()
        for b in range(B + 1):
            while nxt <= b:
                while window and fp[window[-1]] >= fp[nxt]:
                    window.pop()
                window.append(nxt)
                nxt += 1
            while window and window[0] < st[b]:
                window.popleft()
            if window and fp[window[0]] < inf:
                choice[b] = window[0]
                f_cur[b] = fp[window[0]]
        if k < K:
            f_cur = f_cur + cuts
        arg.append(choice)
        f_prev = f_cur
    if not np.isfinite(f_prev[B]):
        return None
    bounds = [B]
    for k in range(K - 1, -1, -1):
        bounds.append(int(arg[k][bounds[-1]]))
    return bounds[::-1]


def part_order(weights: FloatArray) -> IntArray:
    """Order of P parts along a path minimizing Σ W[i,j]·|pos_i − pos_j|.

    Exact for P ≤ 14: the cost is the sum of the prefix cuts, so
    f(S) = cut(S) + min_{i∈S} f(S∖{i}) over subsets S (2^P·P steps, vectorized by
    subset size).  Larger P: greedy, append the part that keeps the next cut
    smallest (ties: lowest index).
    """
    W = np.asarray(weights, dtype=np.float64)
    W = (W + W.T) / 2.0
    np.fill_diagonal(W, 0.0)
    P = W.shape[0]
    if P <= 1:
        return np.arange(P, dtype=np.int64)
    if P > EXACT_ORDER_MAX_PARTS:
        return _greedy_order(W)
    masks = np.arange(1 << P, dtype=np.int64)
    bits = ((masks[:, None] >> np.arange(P)) & 1).astype(np.float64)
    deg = W.sum(axis=1)
    inner = ((bits @ W) * bits).sum(axis=1) / 2.0
    cut = bits @ deg - 2.0 * inner
    popcount = bits.sum(axis=1).astype(np.int64)
    f = np.full(1 << P, np.inf)
    last = np.full(1 << P, -1, dtype=np.int64)
    f[0] = 0.0
    for size in range(1, P + 1):
        S = masks[popcount == size]
        best = np.full(len(S), np.inf)
        best_i = np.full(len(S), -1, dtype=np.int64)
        for i in range(P):
            has = ((S >> i) & 1).astype(bool)
            cand = np.where(has, f[S & ~(1 << i)], np.inf)
            better = cand < best
            best = np.where(better, cand, best)
            best_i = np.where(better, i, best_i)
        f[S] = best + cut[S]
        last[S] = best_i
    order: list[int] = []
    S_full = (1 << P) - 1
    while S_full:
        i = int(last[S_full])
        order.append(i)
        S_full &= ~(1 << i)
    return np.asarray(order[::-1], dtype=np.int64)


def _greedy_order(W: FloatArray) -> IntArray:
    """Append the part that minimizes the next prefix cut (start: the lightest-degree part)."""
    P = W.shape[0]
    deg = W.sum(axis=1)
    inside = np.zeros(P, dtype=bool)
    to_inside = np.zeros(P)  # weight from each part to the current prefix
    cut = 0.0
    order: list[int] = []
    for _ in range(P):
        new_cut = cut + deg - 2.0 * to_inside
        new_cut[inside] = np.inf
        i = int(np.argmin(new_cut))
        order.append(i)
        inside[i] = True
        cut = float(new_cut[i])
        to_inside += W[i]
    return np.asarray(order, dtype=np.int64)


def order_cost(weights: FloatArray, order: IntArray) -> float:
    """Σ W[i,j]·|pos_i − pos_j| over i < j for parts placed in ``order``."""
    W = np.asarray(weights, dtype=np.float64)
    W = (W + W.T) / 2.0
    pos = np.empty(len(order), dtype=np.int64)
    pos[np.asarray(order)] = np.arange(len(order))
    return float(np.triu(W * np.abs(pos[:, None] - pos[None, :]), k=1).sum())


class _MoveState:
    """Incremental bookkeeping for single-block moves.

    ``G[b, j]`` = chatty cost of the edges at block b if b were in wave j+1
    (others fixed), so the gain of a move is G[b, w_b] − G[b, j]; moving a block
    updates only its neighbours' rows.
    """

    def __init__(self, graph: sp.csr_matrix, limits: WaveLimits, waves: IntArray) -> None:
        self.A = graph.tocsr()
        self.limits = limits
        self.w = np.asarray(waves, dtype=np.int64).copy()
        self.cols = np.arange(1, limits.K + 1)
        dist = np.abs(self.cols[None, :] - self.w[:, None]).astype(np.float64)
        self.G = np.asarray(self.A @ dist, dtype=np.float64)
        self.used = limits.used(self.w)

    def move(self, b: int, j: int) -> None:
        """Put block b in wave j (1-based) and update the neighbours' rows and the loads."""
        k = int(self.w[b])
        if k == j:
            return
        start, end = self.A.indptr[b], self.A.indptr[b + 1]
        nbrs, wts = self.A.indices[start:end], self.A.data[start:end]
        change = np.abs(self.cols - j) - np.abs(self.cols - k)
        self.G[nbrs] += wts[:, None] * change[None, :]
        self.used[:, k - 1] -= self.limits.loads[:, b]
        self.used[:, j - 1] += self.limits.loads[:, b]
        self.w[b] = j


def repair(
    graph: sp.csr_matrix, limits: WaveLimits, waves: IntArray, max_moves: int | None = None
) -> IntArray:
    """Move blocks until every window and capacity holds, cheapest moves first.

    Windows: each block outside its window goes to its cheapest allowed wave.
    Capacities: repeatedly, among the moves of a block out of the most
    overloaded wave (if none helps: out of any overloaded wave) into an allowed
    wave that lower the total normalized overload, take the one with the
    smallest chatty-cost change per unit of overload removed (ties: nearest
    wave, lowest block id).  Stops when all limits hold or no move helps
    (e.g. a block heavier than any wave): the result is then best effort and the
    feasibility stage reports what is left.
    """
    state = _MoveState(graph, limits, waves)
    B = limits.count
    rows = np.arange(B)
    outside = np.flatnonzero(~limits.allowed[rows, state.w - 1])
    for b in outside.tolist():
        costs = np.where(limits.allowed[b], state.G[b], np.inf)
        state.move(b, int(np.argmin(costs)) + 1)
    if not limits.names:
        return state.w
    norm = limits.norm()[:, None]
    movable = limits.allowed.sum(axis=1) > 1
    budget = max_moves if max_moves is not None else 4 * B + 100
    for _ in range(budget):
        if fits(state.used, limits.caps).all():
            break
        excess = limits.excess(state.used)
        worst = np.flatnonzero(movable & (state.w - 1 == int(np.argmax(excess))))
        move = _best_repair_move(state, excess, worst, norm)
        if move is None:  # nothing leaves the worst wave usefully: try every overloaded wave
            move = _best_repair_move(state, excess, np.flatnonzero(movable & (excess[state.w - 1] > 0)), norm)
        if move is None:
            break
        state.move(*move)
    return state.w


def _best_repair_move(
    state: _MoveState, excess: FloatArray, cand: IntArray, norm: FloatArray
) -> tuple[int, int] | None:
    """(block, wave) among ``cand`` leaving their waves: least cost change per unit of
    overload removed (ties: nearest wave, lowest block id), or None if no move helps."""
    if len(cand) == 0:
        return None
    limits, K = state.limits, state.limits.K
    src = state.w[cand] - 1
    load = limits.loads[:, cand]  # (R, C)
    used_src = state.used[:, src] - load
    caps_src = limits.caps[:, src]
    over_src = np.where(fits(used_src, caps_src), 0.0, used_src - caps_src)
    src_after = (over_src / norm).sum(axis=0)  # (C,)
    used_dst = state.used[:, None, :] + load[:, :, None]  # (R, C, K)
    caps_dst = np.broadcast_to(limits.caps[:, None, :], used_dst.shape)
    over_dst = np.where(fits(used_dst, caps_dst), 0.0, used_dst - caps_dst)
    dst_after = (over_dst / norm[:, :, None]).sum(axis=0)  # (C, K)
    reduction = (excess[src] - src_after)[:, None] + (excess[None, :] - dst_after)
    valid = limits.allowed[cand] & (reduction > 1e-12)
    valid[np.arange(len(cand)), src] = False
    if not valid.any():
        return None
    delta = state.G[cand] - state.G[cand, src][:, None]
    score = np.where(valid, delta / np.where(valid, reduction, 1.0), np.inf)
    dist = np.abs(np.arange(K)[None, :] - src[:, None])
    flat = np.lexsort((dist.ravel(), score.ravel()))[0]  # score, then nearest wave, then id
    c, j = divmod(int(flat), K)
    return int(cand[c]), j + 1


def refine(graph: sp.csr_matrix, limits: WaveLimits, waves: IntArray, max_passes: int = 30) -> IntArray:
    """Local search: single-block moves and two-block swaps while they lower the cost.

    A move or swap must keep every limit that holds now (so a feasible plan
    stays feasible).  Swaps matter when waves are full: a block that would
    gain by moving into a full wave trades places with one that gains by
    leaving it.  Bounded by ``max_passes`` (not by the clock: deterministic).
    """
    state = _MoveState(graph, limits, waves)
    eps = 1e-9 * max(1.0, float(graph.data.sum()) if graph.nnz else 1.0)
    for _ in range(max_passes):
        if _move_pass(state, eps) + _swap_pass(state, eps) == 0:
            break
    return state.w


def _move_pass(state: _MoveState, eps: float) -> int:
    """Score every block's best allowed, fitting wave at once, then apply the improving
    moves in order of gain, re-checking each against the updated state."""
    limits = state.limits
    B = limits.count
    rows = np.arange(B)
    loads = limits.loads
    room = limits.caps - state.used  # (R, K)
    fit = np.ones((B, limits.K), dtype=bool)
    for r in range(len(limits.names)):
        fit &= fits(loads[r][:, None], np.broadcast_to(room[r][None, :], (B, limits.K)))
    fit[rows, state.w - 1] = True
    gain = state.G[rows, state.w - 1][:, None] - state.G
    gain = np.where(limits.allowed & fit, gain, -np.inf)
    best = gain.max(axis=1)
    cand = np.flatnonzero(best > eps)
    moved = 0
    for b in cand[np.argsort(-best[cand], kind="stable")].tolist():
        k = int(state.w[b])
        row = state.G[b, k - 1] - state.G[b]
        room_now = limits.caps - state.used
        ok = limits.allowed[b] & fits(np.broadcast_to(loads[:, b][:, None], room_now.shape), room_now).all(
            axis=0
        )
        ok[k - 1] = False
        row = np.where(ok, row, -np.inf)
        j = int(np.argmax(row))
        if row[j] > eps:
            state.move(b, j + 1)
            moved += 1
    return moved


def _swap_pass(state: _MoveState, eps: float, top: int = 16) -> int:
    """For every pair of waves (k, j), swap the best pair of blocks b (k → j), c (j → k).

    Gain = gain(b) + gain(c) − 2·A[b,c]·|k − j| (each single gain counted their
    shared edge as closed, a swap leaves it as it was).  Only the ``top`` best
    single gains on each side are paired: O(W²·top²) per pass for W waves that hold blocks.
    """
    limits = state.limits
    loads = limits.loads
    swapped = 0
    # only waves that hold blocks pair up (a swap keeps every wave's count, so the set stays):
    # all K^2 pairs took 38 s at 1,000 waves for 23 blocks
    occupied = np.unique(state.w).tolist()
    for i, k in enumerate(occupied):
        for j in occupied[i + 1 :]:
            in_k, in_j = np.flatnonzero(state.w == k), np.flatnonzero(state.w == j)
            gk = np.where(limits.allowed[in_k, j - 1], state.G[in_k, k - 1] - state.G[in_k, j - 1], -np.inf)
            gj = np.where(limits.allowed[in_j, k - 1], state.G[in_j, j - 1] - state.G[in_j, k - 1], -np.inf)
            sk = np.argsort(-gk, kind="stable")[:top]
            sj = np.argsort(-gj, kind="stable")[:top]
            sk, sj = sk[np.isfinite(gk[sk])], sj[np.isfinite(gj[sj])]
            if len(sk) == 0 or len(sj) == 0 or gk[sk[0]] + gj[sj[0]] <= eps:
                continue
            bk, bj = in_k[sk], in_j[sj]
            shared = np.asarray(state.A[bk][:, bj].toarray())
            pair = gk[sk][:, None] + gj[sj][None, :] - 2.0 * shared * (j - k)
            delta = loads[:, bj][:, None, :] - loads[:, bk][:, :, None]  # (R, top, top) into wave k
            used_k, used_j = state.used[:, k - 1], state.used[:, j - 1]
            limit_k = np.maximum(limits.caps[:, k - 1], used_k)[:, None, None]
            limit_j = np.maximum(limits.caps[:, j - 1], used_j)[:, None, None]
            ok = fits(used_k[:, None, None] + delta, limit_k) & fits(used_j[:, None, None] - delta, limit_j)
            pair = np.where(ok.all(axis=0), pair, -np.inf)
            flat = int(np.argmax(pair))
            a, c = divmod(flat, pair.shape[1])
            if pair[a, c] > eps:
                state.move(int(bk[a]), j)
                state.move(int(bj[c]), k)
                swapped += 1
    return swapped


def split_order(graph: sp.csr_matrix, limits: WaveLimits, order: IntArray) -> IntArray:
    """``dp_split`` of a block order under every limit in ``limits`` (then ``repair`` it)."""
    loads = {name: limits.loads[r] for r, name in enumerate(limits.names)}
    capacities: dict[str, FloatArray | None] = {name: limits.caps[r] for r, name in enumerate(limits.names)}
    lo = limits.allowed.argmax(axis=1) + 1
    hi = limits.K - limits.allowed[:, ::-1].argmax(axis=1)
    return dp_split(order, loads, capacities, lo, hi, graph=graph, K=limits.K)


def fiedler_order(graph: sp.csr_matrix, seed: int) -> IntArray:
    """Blocks ordered by the Fiedler vector within each connected component.

    Components are concatenated largest first (ties: smallest block id); inside
    a component blocks are sorted by (Fiedler value, id).  The sign of each
    vector is fixed so its largest-magnitude entry is positive (determinism).
    """
    B = graph.shape[0]
    count, label = connected_components(graph, directed=False)
    comps = [np.flatnonzero(label == c) for c in range(count)]
    comps.sort(key=lambda c: (-len(c), int(c[0])))
    out: list[IntArray] = []
    rng = np.random.default_rng(seed)
    for members in comps:
        if len(members) <= 2:
            out.append(members)
            continue
        sub = sp.csr_matrix(graph[members][:, members], dtype=np.float64)
        lap = sp.csc_matrix(sp.diags(np.asarray(sub.sum(axis=1)).ravel()) - sub)
        if len(members) <= _DENSE_EIGEN_MAX:
            vec = np.linalg.eigh(lap.toarray())[1][:, 1]
        else:  # shift-invert just below 0: the two smallest eigenpairs of the Laplacian
            v0 = rng.standard_normal(len(members))
            vec = eigsh(lap, k=2, sigma=-1e-6, which="LM", v0=v0)[1][:, 1]
        vec = vec * (1.0 if vec[np.argmax(np.abs(vec))] >= 0 else -1.0)
        out.append(members[np.lexsort((members, vec))])
    return np.concatenate(out).astype(np.int64) if out else np.arange(B, dtype=np.int64)
