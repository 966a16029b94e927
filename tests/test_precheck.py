"""Precheck: every check fires on a tiny infeasible inventory and stays silent on a feasible twin.

Soundness is proven, not assumed: ``metrics.evaluate`` (the single source of truth for
feasibility) is run on all K^n plans; every inventory precheck rejects has no feasible plan,
and every twin it accepts has one.  A hypothesis property does the same on random estates.
"""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migplan.metrics import evaluate
from migplan.model import App, Dependency, Finding, Inventory, Plan, Rule, RuleKind, Scenario
from migplan.solve.blocks import build_blocks
from migplan.solve.cpsat import latency_matrix
from migplan.solve.forced import contract_unsplittable
from migplan.solve.precheck import precheck


def _inv(apps: list[App], deps: list[Dependency] | None = None, **scenario: object) -> Inventory:
    return Inventory(tuple(apps), tuple(deps or ()), Scenario(**scenario))  # type: ignore[arg-type]


def _check(inv: Inventory) -> tuple[Finding, ...]:
    return precheck(inv, build_blocks(inv))


def _feasible_plan(inv: Inventory) -> tuple[int, ...] | None:
    """Brute force over all K^n plans (n <= 6, K <= 3): the first feasible one, or None."""
    assert inv.n <= 6 and inv.K <= 3
    for waves in itertools.product(range(1, inv.K + 1), repeat=inv.n):
        if evaluate(inv, Plan(waves, inv.K)).feasible:
            return waves
    return None


def _assert_pair(bad: Inventory, good: Inventory, code: str, apps: set[str], *numbers: str) -> Finding:
    """bad: precheck fires with `code` naming `apps` and the numbers, and no plan is feasible;
    good: precheck is silent and a feasible plan exists."""
    found = _check(bad)
    assert [f.code for f in found] == [code], [f.message for f in found]
    finding = found[0]
    assert finding.severity == "error"
    assert apps <= set(finding.apps), finding.apps
    for number in numbers:
        assert number in finding.message, finding.message
    assert len(finding.message) < 400
    assert _feasible_plan(bad) is None
    assert _check(good) == ()
    assert _feasible_plan(good) is not None
    return finding


# ---- 7 / 1: pins beyond K, conflicts inside a must-move-together set


def test_pin_beyond_k_after_waves_override() -> None:
    bad = _inv([App("a", 1, pinned_wave=5), App("b", 1)], waves=3)
    good = _inv([App("a", 1, pinned_wave=3), App("b", 1)], waves=3)
    f = _assert_pair(bad, good, "wave-out-of-range", {"a"}, "wave 5", "3 waves")
    assert f.value == "5"


def test_group_conflict_is_passed_through() -> None:
    bad = _inv([App("a", 1, group="g", pinned_wave=1), App("b", 1, group="g", pinned_wave=2)], waves=2)
    good = _inv([App("a", 1, group="g", pinned_wave=2), App("b", 1, group="g", pinned_wave=2)], waves=2)
    _assert_pair(bad, good, "no-wave-fits", {"a", "b"}, "wave 1", "wave 2")


# ---- 2: capacity


def test_group_too_big_for_any_wave() -> None:
    apps = [App("a", 1, instances=60, group="payments"), App("c", 1)]
    bad = _inv([*apps, App("b", 1, instances=50, group="payments")], waves=2, capacity_instances=100)
    good = _inv([*apps, App("b", 1, instances=40, group="payments")], waves=2, capacity_instances=100)
    _assert_pair(bad, good, "capacity-block-instances", {"a", "b"}, "group 'payments'", "110", "100")


def test_pinned_load_over_one_wave() -> None:
    a = App("a", 1, data_gb=60, pinned_wave=2)
    bad = _inv([a, App("b", 1, data_gb=50, pinned_wave=2)], waves=2, capacity_data_gb=(200, 100))
    good = _inv([a, App("b", 1, data_gb=50, pinned_wave=1)], waves=2, capacity_data_gb=(200, 100))
    _assert_pair(bad, good, "capacity-wave-data_gb", {"a", "b"}, "wave 2", "110", "100")


def test_prefix_of_waves_overloaded() -> None:
    """Three apps of 60 instances must move by wave 2; waves 1..2 hold 2 × 80 = 160 < 180."""
    early = [App(x, 1, instances=60, latest_wave=2) for x in "ab"]
    bad = _inv([*early, App("c", 1, instances=60, latest_wave=2)], waves=3, capacity_instances=80)
    good = _inv([*early, App("c", 1, instances=60)], waves=3, capacity_instances=80)
    _assert_pair(bad, good, "capacity-range-instances", {"a", "b", "c"}, "waves 1..2", "180", "160")


