"""The data model: an inventory is built and validated once, then read-only.

Everything downstream (metrics, analysis, solver) indexes applications by their
position 0..n-1 in ``Inventory.apps``; application ids are used only at the
edges (loading, printing, exporting).  Waves are numbered 1..K as the user
counts them; period k (1..K-1) is the time after wave k and before wave k+1.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal

import numpy as np
import numpy.typing as npt

Severity = Literal["error", "warning", "info"]
RuleKind = Literal["before", "together", "apart"]
Resource = Literal["apps", "instances", "data_gb"]
RESOURCES: tuple[Resource, ...] = ("apps", "instances", "data_gb")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem or fact worth telling the user; errors are data, not exceptions.

    ``row`` counts as the user does in a spreadsheet: the header is row 1.
    ``code`` is a stable machine-readable key (e.g. ``duplicate-app``).
    """

    severity: Severity
    code: str
    message: str
    file: str | None = None
    row: int | None = None
    column: str | None = None
    value: str | None = None
    expected: str | None = None
    apps: tuple[str, ...] = ()

    def location(self) -> str:
        """``file:row:column`` with the parts that are known."""
        parts = [p for p in (self.file, self.row, self.column) if p is not None]
        return ":".join(str(p) for p in parts)

    def render(self) -> str:
        """One line a person can act on: where, what, the bad value, what was expected."""
        text = f"{self.severity}: {self.message}"
        if self.value is not None:
            text += f" (got {self.value!r}"
            text += f", expected {self.expected})" if self.expected else ")"
        elif self.expected:
            text += f" (expected {self.expected})"
        where = self.location()
        return f"{where}: {text}" if where else text


@dataclass(frozen=True, slots=True)
class App:
    """One application as the inventory describes it (SPEC §2, apps.csv)."""

    app_id: str
    qps: float
    name: str = ""
    team: str = ""
    criticality: int = 3
    latency_budget_ms: float | None = None  # None: the scenario's default
    instances: int = 1
    data_gb: float = 0.0
    stateful: bool = False
    kind: str = "service"
    rehearsed: bool = True
    group: str | None = None
    pinned_wave: int | None = None
    earliest_wave: int | None = None
    latest_wave: int | None = None
    risk: float | None = None  # None: the documented score of metrics.risk_scores

    @property
    def label(self) -> str:
        return self.name or self.app_id


@dataclass(frozen=True, slots=True)
class Dependency:
    """caller calls callee (SPEC §2, dependencies.csv)."""

    caller: str
    callee: str
    qps: float
    calls_per_request: float = 1.0
    sync: bool = True
    kb_per_call: float = 4.0


@dataclass(frozen=True, slots=True)
class Rule:
    """A scenario ordering rule ([[constraint]] in scenario.toml).

    ``before``: each app moves in a strictly earlier wave than the next one in
    the list (``["mysql-core", "user-svc"]``: mysql-core first).
    ``together``: all in one wave.  ``apart``: pairwise different waves.
    """

    kind: RuleKind
    apps: tuple[str, ...]


Capacity = float | tuple[float, ...] | None


