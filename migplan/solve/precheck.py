"""Precheck: cheap necessary conditions that prove a scenario infeasible before any solver runs.

Every check here is SOUND: it fires only when no plan at all can be feasible, and
the comment above each states the one-line proof.  The checks work on blocks
(apps that must share a wave) and their allowed wave ranges; ranges are first
tightened by the order rules (before, callees_first), which is itself sound
(a lower/upper bound on the wave of every feasible plan), so the later checks
see narrower ranges and catch more.  Messages name apps, rules and numbers in the
user's words (waves, periods, budgets, ms) so the user knows what to change.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components

from migplan import metrics
from migplan.metrics import number_text as _num
from migplan.model import RESOURCES, BoolArray, Finding, FloatArray, IntArray, Inventory, Rule
from migplan.solve.blocks import Blocks, build_blocks, same_wave_pairs
from migplan.solve.forced import contract
from migplan.text import listing

SHOW = 5  # items listed in one message before "and N more"
MAX_FINDINGS = 5  # findings of one kind before a summary finding
REL_TOL = 1e-6  # relative margin to count as over a limit: wider than metrics' 1e-9, so noise never proves


def no_plan_findings(
    inv: Inventory, blocks: Blocks | None = None, contracted: Blocks | None = None
) -> list[Finding]:
    """The errors that prove no plan exists for ``inv`` as given; ``validate`` uses it too,
    so it does not pass what ``plan`` refuses.  Last, a warning when the latency checks could
    not run (the latency model past ``metrics.MAX_COEFFICIENTS``: ``plan`` stops there).

    First on ``blocks`` (its own groups and cycles, built when None): pins and windows that
    split a block, then the checks of ``precheck``.  When those pass, the checks run again
    on ``contracted`` (built when None: the blocks with every call no plan can split
    merged, ``solve.forced``): every plan keeps those apps in one wave too, so the checks
    stay sound, and a block too big for any wave is said at once.  The demo at 20 waves of
    5 apps holds such a 6-app block; before, the full model proved it infeasible after 60 s
    and no core was found to say why.  A pin conflict only the contraction creates is left
    to the latency checks, which say it in terms of budgets.
    """
    blocks = build_blocks(inv) if blocks is None else blocks
    checked = precheck(inv, blocks)
    # a warning: the latency checks could not run
    skipped = [f for f in checked if f.code == metrics.LatencyModelTooLargeError.code]
    found = [*blocks.conflicts, *_errors(checked)]
    if not found and not skipped:  # (the contraction needs the same latency model)
        if contracted is None:
            try:
                contracted = contract(inv)[0]
            except metrics.LatencyModelTooLargeError:  # the planner says so; nothing to check here
                contracted = blocks
        if contracted.count < blocks.count and not contracted.conflicts:
            found = _errors(precheck(inv, contracted))
    return [*{(f.code, f.message): f for f in found}.values(), *skipped]  # both may say the same


def _errors(findings: Sequence[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def precheck(inv: Inventory, blocks: Blocks) -> tuple[Finding, ...]:
    """Errors that prove no feasible plan exists, each saying why in the user's terms.

    Empty when these cheap necessary conditions hold (the scenario may still be
    infeasible; the solver decides that).  Order of findings is deterministic.  One
    warning may come last: the latency checks could not run (``LatencyModelTooLargeError``).
    """
    if inv.K < 1:  # proof: every app needs a wave in 1..K, and there is none
        return (Finding("error", "no-waves", f"the plan has {inv.K} waves"),) if inv.n else ()
    ctx = _Context(inv, blocks)
    found: list[Finding] = []
    found += _out_of_range(ctx)
    found += _block_conflicts(ctx)
    order, tightened = _order_checks(ctx)
    found += order
    if tightened is not None:
        ctx.lo, ctx.hi = tightened
    found += _apart_checks(ctx)
    found += _capacity_checks(ctx)
    found += _risk_checks(ctx)
    forced = _forced_split(ctx)
    found += _link_checks(ctx, forced)
    found += _latency_checks(ctx, forced)
    return tuple(found)


# --------------------------------------------------------------------------------------------
# shared context: ranges, names, explanations


class _Context:
    """The inventory, its blocks and the working wave range of every block."""

    def __init__(self, inv: Inventory, blocks: Blocks) -> None:
        self.inv = inv
        self.blocks = blocks
        self.K = inv.K
        # a conflicting block (lo > hi) is already reported; relax it to 1..K so that the
        # other checks still reason soundly about the rest (a relaxation only weakens them)
        bad = blocks.lo > blocks.hi
        self.lo: IntArray = np.where(bad, 1, np.clip(blocks.lo, 1, self.K)).astype(np.int64)
        self.hi: IntArray = np.where(bad, self.K, np.clip(blocks.hi, 1, self.K)).astype(np.int64)
        self.own_lo, self.own_hi = self.lo.copy(), self.hi.copy()  # before the order rules tighten
        self._pairs: sp.csr_matrix | None = None
        self._pair_label: IntArray | None = None  # component of each app in pair_graph
        self._added: sp.csc_matrix | None = None  # latency coefficients by dependency column
        self._explained = 0

    def ids(self, apps: Sequence[int] | IntArray) -> tuple[str, ...]:
        return tuple(self.inv.apps[int(i)].app_id for i in apps)

    def block_apps(self, blocks: Sequence[int] | IntArray) -> tuple[str, ...]:
        return tuple(self.inv.apps[i].app_id for b in blocks for i in self.blocks.members[int(b)])

    def block_label(self, b: int) -> str:
        """'app-x', "group 'payments'" or 'a, b and 3 more (must move together)'."""
        members = self.blocks.members[b]
        if len(members) == 1:
            return self.inv.apps[members[0]].app_id
        groups = {self.inv.apps[i].group for i in members}
        if len(groups) == 1 and None not in groups:
            return f"group '{groups.pop()}'"
        return f"{listing(self.ids(members), 3)} (must move together)"

    def range_text(self, b: int) -> str:
        """'wave 3' / 'waves 2..4', saying so when the order rules narrowed the block's own range."""
        lo, hi = int(self.lo[b]), int(self.hi[b])
        text = f"wave {lo}" if lo == hi else f"waves {lo}..{hi}"
        return text + (" by the order rules" if self.by_order(b) else "")

    def by_order(self, b: int) -> bool:
        return bool(self.lo[b] != self.own_lo[b] or self.hi[b] != self.own_hi[b])

    def where(self, a: int) -> str:
        """Why app a's wave is where it is: its own pin/window, a block mate's, or the order rules."""
        b = int(self.blocks.of[a])
        lo, hi = int(self.lo[b]), int(self.hi[b])
        app = self.inv.apps[a]
        if lo == hi:
            text = f"pinned to wave {lo}" if app.pinned_wave == lo else f"fixed to wave {lo}"
        else:
            text = f"in waves {lo}..{hi}"
        binder = self._binding_member(b)
        if binder is not None and binder != a and not (app.pinned_wave == lo == hi):
            text += f" (moves with {self.inv.apps[binder].app_id})"
        elif self.by_order(b):
            text += " (by the order rules)"
        return text

    def bound_app(self, blocks: IntArray, wave: int, side: str) -> int:
        """The app among these blocks whose pin or window sets this earliest ("lo") / latest wave."""
        apps = [i for b in blocks.tolist() for i in self.blocks.members[b]]
        for i in apps:
            app = self.inv.apps[i]
            limit = app.earliest_wave if side == "lo" else app.latest_wave
            if app.pinned_wave == wave or limit == wave:
                return i
        return apps[0]

    def own_range(self, a: int) -> str:
        """'is pinned to wave 3' / 'may not move before wave 2' / 'must move by wave 4' (its own limits)."""
        app = self.inv.apps[a]
        if app.pinned_wave is not None:
            return f"is pinned to wave {app.pinned_wave}"
        lo, hi = app.earliest_wave or 1, min(app.latest_wave or self.K, self.K)
        if lo > 1 and hi < self.K:
            return f"must move in waves {lo}..{hi}"
        if lo > 1:
            return f"may not move before wave {lo}"
        if hi < self.K:
            return f"must move by wave {hi}"
        b = int(self.blocks.of[a])
        return f"moves with {self.block_label(b)} in {self.range_text(b)}"

    def _binding_member(self, b: int) -> int | None:
        """The member whose pin or window gives the block its range (None: the order rules did)."""
        lo, hi = int(self.lo[b]), int(self.hi[b])
        for i in self.blocks.members[b]:
            app = self.inv.apps[i]
            if app.pinned_wave is not None and lo == hi == app.pinned_wave:
                return i
        for i in self.blocks.members[b]:
            app = self.inv.apps[i]
            if (lo > 1 and app.earliest_wave == lo) or (hi < self.K and app.latest_wave == hi):
                return i
        return None

    def budget_merged(self, b: int) -> bool:
        """Block b holds apps that only latency budgets tie together (not groups, rules or cycles)."""
        if len(self.blocks.members[b]) < 2:
            return False
        if self._pair_label is None:
            label = connected_components(self.pair_graph(), directed=False)[1]
            self._pair_label = np.asarray(label, dtype=np.int64)
        return len(set(self._pair_label[list(self.blocks.members[b])].tolist())) > 1

    def budget_reason(self, b: int) -> str:
        """Why latency budgets hold block b's apps in one wave (blocks merged by ``solve.forced``).

        Names the call inside the block whose split alone exceeds a budget by the most; when
        only several calls together do, says so without numbers.
        """
        inv, members = self.inv, np.asarray(self.blocks.members[b], dtype=np.int64)
        inside = np.flatnonzero(np.isin(inv.caller, members) & np.isin(inv.callee, members))
        generic = "splitting the calls between them would break a latency budget"
        if len(inside) == 0:
            return generic
        coefficients = metrics.planner_coefficients(inv)
        unbounded = inside[np.asarray(coefficients.unbounded_edges, dtype=bool)[inside]]
        if len(unbounded):
            dep = inv.dependencies[int(unbounded[0])]
            return (
                f"splitting {dep.caller} → {dep.callee} makes latency unbounded (it lies on or below a"
                " circular chain of sync calls whose calls per request multiply to 1 or more)"
            )
        if self._added is None:
            self._added = sp.csc_matrix(coefficients.matrix)
        added = self._added[:, inside].tocoo()
        excess = added.data - inv.budgets[added.row]
        if len(excess) == 0 or not (excess > 0).any():
            return generic
        i = int(np.argmax(excess))
        a, dep = int(added.row[i]), inv.dependencies[int(inside[added.col[i]])]
        name, call = inv.apps[a].app_id, f"{dep.caller} → {dep.callee}"
        return (
            f"splitting {call} alone adds {_ms(float(added.data[i]))} ms to {name}'s latency, "
            f"over its latency budget of {_num(float(inv.budgets[a]))} ms"
        )

    def pair_graph(self) -> sp.csr_matrix:
        """Undirected 'must share a wave' graph on apps (groups, together rules, cycles)."""
        if self._pairs is None:
            s, d = same_wave_pairs(self.inv)
            n = self.inv.n
            g = sp.csr_matrix((np.ones(len(s)), (s, d)), shape=(n, n))
            self._pairs = (g + g.T).tocsr()
        return self._pairs

    def why_together(self, a: int, b: int) -> str:
        """Why apps a and b must share a wave, in the user's words (searched for the first few only)."""
        inv = self.inv
        if a == b:
            return f"{inv.apps[a].app_id} is listed twice"
        self._explained += 1
        if self._explained > 2 * MAX_FINDINGS:  # beyond what the capped findings will show
            return "they must move together"
        ga, gb = inv.apps[a].group, inv.apps[b].group
        if ga is not None and ga == gb:
            return f"both are in group '{ga}'"
        ida, idb = inv.apps[a].app_id, inv.apps[b].app_id
        for rule in inv.scenario.rules:
            if rule.kind == "together" and ida in rule.apps and idb in rule.apps:
                return f"the together rule [{listing(rule.apps, 4)}] lists both"
        if not inv.scenario.split_cycles and inv.m:
            calls = sp.csr_matrix((np.ones(inv.m), (inv.caller, inv.callee)), shape=(inv.n, inv.n))
            there, back = _path(calls, a, b), _path(calls, b, a)
            if there is not None and back is not None:
                cycle = [*there, *back[1:]]
                return f"they are in a circular dependency {_chain(self.ids(cycle), ' → ')}"
        via = _path(self.pair_graph(), a, b)
        if via is None:  # blocks merged by the caller (solve.forced): a split call between them is fatal
            return self.budget_reason(int(self.blocks.of[a]))
        return (
            f"they must move together through {_chain(self.ids(via), ' ~ ')} (groups, together rules, cycles)"
        )