def test_suffix_of_waves_overloaded() -> None:
    late = [App(x, 1, earliest_wave=2) for x in "abc"]
    bad = _inv(late, waves=3, capacity_apps=(5, 1, 1))
    good = _inv(late, waves=3, capacity_apps=(5, 1, 2))
    _assert_pair(bad, good, "capacity-range-apps", {"a", "b", "c"}, "waves 2..3", "3 apps", "2 apps")


def test_total_capacity() -> None:
    apps = [App(f"a{i}", 1) for i in range(5)]
    _assert_pair(
        _inv(apps, waves=2, capacity_apps=2),
        _inv(apps, waves=3, capacity_apps=2),
        "capacity-total-apps",
        set(),
        "5 apps",
        "4 apps",
    )


# ---- 3: before rules and callees_first


def test_cycle_of_before_rules() -> None:
    apps = [App(x, 1) for x in "abc"]
    bad = _inv(apps, waves=3, rules=(Rule("before", ("a", "b")), Rule("before", ("b", "c", "a"))))
    good = _inv(apps, waves=3, rules=(Rule("before", ("a", "b")), Rule("before", ("b", "c"))))
    _assert_pair(bad, good, "order-cycle", {"a", "b", "c"}, "a before b", "c before a")


def test_cycle_of_before_rules_through_a_group() -> None:
    apps = [App("a", 1, group="g"), App("b", 1, group="g"), App("c", 1)]
    bad = _inv(apps, waves=3, rules=(Rule("before", ("a", "c")), Rule("before", ("c", "b"))))
    good = _inv(apps, waves=3, rules=(Rule("before", ("a", "c")),))
    _assert_pair(bad, good, "order-cycle", {"a", "b", "c"}, "a before c; c before b; b moves with a")


def test_before_chain_longer_than_waves_left() -> None:
    rule = (Rule("before", ("a", "b", "c")),)
    bad = _inv([App("a", 1, pinned_wave=2), App("b", 1), App("c", 1)], waves=3, rules=rule)
    good = _inv([App("a", 1, pinned_wave=1), App("b", 1), App("c", 1)], waves=3, rules=rule)
    _assert_pair(bad, good, "order-too-long", {"a", "b", "c"}, "pinned to wave 2", "waves 2..4", "3 waves")


def test_callees_first_against_pins_names_the_call() -> None:
    deps = [Dependency("web", "api", 5), Dependency("api", "db", 5)]
    bad_apps = [App("web", 1, pinned_wave=1), App("api", 1), App("db", 1, pinned_wave=2)]
    good_apps = [App("web", 1, pinned_wave=2), App("api", 1), App("db", 1, pinned_wave=1)]
    bad = _inv(bad_apps, deps, waves=2, callees_first=True)
    good = _inv(good_apps, deps, waves=2, callees_first=True)
    f = _assert_pair(
        bad,
        good,
        "order-too-long",
        {"web", "api", "db"},
        "db no later than its caller api",
        "api no later than its caller web",
    )
    assert "wave 1" in f.message and "wave 2" in f.message


def test_callees_first_tightens_ranges_for_later_checks() -> None:
    """db must move by wave 1 (its caller is pinned there), so wave 1 takes both apps."""
    deps = [Dependency("web", "db", 5)]
    apps = [App("web", 1, pinned_wave=1), App("db", 1)]
    bad = _inv(apps, deps, waves=2, callees_first=True, capacity_apps=1)
    good = _inv(apps, deps, waves=2, callees_first=False, capacity_apps=1)
    _assert_pair(bad, good, "capacity-wave-apps", {"web", "db"}, "wave 1", "2 apps", "1 app")


def test_before_inside_a_group_names_the_group() -> None:
    rule = (Rule("before", ("a", "b")),)
    bad = _inv([App("a", 1, group="g"), App("b", 1, group="g")], waves=2, rules=rule)
    good = _inv([App("a", 1, group="g"), App("b", 1, group="h")], waves=2, rules=rule)
    _assert_pair(bad, good, "before-same-wave", {"a", "b"}, "group 'g'")


