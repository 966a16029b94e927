"""metrics.py against hand-computed values on tiny estates, plus property tests (SPEC §3)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migplan import metrics
from migplan.model import App, Dependency, Inventory, Plan, Rule, Scenario


def estate(
    ids: str, deps: list[Dependency], apps: Mapping[str, Mapping[str, object]] | None = None, **scn: object
) -> Inventory:
    """Apps named by single letters (qps 10 unless overridden) with the given dependencies."""
    extra = apps or {}
    built = tuple(App(a, **{"qps": 10.0, **extra.get(a, {})}) for a in ids)  # type: ignore[arg-type]
    return Inventory(built, tuple(deps), Scenario(**scn))  # type: ignore[arg-type]


def plan(*waves: int, K: int) -> Plan:
    return Plan.from_array(np.array(waves), K)


def codes(ev: metrics.Evaluation) -> list[str]:
    return [f.code for f in ev.findings if f.severity == "error"]


# --- hand-computed figures ----------------------------------------------------------------------

CHAIN = [Dependency("a", "b", 100, 2.0), Dependency("b", "c", 50, 0.5)]


def test_chain_latency_per_period() -> None:
    """a→b (2 calls/request) → c (0.5), rtt 30: each period's split adds rtt·cpr, multiplied upstream."""
    inv = estate("abc", CHAIN, rtt_ms=30, waves=3)
    # waves a=1, b=2, c=3. Period 1: a→b split: E(a)=30·2=60. Period 2: b→c split: E(b)=15, E(a)=2·15=30.
    expected = np.array([[60.0, 30.0], [0.0, 15.0], [0.0, 0.0]])
    np.testing.assert_allclose(metrics.added_latency(inv, np.array([1, 2, 3])), expected)
    # Reversed order: period 1 splits b→c, period 2 splits a→b.
    expected_rev = np.array([[30.0, 60.0], [15.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(metrics.added_latency(inv, np.array([3, 2, 1])), expected_rev)


def test_chain_traffic_figures() -> None:
    inv = estate("abc", CHAIN, waves=3)
    w = np.array([1, 2, 3])
    np.testing.assert_array_equal(metrics.split_matrix(inv, w), [[True, False], [False, True]])
    np.testing.assert_allclose(metrics.cross_site_qps(inv, w), [100.0, 50.0])
    assert metrics.chatty_cost(inv, w) == 150.0
    # 4 kb per call: 100 qps · 4 · 8 / 1e6 = 0.0032 Gbps.
    np.testing.assert_allclose(metrics.link_load_gbps(inv, w), [0.0032, 0.0016])
    assert metrics.chatty_cost(inv, np.array([1, 3, 1])) == 100 * 2 + 50 * 2


def test_async_edge_adds_no_latency_but_traffic() -> None:
    inv = estate("ab", [Dependency("a", "b", 200, 3.0, sync=False, kb_per_call=10)], waves=3)
    w = np.array([1, 3])
    np.testing.assert_array_equal(metrics.added_latency(inv, w), np.zeros((2, 2)))
    assert metrics.chatty_cost(inv, w) == 400.0
    np.testing.assert_allclose(metrics.cross_site_qps(inv, w), [200.0, 200.0])
    np.testing.assert_allclose(metrics.link_load_gbps(inv, w), [200 * 10 * 8 / 1e6] * 2)


def test_bounded_cycle_is_a_geometric_series() -> None:
    """a ⇄ b with 0.5 calls each way, b→c split: E(b) = 30 + 0.5·E(a), E(a) = 0.5·E(b)
    ⇒ E(b) = 30·(1 + 0.25 + 0.25² + …) = 30/0.75 = 40, E(a) = 20."""
    deps = [Dependency("a", "b", 1, 0.5), Dependency("b", "a", 1, 0.5), Dependency("b", "c", 1, 1.0)]
    inv = estate("abc", deps, rtt_ms=30, waves=2, split_cycles=True)
    np.testing.assert_allclose(metrics.added_latency(inv, np.array([1, 1, 2])), [[20.0], [40.0], [0.0]])
    coef = metrics.latency_coefficients(inv)
    # L[a, a→b] = rtt·M[a,a]·0.5 = 30·(4/3)·0.5 = 20; L[a, b→a] = 30·M[a,b]·0.5 = 30·(2/3)·0.5 = 10.
    np.testing.assert_allclose(
        coef.matrix.toarray(), [[20.0, 10.0, 20.0], [10.0, 20.0, 40.0], [0.0, 0.0, 0.0]]
    )
    assert not coef.unbounded.any()
    assert metrics.latency_model(inv).divergent == ()


DIVERGENT = [
    Dependency("a", "b", 1, 2.0),
    Dependency("b", "a", 1, 0.5),  # product 1: unbounded once anything below is split
    Dependency("b", "c", 1, 1.0),
    Dependency("x", "a", 1, 1.0),
]


def test_divergent_cycle_is_unbounded_only_when_fed() -> None:
    inv = estate("abcx", DIVERGENT, rtt_ms=30, waves=2, split_cycles=True)
    # b→c split in period 1: a, b (the cycle) and x (calls into it) are unbounded; c is not.
    lat = metrics.added_latency(inv, np.array([1, 1, 2, 1]))
    assert np.isinf(lat[[0, 1, 3], 0]).all()
    assert lat[2, 0] == 0.0
    # Nothing split: zero everywhere, even though the cycle diverges.
    np.testing.assert_array_equal(metrics.added_latency(inv, np.array([1, 1, 1, 1])), np.zeros((4, 1)))
    # Only x→a split, above the cycle: x pays one round trip, the cycle is fed nothing.
    np.testing.assert_allclose(metrics.added_latency(inv, np.array([1, 1, 1, 2])), [[0], [0], [0], [30]])
    model = metrics.latency_model(inv)
    assert len(model.divergent) == 1
    cyc = model.divergent[0]
    assert cyc.apps == (0, 1)
    assert cyc.cycle_product == pytest.approx(1.0)
    assert cyc.spectral_radius == pytest.approx(1.0)


def test_divergent_cycle_in_evaluate_and_coefficients() -> None:
    inv = estate("abcx", DIVERGENT, rtt_ms=30, waves=2, split_cycles=True)
    ev = metrics.evaluate(inv, plan(1, 1, 2, 1, K=2))
    assert ev.violation_counts["latency"] == 3
    assert codes(ev).count("latency-unbounded") == 3
    msg = next(f for f in ev.findings if f.code == "latency-unbounded" and f.apps[0] == "x").message
    assert "a → b → a" in msg and "product 1" in msg
    coef = metrics.latency_coefficients(inv)
    np.testing.assert_array_equal(coef.unbounded, [True, True, False, True])
    # Splitting a→b, b→a or b→c makes the cycle unbounded; x→a lies above it.
    np.testing.assert_array_equal(coef.unbounded_edges, [True, True, True, False])
    assert metrics.evaluate(inv, plan(1, 1, 1, 1, K=2)).feasible


def test_two_divergent_cycles_are_told_apart() -> None:
    """x reaches cycle 1 only; splitting below cycle 2 must not make x unbounded."""
    deps = [
        Dependency("a", "b", 1, 1.0),
        Dependency("b", "a", 1, 1.0),
        Dependency("c", "d", 1, 1.0),
        Dependency("d", "c", 1, 1.0),
        Dependency("d", "e", 1, 1.0),
        Dependency("x", "a", 1, 1.0),
    ]
    inv = estate("abcdex", deps, waves=2, split_cycles=True)
    lat = metrics.added_latency(inv, np.array([1, 1, 1, 1, 2, 1]))
    np.testing.assert_array_equal(np.isinf(lat[:, 0]), [False, False, True, True, False, False])


def test_risk_scores_formula_and_override() -> None:
    apps: dict[str, dict[str, object]] = {
        "a": {"criticality": 1, "qps": 99.0, "stateful": True, "rehearsed": False, "kind": "Database"},
        "b": {"criticality": 5, "qps": 0.0},
        "c": {"risk": 7.0},
    }
    inv = estate("abc", [], apps, waves=2)
    # a: 5 · (1 + 0.25·log10(100)) · 1.5 · 1.5 · 1.3 = 21.9375; b: 1 · 1 = 1; c: given.
    np.testing.assert_allclose(metrics.risk_scores(inv), [21.9375, 1.0, 7.0])
    share = metrics.evaluate(inv, plan(1, 2, 2, K=2)).wave_risk_share
    np.testing.assert_allclose(share, [21.9375 / 29.9375, 8.0 / 29.9375])


def test_zero_total_risk_gives_zero_shares() -> None:
    inv = estate("ab", [], {"a": {"risk": 0.0}, "b": {"risk": 0.0}}, waves=2)
    np.testing.assert_array_equal(metrics.evaluate(inv, plan(1, 2, K=2)).wave_risk_share, [0.0, 0.0])


def test_objective_is_the_chatty_cost_plus_the_weighted_risk_term() -> None:
    """a -> b at 100 qps split once; risk 1 and 3 in waves 1 and 2: shares 0.25 and 0.75, so
    the term is weight x 1 % x 100 qps x 2 waves x (0.25 + 0.75) = 2 x weight."""
    inv = estate("ab", [Dependency("a", "b", 100.0)], {"a": {"risk": 1.0}, "b": {"risk": 3.0}}, waves=2)
    waves = plan(1, 2, K=2).array
    assert metrics.objective(inv, waves, 1.0) == pytest.approx(102.0)
    assert metrics.objective(inv, waves, 2.5) == pytest.approx(105.0)
    assert metrics.objective(inv, waves, 0.0) == 100.0
    riskless = estate("ab", [Dependency("a", "b", 100.0)], {"a": {"risk": 0.0}, "b": {"risk": 0.0}}, waves=2)
    assert metrics.objective(riskless, waves, 1.0) == 100.0


def test_wave_loads() -> None:
    apps: dict[str, dict[str, object]] = {
        "a": {"instances": 3, "data_gb": 10.0},
        "b": {"instances": 2},
        "c": {"data_gb": 5.0},
    }
    ev = metrics.evaluate(estate("abc", [], apps, waves=3), plan(1, 1, 3, K=3))
    np.testing.assert_array_equal(ev.wave_apps, [2, 0, 1])
    np.testing.assert_array_equal(ev.wave_instances, [5, 0, 1])
    np.testing.assert_array_equal(ev.wave_data_gb, [10, 0, 5])


# --- violations ---------------------------------------------------------------------------------


def test_clean_plan_is_feasible() -> None:
    inv = estate("abc", CHAIN, waves=3, link_gbps=1.0, capacity_apps=2, max_risk=0.9, callees_first=True)
    ev = metrics.evaluate(inv, plan(2, 1, 1, K=3))
    assert ev.feasible, [f.render() for f in ev.findings]
    assert ev.violations == 0
    assert set(ev.violation_counts) == set(metrics.VIOLATION_KINDS)


def test_wave_out_of_range_and_wrong_length() -> None:
    inv = estate("ab", [], waves=2)
    ev = metrics.evaluate(inv, plan(0, 3, K=2))
    assert ev.violation_counts["wave"] == 2
    assert codes(ev) == ["wave-out-of-range"] * 2
    short = metrics.evaluate(inv, plan(1, K=2))
    assert short.violation_counts["wave"] == 1 and codes(short) == ["plan-length"]
    assert not short.feasible


def test_plan_with_other_k_gets_a_warning() -> None:
    ev = metrics.evaluate(estate("ab", [], waves=3), plan(1, 2, K=2))
    assert ev.feasible
    assert [f.code for f in ev.findings] == ["plan-waves"]


def test_capacity_violation_names_wave_and_resource() -> None:
    inv = estate("abc", [], {"a": {"instances": 5}}, waves=2, capacity_instances=(4, 10), capacity_apps=2)
    ev = metrics.evaluate(inv, plan(1, 2, 2, K=2))
    assert ev.violation_counts["capacity"] == 1
    (f,) = [f for f in ev.findings if f.code == "capacity"]
    assert "wave 1" in f.message and "instances" in f.message and f.value == "5"
    assert metrics.evaluate(inv, plan(2, 1, 1, K=2)).violation_counts["capacity"] == 0
    # A capacity equal to the load (up to rounding) holds.
    exact = estate("ab", [], {"a": {"data_gb": 0.1 + 0.2}}, waves=1, capacity_data_gb=0.3)
    assert metrics.evaluate(exact, plan(1, 1, K=1)).feasible


def test_pin_and_window() -> None:
    apps = {"a": {"pinned_wave": 2}, "b": {"earliest_wave": 2}, "c": {"latest_wave": 1}}
    inv = estate("abc", [], apps, waves=3)
    ev = metrics.evaluate(inv, plan(1, 1, 3, K=3))
    assert ev.violation_counts["pin"] == 1 and ev.violation_counts["window"] == 2
    assert metrics.evaluate(inv, plan(2, 3, 1, K=3)).feasible


def test_group_and_cycle_split() -> None:
    deps = [Dependency("a", "b", 1, sync=False), Dependency("b", "a", 1, sync=False)]
    apps = {"c": {"group": "g"}, "d": {"group": "g"}}
    inv = estate("abcd", deps, apps, waves=2)
    ev = metrics.evaluate(inv, plan(1, 2, 1, 2, K=2))
    assert ev.violation_counts["group"] == 1 and ev.violation_counts["cycle"] == 1
    assert {"group-split", "cycle-split"} <= set(codes(ev))
    allowed = inv.with_scenario(inv.scenario.with_overrides(split_cycles=True))
    assert metrics.evaluate(allowed, plan(1, 2, 1, 1, K=2)).feasible


def test_rules() -> None:
    rules = (
        Rule("before", ("a", "b", "c")),
        Rule("together", ("a", "d")),
        Rule("apart", ("b", "c", "d")),
    )
    inv = estate("abcd", [], waves=3, rules=rules)
    assert metrics.evaluate(inv, plan(1, 2, 3, 1, K=3)).feasible
    ev = metrics.evaluate(inv, plan(2, 2, 1, 1, K=3))
    # before: a<b fails, b<c fails (2); together a,d fails (1); apart: c,d share wave 1 (1).
    assert ev.violation_counts["rule"] == 4
    assert sorted(codes(ev)) == ["rule-apart", "rule-before", "rule-before", "rule-together"]


def test_rule_naming_an_unknown_app_is_a_warning() -> None:
    inv = estate("ab", [], waves=2, rules=(Rule("before", ("a", "zz")),))
    ev = metrics.evaluate(inv, plan(2, 1, K=2))
    assert ev.feasible
    assert [f.code for f in ev.findings] == ["rule-unknown-app"]


def test_callees_first() -> None:
    inv = estate("abc", CHAIN, waves=3, callees_first=True)
    ev = metrics.evaluate(inv, plan(1, 2, 3, K=3))  # callers before callees: both edges wrong
    assert ev.violation_counts["rule"] == 2
    assert codes(ev).count("callees-first") == 2


def test_link_violation() -> None:
    inv = estate("ab", [Dependency("a", "b", 1e6, sync=False, kb_per_call=4)], waves=3, link_gbps=30.0)
    ev = metrics.evaluate(inv, plan(1, 3, K=3))  # 1e6 · 4 · 8 / 1e6 = 32 Gbps in both periods
    assert ev.violation_counts["link"] == 2
    np.testing.assert_allclose(ev.link_load_gbps, [32.0, 32.0])


def test_latency_violation_names_worst_period_and_cause() -> None:
    apps = {"a": {"latency_budget_ms": 40.0}}
    inv = estate("abc", CHAIN, apps, rtt_ms=30, waves=3)
    ev = metrics.evaluate(inv, plan(1, 2, 3, K=3))
    # a: 60 ms in period 1 (over 40), 30 in period 2 (fine); b, c within the default 100.
    assert ev.violation_counts["latency"] == 1
    (f,) = [f for f in ev.findings if f.code == "latency"]
    assert f.apps == ("a",)
    assert "+60.0 ms" in f.message and "period 1" in f.message and "a → b" in f.message
    ev2 = metrics.evaluate(inv, plan(3, 2, 1, K=3))  # a: 30 then 60, worst is period 2 via a→b
    (f2,) = [f for f in ev2.findings if f.code == "latency"]
    assert "period 2" in f2.message and "a → b" in f2.message
    np.testing.assert_array_equal(ev2.latency_violations, [[False, True], [False, False], [False, False]])


def test_latency_violation_blames_a_downstream_call() -> None:
    deps = [Dependency("a", "b", 1, 4.0), Dependency("b", "c", 1, 1.0)]
    inv = estate("abc", deps, {"a": {"latency_budget_ms": 100.0}}, rtt_ms=30, waves=2)
    ev = metrics.evaluate(inv, plan(1, 1, 2, K=2))  # only b→c split: a gets 4·30 = 120
    (f,) = [f for f in ev.findings if f.code == "latency"]
    assert "b → c" in f.message and "120.0 ms" in f.message and "downstream" in f.message


def test_risk_violation() -> None:
    inv = estate("abcd", [], waves=2, max_risk=0.6)
    assert metrics.evaluate(inv, plan(1, 1, 2, 2, K=2)).feasible
    ev = metrics.evaluate(inv, plan(1, 1, 1, 2, K=2))
    assert ev.violation_counts["risk"] == 1 and codes(ev) == ["risk"]


# --- coefficients ----------------------------------------------------------------------------


def test_coefficients_tolerance_drops_safely() -> None:
    deps = [Dependency("a", "b", 1, 0.01), Dependency("b", "c", 1, 1.0), Dependency("a", "c", 1, 1.0)]
    inv = estate("abc", deps, rtt_ms=30, waves=2)
    exact = metrics.latency_coefficients(inv)
    coarse = metrics.latency_coefficients(inv, tol_ms=0.5)
    # L[a, a→b] = 0.3 and L[a, b→c] = 0.3 are dropped (< 0.5 ms); their mass is reported.
    assert coarse.nnz == exact.nnz - 2
    np.testing.assert_allclose(coarse.dropped_ms, [0.6, 0.0, 0.0])
    assert coarse.shape == (3, 3)
    np.testing.assert_allclose((coarse @ np.ones(3)) + coarse.dropped_ms, exact @ np.ones(3))


def test_empty_inventory_and_one_wave() -> None:
    empty = estate("", [], waves=3)
    ev = metrics.evaluate(empty, plan(K=3))
    assert ev.feasible and ev.added_latency.shape == (0, 2)
    one = estate("ab", CHAIN[:1], waves=1)
    ev1 = metrics.evaluate(one, plan(1, 1, K=1))
    assert ev1.feasible and ev1.cross_site_qps.shape == (0,) and ev1.chatty_cost == 0.0


# --- properties -------------------------------------------------------------------------------

CPR = st.sampled_from([0.0, 0.3, 0.5, 1.0, 1.5, 2.0])


@st.composite
def estates(draw: st.DrawFn, max_apps: int = 7) -> tuple[Inventory, np.ndarray]:
    n = draw(st.integers(1, max_apps))
    K = draw(st.integers(1, 5))
    ids = [f"s{i}" for i in range(n)]
    pairs = draw(
        st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] != p[1]),
            unique=True,
            max_size=3 * n,
        )
    )
    deps = tuple(
        Dependency(
            ids[u],
            ids[v],
            qps=draw(st.floats(0, 1000)),
            calls_per_request=draw(CPR),
            sync=draw(st.booleans()),
            kb_per_call=draw(st.sampled_from([0.0, 1.0, 4.0])),
        )
        for u, v in pairs
    )
    apps = tuple(App(i, qps=draw(st.floats(0, 1e4)), criticality=draw(st.integers(1, 5))) for i in ids)
    rtt = draw(st.sampled_from([1.0, 30.0]))
    inv = Inventory(apps, deps, Scenario(waves=K, rtt_ms=rtt, split_cycles=True))
    waves = np.array(draw(st.lists(st.integers(1, K), min_size=n, max_size=n)), dtype=np.int64)
    return inv, waves


SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(estates())
def test_chatty_cost_is_the_sum_of_cross_site_qps(case: tuple[Inventory, np.ndarray]) -> None:
    inv, w = case
    assert metrics.chatty_cost(inv, w) == pytest.approx(
        metrics.cross_site_qps(inv, w).sum(), rel=1e-9, abs=1e-9
    )


@SETTINGS
@given(estates())
def test_one_wave_has_no_traffic_and_no_latency(case: tuple[Inventory, np.ndarray]) -> None:
    inv, w = case
    same = np.full_like(w, w[0])
    ev = metrics.evaluate(inv, Plan.from_array(same, inv.K))
    assert ev.chatty_cost == 0.0
    assert not ev.cross_site_qps.any() and not ev.link_load_gbps.any()
    assert not ev.added_latency.any()


@SETTINGS
@given(estates())
def test_reversing_the_waves_keeps_chatty_cost(case: tuple[Inventory, np.ndarray]) -> None:
    inv, w = case
    assert metrics.chatty_cost(inv, inv.K + 1 - w) == pytest.approx(metrics.chatty_cost(inv, w))
    np.testing.assert_allclose(
        metrics.cross_site_qps(inv, inv.K + 1 - w), metrics.cross_site_qps(inv, w)[::-1]
    )


@SETTINGS
@given(estates())
def test_coefficients_agree_with_added_latency(case: tuple[Inventory, np.ndarray]) -> None:
    inv, w = case
    coef = metrics.latency_coefficients(inv)
    split = metrics.split_matrix(inv, w)
    lat = metrics.added_latency(inv, w)
    linear = coef @ split.astype(np.float64)
    finite = np.isfinite(lat)
    np.testing.assert_allclose(linear[finite], lat[finite], rtol=1e-9, atol=1e-9)
    # Infinite only for apps flagged unbounded, and only when an unbounded edge is split.
    assert coef.unbounded[np.flatnonzero(~finite.all(axis=1))].all()
    fed = coef.unbounded_edges @ split
    assert not (~finite & ~(fed[None, :] > 0)).any()
    assert (coef.dropped_ms == 0).all()


