"""Calls that no feasible plan can split: contract their endpoints into one block.

If splitting the block edge e alone already adds more latency to some app a than a's
budget allows (L[a,e] > budget_a, summed over the dependencies between the
two blocks), then e is unsplit in every plan the model accepts, so both blocks share a
wave.  Contracting repeats until nothing changes, since merged blocks aggregate more
calls per block edge.  This step is exact (it removes no feasible plan of the model)
and shrinks the search the most where budgets are tight.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from migplan import metrics
from migplan.model import FloatArray, IntArray, Inventory
from migplan.solve.blocks import Blocks, block_calls, build_blocks

MAX_ROUNDS = 20


def latency_source(inv: Inventory) -> tuple[sp.csr_matrix, FloatArray, IntArray]:
    """(the latency coefficients, per app the ms the ones left out can add, dependencies whose
    split makes some app's latency unbounded) from metrics.planner_coefficients, which caches
    them on ``inv`` (all of them, the ms 0, unless they pass metrics.MAX_COEFFICIENTS)."""
    result = metrics.planner_coefficients(inv)
    unbounded = np.flatnonzero(np.asarray(result.unbounded_edges, dtype=bool)).astype(np.int64)
    return sp.csr_matrix(result.matrix), np.asarray(result.dropped_ms, dtype=np.float64), unbounded


def contract(inv: Inventory) -> tuple[Blocks, tuple[IntArray, IntArray]]:
    """``contract_unsplittable`` on ``inv``'s own latency coefficients (``latency_source``):
    its blocks with every unsplittable call contracted, and the app pairs that were added.

    Raises metrics.LatencyModelTooLargeError when even metrics.planner_coefficients' fallback
    passes metrics.MAX_COEFFICIENTS.
    """
    L, _, unbounded = latency_source(inv)
    return contract_unsplittable(inv, L, unbounded)


def contract_unsplittable(
    inv: Inventory, L: sp.csr_matrix, unbounded_edges: IntArray
) -> tuple[Blocks, tuple[IntArray, IntArray]]:
    """Blocks with every unsplittable call contracted, and the app pairs that were added.

    ``unbounded_edges``: dependencies whose split makes some app's latency unbounded
    (below a divergent cycle): never split either.
    """
    # the TRUE budget: L only lost entries (none, or those below metrics.FALLBACK_TOL_MS), so
    # L[a,e] > budget_a proves e unsplittable; comparing with budget_a - dropped_a (the model's
    # safe row) would cut feasible plans
    budget = inv.budgets
    src: list[int] = inv.caller[unbounded_edges].tolist()
    dst: list[int] = inv.callee[unbounded_edges].tolist()
    pairs = (np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64))
    blocks = build_blocks(inv, pairs if src else None)
    L = sp.csr_matrix(L)
    for _ in range(MAX_ROUNDS):
        keys, to_pairs = block_calls(inv, blocks)
        if len(keys) == 0:
            break
        per_edge = (L @ to_pairs).tocoo()
        bad = per_edge.data > budget[per_edge.row] + 1e-9
        bad |= ~np.isfinite(per_edge.data)
        cols = np.unique(per_edge.col[bad])
        if len(cols) == 0:
            break
        first = np.asarray([m[0] for m in blocks.members], dtype=np.int64)
        src.extend(first[keys[cols] // blocks.count].tolist())
        dst.extend(first[keys[cols] % blocks.count].tolist())
        blocks = build_blocks(inv, (np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)))
    return blocks, (np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64))