def test_before_inside_a_circular_dependency_names_the_cycle() -> None:
    deps = [Dependency("a", "b", 1, sync=False), Dependency("b", "a", 1, sync=False)]
    rule = (Rule("before", ("a", "b")),)
    bad = _inv([App("a", 1), App("b", 1)], deps, waves=2, rules=rule)
    good = _inv([App("a", 1), App("b", 1)], deps, waves=2, rules=rule, split_cycles=True)
    _assert_pair(bad, good, "before-same-wave", {"a", "b"}, "circular dependency a → b → a")


def test_before_rules_tighten_ranges_for_capacity() -> None:
    """before(a, b) in 2 waves fixes a to wave 1, so a pinned c cannot share it with a 1-app wave."""
    apps = [App("a", 1), App("b", 1), App("c", 1, pinned_wave=1)]
    rule = (Rule("before", ("a", "b")),)
    bad = _inv(apps, waves=2, capacity_apps=(1, 2), rules=rule)
    good = _inv(apps, waves=2, capacity_apps=(2, 1), rules=rule)
    f = _assert_pair(bad, good, "capacity-wave-apps", {"a", "c"}, "wave 1", "2 apps", "1 app")
    assert "a (1 app, wave 1 by the order rules)" in f.message


def test_many_order_cycles_are_summarised() -> None:
    apps = [App(f"{x}{i}", 1) for i in range(7) for x in "xy"]
    rules = tuple(
        r for i in range(7) for r in (Rule("before", (f"x{i}", f"y{i}")), Rule("before", (f"y{i}", f"x{i}")))
    )
    found = _check(_inv(apps, waves=3, rules=rules))
    assert [f.code for f in found] == ["order-cycle"] * 6
    assert found[-1].message.startswith("2 more cycles")
    assert set(found[-1].apps) == {"x5", "y5", "x6", "y6"}


def test_rule_naming_an_unknown_app_is_ignored_like_the_evaluator_does() -> None:
    inv = _inv([App("a", 1), App("b", 1)], waves=1, rules=(Rule("apart", ("a", "b", "ghost")),))
    assert _check(inv) == ()
    assert _feasible_plan(inv) == (1, 1)


# ---- 4: apart rules


def test_apart_inside_a_together_rule() -> None:
    apps = [App(x, 1) for x in "abc"]
    apart = Rule("apart", ("a", "c"))
    bad = _inv(apps, waves=2, rules=(Rule("together", ("a", "b", "c")), apart))
    good = _inv(apps, waves=2, rules=(Rule("together", ("a", "b")), apart))
    _assert_pair(bad, good, "apart-same-wave", {"a", "c"}, "together rule")


def test_apart_pigeonhole() -> None:
    rule = (Rule("apart", ("a", "b", "c")),)
    bad = _inv([App(x, 1, latest_wave=2) for x in "abc"], waves=3, rules=rule)
    good = _inv([App("a", 1, latest_wave=2), App("b", 1, latest_wave=2), App("c", 1)], waves=3, rules=rule)
    _assert_pair(bad, good, "apart-too-few-waves", {"a", "b", "c"}, "3 different waves", "2 waves")


# ---- 5: max_risk


def test_too_few_waves_for_max_risk() -> None:
    apps = [App(x, 1, risk=1.0) for x in "abc"]
    _assert_pair(
        _inv(apps, waves=3, max_risk=0.3),
        _inv(apps, waves=3, max_risk=0.34),
        "risk-too-few-waves",
        set(),
        "90.0%",
        "4 waves",
    )


def test_zero_max_risk() -> None:
    found = _check(_inv([App("a", 1, risk=1.0)], waves=2, max_risk=0.0))
    assert [f.code for f in found] == ["risk-too-few-waves"]
    assert "above 0" in found[0].message


def test_one_group_over_max_risk() -> None:
    c = App("c", 1, risk=1.0)
    bad = _inv([App("a", 1, risk=3.0, group="x"), App("b", 1, risk=1.0, group="x"), c], waves=3, max_risk=0.5)
    good = _inv([App("a", 1, risk=3.0, group="x"), App("b", 1, risk=1.0), c], waves=3, max_risk=0.65)
    _assert_pair(bad, good, "risk-block", {"a", "b"}, "80.0%", "50.0%")


def test_pinned_risk_over_max_risk() -> None:
    free = [App("b", 1, risk=1.0), App("c", 1, risk=1.0)]
    a = App("a", 1, risk=1.0, pinned_wave=1)
    bad = _inv([a, App("d", 1, risk=1.0, pinned_wave=1), *free], waves=3, max_risk=0.4)
    good = _inv([a, App("d", 1, risk=1.0, pinned_wave=2), *free], waves=3, max_risk=0.5)
    _assert_pair(bad, good, "risk-wave", {"a", "d"}, "wave 1", "50.0%", "40.0%")


