"""Latency-blind heuristics the benchmarks compare the planner against.

Every baseline works on blocks (groups, together rules and circular
dependencies contracted, see ``solve/blocks.py``), honours pins, windows and
capacities where it can (each ends with ``split.repair``, which moves blocks
only when a limit is broken), ignores latency budgets, and is deterministic
for a given seed.  ``louvain_pack`` is the reference: the benchmark quotes
every chatty cost as a ratio to it.
"""

from __future__ import annotations

from collections.abc import Callable

import networkx as nx
import numpy as np
import scipy.sparse as sp

from migplan.model import IntArray, Inventory, Plan
from migplan.solve.blocks import Blocks, block_graph, build_blocks
from migplan.solve.construct import construct
from migplan.solve.split import WaveLimits, fiedler_order, fits, repair, split_order


def _setup(inv: Inventory) -> tuple[Blocks, sp.csr_matrix, WaveLimits]:
    blocks = build_blocks(inv)
    return blocks, block_graph(inv, blocks), WaveLimits.of(inv, blocks)


def _plan(inv: Inventory, blocks: Blocks, waves: IntArray) -> Plan:
    return Plan.from_array(blocks.expand(waves), inv.K)


def random_order(inv: Inventory, seed: int) -> Plan:
    """A random permutation of the blocks, cut into K waves by the optimal ``dp_split``."""
    blocks, graph, limits = _setup(inv)
    order = np.random.default_rng(seed).permutation(blocks.count).astype(np.int64)
    return _plan(inv, blocks, repair(graph, limits, split_order(graph, limits, order)))


def louvain_pack(inv: Inventory, seed: int) -> Plan:
    """Louvain communities (networkx, weight = qps, ``seed``) packed into waves largest-first.

    Exactly: pinned blocks are placed first.  Communities are taken by number of
    apps, largest first (ties: smallest block id); each goes whole into the first
    wave (1..K) that every member's window allows and where it fits every
    capacity.  A community that fits no wave whole is placed block by block
    (ascending id), each first-fit the same way; a block that fits nowhere goes
    to the allowed wave left least overloaded.  Then ``repair``.
    """
    blocks, graph, limits = _setup(inv)
    B, K = blocks.count, inv.K
    g = nx.from_scipy_sparse_array(sp.triu(graph, k=1).tocsr(), edge_attribute="weight")
    g.add_nodes_from(range(B))
    communities = nx.community.louvain_communities(g, weight="weight", seed=seed)
    sizes = np.asarray([len(m) for m in blocks.members], dtype=np.int64)
    ordered = sorted((sorted(c) for c in communities), key=lambda c: (-int(sizes[c].sum()), c[0]))
    waves = np.zeros(B, dtype=np.int64)
    used = np.zeros((len(limits.names), K))
    pinned = limits.allowed.sum(axis=1) == 1
    for b in np.flatnonzero(pinned).tolist():
        k = int(limits.allowed[b].argmax())
        waves[b] = k + 1
        used[:, k] += limits.loads[:, b]

    def first_fit(members: list[int]) -> int | None:
        load = limits.loads[:, members].sum(axis=1)
        allowed = limits.allowed[members].all(axis=0)
        ok = allowed & fits(used + load[:, None], limits.caps).all(axis=0)
        return int(ok.argmax()) if ok.any() else None

    for community in ordered:
        free = [b for b in community if not pinned[b]]
        if not free:
            continue
        slot = first_fit(free)
        if slot is not None:
            waves[free] = slot + 1
            used[:, slot] += limits.loads[:, free].sum(axis=1)
            continue
        for b in free:
            kb: int | None = first_fit([b])
            if kb is None:
                after = limits.excess(used + limits.loads[:, [b]])  # excess if b went to each wave
                kb = int(np.argmin(np.where(limits.allowed[b], after, np.inf)))
            waves[b] = kb + 1
            used[:, kb] += limits.loads[:, b]
    return _plan(inv, blocks, repair(graph, limits, waves))


def spectral_order(inv: Inventory, seed: int) -> Plan:
    """Fiedler order per connected component, components concatenated, ``dp_split``."""
    blocks, graph, limits = _setup(inv)
    order = fiedler_order(graph, seed)
    return _plan(inv, blocks, repair(graph, limits, split_order(graph, limits, order)))


def latency_blind_mapping(inv: Inventory, seed: int) -> Plan:
    """``solve.construct`` (Mt-KaHyPar path mapping + repair + refine) on the plain blocks.

    The planner runs the same function as its stage 1, but on blocks where the
    calls that no budget allows to split are contracted too (latency-aware).
    """
    blocks = build_blocks(inv)
    return _plan(inv, blocks, construct(inv, blocks, seed))


BASELINES: dict[str, Callable[[Inventory, int], Plan]] = {
    "random-order": random_order,
    "louvain-pack": louvain_pack,
    "spectral-order": spectral_order,
    "latency-blind-mapping": latency_blind_mapping,
}