@SETTINGS
@given(estates())
def test_added_latency_matches_a_dense_solve(case: tuple[Inventory, np.ndarray]) -> None:
    """Independent oracle: E = (I − C)^-1 D with numpy, where the spectral radius is below 1."""
    inv, w = case
    n = inv.n
    C = np.zeros((n, n))
    cpr = np.where(inv.edge_sync, inv.edge_calls, 0.0)
    np.add.at(C, (inv.caller, inv.callee), cpr)
    if n and np.abs(np.linalg.eigvals(C)).max() >= 1 - 1e-6:
        return
    split = metrics.split_matrix(inv, w).astype(float)
    B = np.zeros((n, inv.m))
    B[inv.caller, np.arange(inv.m)] = cpr
    expected = np.linalg.solve(np.eye(n) - C, inv.scenario.rtt_ms * B @ split)
    np.testing.assert_allclose(metrics.added_latency(inv, w), expected, rtol=1e-9, atol=1e-9)


@SETTINGS
@given(estates())
def test_evaluate_is_deterministic(case: tuple[Inventory, np.ndarray]) -> None:
    inv, w = case
    p = Plan.from_array(w, inv.K)
    first = metrics.evaluate(inv, p)
    fresh = Inventory(inv.apps, inv.dependencies, inv.scenario)  # no shared caches
    second = metrics.evaluate(fresh, p)
    assert first.findings == second.findings
    assert first.violation_counts == second.violation_counts
    assert first.chatty_cost == second.chatty_cost
    np.testing.assert_array_equal(first.added_latency, second.added_latency)
    np.testing.assert_array_equal(first.wave_risk_share, second.wave_risk_share)
    assert math.isclose(float(first.wave_risk_share.sum()), 1.0, rel_tol=1e-9) or not inv.n


