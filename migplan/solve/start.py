"""Stage 2: a latency-aware start from the latency-blind construction, by heuristic contraction.

The construction (Mt-KaHyPar onto a path of K waves) ignores budgets and leaves many
apps over budget.  For each over-budget app, the heaviest split call on its call paths
is glued (its two ends must share a wave) and the construction runs again on the
coarser graph; the start with the smallest total violation is kept.  Unlike the exact
contraction of ``forced``, these pairs are a guess, so they only shape the start:
the feasibility stage works on the exact blocks.  A glued pair is skipped when the
merged block would exceed half the smallest apps capacity of a wave.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np

from migplan.model import FloatArray, IntArray, Inventory
from migplan.solve.blocks import Blocks, build_blocks
from migplan.solve.cpsat import Problem, splits, violations

MAX_ROUNDS = 6


def construct_blocks(inv: Inventory, blocks: Blocks, seed: int) -> IntArray:
    """The construction helper's latency-blind waves per block (a plain fill if it is absent)."""
    try:
        module = importlib.import_module("migplan.solve.construct")
    except ModuleNotFoundError:
        return simple_start(inv, blocks)
    waves = np.asarray(module.construct(inv, blocks, seed, threads=1), dtype=np.int64)
    return np.clip(waves, blocks.lo, blocks.hi).astype(np.int64)


def simple_start(inv: Inventory, blocks: Blocks) -> IntArray:
    """Blocks in index order, filled evenly: only when no construction module is installed."""
    load = blocks.load(inv, "apps")
    cum = np.cumsum(load) - load
    waves = 1 + np.floor(cum * inv.K / max(float(load.sum()), 1.0)).astype(np.int64)
    return np.clip(waves, blocks.lo, blocks.hi).astype(np.int64)


def latency_aware_start(
    problem: Problem,
    forced: tuple[IntArray, IntArray],
    seed: int,
    keep_going: Callable[[], bool],
    max_rounds: int = MAX_ROUNDS,
) -> tuple[IntArray, int]:
    """(best start per exact block, rounds run): construction, then glue-and-reconstruct rounds.

    ``keep_going`` is asked before each round (the wall-clock cap and the stop event);
    ``max_rounds`` is the deterministic limit.
    """
    inv, blocks = problem.inv, problem.blocks
    best = construct_blocks(inv, blocks, seed)
    best_score = violations(problem, best).score
    src, dst = list(forced[0].tolist()), list(forced[1].tolist())
    cap = inv.scenario.capacity("apps")
    limit = 0.5 * float(np.median(cap)) if cap is not None else np.inf
    current = best
    rounds = 0
    for _ in range(max_rounds):
        if best_score == 0 or not keep_going():
            break
        pairs = _glue_pairs(problem, current)
        coarse = build_blocks(inv, (np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)))
        glued = _glue(coarse, coarse.load(inv, "apps"), pairs, limit)
        if not glued:
            break
        src.extend(u for u, _ in glued)
        dst.extend(v for _, v in glued)
        coarse = build_blocks(inv, (np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)))
        rounds += 1
        first = np.asarray([m[0] for m in blocks.members], dtype=np.int64)
        current = construct_blocks(inv, coarse, seed)[coarse.of[first]]
        current = np.clip(current, blocks.lo, blocks.hi)
        score = violations(problem, current).score
        if score < best_score:
            best, best_score = current, score
    return best, rounds


def _glue(
    coarse: Blocks, load: FloatArray, pairs: list[tuple[int, int]], limit: float
) -> list[tuple[int, int]]:
    """The pairs that can be glued one after another: the merged block stays under ``limit``
    apps and keeps a wave it may use (a pin or window clash, also through earlier pairs of
    this round, would make the start worse, not better)."""
    parent = list(range(coarse.count))
    lo, hi, size = coarse.lo.tolist(), coarse.hi.tolist(), load.tolist()

    def root(b: int) -> int:
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        return b

    glued = []
    for u, v in pairs:
        ru, rv = root(int(coarse.of[u])), root(int(coarse.of[v]))
        if ru == rv or size[ru] + size[rv] > limit or max(lo[ru], lo[rv]) > min(hi[ru], hi[rv]):
            continue
        parent[rv] = ru
        lo[ru], hi[ru], size[ru] = max(lo[ru], lo[rv]), min(hi[ru], hi[rv]), size[ru] + size[rv]
        glued.append((u, v))
    return glued


def _glue_pairs(problem: Problem, waves: IntArray) -> list[tuple[int, int]]:
    """For each over-budget row, the app pair of the heaviest split call on its paths."""
    state = violations(problem, waves)
    if not state.latency.size:
        return []
    lat = problem.latency
    split_any = np.asarray(splits(problem, waves).any(axis=1), dtype=bool)
    first = np.asarray([m[0] for m in problem.blocks.members], dtype=np.int64)
    pairs: list[tuple[int, int]] = []
    for r in np.flatnonzero(state.latency.sum(axis=1) > 0).tolist():
        start, end = lat.coef.indptr[r], lat.coef.indptr[r + 1]
        edges, coefs = lat.coef.indices[start:end], lat.coef.data[start:end]
        live = split_any[edges]
        if not live.any():
            continue
        e = int(edges[live][np.argmax(coefs[live])])
        pairs.append((int(first[problem.eu[e]]), int(first[problem.ev[e]])))
    return pairs
