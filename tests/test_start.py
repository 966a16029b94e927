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
    blocks, forced = contract_unsplittable(inv, *latency)
    problem = build_problem(inv, blocks, 1.0, latency)
    plain = violations(problem, construct_blocks(inv, blocks, 0)).score
    start, rounds = latency_aware_start(problem, forced, 0, lambda: True, 2)
    assert rounds <= 2
    assert violations(problem, start).score <= plain
    assert np.all((start >= blocks.lo) & (start <= blocks.hi))


def test_simple_start_fills_waves_in_order() -> None:
    inv = generate_estate(60, 1).inventory
    blocks, _ = contract_unsplittable(inv, *latency_matrix(inv))
    waves = simple_start(inv, blocks)
    assert waves.min() >= 1 and waves.max() <= inv.K
    assert np.all((waves >= blocks.lo) & (waves <= blocks.hi))
