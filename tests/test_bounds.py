"""The spectral lower bound: never above the true optimum, informative when capacities force cuts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migplan import metrics
from migplan.model import App, Dependency, Inventory, Plan, Scenario
from migplan.solve.bounds import spectral_lower_bound


def _inv(n: int, deps: list[Dependency], **scenario: object) -> Inventory:
    apps = tuple(App(f"a{i}", 1.0) for i in range(n))
    return Inventory(apps, tuple(deps), Scenario(**scenario))  # type: ignore[arg-type]


def test_path_of_two_with_one_app_per_wave() -> None:
    # Laplacian of a single 4-qps edge: lambda2 = 8; one app moved in period 1: 8 * 1 * 1 / 2 = 4
    inv = _inv(2, [Dependency("a0", "a1", 4)], waves=2, capacity_apps=1.0)
    bound = spectral_lower_bound(inv)
    assert bound == pytest.approx(4, rel=1e-5)
    assert bound is not None and bound <= 4  # the optimum: the edge split for one period


def test_no_capacity_and_no_pins_says_nothing() -> None:
    assert spectral_lower_bound(_inv(3, [Dependency("a0", "a1", 4)], waves=3)) is None


def _best(inv: Inventory) -> float | None:
    costs = [
        metrics.chatty_cost(inv, np.asarray(w))
        for w in itertools.product(range(1, inv.K + 1), repeat=inv.n)
        if metrics.evaluate(inv, Plan(w, inv.K)).feasible
    ]
    return min(costs) if costs else None


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6))
def test_bound_never_exceeds_the_brute_force_optimum(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, K = int(rng.integers(2, 7)), int(rng.integers(2, 4))
    deps = {
        (int(i), int(j)): Dependency(f"a{i}", f"a{j}", float(rng.integers(1, 20)), sync=False)
        for i, j in (rng.choice(n, 2, replace=False) for _ in range(int(rng.integers(1, 2 * n))))
    }
    inv = _inv(n, list(deps.values()), waves=K, capacity_apps=float(-(-n // K)), split_cycles=True)
    bound, best = spectral_lower_bound(inv), _best(inv)
    if bound is not None and best is not None:
        assert bound <= best + 1e-6
