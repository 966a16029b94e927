"""Graph facts about an estate: circular dependencies, bring-up order, kind-based findings.

Finding codes produced by :func:`findings` (all severities are advisory: none makes a plan
infeasible; ``metrics.evaluate`` owns violations):

* ``circular-dependency`` (warning): apps that call each other in a loop (any edges, sync
  or async).  They cannot be started one after another at the target; unless
  ``split_cycles`` they must move in one wave.
* ``unbounded-latency-cycle`` (warning): a loop of *sync* calls whose calls_per_request
  multiply to >= 1 (spectral radius >= 1): a request can bounce round it without bound, so
  any split call at or below it makes added latency infinite.
* ``isolated-app`` (info): an app with no dependency in either direction; it can go in any
  wave, and the inventory may simply be missing its calls.
* ``control-plane-one-wave`` (warning, with a plan): every control-plane app (kind
  ``control-plane``, any case) moves in one wave: a single point of failure in that cut-over.
* ``critical-concentration`` (warning, with a plan): one wave carries more than
  CRITICAL_SHARE of the criticality-1 apps (only when there are at least 3 of them).
* ``stateful-concentration`` (warning, with a plan): one wave carries more than
  STATEFUL_SHARE of the stateful/database apps (at least 3 of them).
* ``unrehearsed-critical`` (warning): a criticality-1 app whose cut-over was never rehearsed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import networkx as nx
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from migplan.metrics import latency_model
from migplan.model import Finding, IntArray, Inventory, Plan

CRITICAL_SHARE = 0.5
STATEFUL_SHARE = 0.5


def _call_graph(inv: Inventory) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(inv.m), (inv.caller, inv.callee)), shape=(inv.n, inv.n))


def _components(inv: Inventory) -> IntArray:
    """Strongly connected component of every app in the full call graph."""
    if inv.n == 0:
        return np.zeros(0, dtype=np.int64)
    _, labels = connected_components(_call_graph(inv), directed=True, connection="strong")
    return np.asarray(labels, dtype=np.int64)


def cycles(inv: Inventory) -> list[tuple[int, ...]]:
    """Strongly connected components with more than one app (all edges), sorted, largest first.

    Ties (same size) are ordered by their smallest app index, so the result is deterministic.
    """
    labels = _components(inv)
    if labels.size == 0:
        return []
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    groups = [tuple(int(a) for a in g) for g in np.split(order, bounds) if g.size > 1]
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def bringup_order(inv: Inventory) -> list[tuple[int, ...]]:
    """Start-up steps at the target site: callees before callers; each step is one app or a cycle.

    A step starts only after every app it calls has started; a step of several apps is a
    circular dependency someone must break by hand (start with stubs, a feature flag, ...).
    Ties are broken by app_id, so the order is deterministic.
    """
    labels = _components(inv)
    if labels.size == 0:
        return []
    members: dict[int, list[int]] = {}
    for a in np.argsort(labels, kind="stable").tolist():
        members.setdefault(int(labels[a]), []).append(a)
    steps = {c: tuple(sorted(ms, key=lambda a: inv.ids[a])) for c, ms in members.items()}
    dag = nx.DiGraph()
    dag.add_nodes_from(steps)
    cu, cv = labels[inv.caller], labels[inv.callee]
    cross = cu != cv
    # Edge callee-component -> caller-component: a topological order of it is callees first.
    dag.add_edges_from(zip(cv[cross].tolist(), cu[cross].tolist(), strict=True))
    order = nx.lexicographical_topological_sort(dag, key=lambda c: inv.ids[steps[c][0]])
    return [steps[c] for c in order]


def _path(inv: Inventory, apps: Sequence[int], limit: int = 8) -> str:
    """'a → b → c → a' for a cycle (the first ``limit`` apps, then '…')."""
    shown = [inv.ids[a] for a in apps[:limit]]
    if len(apps) > limit:
        return " → ".join(shown) + f" → … ({len(apps)} apps)"
    return " → ".join([*shown, shown[0]])


def _cycle_order(inv: Inventory, members: tuple[int, ...]) -> list[int] | None:
    """The members in call order when one simple cycle runs through all of them, else None."""
    sub = nx.DiGraph()
    sub.add_nodes_from(members)
    mask = np.isin(inv.caller, members) & np.isin(inv.callee, members)
    sub.add_edges_from(zip(inv.caller[mask].tolist(), inv.callee[mask].tolist(), strict=True))
    try:
        ring = [u for u, _ in nx.find_cycle(sub, source=members[0])]
    except nx.NetworkXNoCycle:  # pragma: no cover - an SCC of size > 1 always has a cycle
        return None
    return ring if len(ring) == len(members) else None


def _cycle_findings(inv: Inventory) -> list[Finding]:
    out = []
    for members in cycles(inv):
        ordered = _cycle_order(inv, members)
        text = _path(inv, ordered) if ordered else "apps " + ", ".join(inv.ids[a] for a in members[:20])
        text += "" if ordered or len(members) <= 20 else f" … ({len(members)} apps) call each other in loops"
        out.append(
            Finding(
                "warning",
                "circular-dependency",
                f"circular dependency: {text}; these {len(members)} apps cannot start one after another "
                "(the Tencent Cloud restart failure mode): plan how to break the loop at start-up"
                + ("" if inv.scenario.split_cycles else ", and they must move in one wave"),
                apps=tuple(inv.ids[a] for a in members),
            )
        )
    return out


def _latency_cycle_findings(inv: Inventory) -> list[Finding]:
    out = []
    for cyc in latency_model(inv).divergent:
        path = _path(inv, cyc.cycle) if cyc.cycle else ", ".join(inv.ids[a] for a in cyc.apps)
        out.append(
            Finding(
                "warning",
                "unbounded-latency-cycle",
                f"synchronous call cycle {path}: calls_per_request multiply to {cyc.cycle_product:g} "
                f"(spectral radius {cyc.spectral_radius:.3g} ≥ 1), so added latency is unbounded for "
                "every app that reaches it as soon as a call at or below the cycle is split across "
                "sites; plans must keep those calls on one site",
                apps=tuple(inv.ids[a] for a in cyc.apps),
            )
        )
    return out


def _isolated_findings(inv: Inventory) -> list[Finding]:
    degree = np.bincount(inv.caller, minlength=inv.n) + np.bincount(inv.callee, minlength=inv.n)
    lonely = np.flatnonzero(degree == 0)
    if lonely.size == 0 or inv.n < 2:
        return []
    return [
        Finding(
            "info",
            "isolated-app",
            f"{lonely.size} app(s) have no dependencies at all (neither call nor are called): "
            + _first_ids(inv, lonely.tolist())
            + "; they can move in any wave, but check the inventory is not missing their calls",
            apps=tuple(inv.ids[a] for a in lonely),
        )
    ]


def _first_ids(inv: Inventory, apps: Sequence[int], show: int = 20) -> str:
    """'a, b, c' or, past ``show`` apps, the first ``show`` and ' …'."""
    return ", ".join(inv.ids[a] for a in apps[:show]) + (" …" if len(apps) > show else "")


def _unrehearsed_findings(inv: Inventory) -> list[Finding]:
    bad = [i for i, a in enumerate(inv.apps) if a.criticality == 1 and not a.rehearsed]
    if not bad:
        return []
    return [
        Finding(
            "warning",
            "unrehearsed-critical",
            f"{len(bad)} criticality-1 app(s) were never rehearsed: "
            + _first_ids(inv, bad)
            + "; rehearse their cut-over before the migration",
            apps=tuple(inv.ids[a] for a in bad),
        )
    ]


def _concentration(
    inv: Inventory,
    waves: IntArray,
    select: Callable[[int], bool],
    code: str,
    what: str,
    share: float,
) -> list[Finding]:
    """Warn when one wave holds more than ``share`` of the selected apps (at least 3 of them)."""
    chosen = np.array([i for i in range(inv.n) if select(i)], dtype=np.int64)
    if chosen.size < 3:
        return []
    counts = np.bincount(waves[chosen], minlength=inv.K + 1)
    out = []
    for wave in np.flatnonzero(counts > share * chosen.size):
        in_wave = chosen[waves[chosen] == wave]
        out.append(
            Finding(
                "warning",
                code,
                f"wave {wave} moves {counts[wave]} of the {chosen.size} {what} "
                f"({counts[wave] / chosen.size:.0%}, more than {share:.0%}): a bad cut-over there hits "
                "most of them at once",
                apps=tuple(inv.ids[a] for a in in_wave),
            )
        )
    return out


def _plan_findings(inv: Inventory, plan: Plan) -> list[Finding]:
    waves = plan.array
    if waves.size != inv.n or (waves.size and (waves.min() < 0)):
        return []  # metrics.evaluate reports malformed plans
    out: list[Finding] = []
    control = [i for i, a in enumerate(inv.apps) if a.kind.strip().lower() == "control-plane"]
    if len(control) >= 2 and len(set(waves[control].tolist())) == 1:
        out.append(
            Finding(
                "warning",
                "control-plane-one-wave",
                f"all {len(control)} control-plane apps move in wave {waves[control[0]]}: a single point "
                "of failure during cut-over; spread them or rehearse a rollback of that wave",
                apps=tuple(inv.ids[a] for a in control),
            )
        )
    out += _concentration(
        inv,
        waves,
        lambda i: inv.apps[i].criticality == 1,
        "critical-concentration",
        "criticality-1 apps",
        CRITICAL_SHARE,
    )
    out += _concentration(
        inv,
        waves,
        lambda i: inv.apps[i].stateful or inv.apps[i].kind.strip().lower() == "database",
        "stateful-concentration",
        "stateful/database apps",
        STATEFUL_SHARE,
    )
    return out


def findings(inv: Inventory, plan: Plan | None = None) -> list[Finding]:
    """Cycles, unbounded latency, isolated and unrehearsed apps, and (with a plan) single points
    of failure and concentrations of critical or stateful apps in one wave.  Codes: module doc."""
    out = _cycle_findings(inv) + _latency_cycle_findings(inv) + _isolated_findings(inv)
    out += _unrehearsed_findings(inv)
    if plan is not None:
        out += _plan_findings(inv, plan)
    return out
