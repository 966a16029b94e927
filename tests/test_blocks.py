"""Blocks: which apps every plan must keep in one wave, and their allowed wave ranges."""

from __future__ import annotations

import numpy as np

from migplan.model import App, Dependency, Inventory, Rule, Scenario
from migplan.solve.blocks import block_graph, build_blocks


def _inv(apps: list[App], deps: list[Dependency], **scenario: object) -> Inventory:
    return Inventory(tuple(apps), tuple(deps), Scenario(**scenario))  # type: ignore[arg-type]


def test_cycle_group_and_together_rule_are_contracted() -> None:
    apps = [
        App("a", 1),
        App("b", 1),
        App("c", 1, group="g"),
        App("d", 1, group="g"),
        App("e", 1),
        App("f", 1),
    ]
    deps = [Dependency("a", "b", 5), Dependency("b", "a", 1), Dependency("e", "a", 2)]
    inv = _inv(apps, deps, waves=3, rules=(Rule("together", ("e", "f")),))
    blocks = build_blocks(inv)
    assert blocks.members == ((0, 1), (2, 3), (4, 5))
    assert blocks.of.tolist() == [0, 0, 1, 1, 2, 2]
    assert not blocks.conflicts


def test_split_cycles_keeps_cycle_members_apart() -> None:
    deps = [Dependency("a", "b", 5), Dependency("b", "a", 1)]
    inv = _inv([App("a", 1), App("b", 1)], deps, waves=2, split_cycles=True)
    assert build_blocks(inv).count == 2


def test_ranges_intersect_pins_and_windows() -> None:
    apps = [
        App("a", 1, group="g", earliest_wave=2),
        App("b", 1, group="g", latest_wave=3),
        App("c", 1, pinned_wave=4),
    ]
    blocks = build_blocks(_inv(apps, [], waves=5))
    assert blocks.lo.tolist() == [2, 4]
    assert blocks.hi.tolist() == [3, 4]
    assert not blocks.conflicts


def test_conflicting_pins_in_a_group_name_apps_and_waves() -> None:
    apps = [App("a", 1, group="g", pinned_wave=1), App("b", 1, group="g", pinned_wave=3)]
    blocks = build_blocks(_inv(apps, [], waves=4))
    (conflict,) = blocks.conflicts
    assert conflict.severity == "error"
    assert conflict.apps == ("a", "b")
    assert "a pinned to wave 1" in conflict.message
    assert "group 'g'" in conflict.message
    assert "b pinned to wave 3" in conflict.message


def test_extra_pairs_join_blocks() -> None:
    inv = _inv([App("a", 1), App("b", 1), App("c", 1)], [], waves=2)
    blocks = build_blocks(inv, (np.array([0]), np.array([2])))
    assert blocks.members == ((0, 2), (1,))


def test_block_graph_sums_both_directions_and_drops_internal_edges() -> None:
    apps = [App("a", 1, group="g"), App("b", 1, group="g"), App("c", 1)]
    deps = [Dependency("a", "b", 7), Dependency("a", "c", 2), Dependency("c", "b", 3)]
    inv = _inv(apps, deps, waves=2)
    blocks = build_blocks(inv)
    graph = block_graph(inv, blocks).toarray()
    assert graph.tolist() == [[0.0, 5.0], [5.0, 0.0]]


def test_block_loads_sum_members() -> None:
    apps = [App("a", 1, instances=3, group="g"), App("b", 1, instances=4, group="g"), App("c", 1)]
    inv = _inv(apps, [], waves=2)
    blocks = build_blocks(inv)
    assert blocks.load(inv, "instances").tolist() == [7.0, 1.0]
    assert blocks.load(inv, "apps").tolist() == [2.0, 1.0]
    assert blocks.expand(np.array([2, 1])).tolist() == [2, 2, 1]
