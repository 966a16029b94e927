"""Time every stage of the latency-blind construction on one generated estate.

    python -m bench.construct_stages N_APPS SEED [THREADS]
    python -m bench.construct_stages INVENTORY_DIR

Prints CPU and wall seconds per stage (the calls ``solve.construct`` makes), the chatty
cost after each, the louvain-pack reference and a hash of the result (determinism).
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from migplan import metrics
from migplan.baselines import louvain_pack
from migplan.generate import generate_estate
from migplan.solve import construct as stage1
from migplan.solve.blocks import block_graph, build_blocks
from migplan.solve.split import WaveLimits, block_cost, fiedler_order, refine, repair, split_order


def timed(label: str, fn: Callable[..., Any], *args: Any) -> Any:
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn(*args)
    print(f"{label:<22} cpu {time.process_time() - cpu:7.2f} s   wall {time.perf_counter() - wall:7.2f} s")
    return out


def main(argv: list[str]) -> int:
    if Path(argv[0]).is_dir():
        from migplan.io.inventory import load_inventory

        loaded = load_inventory(Path(argv[0]))
        if loaded.inventory is None:
            print("\n".join(f.render() for f in loaded.findings))
            return 2
        inv, threads = loaded.inventory, 1
    else:
        inv = generate_estate(int(argv[0]), int(argv[1])).inventory
        threads = int(argv[2]) if len(argv) > 2 else 1
    blocks = build_blocks(inv)
    graph, limits = block_graph(inv, blocks), WaveLimits.of(inv, blocks)
    print(f"{inv.n} apps, {inv.m} dependencies, {blocks.count} blocks, K = {inv.K}")
    order = timed("fiedler order", fiedler_order, graph, 0)
    timed("dp_split", split_order, graph, limits, order)
    mapped = timed("mt-kahypar map", stage1.map_onto_path, graph, limits, 0, threads)
    if mapped is not None:
        repaired = timed("repair", repair, graph, limits, mapped)
        refined = timed("refine", refine, graph, limits, repaired)
        costs = [block_cost(graph, w) for w in (mapped, repaired, refined)]
        print("cost: mapped {:,.0f}, repaired {:,.0f}, refined {:,.0f}".format(*costs))
    waves = timed("construct (all)", stage1.construct, inv, blocks, 0, threads)
    cost = block_cost(graph, waves)
    reference = metrics.chatty_cost(inv, louvain_pack(inv, 0).array)
    print(f"construct cost {cost:,.0f}; louvain-pack {reference:,.0f}; ratio {cost / reference:.3f}")
    print(
        f"feasible (windows, capacities, risk): {limits.feasible(waves)}; "
        f"hash {hashlib.md5(waves.tobytes()).hexdigest()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
