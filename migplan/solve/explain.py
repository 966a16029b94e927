"""Why no plan exists: a small set of the user's own rules that cannot hold together.

The full model is built over the plain blocks (groups, together rules and cycles only,
so every latency budget stays visible) with one assumption literal per pin or window,
per rule instance, per latency budget, and per capacity / link / max_risk / callees_first
family.  CP-SAT's SufficientAssumptionsForInfeasibility gives a core; deletion then
shrinks it (drop a member, re-solve briefly, keep the drop when still infeasible).  Each
member is told in the user's terms with the numbers that make it bind.  A run that
cannot decide says so: "none found in time" is not "proven infeasible".
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from migplan.model import Finding, IntArray, Inventory
from migplan.solve.blocks import build_blocks
from migplan.solve.cpsat import ModelOptions, Problem, WaveModel, build_model, relaxed_problem, solve
from migplan.solve.search import Budget
from migplan.text import listing

EXPLAIN_MAX_BLOCKS = 3000
# budget terms (latency coefficients x periods) the proof model may hold: building one
# takes about 0.7 s per million on the 2-core box (NetEase: 1.3 M, 3 s), and a deep call
# graph of 2,000 services has 44 M (a 40 s build and 1.7 GB before any search)
EXPLAIN_MAX_TERMS = 10_000_000
# the build rate measured on that box with the current model code: 0.32-0.34 M terms per second
# (NetEase 1.25 M in 3.7 s; 1,500 apps at 60 waves 5.5 M in 17 s); a model that would take longer
# than the wall given is not built: at 60 waves that build ran 17 s past --time-limit for nothing
BUILD_TERMS_PER_SECOND = 300_000
FIRST_SOLVE_WORK = 20.0
SHRINK_SOLVE_WORK = 1.0
MAX_SHRINK = 40
MIN_SEARCH_SECONDS = 0.5  # the first solve's wall time when building the model used up ``wall``


@dataclass(frozen=True)
class Explanation:
    findings: tuple[Finding, ...]
    waves: IntArray | None = None  # per app: a plan meeting every rule, found while looking for a proof


def explain(
    inv: Inventory, problem: Problem, budget: Budget, wall: float = 30.0, hint: IntArray | None = None
) -> Explanation:
    """Findings naming a conflicting set of rules, or one finding saying none could be proven.

    ``wall`` caps the proof search in seconds, building its model included (the planner passes
    a share of its time limit; at 1,200 apps the build alone takes about 4 s), but the search
    gets at least MIN_SEARCH_SECONDS.  ``hint`` (per app, e.g. the closest plan the search
    found) guides it.  The search may instead find a plan that meets every rule: it is
    returned for the planner to use.
    """
    started = time.monotonic()
    ub = problem.unbounded_edges
    # calls below a divergent cycle are never split (unbounded latency): kept whole here too
    plain = build_blocks(inv, (inv.caller[ub], inv.callee[ub]) if len(ub) else None)
    note = _unbounded_note(inv, ub)
    if plain.conflicts:
        return Explanation(plain.conflicts + note)
    if plain.count > EXPLAIN_MAX_BLOCKS:
        return Explanation(
            (_not_proven(inv, "the estate is too large to search for a proof in the time left"),)
        )
    terms = problem.latency_source.nnz * max(inv.K - 1, 0)
    size = f"its latency budgets hold {terms:,} terms (apps x the calls they reach x periods)"
    if terms > EXPLAIN_MAX_TERMS:
        why = f"{size}, more than the {EXPLAIN_MAX_TERMS:,} a proof search can build in the time left"
        return Explanation((_not_proven(inv, why),))
    if terms > wall * BUILD_TERMS_PER_SECOND:
        seconds = terms / BUILD_TERMS_PER_SECOND
        why = f"{size}, about {seconds:.0f} s to build, more than the {wall:.0f} s left for a proof search"
        return Explanation((_not_proven(inv, why),))
    # relaxed (nothing dropped, rounded in the plans' favour): a core found here is a proof
    # for the user's own rules, not only for the search's safe model
    full = relaxed_problem(problem, 0.0, plain)
    first = np.asarray([m[0] for m in plain.members], dtype=np.int64)
    base = np.ones(plain.count, dtype=np.int64) if hint is None else np.asarray(hint, dtype=np.int64)[first]
    wm = build_model(
        full, base, range(plain.count), ModelOptions(assumptions=True, ranges=False, objective=False)
    )
    if hint is None:
        wm.model.clear_hints()
    lits = list(wm.assumption_vars)
    outcome, solver = solve(
        wm,
        deterministic_time=FIRST_SOLVE_WORK,
        wall_time=max(wall - (time.monotonic() - started), MIN_SEARCH_SECONDS),
        stop=budget.stop,
        assumptions=lits,
    )
    if outcome.status != "infeasible":
        if outcome.waves is not None:
            return Explanation((), plain.expand(outcome.waves))
        return Explanation((_not_proven(inv, "no rule conflict could be proven in the time available"),))
    core = _shrink(wm, [_by_index(wm, i) for i in solver.sufficient_assumptions_for_infeasibility()], budget)
    members = [render(inv, full, *wm.assumptions[v.index]) for v in core]
    summary = Finding(
        "error",
        "infeasible",
        f"no plan exists: these {len(members)} requirements cannot all hold together (proven)",
        apps=tuple(sorted({a for f in members for a in f.apps})),
    )
    return Explanation((summary, *members, *note))


def _unbounded_note(inv: Inventory, unbounded_edges: IntArray) -> tuple[Finding, ...]:
    """Calls kept whole because splitting them makes latency unbounded (told, since it binds)."""
    if len(unbounded_edges) == 0:
        return ()
    deps = [inv.dependencies[int(e)] for e in unbounded_edges[:6]]
    calls = listing((f"{d.caller} → {d.callee}" for d in deps), 6, total=len(unbounded_edges))
    apps = tuple(dict.fromkeys(a for d in deps for a in (d.caller, d.callee)))
    return (
        Finding(
            "error",
            "core-unbounded-latency",
            f"calls {calls} can never be split: they lie below a circular chain of sync calls"
            " whose calls per request multiply to 1 or more, so splitting them makes latency unbounded;"
            " their apps move in one wave",
            apps=apps,
        ),
    )


def _by_index(wm: WaveModel, index: int) -> cp_model.IntVar:
    for var in wm.assumption_vars:
        if var.index == index:
            return var
    raise KeyError(index)


def _shrink(wm: WaveModel, core: list[cp_model.IntVar], budget: Budget) -> list[cp_model.IntVar]:
    """Deletion-based shrinking: drop each member whose removal keeps the model infeasible."""
    kept = list(core)
    for var in list(core)[:MAX_SHRINK]:
        if len(kept) <= 1 or budget.stop.is_set():
            break
        trial = [v for v in kept if v.index != var.index]
        outcome, solver = solve(
            wm, deterministic_time=SHRINK_SOLVE_WORK, wall_time=5.0, stop=budget.stop, assumptions=trial
        )
        if outcome.status == "infeasible":
            smaller = set(solver.sufficient_assumptions_for_infeasibility())
            kept = [v for v in trial if v.index in smaller] or trial
    return kept


def _not_proven(inv: Inventory, why: str) -> Finding:
    return Finding("error", "no-plan-found", f"no feasible plan found in time: {why}")


def render(inv: Inventory, problem: Problem, kind: str, details: tuple[object, ...]) -> Finding:
    """One core member in the user's words, with the numbers that make it bind."""
    sc = inv.scenario
    if kind in ("pin", "window"):
        i, lo, hi = (int(d) for d in details)  # type: ignore[call-overload]
        app = inv.apps[i]
        text = (
            f"{app.app_id} is pinned to wave {app.pinned_wave}"
            if kind == "pin"
            else f"{app.app_id} must move in waves {lo}..{hi}"
        )
        return Finding("error", f"core-{kind}", text, apps=(app.app_id,))
    if kind == "capacity":
        res = str(details[0])
        cap = sc.capacity(res)  # type: ignore[arg-type]
        total = float(inv.load(res).sum())  # type: ignore[arg-type]
        caps = "" if cap is None else f"{_num(cap.sum())} over {inv.K} waves ({_caps(cap)} per wave)"
        return Finding(
            "error", "core-capacity", f"wave capacity for {res}: {caps}, for {_num(total)} {res} in all"
        )
    if kind in ("before", "apart"):
        rule = sc.rules[int(details[0])]  # type: ignore[call-overload]
        apps = ", ".join(rule.apps)
        if kind == "before":
            return Finding(
                "error",
                "core-before",
                f"rule: {apps} move in this order (strictly earlier waves)",
                apps=rule.apps,
            )
        return Finding(
            "error",
            "core-apart",
            f"rule: {len(rule.apps)} apps ({apps}) must move in different waves, and there are {inv.K} waves",
            apps=rule.apps,
        )
    if kind == "callees_first":
        return Finding(
            "error", "core-callees-first", "callees_first: no callee may move after one of its callers"
        )
    if kind == "link":
        return Finding(
            "error", "core-link", f"the inter-site link carries at most {_num(sc.link_gbps or 0)} Gbps"
        )
    if kind == "max_risk":
        return Finding(
            "error",
            "core-max-risk",
            f"max_risk: no wave may carry more than {_num(sc.max_risk or 0)} of the total risk",
        )
    if kind == "latency":
        return _render_latency(inv, problem, int(details[0]))  # type: ignore[call-overload]
    return Finding("error", f"core-{kind}", f"{kind} {details}")