@dataclass(frozen=True)
class Scenario:
    """scenario.toml (SPEC §2) plus migplan's own documented keys.

    A capacity is ``None`` (unlimited), one number for every wave, or a tuple
    of K numbers (a ramp-up with a small pilot wave).
    """

    source: str = "source"
    target: str = "target"
    rtt_ms: float = 30.0
    waves: int = 12
    default_latency_budget_ms: float = 100.0
    link_gbps: float | None = None  # None: no link capacity check
    callees_first: bool = False
    capacity_apps: Capacity = None
    capacity_instances: Capacity = None
    capacity_data_gb: Capacity = None
    max_risk: float | None = None  # share of total risk one wave may carry
    rules: tuple[Rule, ...] = ()
    split_cycles: bool = False  # True: circular dependencies may be split across waves
    risk_weight: float = 1.0  # weight of the risk term in the planner's objective

    def capacity(self, resource: Resource) -> FloatArray | None:
        """Per-wave capacity of ``resource`` as K numbers, or None if unlimited."""
        raw = {
            "apps": self.capacity_apps,
            "instances": self.capacity_instances,
            "data_gb": self.capacity_data_gb,
        }[resource]
        if raw is None:
            return None
        if isinstance(raw, tuple):
            if len(raw) != self.waves:
                raise ValueError(f"capacity {resource} has {len(raw)} numbers for {self.waves} waves")
            return np.asarray(raw, dtype=np.float64)
        return np.full(self.waves, float(raw))

    def with_overrides(self, **changes: object) -> Scenario:
        """A copy with some keys changed (command-line overrides)."""
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Inventory:
    """A validated inventory: apps, dependencies and the scenario.

    Built once by the loader (or by code in tests and the generator) and never
    changed; the arrays below are computed on first use and cached.
    Dependencies are unique per (caller, callee), name known apps and are
    never self-calls: the loader guarantees it.
    """

    apps: tuple[App, ...]
    dependencies: tuple[Dependency, ...]
    scenario: Scenario = field(default_factory=Scenario)

    @property
    def n(self) -> int:
        return len(self.apps)

    @property
    def m(self) -> int:
        return len(self.dependencies)

    @property
    def K(self) -> int:
        return self.scenario.waves

    @cached_property
    def index(self) -> dict[str, int]:
        """app_id -> position."""
        return {a.app_id: i for i, a in enumerate(self.apps)}

    @cached_property
    def ids(self) -> tuple[str, ...]:
        return tuple(a.app_id for a in self.apps)

    @cached_property
    def caller(self) -> IntArray:
        return np.fromiter((self.index[d.caller] for d in self.dependencies), np.int64, self.m)

    @cached_property
    def callee(self) -> IntArray:
        return np.fromiter((self.index[d.callee] for d in self.dependencies), np.int64, self.m)

    @cached_property
    def edge_qps(self) -> FloatArray:
        return np.fromiter((d.qps for d in self.dependencies), np.float64, self.m)

    @cached_property
    def edge_calls(self) -> FloatArray:
        """calls_per_request per dependency."""
        return np.fromiter((d.calls_per_request for d in self.dependencies), np.float64, self.m)

    @cached_property
    def edge_sync(self) -> BoolArray:
        return np.fromiter((d.sync for d in self.dependencies), np.bool_, self.m)

    @cached_property
    def edge_kb(self) -> FloatArray:
        return np.fromiter((d.kb_per_call for d in self.dependencies), np.float64, self.m)

    @cached_property
    def budgets(self) -> FloatArray:
        """Latency budget per app in ms, the scenario default filled in."""
        default = self.scenario.default_latency_budget_ms
        return np.fromiter(
            (default if a.latency_budget_ms is None else a.latency_budget_ms for a in self.apps),
            np.float64,
            self.n,
        )

    @cached_property
    def instances(self) -> FloatArray:
        return np.fromiter((a.instances for a in self.apps), np.float64, self.n)

    @cached_property
    def data_gb(self) -> FloatArray:
        return np.fromiter((a.data_gb for a in self.apps), np.float64, self.n)

    def load(self, resource: Resource) -> FloatArray:
        """Per-app amount of a wave-capacity resource."""
        if resource == "apps":
            return np.ones(self.n)
        return self.instances if resource == "instances" else self.data_gb

    def with_scenario(self, scenario: Scenario) -> Inventory:
        """The same estate under another scenario (cached arrays are rebuilt lazily)."""
        return Inventory(self.apps, self.dependencies, scenario)


@dataclass(frozen=True)
class Plan:
    """A wave (1..K) for every app, in inventory order."""

    waves: tuple[int, ...]
    K: int

    @classmethod
    def from_array(cls, waves: npt.ArrayLike, K: int) -> Plan:
        return cls(tuple(int(w) for w in np.asarray(waves).ravel()), K)

    @cached_property
    def array(self) -> IntArray:
        return np.asarray(self.waves, dtype=np.int64)
