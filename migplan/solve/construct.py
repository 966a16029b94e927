"""Stage 1 of the planner: a strong latency-blind start on the block graph.

The chatty cost Σ qps·|Δwave| is exactly the objective of mapping the block
graph onto a *path* of K nodes (Mt-KaHyPar's Steiner-tree objective on a
target graph; on a path the Steiner tree of an edge is the path between its
ends).  So: Mt-KaHyPar maps the blocks onto the path with pinned blocks as
fixed vertices and the tightest capacity as per-wave weight limit; then
``repair`` restores every window and capacity (and, best effort, max_risk) and
``refine`` polishes with single-block moves and two-block swaps.

Candidates, each repaired and refined, the best returned (``best_of``):
1. the mapping above;
2. its mirror image (same cost before repair; pins, windows and a pilot wave
   make one of the two the better start);
3. if it put blocks outside their windows (Mt-KaHyPar knows pins, not
   windows): the mapping again with every windowed block fixed, once at its
   nearest allowed wave and once where the best plan so far has it (each
   wins on some estates);
4. the spectral order (Fiedler vector per component) cut by the exact
   ``dp_split`` (wins on some small estates; skipped above SPECTRAL_MAX_BLOCKS).

Mt-KaHyPar takes one weight dimension: the resource with the highest total
load / total capacity.  If Mt-KaHyPar fails (it rejects some degenerate
inputs), METIS k-way + the exact part order (``split.part_order``) is used,
and failing that the identity order split by ``dp_split``.

Deterministic: Mt-KaHyPar runs its DETERMINISTIC_QUALITY preset with the
given seed (its result does not depend on the thread count), and the repair
and refinement are deterministic.  Blocks heavier than any wave, or windows
that capacities cannot meet, leave a best-effort plan that still breaks a
limit: the feasibility stage and the explanation module report it.
"""

from __future__ import annotations

import faulthandler
import importlib.util
import os
import pickle
import select
import signal
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from migplan.model import FloatArray, IntArray, Inventory
from migplan.solve.blocks import Blocks, block_graph
from migplan.solve.split import (
    WaveLimits,
    block_cost,
    fiedler_order,
    part_order,
    refine,
    repair,
    scale_to_int,
    split_order,
)

_OBJECTIVE_BUDGET = 1e9  # integer edge weights: total·(K−1) ≤ this, well below 2^31
_initializers: dict[str, object] = {}
# the spectral candidate's eigensolver: 0.5 s CPU at 9,740 blocks, 43 s at 48,826: skipped there
SPECTRAL_MAX_BLOCKS = 20_000
POLL_SECONDS = 0.05  # how often a parent waiting for its Mt-KaHyPar child asks ``alive``


def construct(
    inv: Inventory,
    blocks: Blocks,
    seed: int,
    threads: int = 1,
    extra: sp.csr_matrix | None = None,
    anchored: bool = True,
    merged: bool = False,
    alive: Callable[[], bool] | None = None,
) -> IntArray:
    """Per-block waves 1..K minimizing the chatty cost under pins, windows and capacities.

    ``extra`` (symmetric, blocks x blocks) is added to the qps weights: the
    latency-aware start uses it to make calls that budgets need unsplit dearer.
    ``anchored`` False: no second mapping around the windowed blocks (candidate 3), for
    a caller whose time cannot pay three mappings (one costs ~12 s at 60 waves).
    ``merged`` True: ``merged_construct`` instead.  ``alive`` (see ``_isolated``): asked while
    Mt-KaHyPar runs; False ends that mapping (the fallbacks take over).
    """
    B = blocks.count
    if B == 0:
        return np.zeros(0, dtype=np.int64)
    graph = block_graph(inv, blocks)
    if extra is not None:
        graph = (graph + extra).tocsr()
    limits = WaveLimits.of(inv, blocks)
    # waves no block may use (``narrow.compact_ranges``) are left off the path: at 1,000 waves
    # for 23 blocks the mapping spread them far apart and cost 7 s
    last = int(blocks.hi.max())
    if last < limits.K:
        limits = WaveLimits(limits.names, limits.loads, limits.caps[:, :last], limits.allowed[:, :last])
    K = limits.K
    if K == 1:
        return np.ones(B, dtype=np.int64)
    if merged and K > 2:
        return merged_construct(graph, limits, seed, threads, alive)

    def polish(w: IntArray) -> IntArray:
        return _polish(graph, limits, w)

    waves = map_onto_path(graph, limits, seed, threads, alive=alive)
    if waves is None:
        plans = [polish(kway_then_order(graph, limits, seed))]
    else:
        # a path mapping and its mirror image cost the same; pins, windows and a pilot
        # wave make one of them the better start
        plans = [polish(waves), polish(K + 1 - waves)]
        if anchored and not limits.allowed[np.arange(B), waves - 1].all():
            # blocks mapped outside their windows get moved alone (costly): fix every
            # windowed block and map again around them; two anchorings (measured: each
            # wins on some estates): the nearest allowed wave to the first mapping, and
            # the wave the best plan so far gives it
            windowed = limits.allowed.sum(axis=1) < K
            off = np.where(limits.allowed, 0, 2 * K)
            nearest = (np.abs(np.arange(1, K + 1)[None, :] - waves[:, None]) + off).argmin(axis=1) + 1
            anchors = [np.where(windowed, nearest, 0), np.where(windowed, best_of(graph, limits, plans), 0)]
            if np.array_equal(anchors[0], anchors[1]):
                anchors.pop()
            for fix in anchors:
                again = map_onto_path(graph, limits, seed, threads, fix, alive)
                if again is not None:
                    plans.append(polish(again))
    if B <= SPECTRAL_MAX_BLOCKS:
        plans.append(polish(split_order(graph, limits, fiedler_order(graph, seed))))
    return best_of(graph, limits, plans)