# ---- 6: splits forced by the ranges


def test_link_overloaded_by_forced_split() -> None:
    dep = [Dependency("a", "b", 1000, kb_per_call=100)]  # 0.8 Gbps while split
    bad = _inv([App("a", 1, pinned_wave=1), App("b", 1, pinned_wave=2)], dep, waves=3, link_gbps=0.5)
    good = _inv([App("a", 1, pinned_wave=1), App("b", 1, latest_wave=2)], dep, waves=3, link_gbps=0.5)
    _assert_pair(bad, good, "link-forced", {"a", "b"}, "0.8 Gbps", "0.5 Gbps", "period 1")


def test_direct_call_over_budget() -> None:
    dep = [Dependency("user-svc", "mysql-user", 10, calls_per_request=2)]
    db = App("mysql-user", 1, pinned_wave=3)
    bad = _inv([App("user-svc", 1, latency_budget_ms=40, pinned_wave=1), db], dep, waves=3)
    good = _inv([App("user-svc", 1, latency_budget_ms=60, pinned_wave=1), db], dep, waves=3)
    f = _assert_pair(
        bad, good, "latency-forced", {"user-svc", "mysql-user"}, "40 ms", "60 ms", "periods 1..2"
    )
    assert "2 sync calls/request to mysql-user (pinned to wave 3)" in f.message
    assert "user-svc (budget 40 ms, pinned to wave 1)" in f.message


def test_indirect_call_over_budget_names_the_chain() -> None:
    deps = [
        Dependency("user-svc", "order-svc", 10, calls_per_request=1.5),
        Dependency("order-svc", "mysql-order", 10, calls_per_request=2),
    ]
    apps = [App("order-svc", 1, pinned_wave=1), App("mysql-order", 1, pinned_wave=3)]
    bad = _inv([App("user-svc", 1, latency_budget_ms=80), *apps], deps, waves=3)
    good = _inv([App("user-svc", 1, latency_budget_ms=90), *apps], deps, waves=3)
    f = _assert_pair(bad, good, "latency-forced", {"user-svc", "order-svc", "mysql-order"}, "90 ms", "80 ms")
    assert "calls order-svc 1.5×/request" in f.message


def test_unbounded_latency_above_a_split_call() -> None:
    deps = [
        Dependency("a", "b", 1),
        Dependency("b", "a", 1),
        Dependency("b", "c", 1),
        Dependency("c", "d", 1),
    ]
    apps = [App("a", 1), App("b", 1), App("c", 1, pinned_wave=1)]
    bad = _inv([*apps, App("d", 1, pinned_wave=3)], deps, waves=3)
    good = _inv([*apps, App("d", 1, latest_wave=3)], deps, waves=3)
    f = _assert_pair(
        bad,
        good,
        "latency-unbounded",
        {"a", "b"},
        "a → b → a",
        "c (pinned to wave 1) → d (pinned to wave 3)",
        "period 1",
    )
    assert set(f.apps) == {"a", "b"}


# ---- behaviour


def test_findings_come_in_a_fixed_order() -> None:
    apps = [App("a", 1, pinned_wave=3), App("b", 1, pinned_wave=3), App("c", 1, earliest_wave=4)]
    inv = _inv(apps, waves=3, capacity_apps=1, rules=(Rule("before", ("a", "b")),))
    found = _check(inv)
    assert found == _check(inv)
    assert [f.code for f in found] == ["wave-out-of-range", "order-too-long", "capacity-wave-apps"]
    assert found[0].apps == ("c",)


def test_no_findings_when_the_cheap_conditions_hold() -> None:
    assert _check(_inv([App("a", 1), App("b", 1)], waves=2, capacity_apps=1)) == ()
    assert _check(_inv([], waves=2, capacity_apps=1, max_risk=0.1)) == ()


def test_many_violations_are_summarised() -> None:
    apps = [App(f"a{i}", 1, pinned_wave=9) for i in range(8)]
    found = _check(_inv(apps, waves=3))
    assert [f.code for f in found] == ["wave-out-of-range"] * 6
    assert found[-1].apps == ("a5", "a6", "a7")
    group = [App(f"g{i}", 1, group=f"g{i}", instances=10) for i in range(8)] + [
        App(f"h{i}", 1, group=f"g{i}", instances=10) for i in range(8)
    ]
    found = _check(_inv(group, waves=2, capacity_instances=15))
    assert [f.code for f in found] == ["capacity-block-instances"] * 6
    assert found[-1].message.startswith("3 more")
    assert "g5" in found[-1].apps and "h7" in found[-1].apps


