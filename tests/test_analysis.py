"""analysis.py: cycles, bring-up order and the advisory findings on tiny estates."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from migplan import analysis
from migplan.model import App, Dependency, Finding, Inventory, Plan, Scenario


def estate(
    ids: list[str],
    edges: list[tuple[str, str]],
    apps: Mapping[str, Mapping[str, object]] | None = None,
    **scn: object,
) -> Inventory:
    extra = apps or {}
    built = tuple(App(a, **{"qps": 1.0, **extra.get(a, {})}) for a in ids)  # type: ignore[arg-type]
    deps = tuple(Dependency(u, v, 1.0, 0.5) for u, v in edges)
    return Inventory(built, deps, Scenario(**scn))  # type: ignore[arg-type]


def test_cycles_largest_first_each_sorted() -> None:
    # d ⇄ e (2 apps), a → b → c → a (3 apps), f alone, c → d links the two.
    inv = estate(list("abcdef"), [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("e", "d"), ("d", "e")])
    assert analysis.cycles(inv) == [(0, 1, 2), (3, 4)]


def test_cycles_of_equal_size_ordered_by_first_app() -> None:
    inv = estate(list("abcd"), [("c", "d"), ("d", "c"), ("b", "a"), ("a", "b")])
    assert analysis.cycles(inv) == [(0, 1), (2, 3)]
    assert analysis.cycles(estate(["a"], [])) == []
    assert analysis.cycles(estate([], [])) == []


def test_async_edges_count_for_cycles() -> None:
    apps = tuple(App(a, 1.0) for a in "ab")
    deps = (Dependency("a", "b", 1.0), Dependency("b", "a", 1.0, sync=False))
    assert analysis.cycles(Inventory(apps, deps)) == [(0, 1)]


def test_bringup_order_callees_first_ties_by_id() -> None:
    # web → api → db; api ⇄ auth (a cycle); cache is called by api; zz stands alone.
    ids = ["web", "api", "db", "auth", "cache", "zz"]
    edges = [("web", "api"), ("api", "db"), ("api", "auth"), ("auth", "api"), ("api", "cache")]
    inv = estate(ids, edges)
    steps = [tuple(inv.ids[a] for a in step) for step in analysis.bringup_order(inv)]
    assert steps == [("cache",), ("db",), ("api", "auth"), ("web",), ("zz",)]


def test_bringup_order_is_a_valid_topological_order_of_every_app() -> None:
    inv = estate(list("abcde"), [("a", "b"), ("b", "c"), ("a", "c"), ("d", "e"), ("e", "d"), ("d", "a")])
    steps = analysis.bringup_order(inv)
    pos = {a: i for i, step in enumerate(steps) for a in step}
    assert sorted(pos) == list(range(inv.n))
    for u, v in zip(inv.caller.tolist(), inv.callee.tolist(), strict=True):
        assert pos[v] <= pos[u]


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 8).flatmap(
        lambda n: st.tuples(
            st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n)
        )
    )
)
def test_bringup_order_property(case: tuple[int, list[tuple[int, int]]]) -> None:
    n, pairs = case
    ids = [f"a{i}" for i in range(n)]
    edges = sorted({(ids[u], ids[v]) for u, v in pairs if u != v})
    inv = estate(ids, edges)
    steps = analysis.bringup_order(inv)
    pos = {a: i for i, step in enumerate(steps) for a in step}
    assert sorted(pos) == list(range(n))
    for u, v in edges:
        assert pos[inv.index[v]] <= pos[inv.index[u]]
    # A step of several apps is exactly one of the cycles.
    assert sorted(tuple(sorted(s)) for s in steps if len(s) > 1) == sorted(analysis.cycles(inv))
    assert steps == analysis.bringup_order(estate(ids, edges))


def codes(found: list[Finding]) -> list[str]:
    return [f.code for f in found]


def test_cycle_finding_names_the_loop() -> None:
    inv = estate(list("abc"), [("a", "b"), ("b", "c"), ("c", "a")])
    (f,) = [f for f in analysis.findings(inv) if f.code == "circular-dependency"]
    assert "a → b → c → a" in f.message and "Tencent" in f.message
    assert f.apps == ("a", "b", "c") and f.severity == "warning"


def test_unbounded_latency_cycle_finding() -> None:
    apps = tuple(App(a, 1.0) for a in "abc")
    deps = (Dependency("a", "b", 1.0, 2.0), Dependency("b", "a", 1.0, 0.75), Dependency("b", "c", 1.0))
    found = analysis.findings(Inventory(apps, deps))
    (f,) = [f for f in found if f.code == "unbounded-latency-cycle"]
    assert "a → b → a" in f.message and "multiply to 1.5" in f.message
    # A bounded loop (product 0.25) is a circular dependency but not unbounded.
    tame = (Dependency("a", "b", 1.0, 0.5), Dependency("b", "a", 1.0, 0.5))
    assert "unbounded-latency-cycle" not in codes(analysis.findings(Inventory(apps, tame)))


def test_isolated_and_unrehearsed() -> None:
    inv = estate(list("abc"), [("a", "b")], {"a": {"criticality": 1, "rehearsed": False}})
    found = analysis.findings(inv)
    assert codes(found) == ["isolated-app", "unrehearsed-critical"]
    assert found[0].apps == ("c",) and found[0].severity == "info"
    assert found[1].apps == ("a",)


def test_control_plane_in_one_wave() -> None:
    kinds = {"a": {"kind": "Control-Plane"}, "b": {"kind": "control-plane"}}
    inv = estate(list("abc"), [("c", "a"), ("c", "b")], kinds, waves=2)
    one = analysis.findings(inv, Plan.from_array(np.array([1, 1, 2]), 2))
    assert "control-plane-one-wave" in codes(one)
    spread = analysis.findings(inv, Plan.from_array(np.array([1, 2, 2]), 2))
    assert "control-plane-one-wave" not in codes(spread)


def test_critical_and_stateful_concentration() -> None:
    apps = {a: {"criticality": 1, "stateful": True} for a in "abcd"}
    inv = estate(list("abcde"), [("e", a) for a in "abcd"], apps, waves=3)
    heavy = analysis.findings(inv, Plan.from_array(np.array([1, 1, 1, 2, 3]), 3))
    assert codes(heavy).count("critical-concentration") == 1
    assert codes(heavy).count("stateful-concentration") == 1
    f = next(f for f in heavy if f.code == "critical-concentration")
    assert "wave 1" in f.message and f.apps == ("a", "b", "c")
    even = analysis.findings(inv, Plan.from_array(np.array([1, 1, 2, 2, 3]), 3))
    assert "critical-concentration" not in codes(even)
    # A malformed plan is left to metrics.evaluate.
    assert analysis.findings(inv, Plan.from_array(np.array([1]), 3)) == analysis.findings(inv)