def merged_construct(
    graph: sp.csr_matrix,
    limits: WaveLimits,
    seed: int,
    threads: int = 1,
    alive: Callable[[], bool] | None = None,
) -> IntArray:
    """Map onto ceil(K / 2) merged waves (each two adjacent waves' limits summed), then split.

    Inside a merged wave blocks are ordered by the mean merged wave of their neighbours
    (weighted by the edges), the whole order is cut into the K waves by the exact
    ``dp_split`` under every limit, and the result repaired and refined; the mirror order
    is tried too.  Past 12 waves the latency-aware start keeps whichever of this and the
    plain mapping breaks fewer budgets (``start.latency_aware_start``): at 24 waves it broke
    29-102 budgets where the plain mapping broke 68-252 (two generated estates, weights 1-8).
    """
    K = limits.K
    pairs = [list(range(k, min(k + 2, K))) for k in range(0, K, 2)]
    merged = WaveLimits(
        limits.names,
        limits.loads,
        np.stack([limits.caps[:, p].sum(axis=1) for p in pairs], axis=1),
        np.stack([limits.allowed[:, p].any(axis=1) for p in pairs], axis=1),
    )
    part = map_onto_path(graph, merged, seed, threads, alive=alive)
    if part is None:
        part = kway_then_order(graph, merged, seed)
    degree = np.asarray(graph.sum(axis=1)).ravel()
    pull = np.where(degree > 0, (graph @ part.astype(np.float64)) / np.maximum(degree, 1e-300), part)
    ids, mirror = np.arange(len(part)), len(pairs) + 1
    plans = []
    for side, pulled in ((part, pull), (mirror - part, mirror - pull)):  # the order and its mirror image
        order = np.lexsort((ids, pulled, side)).astype(np.int64)
        plans.append(_polish(graph, limits, split_order(graph, limits, order)))
    return best_of(graph, limits, plans)


def _polish(graph: sp.csr_matrix, limits: WaveLimits, waves: IntArray) -> IntArray:
    """Every candidate's finish: ``repair`` the limits, then ``refine`` by moves and swaps."""
    return refine(graph, limits, repair(graph, limits, waves))


def best_of(graph: sp.csr_matrix, limits: WaveLimits, plans: list[IntArray]) -> IntArray:
    """The plan that meets every limit (else the least overloaded), then the cheapest; ties: first."""

    def key(w: IntArray) -> tuple[bool, float, float]:
        over = float(limits.excess(limits.used(w)).sum())
        return (not limits.feasible(w), over, block_cost(graph, w))

    return min(plans, key=key)


def weight_dimension(limits: WaveLimits) -> tuple[FloatArray, FloatArray]:
    """(per-block load, per-wave capacity) of the tightest limit; unit loads and no cap when
    no limit carries any load.

    A limit nothing loads (every app's risk 0, or no data_gb anywhere) binds nothing: as
    the tightest one, its all-zero weights and maxima sent Mt-KaHyPar into an endless loop.
    """
    totals = limits.loads.sum(axis=1) if limits.names else np.zeros(0)
    if not (totals > 0).any():
        return np.ones(limits.count), np.full(limits.K, np.inf)
    room = limits.caps.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tightness = np.where(totals <= 0, 0.0, np.where(room > 0, totals / room, np.inf))
    r = int(np.argmax(tightness))
    return limits.loads[r], limits.caps[r]