def _path(graph: sp.csr_matrix, src: int, dst: int) -> list[int] | None:
    """A shortest hop path src..dst in a sparse graph, or None."""
    _, pred = breadth_first_order(graph, src, directed=True, return_predecessors=True)
    if src != dst and pred[dst] < 0:
        return None
    path = [dst]
    while path[-1] != src:
        path.append(int(pred[path[-1]]))
    return path[::-1]


def _chain(items: Sequence[str], sep: str, show: int = 6) -> str:
    """'a → b → … → z' with the middle elided when long."""
    items = list(items)
    if len(items) > show:
        items = [*items[: show // 2], f"… ({len(items) - show + 1} more)", *items[-(show // 2) + 1 :]]
    return sep.join(items)


def _periods(ks: Sequence[int]) -> str:
    """'period 3' / 'periods 1..4' / 'periods 1..2, 5'."""
    ks = sorted(ks)
    runs: list[str] = []
    start = prev = ks[0]
    for k in [*ks[1:], None]:
        if k is not None and k == prev + 1:
            prev = k
            continue
        runs.append(str(start) if start == prev else f"{start}..{prev}")
        if k is not None:
            start = prev = k
    word = "period" if len(ks) == 1 else "periods"
    return f"{word} {', '.join(runs)}"


def _exceeds(need: FloatArray | float, cap: FloatArray | float) -> BoolArray:
    """need > cap by more than float noise."""
    need_a, cap_a = np.asarray(need, dtype=np.float64), np.asarray(cap, dtype=np.float64)
    return np.asarray(need_a > cap_a + REL_TOL * np.maximum(1.0, np.abs(cap_a)))


def _ms(x: float) -> str:
    return _num(round(x, 1))


def _capped(found: list[Finding], code: str, what: str) -> list[Finding]:
    """At most MAX_FINDINGS findings of one kind, then one summary naming the rest."""
    if len(found) <= MAX_FINDINGS:
        return found
    rest = found[MAX_FINDINGS:]
    apps = tuple(dict.fromkeys(a for f in rest for a in f.apps))
    summary = Finding("error", code, f"{len(rest)} more {what}: {listing(apps, SHOW)}", apps=apps)
    return [*found[:MAX_FINDINGS], summary]


# --------------------------------------------------------------------------------------------
# 7 / 1: pins and windows outside 1..K, conflicts inside must-move-together sets


def _out_of_range(ctx: _Context) -> list[Finding]:
    """A pin or earliest wave beyond K (e.g. after --waves): no wave in 1..K satisfies it."""
    found = []
    for app in ctx.inv.apps:
        # proof: the wave must be >= the pin/earliest wave > K, but waves stop at K
        for what, value in (("pinned to", app.pinned_wave), ("not allowed before", app.earliest_wave)):
            if value is not None and value > ctx.K:
                found.append(
                    Finding(
                        "error",
                        "wave-out-of-range",
                        f"{app.app_id} is {what} wave {value} but the plan has only {ctx.K} waves",
                        value=str(value),
                        expected=f"a wave in 1..{ctx.K}",
                        apps=(app.app_id,),
                    )
                )
                break
    return _capped(found, "wave-out-of-range", f"apps are pinned or windowed beyond wave {ctx.K}")


def _block_conflicts(ctx: _Context) -> list[Finding]:
    """Pins/windows inside a must-move-together set (found by build_blocks), minus duplicates.

    Proof: all members share one wave, which must lie in every member's range; the ranges are disjoint.
    """
    K = ctx.K
    found = []
    for f in ctx.blocks.conflicts:
        alone = len(f.apps) == 1
        app = ctx.inv.apps[ctx.inv.index[f.apps[0]]] if alone else None
        beyond = app is not None and max(app.pinned_wave or 0, app.earliest_wave or 0) > K
        if not beyond:  # a lone app beyond K is already said by wave-out-of-range
            found.append(f)
    return found


# --------------------------------------------------------------------------------------------
# 3: before rules and callees_first, as a difference-constraint graph on blocks


@dataclass(frozen=True)
class _Order:
    """Edges 'wave(dst) >= wave(src) + strict' between blocks, with the app pair that made each."""

    src: IntArray
    dst: IntArray
    strict: IntArray  # 1: before rule (strictly later), 0: callees_first (not earlier)
    app_u: IntArray
    app_v: IntArray


def _order_edges(ctx: _Context) -> tuple[_Order, list[Finding]]:
    inv, of = ctx.inv, ctx.blocks.of
    us: list[int] = []
    vs: list[int] = []
    found: list[Finding] = []
    for rule in _known_rules(inv, "before"):
        ids = [inv.index[a] for a in rule.apps]
        for u, v in itertools.pairwise(ids):
            if of[u] == of[v]:
                # proof: u and v share a wave in every plan, so "u strictly before v" cannot hold
                found.append(
                    Finding(
                        "error",
                        "before-same-wave",
                        f"the before rule [{listing(rule.apps, 4)}] puts {inv.apps[u].app_id} before "
                        f"{inv.apps[v].app_id}, but they must share a wave: {ctx.why_together(u, v)}",
                        apps=ctx.ids([u, v]),
                    )
                )
            else:
                us.append(u)
                vs.append(v)
    strict = [1] * len(us)
    if inv.scenario.callees_first and inv.m:
        keep = of[inv.callee] != of[inv.caller]  # inside a block the waves are equal: holds
        us += inv.callee[keep].tolist()
        vs += inv.caller[keep].tolist()
        strict += [0] * int(keep.sum())
    u_arr, v_arr = np.asarray(us, dtype=np.int64), np.asarray(vs, dtype=np.int64)
    order = _Order(of[u_arr], of[v_arr], np.asarray(strict, dtype=np.int64), u_arr, v_arr)
    return order, found


def _known_rules(inv: Inventory, kind: str) -> list[Rule]:
    """Rules of one kind; a rule naming an unknown app is ignored (with a warning) by the evaluator too."""
    return [r for r in inv.scenario.rules if r.kind == kind and all(a in inv.index for a in r.apps)]


def _edges_text(ctx: _Context, order: _Order, edges: Sequence[int]) -> list[str]:
    """One phrase per order edge along a path, noting where the path moves inside a block."""
    texts = []
    prev = -1
    for e in edges:
        u, v = int(order.app_u[e]), int(order.app_v[e])
        if prev >= 0 and prev != u:
            texts.append(f"{ctx.inv.apps[prev].app_id} moves with {ctx.inv.apps[u].app_id}")
        a, b = ctx.inv.apps[u].app_id, ctx.inv.apps[v].app_id
        texts.append(f"{a} before {b}" if order.strict[e] else f"{a} no later than its caller {b}")
        prev = v
    return texts


def _order_checks(ctx: _Context) -> tuple[list[Finding], tuple[IntArray, IntArray] | None]:
    """Cycles of before rules and chains that need more waves than the ranges allow.

    Returns the findings and, when the order is satisfiable by ranges, the tightened
    per-block ranges (earliest/latest wave by longest-path propagation).
    """
    order, found = _order_edges(ctx)
    found = _capped(found, "before-same-wave", "before rules order apps that must share a wave")
    count = ctx.blocks.count
    if len(order.src) == 0:
        return found, None
    graph = sp.csr_matrix((np.ones(len(order.src)), (order.src, order.dst)), shape=(count, count))
    ncomp, comp32 = connected_components(graph, directed=True, connection="strong")
    comp: IntArray = comp32.astype(np.int64)
    cs, cd = comp[order.src], comp[order.dst]
    inside_strict = np.flatnonzero((cs == cd) & (order.strict == 1))
    cyc_found: list[Finding] = []
    _, first_strict = np.unique(cs[inside_strict], return_index=True)
    for e in np.sort(inside_strict[first_strict]).tolist():
        # proof: summing wave(dst) >= wave(src) + strict around a cycle gives 0 >= (strict edges) >= 1
        if len(cyc_found) < MAX_FINDINGS:
            cyc_found.append(_cycle_finding(ctx, order, comp, e))
        else:  # only the apps, for the summary
            members = np.flatnonzero(comp == comp[order.src[e]])
            cyc_found.append(Finding("error", "order-cycle", "", apps=ctx.block_apps(members)))
    if cyc_found:
        return found + _capped(cyc_found, "order-cycle", "cycles of order rules"), None

    # components of 0-weight cycles (callees_first loops with split_cycles) share one wave
    comp_lo = np.full(ncomp, 1, dtype=np.int64)
    comp_hi = np.full(ncomp, ctx.K, dtype=np.int64)
    np.maximum.at(comp_lo, comp, ctx.lo)
    np.minimum.at(comp_hi, comp, ctx.hi)
    between = np.flatnonzero(cs != cd)
    E, L, pred, succ = _propagate(ncomp, cs[between], cd[between], order.strict[between], comp_lo, comp_hi)
    bad = np.flatnonzero(E > L)
    if len(bad) == 0:
        return found, (E[comp].astype(np.int64), L[comp].astype(np.int64))
    chains: list[Finding] = []
    covered: set[tuple[int, int]] = set()
    for c in bad.tolist():
        back = _follow(c, pred, cs[between])  # edges (indices into `between`) from the start to c
        fwd = _follow(c, succ, cd[between])
        start = int(cs[between][back[-1]]) if back else c
        end = int(cd[between][fwd[-1]]) if fwd else c
        if (start, end) in covered:
            continue
        covered.add((start, end))
        path = [int(between[i]) for i in [*back[::-1], *fwd]]
        # proof: E (longest paths of wave(dst) >= wave(src) + strict from the lower bounds) is a
        # lower bound and L an upper bound on c's wave in every feasible plan; E > L leaves none
        if len(chains) < MAX_FINDINGS:
            chains.append(_chain_finding(ctx, order, comp, path, start, end, comp_lo, comp_hi))
        else:  # only the apps, for the summary
            apps = ctx.ids(sorted({int(order.app_u[e]) for e in path} | {int(order.app_v[e]) for e in path}))
            chains.append(Finding("error", "order-too-long", "", apps=apps))
    return found + _capped(chains, "order-too-long", "order chains do not fit their waves"), None


def _follow(c: int, pointer: IntArray, nxt: IntArray) -> list[int]:
    """Follow pred/succ edge pointers from component c; returns the edges in walking order."""
    path: list[int] = []
    while pointer[c] >= 0 and len(path) <= len(pointer):
        e = int(pointer[c])
        path.append(e)
        c = int(nxt[e])
    return path


def _propagate(
    ncomp: int, s: IntArray, d: IntArray, w: IntArray, lo: IntArray, hi: IntArray
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Earliest/latest wave per component by longest paths over the DAG, with the binding edges.

    pred[c]: edge giving c its earliest wave (-1: its own range); succ[c]: edge giving its latest.
    """
    E = lo.astype(np.int64).copy()
    L = hi.astype(np.int64).copy()
    pred = np.full(ncomp, -1, dtype=np.int64)
    succ = np.full(ncomp, -1, dtype=np.int64)
    ptr, edge = _out_edges(ncomp, s)
    topo = _topological(ncomp, s, d)
    E_l, L_l, w_l, d_l = E.tolist(), L.tolist(), w.tolist(), d.tolist()
    pred_l, succ_l = pred.tolist(), succ.tolist()
    for c in topo:
        ec = E_l[c]
        for e in edge[ptr[c] : ptr[c + 1]]:
            t = d_l[e]
            if ec + w_l[e] > E_l[t]:
                E_l[t] = ec + w_l[e]
                pred_l[t] = e
    for c in reversed(topo):
        best = L_l[c]
        for e in edge[ptr[c] : ptr[c + 1]]:
            val = L_l[d_l[e]] - w_l[e]
            if val < best:
                best = val
                succ_l[c] = e
        L_l[c] = best
    return (
        np.asarray(E_l, dtype=np.int64),
        np.asarray(L_l, dtype=np.int64),
        np.asarray(pred_l, dtype=np.int64),
        np.asarray(succ_l, dtype=np.int64),
    )


def _out_edges(n: int, s: IntArray) -> tuple[list[int], list[int]]:
    """Adjacency lists by source, parallel edges kept: edges of c are edge[ptr[c]:ptr[c+1]]."""
    order = np.argsort(s, kind="stable")
    ptr = np.searchsorted(s[order], np.arange(n + 1))
    return ptr.tolist(), order.tolist()


def _topological(n: int, s: IntArray, d: IntArray) -> list[int]:
    """Kahn's order of a DAG (ties by node id, so deterministic)."""
    indeg = np.bincount(d, minlength=n).tolist()
    ptr, edge = _out_edges(n, s)
    d_l = d.tolist()
    queue = deque(i for i in range(n) if indeg[i] == 0)
    topo: list[int] = []
    while queue:
        c = queue.popleft()
        topo.append(c)
        for t in (d_l[e] for e in edge[ptr[c] : ptr[c + 1]]):
            indeg[t] -= 1
            if indeg[t] == 0:
                queue.append(t)
    return topo


def _cycle_finding(ctx: _Context, order: _Order, comp: IntArray, e: int) -> Finding:
    """Name the rules on one cycle through strict edge e (all inside one component)."""
    c = comp[order.src[e]]
    within = np.flatnonzero((comp[order.src] == c) & (comp[order.dst] == c))
    count = ctx.blocks.count
    g = sp.csr_matrix((np.ones(len(within)), (order.src[within], order.dst[within])), shape=(count, count))
    back = _path(g, int(order.dst[e]), int(order.src[e])) or []
    edges = [e]
    for x, y in itertools.pairwise(back):
        candidates = within[(order.src[within] == x) & (order.dst[within] == y)]
        edges.append(int(candidates[0]))
    texts = _edges_text(ctx, order, edges)
    end, start = int(order.app_v[edges[-1]]), int(order.app_u[e])
    if end != start:  # the cycle closes inside a block
        texts.append(f"{ctx.inv.apps[end].app_id} moves with {ctx.inv.apps[start].app_id}")
    apps = ctx.ids(sorted({int(order.app_u[i]) for i in edges} | {int(order.app_v[i]) for i in edges}))
    kind = "before rules" if all(order.strict[i] for i in edges) else "before rules and callees_first order"
    message = f"the {kind} form a cycle, so no order of waves satisfies them: {_chain(texts, '; ', 5)}"
    return Finding("error", "order-cycle", message, apps=apps)


def _chain_finding(
    ctx: _Context,
    order: _Order,
    comp: IntArray,
    path: list[int],
    start: int,
    end: int,
    comp_lo: IntArray,
    comp_hi: IntArray,
) -> Finding:
    """A chain of order rules from a lower bound to an upper bound that needs too many waves."""
    lo, hi = int(comp_lo[start]), int(comp_hi[end])
    steps = sum(int(order.strict[e]) for e in path)
    first = ctx.bound_app(np.flatnonzero(comp == start), lo, "lo")
    last = ctx.bound_app(np.flatnonzero(comp == end), hi, "hi")
    parts = []
    if lo > 1:
        parts.append(f"{ctx.inv.apps[first].app_id} {ctx.own_range(first)}")
    if path:
        parts.append(_chain(_edges_text(ctx, order, path), "; ", 6))
    else:  # a callees_first call cycle (split_cycles) moves in one wave
        members = ctx.block_apps(np.flatnonzero(comp == start))
        parts.append(f"callees_first makes the call cycle {listing(members, 4)} move in one wave")
    if hi < ctx.K:
        parts.append(f"{ctx.inv.apps[last].app_id} {ctx.own_range(last)}")
    span = f"wave {lo}" if steps == 0 else f"waves {lo}..{lo + steps}"
    limit = f"the plan has only {ctx.K} waves" if hi == ctx.K else f"it must end by wave {hi}"
    apps = ctx.ids(sorted({int(order.app_u[e]) for e in path} | {int(order.app_v[e]) for e in path}))
    message = f"the order rules cannot be met: {'; '.join(parts)}: this chain needs {span} but {limit}"
    return Finding("error", "order-too-long", message, apps=apps or ctx.block_apps([start]))


# --------------------------------------------------------------------------------------------
# 4: apart rules


def _apart_checks(ctx: _Context) -> list[Finding]:
    inv, of = ctx.inv, ctx.blocks.of
    found: list[Finding] = []
    for rule in _known_rules(inv, "apart"):
        ids = [inv.index[a] for a in rule.apps]
        blocks = of[np.asarray(ids, dtype=np.int64)]
        first_at: dict[int, int] = {}
        clash = None
        for a, b in zip(ids, blocks.tolist(), strict=True):
            if b in first_at:
                clash = (first_at[b], a)
                break
            first_at[b] = a
        rule_text = f"the apart rule [{listing(rule.apps, 4)}]"
        if clash is not None:
            # proof: the two apps share a wave in every plan, the rule wants different waves
            u, v = clash
            found.append(
                Finding(
                    "error",
                    "apart-same-wave",
                    f"{rule_text} wants {inv.apps[u].app_id} and {inv.apps[v].app_id} in different waves, "
                    f"but they must share a wave: {ctx.why_together(u, v)}",
                    apps=ctx.ids([u, v]),
                )
            )
            continue
        # proof (Hall / pigeonhole): the rule's apps whose ranges lie inside waves l..h need
        # pairwise different waves there, so at most h-l+1 of them fit
        ones = np.ones(len(blocks))
        cap = np.ones(ctx.K)
        bad = _minimal_overloads(ones, ctx.lo[blocks], ctx.hi[blocks], cap)
        if bad:
            first, last = bad[0]
            inside = [
                a
                for a, b in zip(ids, blocks.tolist(), strict=True)
                if ctx.lo[b] >= first and ctx.hi[b] <= last
            ]
            shown = [f"{inv.apps[a].app_id} ({ctx.where(a)})" for a in inside]
            span = f"wave {first}" if first == last else f"waves {first}..{last} ({last - first + 1} waves)"
            text = (
                f"{rule_text} puts {len(inside)} apps in different waves but the plan has only {ctx.K} waves"
                if (first, last) == (1, ctx.K)
                else f"{rule_text} needs {len(inside)} different waves for {listing(shown, 4)}, "
                f"but they can only use {span}"
            )
            found.append(Finding("error", "apart-too-few-waves", text, apps=ctx.ids(inside)))
    same = [f for f in found if f.code == "apart-same-wave"]
    few = [f for f in found if f.code != "apart-same-wave"]
    return _capped(same, "apart-same-wave", "apart rules name apps that must share a wave") + _capped(
        few, "apart-too-few-waves", "apart rules have too few waves"
    )


# --------------------------------------------------------------------------------------------
# 2 / 5: wave capacities and max_risk, by interval (Hall) counting


def _minimal_overloads(
    weight: FloatArray, lo: IntArray, hi: IntArray, cap: FloatArray
) -> list[tuple[int, int]]:
    """Wave intervals l..h whose must-stay-inside weight exceeds their capacity, minimal ones only.

    need[l,h] = Σ weight of units with l <= lo and hi <= h; they are all in waves l..h in any
    plan, so need > Σ cap[l..h] proves infeasibility.  Minimal: no overloaded sub-interval
    (at most K of them, they cannot nest), sorted by l.
    """
    K = len(cap)
    grid = np.zeros((K + 2, K + 2))
    np.add.at(grid, (lo, hi), weight)
    # need[l, h] = Σ_{lo >= l, hi <= h}: suffix sum over lo, prefix sum over hi
    need = np.cumsum(np.cumsum(grid[::-1], axis=0)[::-1], axis=1)[1 : K + 1, 1 : K + 1]
    csum = np.concatenate([[0.0], np.cumsum(cap)])
    cap_lh = csum[None, 1:] - csum[:-1, None]  # [l-1, h-1] = Σ cap[l..h]
    valid = np.triu(np.ones((K, K), dtype=bool))
    over = _exceeds(need, cap_lh) & valid
    if not over.any():
        return []
    # has[l, h]: some sub-interval of l..h (itself included) is overloaded
    has = over.copy()
    for length in range(1, K):
        i = np.arange(K - length)
        j = i + length
        has[i, j] |= has[i + 1, j] | has[i, j - 1]
    minimal = over.copy()
    minimal[:-1, :] &= ~np.vstack([has[1:, :]])  # not has[l+1, h]
    minimal[:, 1:] &= ~has[:, :-1]  # not has[l, h-1]
    ls, hs = np.nonzero(minimal)
    return sorted((int(a) + 1, int(b) + 1) for a, b in zip(ls, hs, strict=True))


def _inside(ctx: _Context, first: int, last: int) -> IntArray:
    return np.flatnonzero((ctx.lo >= first) & (ctx.hi <= last))


UNITS = {"apps": "apps", "instances": "instances", "data_gb": "GB of data"}


def _amount(res: str, x: float) -> str:
    """'120 instances', '5 apps', '300 GB of data', '12.5% of the risk'."""
    if res == "risk":
        return f"{x:.1%} of the risk"
    return f"{_num(x)} {'app' if res == 'apps' and x == 1 else UNITS[res]}"


def _heaviest(ctx: _Context, blocks: IntArray, weight: FloatArray, res: str) -> str:
    """'group 'x' (120 instances, wave 3), app-y (80 instances, waves 2..3) and 4 more', heaviest first."""
    top = blocks[np.argsort(-weight[blocks], kind="stable")]
    shown = [
        f"{ctx.block_label(int(b))} ({_amount(res, float(weight[b]))}, {ctx.range_text(int(b))})" for b in top
    ]
    return listing(shown, 4)


def _capacity_checks(ctx: _Context) -> list[Finding]:
    found: list[Finding] = []
    for res in RESOURCES:
        try:
            cap = ctx.inv.scenario.capacity(res)
        except ValueError as err:
            found.append(Finding("error", "capacity-length", f"wave capacity: {err}"))
            continue
        if cap is None:
            continue
        found += _load_findings(ctx, ctx.blocks.load(ctx.inv, res), cap, res)
    return found


def _load_findings(ctx: _Context, weight: FloatArray, cap: FloatArray, res: str) -> list[Finding]:
    """Blocks too heavy for every wave of their range, then overloaded wave intervals.

    ``res`` is a capacity resource or "risk" (weights and capacity then are shares of the total).
    """
    found: list[Finding] = []
    K = ctx.K
    prefix = "risk" if res == "risk" else "capacity"
    suffix = "" if res == "risk" else f"-{res}"
    # range max of cap over [lo, hi]: a K x K table is small (K is tens)
    run_max = np.full((K, K), -np.inf)
    for i in range(K):
        run_max[i, i:] = np.maximum.accumulate(cap[i:])
    best = run_max[ctx.lo - 1, ctx.hi - 1]
    heavy = np.flatnonzero(_exceeds(weight, best) & (ctx.lo < ctx.hi))
    for b in heavy.tolist():
        # proof: the block's apps all go in one wave of lo..hi, and every such wave holds less
        amount = _amount(res, float(weight[b]))
        if res == "risk":
            limit = f"max_risk allows {best[b]:.1%} per wave"
        else:
            limit = f"the wave capacity in {ctx.range_text(b)} is at most {_amount(res, float(best[b]))}"
        if ctx.budget_merged(b):  # say why latency budgets tie them, not just that they are tied
            names, why = listing(ctx.block_apps([b]), 3), ctx.budget_reason(b)
            load, joint = (f"carry {amount} but", "and") if res == "risk" else (f"({amount})", "but")
            text = f"{names} {load} must move in one wave, because {why}, {joint} {limit}"
        elif res == "risk":
            text = f"{ctx.block_label(b)} carries {amount} but moves in one wave, and {limit}"
        else:
            text = f"{ctx.block_label(b)} ({amount}) does not fit any wave: {limit}"
        found.append(Finding("error", f"{prefix}-block{suffix}", text, apps=ctx.block_apps([b])))
    found = _capped(found, f"{prefix}-block{suffix}", f"move-together sets too big for one wave ({res})")
    heavy_set = set(heavy.tolist())
    overs: list[Finding] = []
    for first, last in _minimal_overloads(weight, ctx.lo, ctx.hi, cap):
        blocks = _inside(ctx, first, last)
        if heavy_set.intersection(blocks.tolist()):
            continue  # the too-big block is the reason; said above
        need, room = (
            _amount(res, float(weight[blocks].sum())),
            _amount(res, float(cap[first - 1 : last].sum())),
        )
        limit = "max_risk allows" if res == "risk" else "the capacity is"
        # proof: every app listed must move in waves first..last, whose capacities add up to less
        if (first, last) == (1, K):
            code = f"{prefix}-total{suffix}"
            text = f"the apps need {need} in total, but over all {K} waves {limit} at most {room}"
            apps: tuple[str, ...] = ()
        else:
            span = f"wave {first}" if first == last else f"waves {first}..{last}"
            code = f"{prefix}-wave{suffix}" if first == last else f"{prefix}-range{suffix}"
            text = (
                f"{span} must take {_heaviest(ctx, blocks, weight, res)}: {need} in all, but {limit} {room}"
            )
            apps = ctx.block_apps(blocks)
        overs.append(Finding("error", code, text, apps=apps))
    return found + _capped(overs, f"{prefix}-range{suffix}", f"overloaded wave ranges ({res})")


def _risk_checks(ctx: _Context) -> list[Finding]:
    """max_risk: every wave carries at most max_risk of the total risk."""
    max_risk = ctx.inv.scenario.max_risk
    if max_risk is None or ctx.inv.n == 0:
        return []
    risk = np.asarray(metrics.risk_scores(ctx.inv), dtype=np.float64)
    total = float(risk.sum())
    if total <= 0:
        return []
    K = ctx.K
    if _exceeds(1.0, max_risk * K):
        # proof: the wave shares add up to 100%, K waves of at most max_risk hold max_risk·K < 100%
        need = (
            f"at least {int(np.ceil(1 / max_risk - REL_TOL))} waves" if max_risk > 0 else "a max_risk above 0"
        )
        return [
            Finding(
                "error",
                "risk-too-few-waves",
                f"max_risk {max_risk:.4g} ({max_risk:.1%} per wave) × {K} waves = {max_risk * K:.1%} "
                f"< 100% of the risk: it needs {need}",
            )
        ]
    share = ctx.blocks.weights(risk) / total
    cap = np.full(K, float(max_risk))
    return _load_findings(ctx, share, cap, "risk")


# --------------------------------------------------------------------------------------------
# 6: splits forced by the ranges: link capacity and latency budgets


def _forced_split(ctx: _Context) -> BoolArray:
    """(m, K-1): dependency e is split in period k in every plan (one end surely moved, the other not).

    Moved in period k iff wave <= k: hi[bu] <= k < lo[bv] means u moved and v not, whatever the plan.
    """
    inv = ctx.inv
    if inv.m == 0 or ctx.K < 2:
        return np.zeros((inv.m, max(ctx.K - 1, 0)), dtype=bool)
    bu, bv = ctx.blocks.of[inv.caller], ctx.blocks.of[inv.callee]
    lu, hu, lv, hv = ctx.lo[bu, None], ctx.hi[bu, None], ctx.lo[bv, None], ctx.hi[bv, None]
    k = np.arange(1, ctx.K)[None, :]
    return np.asarray(((hu <= k) & (k < lv)) | ((hv <= k) & (k < lu)))


def _split_text(ctx: _Context, e: int) -> str:
    """'order-svc (pinned to wave 1) → mysql-order (pinned to wave 5)'."""
    u, v = int(ctx.inv.caller[e]), int(ctx.inv.callee[e])
    return f"{ctx.inv.apps[u].app_id} ({ctx.where(u)}) → {ctx.inv.apps[v].app_id} ({ctx.where(v)})"


def _link_checks(ctx: _Context, forced: BoolArray) -> list[Finding]:
    link = ctx.inv.scenario.link_gbps
    if link is None or forced.size == 0:
        return []
    inv = ctx.inv
    gbps = inv.edge_qps * inv.edge_kb * 8 / 1e6  # SPEC §3 link load per split dependency
    load = gbps @ forced
    over = np.flatnonzero(_exceeds(load, link))
    if len(over) == 0:
        return []
    # proof: these dependencies are split in these periods in every plan; their load alone is too much
    k = int(over[np.argmax(load[over])])
    edges = np.flatnonzero(forced[:, k])
    edges = edges[np.argsort(-gbps[edges], kind="stable")]
    shown = [f"{_split_text(ctx, int(e))}: {_num(float(gbps[e]))} Gbps" for e in edges]
    apps = tuple(
        dict.fromkeys(a for e in edges for a in (inv.dependencies[e].caller, inv.dependencies[e].callee))
    )
    return [
        Finding(
            "error",
            "link-forced",
            f"the link ({_num(link)} Gbps) is overloaded in {_periods((over + 1).tolist())} "
            "whatever the plan: "
            f"in period {k + 1} the calls that must cross it carry {_num(float(load[k]))} Gbps: "
            f"{listing(shown, 2)}",
            apps=apps,
        )
    ]


def _latency_checks(ctx: _Context, forced: BoolArray) -> list[Finding]:
    inv = ctx.inv
    if forced.size == 0 or not forced.any() or not inv.edge_sync.any():
        return []
    sync_forced = forced & inv.edge_sync[:, None] & (inv.edge_calls[:, None] > 0)
    if not sync_forced.any() or inv.scenario.rtt_ms <= 0:
        return []
    # the planner's coefficients (metrics caches them), not a second copy: all of them, or all
    # but the smallest (metrics.planner_coefficients), so the sum is a lower bound either way
    try:
        coef = metrics.planner_coefficients(inv).matrix
    except metrics.LatencyModelTooLargeError as err:  # 50,000 generated apps: a traceback in validate
        skipped = f"the latency checks were skipped: {err}; `migplan plan` stops there too"
        return [Finding("warning", err.code, skipped)]
    lat = np.asarray(coef @ sync_forced.astype(np.float64))  # (n, K-1) ms, a lower bound
    budget = inv.budgets[:, None]
    over = _exceeds(lat, budget)
    found: list[Finding] = []
    order = np.argsort(-(lat - budget).max(axis=1), kind="stable")
    for a in order[over[order].any(axis=1)].tolist():
        if len(found) < MAX_FINDINGS:
            found.append(_latency_finding(ctx, coef, sync_forced, lat, a, np.flatnonzero(over[a])))
        else:  # only the app, for the summary
            found.append(Finding("error", "latency-forced", "", apps=ctx.ids([a])))
    found = _capped(found, "latency-forced", "apps exceed their latency budget whatever the plan")
    found += _unbounded_checks(ctx, sync_forced)
    return found


def _latency_finding(
    ctx: _Context, coef: sp.csr_matrix, forced: BoolArray, lat: FloatArray, a: int, periods: IntArray
) -> Finding:
    """Name the app, its budget, the periods and the calls that are split in every plan."""
    # proof: added latency = Σ_e L[a,e]·split_k(e) with L >= 0, and these e are split in period k in
    # every plan, so added latency >= lat[a, k] > budget
    inv = ctx.inv
    k = int(periods[np.argmax(lat[a, periods])])
    row = coef.getrow(a)
    edges, share = row.indices, row.data
    keep = forced[edges, k] & (share > 0)
    edges, share = edges[keep], share[keep]
    rank = np.argsort(-share, kind="stable")
    edges, share = edges[rank], share[rank]
    sync = metrics.latency_model(inv).C  # calls_per_request of every sync call
    texts = [_call_text(ctx, sync, a, int(e), float(ms)) for e, ms in zip(edges[:2], share[:2], strict=True)]
    more = f" and {len(edges) - 2} more calls" if len(edges) > 2 else ""
    name, budget = inv.apps[a].app_id, _num(float(inv.budgets[a]))
    message = (
        f"{name} (budget {budget} ms{_unless_free(ctx, a)}) is over its latency budget in "
        f"{_periods((periods + 1).tolist())} whatever the plan: {'; '.join(texts)}{more} "
        f"→ {_ms(float(lat[a, k]))} ms > {budget} ms in period {k + 1} "
        f"(rtt {_num(inv.scenario.rtt_ms)} ms)"
    )
    involved = {a} | {int(inv.caller[e]) for e in edges[:SHOW]} | {int(inv.callee[e]) for e in edges[:SHOW]}
    return Finding("error", "latency-forced", message, apps=ctx.ids(sorted(involved)))


def _unless_free(ctx: _Context, a: int) -> str:
    """', pinned to wave 1' unless the app may move in any wave."""
    b = int(ctx.blocks.of[a])
    return "" if (ctx.lo[b], ctx.hi[b]) == (1, ctx.K) else f", {ctx.where(a)}"


def _call_text(ctx: _Context, sync: sp.csr_matrix, a: int, e: int, ms: float) -> str:
    """'2 sync calls/request to db (pinned to wave 5): +60 ms', or the same 'via' the apps in between."""
    inv = ctx.inv
    dep = inv.dependencies[e]
    u, v = int(inv.caller[e]), int(inv.callee[e])
    if u == a:
        return (
            f"{dep.calls_per_request:g} sync calls/request to {dep.callee} ({ctx.where(v)}): +{_num(ms)} ms"
        )
    path = _path(sync, a, u) or [a, u]
    times = float(np.prod([sync[x, y] for x, y in itertools.pairwise(path)]))
    hops = " → ".join(ctx.ids(path[1:]))
    return (
        f"it calls {hops} {times:g}×/request, which makes {dep.calls_per_request:g} sync calls/request "
        f"to {dep.callee} ({dep.callee} {ctx.where(v)}, {dep.caller} {ctx.where(u)}): +{_ms(ms)} ms"
    )


def _unbounded_checks(ctx: _Context, forced: BoolArray) -> list[Finding]:
    """Apps reaching a runaway sync call cycle while a sync call below that cycle is split in every plan."""
    inv = ctx.inv
    model = metrics.latency_model(inv)
    if not model.divergent:
        return []
    lat_edges = np.flatnonzero(model.is_latency_edge & forced.any(axis=1))
    found: list[Finding] = []
    for j, cyc in enumerate(model.divergent):
        below = lat_edges[model.downstream[inv.caller[lat_edges], j]]
        if len(below) == 0:
            continue
        # proof: E = D + C·E with spectral radius of C >= 1 on the cycle; D > 0 at the caller of a
        # split call below it makes E infinite for every app reaching the cycle (SPEC §3)
        e = int(below[0])
        k = int(np.flatnonzero(forced[e])[0])
        victims = np.flatnonzero(model.reach[:, j])
        loop = [*ctx.ids(cyc.cycle), inv.apps[cyc.cycle[0]].app_id] if cyc.cycle else list(ctx.ids(cyc.apps))
        message = (
            f"the added latency of {listing(ctx.ids(victims), 4)} is unbounded whatever the plan: they "
            f"reach the sync call cycle {_chain(loop, ' → ')} (calls per request multiply to "
            f"{cyc.cycle_product:g} >= 1), and below it {_split_text(ctx, e)} is split in period {k + 1}"
        )
        found.append(Finding("error", "latency-unbounded", message, apps=ctx.ids(victims)))
    return found
