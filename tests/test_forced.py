"""Exact contraction of calls no feasible plan can split."""

from __future__ import annotations

from migplan.model import App, Dependency, Inventory, Scenario
from migplan.solve.cpsat import latency_matrix
from migplan.solve.forced import contract_unsplittable


def _blocks(apps: list[App], deps: list[Dependency], **scenario: object) -> tuple[tuple[int, ...], ...]:
    inv = Inventory(tuple(apps), tuple(deps), Scenario(**scenario))  # type: ignore[arg-type]
    L, _, unsplittable = latency_matrix(inv)
    blocks, _ = contract_unsplittable(inv, L, unsplittable)
    return blocks.members


def test_a_call_costing_more_than_the_budget_is_contracted() -> None:
    deps = [Dependency("svc", "db", 5)]
    assert _blocks([App("svc", 1, latency_budget_ms=20), App("db", 1)], deps) == ((0, 1),)
    assert _blocks([App("svc", 1, latency_budget_ms=40), App("db", 1)], deps) == ((0,), (1,))


def test_contraction_repeats_on_merged_blocks() -> None:
    # round 1: x -> y costs x 30 ms > 20; round 2: z's two calls into {x, y} cost 60 ms > 50
    apps = [App("x", 1, latency_budget_ms=20), App("y", 1), App("z", 1, latency_budget_ms=50)]
    deps = [Dependency("x", "y", 1), Dependency("z", "x", 1), Dependency("z", "y", 1)]
    assert _blocks(apps, deps) == ((0, 1, 2),)


def test_async_calls_are_never_forced() -> None:
    apps = [App("svc", 1, latency_budget_ms=1), App("queue", 1)]
    assert _blocks(apps, [Dependency("svc", "queue", 5, sync=False)]) == ((0,), (1,))


def test_calls_below_a_divergent_cycle_are_kept_whole() -> None:
    apps = [App("a", 1), App("b", 1), App("c", 1)]
    deps = [Dependency("a", "b", 1), Dependency("b", "a", 1), Dependency("b", "c", 1)]
    members = _blocks(apps, deps, split_cycles=True)
    assert (0, 1, 2) in members  # a <-> b diverges; splitting anything below it is unbounded