def _int_limits(limits: WaveLimits, fix: IntArray | None = None) -> tuple[IntArray, IntArray, IntArray]:
    """Integer node weights, per-wave maxima and fixed waves (−1: free) Mt-KaHyPar accepts.

    Mt-KaHyPar aborts the whole process (no exception) when it finds no
    partition within the maxima, e.g. blocks heavier than a wave or a packing
    that does not exist.  So the maxima are raised (then ``repair`` deals with
    the excess) until any first-fit packing succeeds: every wave keeps its
    pinned weight, and the room left beyond (heaviest free block − 1) per wave
    holds all free weight.  Fuzzed (450 random inventories, no crash; without
    this rule 31 of 80 random packings aborted); property test in tests.
    """
    load, cap = weight_dimension(limits)
    weights, caps = scale_to_int(load, cap)
    if fix is None:
        fix = np.where(limits.allowed.sum(axis=1) == 1, limits.allowed.argmax(axis=1) + 1, 0)
    fixed = np.asarray(fix, dtype=np.int64) - 1
    pinned = fixed >= 0
    pinned_weight = np.bincount(fixed[pinned], weights=weights[pinned], minlength=limits.K).astype(np.int64)
    caps = np.maximum(caps, pinned_weight)
    free_total = int(weights[~pinned].sum())
    slack = int(weights[~pinned].max()) - 1 if (~pinned).any() else 0

    def room(c: IntArray) -> int:
        return int(np.maximum(c - pinned_weight - slack, 0).sum())

    while room(caps) < free_total:
        caps = np.ceil(np.maximum(caps, 1) * 1.05).astype(np.int64) + 1
    return weights, caps, fixed


def _edges(graph: sp.csr_matrix, K: int) -> tuple[list[tuple[int, int]], list[int]]:
    """Upper-triangle edges with integer weights, rounded to nearest (at least 1), their total
    scaled to 10^9 / (K − 1) so no objective value overflows 32 bits; zero-qps edges dropped."""
    coo = sp.triu(graph, k=1).tocoo()
    keep = coo.data > 0
    rows, cols, data = coo.row[keep], coo.col[keep], coo.data[keep]
    if len(data) == 0:
        return [], []
    scale = _OBJECTIVE_BUDGET / max(1, K - 1) / float(data.sum())
    w = np.maximum(1, np.round(data * scale)).astype(np.int64)
    return list(zip(rows.tolist(), cols.tolist(), strict=True)), w.tolist()


def _initializer(threads: int) -> object:
    """Mt-KaHyPar is initialized once per process (so once per child of ``_isolated``);
    results do not depend on the thread count under the deterministic preset."""
    import mtkahypar

    if "init" not in _initializers:
        _initializers["init"] = mtkahypar.initialize(max(1, threads), False)
    return _initializers["init"]


def map_onto_path(
    graph: sp.csr_matrix,
    limits: WaveLimits,
    seed: int,
    threads: int = 1,
    fix: IntArray | None = None,
    alive: Callable[[], bool] | None = None,
) -> IntArray | None:
    """Mt-KaHyPar mapping of the block graph onto a path of K waves, or None if it fails.

    ``fix``: per-block wave to fix (0 = free); default: the pinned blocks.  ``alive``: see
    ``_isolated``.
    """
    if importlib.util.find_spec("mtkahypar") is None:  # pragma: no cover - listed dependency
        return None
    K, B = limits.K, limits.count
    if B < 2:
        return None
    weights, caps, fixed = _int_limits(limits, fix)
    edges, edge_w = _edges(graph, K)
    args = (K, B, seed, threads, weights.tolist(), caps.tolist(), fixed.tolist(), edges, edge_w)
    part = _isolated(_mtkahypar_partition, args, alive)
    if part is None or part.shape != (B,) or part.min() < 0 or part.max() >= K:
        return None
    return part + 1