def _render_latency(inv: Inventory, problem: Problem, a: int) -> Finding:
    """'user-svc (budget 40 ms) makes 2 sync calls per request to mysql-user: each split adds 60 ms'."""
    app = inv.apps[a]
    row = problem.latency_source.getrow(a).tocoo()
    order = np.argsort(-row.data, kind="stable")[:3]
    parts = []
    names = [app.app_id]
    for j in order.tolist():
        e = int(row.col[j])
        dep = inv.dependencies[e]
        callee = inv.apps[int(inv.callee[e])]
        where = f" (pinned to wave {callee.pinned_wave})" if callee.pinned_wave is not None else ""
        via = "" if dep.caller == app.app_id else f" via {dep.caller}"
        parts.append(
            f"{_num(dep.calls_per_request)} sync call(s) per request to {dep.callee}{where}{via}:"
            f" while that call is split it adds {_num(float(row.data[j]))} ms"
        )
        names.extend([dep.caller, dep.callee])
    pin = f", pinned to wave {app.pinned_wave}" if app.pinned_wave is not None else ""
    text = f"{app.app_id} (latency budget {_num(float(inv.budgets[a]))} ms{pin}) makes " + "; ".join(parts)
    return Finding("error", "core-latency", text, apps=tuple(dict.fromkeys(names)))


def _num(x: float) -> str:
    return f"{x:g}"


def _caps(cap: np.ndarray) -> str:
    return _num(float(cap[0])) if np.all(cap == cap[0]) else "/".join(_num(float(c)) for c in cap)
