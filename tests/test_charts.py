"""The dashboard's figures show what the Evaluation holds, unbounded latency included."""

from __future__ import annotations

import math

from migplan import metrics
from migplan.model import App, Dependency, Inventory, Plan, Scenario
from migplan.ui.charts import UNBOUNDED_BAR, latency_figure


def test_an_unbounded_latency_is_a_labelled_bar_not_a_silent_1000_percent() -> None:
    """a and b call each other once per request each (a divergent cycle); split, a's added
    latency has no bound.  Regression (fuzz2): drawn as an unlabelled 1000 % bar."""
    apps = (App("a", 1.0), App("b", 1.0), App("c", 1.0), App("d", 1.0, latency_budget_ms=50.0), App("e", 1.0))
    deps = (
        Dependency("a", "b", 1.0, 1.0),
        Dependency("b", "a", 1.0, 1.0),
        Dependency("a", "c", 1.0, 1.0),
        Dependency("d", "e", 1.0, 1.0),
    )
    inv = Inventory(apps, deps, Scenario(waves=3, split_cycles=True))
    ev = metrics.evaluate(inv, Plan((1, 2, 3, 1, 1), 3))
    assert math.isinf(float(ev.added_latency[0, 0]))
    bar = latency_figure(inv, ev).data[0]
    assert list(bar.y) == [UNBOUNDED_BAR, UNBOUNDED_BAR] and list(bar.text) == ["unbounded", "unbounded"]
    bounded = latency_figure(inv, metrics.evaluate(inv, Plan((1, 1, 1, 1, 2), 3))).data[0]
    assert list(bounded.text) == ["", ""] and list(bounded.y) == [60.0, 0.0]  # d: 30 ms of 50 in period 1