@SETTINGS
@given(estates(), st.sampled_from([0.5, 5.0, 40.0]))
def test_dropped_mass_bounds_the_error(case: tuple[Inventory, np.ndarray], tol: float) -> None:
    """With entries below tol dropped: L_tol·split <= exact <= L_tol·split + dropped (safe budgets)."""
    inv, w = case
    coarse = metrics.latency_coefficients(inv, tol)
    exact = metrics.latency_coefficients(inv)
    split = metrics.split_matrix(inv, w).astype(np.float64)
    low, true = coarse @ split, exact @ split
    assert (coarse.matrix.data >= tol).all()
    assert (low <= true + 1e-9).all()
    assert (true <= low + coarse.dropped_ms[:, None] + 1e-9).all()


def test_large_divergent_ring_is_named() -> None:
    """40 apps in a ring with 1 call each (product 1): the greedy walk names the whole ring."""
    ids = [f"r{i:02d}" for i in range(40)]
    deps = [Dependency(ids[i], ids[(i + 1) % 40], 1.0, 1.0) for i in range(40)]
    apps = tuple(App(i, 1.0) for i in ids)
    inv = Inventory(apps, tuple(deps), Scenario(waves=2, split_cycles=True))
    (cyc,) = metrics.latency_model(inv).divergent
    assert len(cyc.cycle) == 40 and cyc.cycle_product == pytest.approx(1.0)
    lat = metrics.added_latency(inv, np.array([1] * 39 + [2]))
    assert np.isinf(lat).all()