def _mtkahypar_partition(args: tuple[Any, ...]) -> IntArray | None:
    """The Mt-KaHyPar call itself (run in a child process, see ``_isolated``)."""
    import mtkahypar

    K, B, seed, threads, weights, caps, fixed, edges, edge_w = args
    try:
        init = _initializer(threads)
        mtkahypar.set_seed(int(seed))
        ctx = init.context_from_preset(mtkahypar.PresetType.DETERMINISTIC_QUALITY)  # type: ignore[attr-defined]
        ctx.set_mapping_parameters(K, 0.03)
        ctx.logging = False
        ctx.set_individual_target_block_weights(caps)
        g = init.create_graph(ctx, B, len(edges), edges, weights, edge_w)  # type: ignore[attr-defined]
        if any(f >= 0 for f in fixed):
            g.add_fixed_vertices(fixed, K)
        path = init.create_target_graph(  # type: ignore[attr-defined]
            ctx, K, K - 1, [(k, k + 1) for k in range(K - 1)], [1] * (K - 1)
        )
        mapped = g.map_onto_graph(path, ctx)
        return np.asarray(mapped.get_partition(), dtype=np.int64)
    except Exception:  # Mt-KaHyPar rejects some degenerate inputs: use the fallback
        return None


def _isolated(
    fn: Callable[[Any], IntArray | None], args: Any, alive: Callable[[], bool] | None = None
) -> IntArray | None:
    """``fn(args)`` in a forked child: a crash there (Mt-KaHyPar 1.7 segfaults on some
    packings with fixed vertices, e.g. 17 unit blocks, 2 fixed, maxima 7/8/7 on 3 waves;
    one more unit of room anywhere and it does not) gives None, not a dead planner.

    ``alive`` is asked every POLL_SECONDS while the child runs; once it says False the
    child is killed and the result is None.  A child can also hang: Mt-KaHyPar looped
    forever on all-zero weights and maxima, and the planner ignored its time limit and
    SIGTERM while it waited.

    The parent never initialises Mt-KaHyPar (a forked thread pool would not work), so
    each child starts its own.  Without ``os.fork`` (Windows) the call runs in-process.
    """
    if not hasattr(os, "fork"):
        return fn(args)
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:  # no memory or process slot for a child: the caller's fallback (METIS);
        # running Mt-KaHyPar here would break every later child (a forked TBB pool)
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:  # the child: compute, send, exit without running the parent's cleanup
        code = 1
        try:
            faulthandler.disable()  # a crash here is expected and handled: no dump on stderr
            os.close(read_end)
            with os.fdopen(write_end, "wb") as out:
                pickle.dump(fn(args), out)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    data = _read_while(read_end, alive)
    if data is None:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if status != 0 or not data:
        return None
    value = pickle.loads(data)
    return None if value is None else np.asarray(value, dtype=np.int64)


def _read_while(fd: int, alive: Callable[[], bool] | None) -> bytes | None:
    """Everything the child writes to ``fd`` (closed here), or None once ``alive`` says False."""
    chunks: list[bytes] = []
    try:
        while True:
            if alive is not None and not alive():
                return None
            ready, _, _ = select.select([fd], [], [], POLL_SECONDS)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
    finally:
        os.close(fd)


def kway_then_order(graph: sp.csr_matrix, limits: WaveLimits, seed: int) -> IntArray:
    """METIS k-way parts placed on waves by the exact part order; identity order + DP split if
    METIS fails.  A fallback: Mt-KaHyPar is better and knows pins."""
    K, B = limits.K, limits.count
    load, cap = weight_dimension(limits)
    weights, _ = scale_to_int(load, cap)
    try:
        import pymetis

        if B <= K or graph.nnz == 0:
            raise ValueError("too small for k-way")
        csr = graph.tocsr()
        eweights = np.maximum(1, np.round(csr.data * (1e6 / float(csr.data.sum())))).astype(np.int64)
        opts = pymetis.Options(seed=int(seed))
        _, parts = pymetis.part_graph(
            K,
            pymetis.CSRAdjacency(csr.indptr.tolist(), csr.indices.tolist()),
            vweights=np.maximum(weights, 1).tolist(),
            eweights=eweights.tolist(),
            options=opts,
        )
        part = np.asarray(parts, dtype=np.int64)
        member = sp.csr_matrix((np.ones(B), (np.arange(B), part)), shape=(B, K))
        between = (member.T @ graph @ member).toarray()
        order = part_order(between)
        position = np.empty(K, dtype=np.int64)
        position[order] = np.arange(K)
        return position[part] + 1
    except Exception:  # METIS unavailable or degenerate graph: split the identity order
        return split_order(graph, limits, np.arange(B))