# ---- soundness on random estates


KINDS: tuple[RuleKind, ...] = ("before", "together", "apart")


@st.composite
def _estates(draw: st.DrawFn) -> Inventory:
    n = draw(st.integers(2, 5))
    K = draw(st.integers(1, 3))
    ids = [f"s{i}" for i in range(n)]
    beyond = [K + 1] if draw(st.integers(0, 4)) == 0 else []  # now and then a pin past K (--waves)
    wave = st.sampled_from([None, None, None, None, *range(1, K + 1), *beyond])
    apps = []
    for i in range(n):
        apps.append(
            App(
                ids[i],
                1,
                instances=draw(st.integers(1, 4)),
                latency_budget_ms=draw(st.sampled_from([None, 0.0, 30.0, 60.0])),
                group=draw(st.sampled_from([None, None, "g", "h"])),
                pinned_wave=draw(wave),
                earliest_wave=draw(wave),
                latest_wave=draw(wave),
                risk=draw(st.sampled_from([0.0, 1.0, 2.0])),
            )
        )
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=6, unique=True))
    deps = [
        Dependency(
            ids[u],
            ids[v],
            draw(st.sampled_from([10.0, 1000.0])),
            calls_per_request=draw(st.sampled_from([0.5, 1.0, 2.0])),
            sync=draw(st.booleans()),
        )
        for u, v in pairs
        if u != v
    ]
    rules = []
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(KINDS))
        members = draw(st.lists(st.sampled_from(ids), min_size=2, max_size=3, unique=True))
        rules.append(Rule(kind, tuple(members)))
    scenario = Scenario(
        waves=K,
        rtt_ms=30.0,
        capacity_apps=draw(st.none() | st.integers(1, 3)),
        capacity_instances=draw(st.none() | st.integers(2, 8)),
        max_risk=draw(st.none() | st.sampled_from([0.3, 0.5, 0.7])),
        link_gbps=draw(st.none() | st.sampled_from([0.01, 0.1])),
        callees_first=draw(st.booleans()),
        split_cycles=draw(st.booleans()),
        rules=tuple(rules),
    )
    return Inventory(tuple(apps), tuple(deps), scenario)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_estates())
def test_precheck_is_sound(inv: Inventory) -> None:
    """Whenever precheck reports an error, no plan of all K^n is feasible."""
    found = _check(inv)
    assert all(f.severity == "error" and f.code for f in found)
    if found:
        assert _feasible_plan(inv) is None, [f.message for f in found]


def test_precheck_catches_common_infeasibility_in_random_estates() -> None:
    """Not a completeness claim: precheck must at least fire on some infeasible estates."""
    rng = np.random.default_rng(3)
    fired = 0
    for _ in range(30):
        pins = rng.integers(1, 4, size=3)
        apps = [App(f"x{i}", 1, pinned_wave=int(p)) for i, p in enumerate(pins)]
        inv = _inv(apps, waves=3, capacity_apps=1)
        if _check(inv):
            fired += 1
            assert _feasible_plan(inv) is None
        else:
            assert len(set(pins.tolist())) == 3
    assert fired > 0


@st.composite
def _call_estates(draw: st.DrawFn) -> Inventory:
    """Pinned call graphs with tight latency budgets and a thin link: the forced-split checks."""
    n = draw(st.integers(2, 5))
    K = draw(st.integers(2, 3))
    ids = [f"s{i}" for i in range(n)]
    apps = [
        App(
            ids[i],
            1,
            latency_budget_ms=draw(st.sampled_from([0.0, 20.0, 30.0, 45.0, 60.0, 100.0])),
            pinned_wave=draw(st.sampled_from([None, *range(1, K + 1)])),
            latest_wave=draw(st.sampled_from([None, None, *range(1, K + 1)])),
        )
        for i in range(n)
    ]
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=7, unique=True))
    deps = [
        Dependency(
            ids[u],
            ids[v],
            draw(st.sampled_from([100.0, 2000.0])),
            calls_per_request=draw(st.sampled_from([0.5, 1.0, 1.5, 2.0])),
            sync=draw(st.sampled_from([True, True, False])),
        )
        for u, v in pairs
        if u != v
    ]
    scenario = Scenario(
        waves=K,
        link_gbps=draw(st.none() | st.sampled_from([0.005, 0.05])),
        split_cycles=draw(st.booleans()),
        callees_first=draw(st.booleans()),
    )
    return Inventory(tuple(apps), tuple(deps), scenario)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_call_estates())