def test_inventory_still_pickles_after_evaluate() -> None:
    """Caches ride on the inventory; they must not stop it crossing a process boundary."""
    import copy
    import pickle

    inv = estate("abc", CHAIN, rtt_ms=30, waves=3)
    first = metrics.evaluate(inv, plan(1, 2, 3, K=3))
    metrics.latency_coefficients(inv, 1.0)
    for clone in (pickle.loads(pickle.dumps(inv)), copy.deepcopy(inv), copy.copy(inv)):
        again = metrics.evaluate(clone, plan(1, 2, 3, K=3))
        np.testing.assert_array_equal(again.added_latency, first.added_latency)


def random_estate(n: int, seed: int, loops: int, divergent: bool) -> Inventory:
    """A deep random estate: app i calls 1-3 apps among the next 5, plus bounded 2-app loops
    (cpr 0.5 each way) and optionally one runaway loop (cpr 1 each way)."""
    rng = np.random.default_rng(seed)
    ids = [f"x{i:04d}" for i in range(n)]
    pairs: dict[tuple[int, int], float] = {}
    for a in range(n - 1):
        for b in rng.integers(a + 1, min(n, a + 6), size=int(rng.integers(1, 4))):
            pairs[(a, int(b))] = float(rng.choice([0.2, 0.5, 1.0, 1.5]))
    for a in rng.integers(0, n - 1, size=loops):
        pairs[(int(a), int(a) + 1)] = 0.5
        pairs[(int(a) + 1, int(a))] = 0.5
    if divergent:
        pairs[(n // 2, n // 2 + 1)] = 1.0
        pairs[(n // 2 + 1, n // 2)] = 1.0
    deps = tuple(
        Dependency(ids[u], ids[v], 1.0, c, sync=bool(rng.random() < 0.85))
        for (u, v), c in sorted(pairs.items())
    )
    apps = tuple(App(i, 1.0) for i in ids)
    return Inventory(apps, deps, Scenario(waves=6, split_cycles=True))


@pytest.mark.parametrize(("seed", "divergent"), [(0, False), (1, True)])
def test_coefficients_agree_on_a_deep_estate(seed: int, divergent: bool) -> None:
    """Dozens of levels exercise the level-by-level build; a dense solve is the oracle."""
    inv = random_estate(400, seed, loops=15, divergent=divergent)
    model = metrics.latency_model(inv)
    assert model.level.max() > 50
    assert len(model.divergent) == int(divergent)
    coef = metrics.latency_coefficients(inv)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        w = rng.integers(1, 7, inv.n)
        split = metrics.split_matrix(inv, w)
        lat = metrics.added_latency(inv, w)
        finite = np.isfinite(lat)
        assert finite.all() != divergent
        np.testing.assert_allclose((coef @ split.astype(float))[finite], lat[finite], rtol=1e-9, atol=1e-9)
        if not divergent:
            cpr = np.where(inv.edge_sync, inv.edge_calls, 0.0)
            C = np.zeros((inv.n, inv.n))
            np.add.at(C, (inv.caller, inv.callee), cpr)
            B = np.zeros((inv.n, inv.m))
            B[inv.caller, np.arange(inv.m)] = cpr
            expected = np.linalg.solve(np.eye(inv.n) - C, 30.0 * B @ split)
            np.testing.assert_allclose(lat, expected, rtol=1e-8, atol=1e-8)


def _chain(n: int) -> Inventory:
    """n apps calling down a chain: app i reaches the n - 1 - i calls below it."""
    apps = tuple(App(f"s{i}", 1.0) for i in range(n))
    deps = tuple(Dependency(f"s{i}", f"s{i + 1}", 1.0) for i in range(n - 1))
    return Inventory(apps, deps, Scenario(waves=2))


def test_coefficients_past_the_limit_stop_with_the_count_instead_of_filling_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entries = 20 * 19 // 2  # every app reaches every call below it
    monkeypatch.setattr(metrics, "MAX_COEFFICIENTS", entries)
    assert metrics.latency_coefficients(_chain(20)).nnz == entries
    monkeypatch.setattr(metrics, "MAX_COEFFICIENTS", entries - 1)
    with pytest.raises(metrics.LatencyModelTooLargeError) as raised:
        metrics.latency_coefficients(_chain(20))
    assert raised.value.limit == entries - 1 and raised.value.entries > entries - 1
    assert f"more than {entries - 1:,} coefficients" in str(raised.value)


def test_past_the_limit_the_planner_keeps_the_coefficients_that_matter_and_bounds_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At 0.01 calls per request a call three levels down adds 3e-7 ms: left out past the limit."""
    apps = tuple(App(f"s{i}", 1.0) for i in range(20))
    deps = tuple(Dependency(f"s{i}", f"s{i + 1}", 1.0, calls_per_request=0.01) for i in range(19))
    inv = Inventory(apps, deps, Scenario(waves=2))
    exact = metrics.latency_coefficients(Inventory(apps, deps, Scenario(waves=2)))
    assert exact.nnz == 20 * 19 // 2
    assert metrics.planner_coefficients(inv) is metrics.latency_coefficients(inv)  # within the limit
    monkeypatch.setattr(metrics, "MAX_COEFFICIENTS", 100)
    fresh = Inventory(apps, deps, Scenario(waves=2))
    kept = metrics.planner_coefficients(fresh)
    assert kept.nnz <= 100 and kept.tol_ms == metrics.FALLBACK_TOL_MS
    assert kept.matrix.data.min() >= metrics.FALLBACK_TOL_MS
    left_out = np.asarray(exact.matrix.sum(axis=1)).ravel() - np.asarray(kept.matrix.sum(axis=1)).ravel()
    assert left_out.max() > 0  # something was left out ...
    assert (kept.dropped_ms >= left_out - 1e-15).all()  # ... and its bound covers it
    assert kept.dropped_ms.max() < 1e-5
    # one path to each call and fewer than 1 call per request: each kept entry is the exact one,
    # and every exact entry of FALLBACK_TOL_MS or more is kept
    dense, full = kept.matrix.toarray(), exact.matrix.toarray()
    assert np.allclose(dense[dense > 0], full[dense > 0])
    assert ((dense > 0) == (full >= metrics.FALLBACK_TOL_MS)).all()
    monkeypatch.setattr(metrics, "MAX_COEFFICIENTS", 10)  # even the ones that matter do not fit
    with pytest.raises(metrics.LatencyModelTooLargeError) as raised:
        metrics.planner_coefficients(Inventory(apps, deps, Scenario(waves=2)))
    assert "sync call it reaches that adds 1e-05 ms or more)" in str(raised.value)


def test_evaluate_past_the_limit_reports_a_broken_budget_instead_of_raising(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: ``migplan evaluate`` on a 50,000-app plan that broke a budget ended in a
    traceback (the finding's "largest share" read every coefficient)."""
    apps = (App("s0", 1.0, latency_budget_ms=0.2), *(App(f"s{i}", 1.0) for i in range(1, 20)))
    deps = tuple(Dependency(f"s{i}", f"s{i + 1}", 1.0, calls_per_request=0.01) for i in range(19))
    waves = Plan.from_array([1] + [2] * 19, 2)  # s0 -> s1 split: 0.3 ms over s0's 0.2 ms
    monkeypatch.setattr(metrics, "MAX_COEFFICIENTS", 100)  # 190 in all, 54 of 1e-5 ms or more
    (finding,) = metrics.evaluate(Inventory(apps, deps, Scenario(waves=2)), waves).findings
    assert finding.code == "latency" and "largest share 0.3 ms from the split call s0 → s1" in finding.message
    monkeypatch.setattr(metrics, "MAX_COEFFICIENTS", 10)  # not even those fit
    (finding,) = metrics.evaluate(Inventory(apps, deps, Scenario(waves=2)), waves).findings
    assert finding.code == "latency" and "over its 0.2 ms budget" in finding.message
    assert "largest share" not in finding.message


def test_figures_in_messages_stay_readable() -> None:
    # a deep call chain's latency reached 3.6e20 ms, which used to print as 21 digits
    assert [metrics.number_text(x) for x in (29.5, 1234567.0, 3.6e20)] == ["29.5", "1,234,567", "3.6e+20"]
