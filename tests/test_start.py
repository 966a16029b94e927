"""The latency-aware start: glue rounds never return a start worse than the plain construction."""

from __future__ import annotations

import numpy as np

from migplan.generate import generate_estate
from migplan.solve.cpsat import build_problem, latency_matrix, violations
from migplan.solve.forced import contract_unsplittable
from migplan.solve.start import construct_blocks, latency_aware_start, simple_start


def test_glue_rounds_keep_the_best_start_within_ranges() -> None:
    inv = generate_estate(200, 5).inventory
    latency = latency_matrix(inv)
    blocks, forced = contract_unsplittable(inv, latency[0], latency[2])
    problem = build_problem(inv, blocks, 1.0, latency)
    plain = violations(problem, construct_blocks(inv, blocks, 0)).score
    start, rounds = latency_aware_start(problem, forced, 0, lambda: True, 2)
    assert rounds <= 2
    assert violations(problem, start).score <= plain
    assert np.all((start >= blocks.lo) & (start <= blocks.hi))


def test_simple_start_fills_waves_in_order() -> None:
    inv = generate_estate(60, 1).inventory
    L, _, unsplittable = latency_matrix(inv)
    blocks, _ = contract_unsplittable(inv, L, unsplittable)
    waves = simple_start(inv, blocks)
    assert waves.min() >= 1 and waves.max() <= inv.K
    assert np.all((waves >= blocks.lo) & (waves <= blocks.hi))


def test_glue_skips_pairs_that_clash_through_earlier_pairs_of_the_round() -> None:
    """Regression: gluing a↔b and b↔c in one round merged a pin-5 app with a window-11..12
    app through b, the round was undone and the glue rounds stopped early (no plan found
    on generate_estate(2000, 3))."""
    from migplan.model import App, Inventory, Scenario
    from migplan.solve.blocks import build_blocks
    from migplan.solve.start import _glue

    apps = (App("a", 1, pinned_wave=5), App("b", 1), App("c", 1, earliest_wave=11), App("d", 1))
    inv = Inventory(apps, (), Scenario(waves=12))
    coarse = build_blocks(inv)
    load = coarse.load(inv, "apps")
    assert _glue(coarse, load, [(0, 1), (1, 2), (1, 3)], limit=10) == [(0, 1), (1, 3)]
    assert _glue(coarse, load, [(0, 1), (1, 3)], limit=2) == [(0, 1)]  # size limit counts merged apps