def test_forced_split_checks_are_sound(inv: Inventory) -> None:
    found = _check(inv)
    if found:
        assert _feasible_plan(inv) is None, [f.message for f in found]


def test_blocks_merged_for_latency_are_explained() -> None:
    """The planner contracts calls whose split alone breaks a budget; precheck must say so."""
    dep = [Dependency("a", "b", 1, calls_per_request=2)]  # split: a gets 60 ms > 50 ms
    inv = _inv(
        [App("a", 1, latency_budget_ms=50), App("b", 1)], dep, waves=2, rules=(Rule("before", ("a", "b")),)
    )
    merged = build_blocks(inv, (np.array([0]), np.array([1])))
    found = precheck(inv, merged)
    assert [f.code for f in found] == ["before-same-wave"]
    reason = "splitting a → b alone adds 60 ms to a's latency, over its latency budget of 50 ms"
    assert reason in found[0].message
    assert _feasible_plan(inv) is None


def test_a_latency_tied_block_too_big_for_a_wave_names_the_call_and_budget() -> None:
    """user-svc -> order-svc -> mysql-order: splitting the second call alone adds 1.5 x 2 x 30 ms
    = 90 ms to user-svc (budget 80 ms), so order-svc and mysql-order share a wave; 1 app per wave."""
    deps = [
        Dependency("user-svc", "order-svc", 10, calls_per_request=1.5),
        Dependency("order-svc", "mysql-order", 10, calls_per_request=2),
    ]
    apps = [App("order-svc", 1, latency_budget_ms=200), App("mysql-order", 1)]

    def estate(budget: float) -> Inventory:
        return _inv([App("user-svc", 1, latency_budget_ms=budget), *apps], deps, waves=3, capacity_apps=1)

    bad, good = estate(80), estate(90)
    assert _check(bad) == ()  # the plain blocks alone prove nothing
    L, _, unsplittable = latency_matrix(bad)
    found = precheck(bad, contract_unsplittable(bad, L, unsplittable)[0])
    assert [f.code for f in found] == ["capacity-block-apps"], [f.message for f in found]
    assert set(found[0].apps) == {"order-svc", "mysql-order"}
    call = "order-svc → mysql-order alone adds 90 ms to user-svc"
    for part in (call, "latency budget of 80 ms", "at most 1 app"):
        assert part in found[0].message, found[0].message
    assert _feasible_plan(bad) is None
    L, _, unsplittable = latency_matrix(good)
    assert precheck(good, contract_unsplittable(good, L, unsplittable)[0]) == ()
    assert _feasible_plan(good) is not None


def _contracted_check(inv: Inventory) -> tuple[Finding, ...]:
    L, _, unsplittable = latency_matrix(inv)
    return precheck(inv, contract_unsplittable(inv, L, unsplittable)[0])


def test_a_latency_tied_block_over_max_risk_and_an_unbounded_one_say_why() -> None:
    crit = [App("svc", 1, latency_budget_ms=40, criticality=1), App("db", 1, criticality=1, stateful=True)]
    others = [App(f"x{i}", 1) for i in range(6)]
    risky = _inv([*crit, *others], [Dependency("svc", "db", 10, calls_per_request=2)], waves=6, max_risk=0.3)
    found = _contracted_check(risky)
    assert [f.code for f in found] == ["risk-block"]
    assert "svc, db carry 41.0% of the risk but must move in one wave, because splitting svc → db" in (
        found[0].message
    )
    # a <-> b multiply to 4 per request: a split below or on that cycle makes latency unbounded
    deps = [Dependency("a", "b", 1, calls_per_request=2), Dependency("b", "a", 1, calls_per_request=2)]
    apps = [App(n, 1) for n in "abcd"]
    loop = _inv(apps, [*deps, Dependency("a", "d", 1)], waves=4, capacity_apps=1.0, split_cycles=True)
    found = _contracted_check(loop)
    assert [f.code for f in found] == ["capacity-block-apps"]
    assert "makes latency unbounded" in found[0].message


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_call_estates())
def test_sound_on_the_planners_contracted_blocks(inv: Inventory) -> None:
    """The pipeline hands precheck blocks with unsplittable calls contracted (solve.forced)."""
    L, _, unsplittable = latency_matrix(inv)
    blocks, _ = contract_unsplittable(inv, L, unsplittable)
    if precheck(inv, blocks):
        assert _feasible_plan(inv) is None
