"""Synthetic estates modelled on the NetEase Cloud Music move (Hangzhou → Guizhou).

Why: the planner needs large, realistic, reproducible inventories with a plan that is
known to be feasible, and budgets tight enough that a latency-blind plan breaks them.

Public facts used (SPEC §1): more than 2,000 applications, more than 1,000,000 QPS of
traffic, middleware and storage moved too, about 30 ms more round-trip time between the
sites, Hangzhou → Guizhou.  Everything else below is a stated synthetic assumption.

The estate
----------
* **Control plane** (kind ``control-plane``, 4 apps): service registry, config centre,
  deploy centre, monitoring.  Registry and config centre call each other (one cycle).
* **Teams**: about n/25 teams (sizes 6+, Dirichlet-spread around 25).  A team owns
  services (most apps), one or more MySQL databases (kind ``database``; the first one
  of most teams has a replica in the same ``group``, fed by async replication), one or
  more Redis caches (kind ``middleware``, stateful) and, for about 60 % of teams, a
  frontend.  About a quarter of a team's services are its API layer.
* **Domains**: consecutive teams, about six per domain.  Each domain has an API gateway
  (kind ``gateway``, high fan-in) and two shared middleware hubs: a Kafka cluster (async
  producers and consumers) and a shared Redis (sessions).
* **Calls**: a service calls higher-ranked services of its own team (a layered DAG),
  and with a lower rate the API services of *later* teams, three quarters of them in its
  own domain: about 80 % of service-to-service calls stay inside a team.  Because
  cross-team calls only go to later teams and in-team calls only go down the ranks, the
  call graph is a DAG until a handful of deliberate cycles of 2-4 services inside one
  team are added (each checked to stay a strongly connected component of ≤ 4 apps with
  spectral radius ≤ 0.6, so latency and traffic stay finite).
* **calls_per_request**: service-to-service inside a team lognormal with median 0.3
  (about 8 % chatty pairs drawn from 1-3); across teams median 0.2 and at most 1 (coarser
  APIs: chatty chains across teams gave frontends 500 ms of planted latency); databases
  median 0.6, caches median 1.2, control plane 0.001-0.1; a gateway spreads one request
  over its domain's API services (shares summing to 1-1.5).  About 15 % of the edges are
  async (Kafka, replication, metrics, 8 % of service calls).
* **kb_per_call**: lognormal median 4 KB clipped to 1-64 (databases larger, caches smaller).
* **QPS**: external traffic enters frontends and gateways (lognormal, σ = 1.2); every
  other app gets a small own background load (health checks, cron, consumers; median
  2 QPS, median 50 for apps nobody calls).  App QPS solves the flow equations
  ``qps = background + Σ inbound dependency qps`` with ``dependency qps = caller qps ×
  calls_per_request`` exactly (up to rounding to 0.01), and the external traffic is
  scaled so that frontends + gateways carry 600 QPS per app in the estate (1,200,000 at
  2,000 apps).
* criticality (1 = P0 .. 5), instances (1-50, lognormal), data_gb (databases median
  300 GB, Kafka 800 GB, caches 20 GB), stateful (databases, caches, queues, registry,
  config, deploy, monitoring), rehearsed (90 %, databases 80 %).

The feasibility guarantee
-------------------------
A *planted* plan is built first: control plane, then for each domain its middleware, its
teams (each team's databases and caches first) and its gateway, laid out in one order
and cut into K waves (a pilot wave of 0.4 of a normal wave first), cutting at team
borders where one lies within 30 % of a wave of the target; strongly connected
components and groups move with their earliest member.  Its added latency per app and
period comes from ``metrics.evaluate`` (the one definition of SPEC §3, never
re-implemented here).  Then every constraint is set from the planted plan so that it
holds by construction:

* latency budget = ceil(max(planted worst added latency × 1.1, a floor)) ms, where the
  floor is 50-300 ms for frontends, 30-120 ms for gateways, 2-12 ms for *tight* services
  (60 % of the P0/P1 services, 40 % of the others: they must not be split from their
  synchronous callees), 20-150 ms for the other services, 10-60 ms for the rest; a fifth of
  the loose services leave the budget empty (scenario default 100 ms, checked to be
  enough);
* wave capacities (apps, instances as per-wave lists with the pilot wave; data_gb one
  number) = ceil(planted load × 1.15);
* link_gbps = planted peak link load × 1.2 rounded up to 2 significant digits;
* max_risk = planted peak wave risk share × 1.15 rounded up to 0.01;
* pins, windows and ``before`` / ``apart`` rules are drawn from the planted waves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu

from migplan import metrics
from migplan.generate_options import option_problems
from migplan.model import RESOURCES, App, Dependency, Inventory, Plan, Rule, Scenario

SOURCE, TARGET = "hangzhou", "guizhou"

READABLE_MAX_APPS = 150  # up to this size, ids read like a real estate (user-svc, mysql-user)
ENTRY_QPS_PER_APP = 600.0  # 2,000 apps -> 1,200,000 QPS at frontends + gateways
TEAM_SIZE = 25
READABLE_TEAM_SIZE = 10  # small readable estates get more, smaller teams
TEAMS_PER_DOMAIN = 6
PILOT_SHARE = 0.4  # the first wave is a pilot of 0.4 of a normal wave
CAPACITY_SLACK = 1.15
LINK_SLACK = 1.2
RISK_SLACK = 1.15
LATENCY_SLACK = 1.1
DEFAULT_BUDGET_MS = 100.0
CYCLE_MAX_RADIUS = 0.6
TIGHT_SHARE_CRITICAL = 0.6  # share of P0/P1 services with a tight (2-12 ms) budget floor
TIGHT_SHARE_OTHER = 0.4

_TEAM_WORDS = (
    "user", "playlist", "song", "search", "recommend", "comment", "payment", "vip", "social",
    "live", "radio", "ads", "message", "lyric", "artist", "album", "upload", "audit",
    "coupon", "order",
)  # fmt: skip
_SERVICE_WORDS = (
    "svc", "api", "worker", "rank", "index", "job", "sync", "feed", "notify", "admin",
    "export", "stats", "auth", "profile", "history", "tag", "scheduler", "report", "importer", "audit",
)  # fmt: skip
_GATEWAY_WORDS = ("api-gateway", "mobile-gateway", "open-gateway", "admin-gateway")
_KAFKA_WORDS = ("kafka-events", "kafka-orders", "kafka-logs", "kafka-media")
_SHARED_REDIS_WORDS = ("redis-session", "redis-feed", "redis-rank", "redis-media")
_CONTROL_PLANE = (
    ("service-registry", "cp-registry"),
    ("config-center", "cp-config"),
    ("deploy-center", "cp-deploy"),
    ("monitoring", "cp-monitoring"),
)


@dataclass(frozen=True)
class GeneratedEstate:
    """An inventory and the plan it was built around (feasible by construction)."""

    inventory: Inventory
    planted: Plan


@dataclass
class _Edge:
    calls: float
    sync: bool
    kb: float


@dataclass
class _Draft:
    """Mutable scratch while the estate is built; positions are creation order."""

    readable: bool
    ids: list[str] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    team: list[str] = field(default_factory=list)
    role: list[str] = field(default_factory=list)
    rank: list[float] = field(default_factory=list)
    team_no: list[int] = field(default_factory=list)  # -1 for platform and edge apps
    group: dict[int, str] = field(default_factory=dict)
    edges: dict[tuple[int, int], _Edge] = field(default_factory=dict)
    blocks: list[list[int]] = field(default_factory=list)  # planted order, team borders
    taken: set[str] = field(default_factory=set)

    def add(
        self,
        readable_id: str,
        systematic_id: str,
        kind: str,
        team: str,
        role: str,
        rank: float = 0.0,
        team_no: int = -1,
    ) -> int:
        base = readable_id if self.readable else systematic_id
        app_id, k = base, 2
        while app_id in self.taken:
            app_id, k = f"{base}-{k}", k + 1
        self.taken.add(app_id)
        self.ids.append(app_id)
        self.kind.append(kind)
        self.team.append(team)
        self.role.append(role)
        self.rank.append(rank)
        self.team_no.append(team_no)
        return len(self.ids) - 1

    def call(self, caller: int, callee: int, calls: float, sync: bool, kb: float) -> None:
        if caller != callee and (caller, callee) not in self.edges:
            self.edges[(caller, callee)] = _Edge(_sig(calls, 4), sync, round(kb, 1))


def _pick(words: tuple[str, ...], i: int, fallback: str) -> str:
    """The i-th readable name, or a numbered fallback once the list runs out."""
    return words[i] if i < len(words) else f"{fallback}-{i}"


def _numbered(base: str, j: int) -> str:
    """mysql-user, mysql-user-2, ...: the first of a kind needs no number."""
    return f"{base}-{j + 1}" if j else base


def _sig(x: float, digits: int) -> float:
    """Round to significant digits (readable CSVs that round-trip exactly)."""
    return float(f"{x:.{digits}g}")


def _ceil_sig(x: float, digits: int = 2) -> float:
    """Round up to significant digits: a capacity never drops below the planted load."""
    if x <= 0:
        return 0.0
    exponent = math.floor(math.log10(x)) - digits + 1
    up = math.ceil(x / 10.0**exponent) * 10.0**exponent
    return max(float(f"{up:.12g}"), x)


def _lognormal(rng: np.random.Generator, median: float, sigma: float, lo: float, hi: float) -> float:
    return min(max(float(rng.lognormal(math.log(median), sigma)), lo), hi)


def generate_estate(
    n_apps: int,
    seed: int,
    waves: int = 12,
    rtt_ms: float = 30.0,
    progress: Callable[[str], None] | None = None,
) -> GeneratedEstate:
    """A NetEase-like estate of ``n_apps`` apps and a plan that is feasible for it.

    Deterministic for a seed.  Raises ValueError naming every option out of
    ``option_problems``' limits (the files written must pass the inventory's own checks).
    ``progress`` hears each phase's name as it starts: 200,000 apps take minutes.
    """
    say = progress or (lambda _phase: None)
    problems = option_problems(n_apps, waves, rtt_ms)
    if problems:
        raise ValueError(
            "; ".join(f"{name} = {value}: expected {expected}" for name, value, expected in problems)
        )
    rng = np.random.default_rng(seed)
    draft = _Draft(readable=n_apps <= READABLE_MAX_APPS)
    say("apps and calls")
    _build_apps_and_calls(draft, n_apps, rng)
    _add_cycles(draft, rng, max(1, min(12, n_apps // 300)))
    n = len(draft.ids)
    say("traffic")
    qps = _solve_qps(draft, rng)
    say("planted plan")
    planted = _planted_waves(draft, waves)
    apps = _apps(draft, qps, planted, rng, waves)
    deps = _dependencies(draft, qps)
    rules = _rules(draft, planted)
    order = sorted(range(n), key=lambda i: draft.ids[i])
    apps_sorted = tuple(apps[i] for i in order)
    deps_sorted = tuple(sorted(deps, key=lambda d: (d.caller, d.callee)))
    plan = Plan.from_array(planted[order], waves)
    draft_inv = Inventory(apps_sorted, deps_sorted, Scenario(waves=waves, rtt_ms=float(rtt_ms)))
    say("budgets and limits")
    return _fit_constraints(draft_inv, plan, rules, rng)


def _build_apps_and_calls(draft: _Draft, n_apps: int, rng: np.random.Generator) -> None:
    """Create every app and the call DAG, block by block in the planted order."""
    n_teams = max(2, round(n_apps / (READABLE_TEAM_SIZE if draft.readable else TEAM_SIZE)))
    n_domains = max(1, round(n_teams / TEAMS_PER_DOMAIN))
    team_apps = n_apps - len(_CONTROL_PLANE) - 3 * n_domains
    sizes = 6 + rng.multinomial(team_apps - 6 * n_teams, rng.dirichlet(np.full(n_teams, 4.0)))
    width = max(2, len(str(n_teams - 1)))

    cp = [draft.add(r, s, "control-plane", "platform", s[3:]) for r, s in _CONTROL_PLANE]
    registry, config, deploy, _monitoring = cp
    draft.blocks.append(cp)
    draft.call(registry, config, 0.02, True, 2.0)
    draft.call(config, registry, 0.02, True, 1.0)
    draft.call(deploy, registry, 0.1, True, 2.0)
    draft.call(deploy, config, 0.1, True, 4.0)

    domain_of_team = [t * n_domains // n_teams for t in range(n_teams)]
    team_names = [
        _TEAM_WORDS[t] if draft.readable and t < len(_TEAM_WORDS) else f"t{t:0{width}d}"
        for t in range(n_teams)
    ]
    api: list[list[int]] = []
    for d in range(n_domains):
        kafka = draft.add(_pick(_KAFKA_WORDS, d, "kafka"), f"mw-kafka-{d}", "middleware", "platform", "kafka")
        redis = draft.add(_pick(_SHARED_REDIS_WORDS, d, "redis-shared"), f"mw-redis-{d}", "middleware",
                          "platform", "redis")  # fmt: skip
        draft.blocks.append([kafka, redis])
        teams = [t for t in range(n_teams) if domain_of_team[t] == d]
        frontends: list[int] = []
        for t in teams:
            team_api, team_fes = _build_team(draft, t, team_names[t], int(sizes[t]), kafka, redis, cp, rng)
            api.append(team_api)
            frontends += team_fes
        gateway = draft.add(_pick(_GATEWAY_WORDS, d, "gateway"), f"gw-{d}", "gateway", "edge", "gateway")
        draft.blocks.append([gateway])
        _route_gateway(draft, gateway, [a for t in teams for a in api[t]], api, domain_of_team, d, rng)
        draft.call(gateway, redis, rng.uniform(0.8, 1.2), True, 1.0)
        draft.call(gateway, kafka, 1.0, False, 1.0)
        draft.call(gateway, registry, 0.001, True, 1.0)
        for fe in frontends:
            draft.call(fe, gateway, _lognormal(rng, 1.0, 0.4, 0.3, 3.0), True, _lognormal(rng, 8, 0.6, 1, 64))
            if rng.random() < 0.5:
                draft.call(fe, redis, 0.5, True, 1.0)
    _cross_team_calls(draft, api, domain_of_team, rng)


def _build_team(
    draft: _Draft,
    t: int,
    name: str,
    size: int,
    kafka: int,
    shared_redis: int,
    cp: list[int],
    rng: np.random.Generator,
) -> tuple[list[int], list[int]]:
    """One team block: databases and caches first (callees), services, frontends.

    Returns the team's API services and frontends.
    """
    tag = name  # systematic team names (t03) are already tags
    n_db = max(1, round(0.10 * size))
    replica = (t == 0 and size >= 8) or (size >= 10 and rng.random() < 0.6)
    n_cache = max(1, round(0.05 * size))
    n_fe = (2 if size > 40 else 1) if (t == 0 or rng.random() < 0.6) else 0
    n_svc = size - n_db - int(replica) - n_cache - n_fe
    block: list[int] = []
    dbs = [
        draft.add(_numbered(f"mysql-{name}", j), f"db-{tag}-{j + 1}", "database", name, "db", team_no=t)
        for j in range(n_db)
    ]
    block += dbs
    if replica:
        rep = draft.add(
            f"mysql-{name}-replica", f"db-{tag}-1-replica", "database", name, "replica", team_no=t
        )
        block.append(rep)
        draft.group[dbs[0]] = draft.group[rep] = f"g-{draft.ids[dbs[0]]}"
        draft.call(dbs[0], rep, 1.0, False, _lognormal(rng, 6, 0.7, 1, 64))
    caches = [
        draft.add(
            _numbered(f"redis-{name}", j), f"redis-{tag}-{j + 1}", "middleware", name, "cache", team_no=t
        )
        for j in range(n_cache)
    ]
    block += caches
    n_api = max(1, round(0.25 * n_svc))
    ranks = np.concatenate([np.sort(rng.uniform(0, 1, n_api)), np.sort(rng.uniform(1, 4, n_svc - n_api))])
    svcs = []
    for j in range(n_svc):
        word = _SERVICE_WORDS[j] if j < len(_SERVICE_WORDS) else f"svc-{j + 1}"
        role = "api" if j < n_api else "service"
        svcs.append(
            draft.add(f"{name}-{word}", f"{tag}-svc-{j + 1:03d}", "service", name, role, float(ranks[j]), t)
        )
    block += svcs[::-1]  # deepest first: callees before callers in the planted order
    fes = []
    for j in range(n_fe):
        readable = "web-frontend" if t == 0 and j == 0 else _numbered(f"{name}-web", j)
        fes.append(draft.add(readable, f"fe-{tag}-{j + 1}", "frontend", name, "frontend", team_no=t))
    block += fes
    draft.blocks.append(block)

    registry, config, _deploy, monitoring = cp
    for s in svcs:
        deeper = [v for v in svcs if draft.rank[v] > draft.rank[s]]
        for v in (
            rng.choice(deeper, size=min(len(deeper), 1 + rng.poisson(0.7)), replace=False) if deeper else []
        ):
            _service_call(draft, s, int(v), rng)
        if rng.random() < (0.6 if draft.role[s] == "service" else 0.2):
            draft.call(s, dbs[rng.integers(n_db)], _lognormal(rng, 0.6, 0.8, 0.05, 4), True,
                       _lognormal(rng, 8, 0.8, 1, 64))  # fmt: skip
        if rng.random() < 0.35:
            draft.call(s, caches[rng.integers(n_cache)], _lognormal(rng, 1.2, 0.6, 0.1, 5), True,
                       _lognormal(rng, 2, 0.6, 1, 64))  # fmt: skip
        if rng.random() < 0.08:
            draft.call(s, shared_redis, _lognormal(rng, 0.5, 0.6, 0.05, 3), True, 1.0)
        if rng.random() < 0.2:
            draft.call(s, kafka, _lognormal(rng, 0.3, 0.8, 0.01, 3), False, _lognormal(rng, 2, 0.8, 1, 64))
        elif rng.random() < 0.1:
            draft.call(s, kafka, _lognormal(rng, 0.1, 0.8, 0.01, 1), False, _lognormal(rng, 4, 0.8, 1, 64))
        if rng.random() < 0.2:
            draft.call(s, registry, rng.uniform(0.002, 0.01), True, 1.0)
        if rng.random() < 0.1:
            draft.call(s, config, rng.uniform(0.001, 0.005), True, 2.0)
        if rng.random() < 0.1:
            draft.call(s, monitoring, 0.01, False, 1.0)
    api = svcs[:n_api]
    for fe in fes:
        for a in rng.choice(api, size=min(len(api), 1 + int(rng.random() < 0.5)), replace=False):
            draft.call(fe, int(a), _lognormal(rng, 0.6, 0.6, 0.1, 3), True, _lognormal(rng, 8, 0.6, 1, 64))
    return api, fes


def _service_call(
    draft: _Draft, caller: int, callee: int, rng: np.random.Generator, in_team: bool = True
) -> None:
    """Service-to-service, 8 % async.  In a team: median 0.3 calls per request and 8 % chatty
    pairs (1-3); across teams APIs are coarser: median 0.2, at most 1."""
    if not in_team:
        calls = _lognormal(rng, 0.2, 0.8, 0.01, 1)
    elif rng.random() < 0.08:
        calls = rng.uniform(1, 3)
    else:
        calls = _lognormal(rng, 0.3, 1.0, 0.01, 3)
    draft.call(caller, callee, calls, rng.random() >= 0.08, _lognormal(rng, 4, 0.9, 1, 64))


def _route_gateway(
    draft: _Draft,
    gateway: int,
    own_api: list[int],
    api: list[list[int]],
    domain_of_team: list[int],
    d: int,
    rng: np.random.Generator,
) -> None:
    """A gateway spreads each request over its domain's API services (and a few others)."""
    others = [a for t, team_api in enumerate(api) if domain_of_team[t] != d for a in team_api]
    extra = [
        int(a) for a in rng.choice(others, size=min(len(others), max(1, len(own_api) // 10)), replace=False)
    ]
    routes = own_api + extra if others else own_api
    shares = rng.dirichlet(np.full(len(routes), 0.7)) * rng.uniform(1.0, 1.5)
    for a, share in zip(routes, shares, strict=True):
        draft.call(gateway, a, max(float(share), 0.001), True, _lognormal(rng, 6, 0.6, 1, 64))


def _cross_team_calls(
    draft: _Draft, api: list[list[int]], domain_of_team: list[int], rng: np.random.Generator
) -> None:
    """Services call API services of later teams only (keeps the graph a DAG), 3/4 in-domain."""
    n_teams = len(api)
    domain_end = {d: t + 1 for t, d in enumerate(domain_of_team)}  # teams of a domain are consecutive
    for s in range(len(draft.ids)):
        t = draft.team_no[s]
        if draft.kind[s] != "service" or t == n_teams - 1:
            continue
        same_end = domain_end[domain_of_team[t]]
        for _ in range(rng.poisson(0.35)):
            if same_end > t + 1 and rng.random() < 0.75:
                callee_team = api[int(rng.integers(t + 1, same_end))]
            else:
                callee_team = api[int(rng.integers(t + 1, n_teams))]
            _service_call(draft, s, callee_team[rng.integers(len(callee_team))], rng, in_team=False)


def _call_matrix(draft: _Draft, n: int) -> sp.csr_matrix:
    """A[u, v] = calls_per_request of u -> v over all edges (sync and async)."""
    keys = list(draft.edges)
    rows = np.fromiter((u for u, _ in keys), np.int64, len(keys))
    cols = np.fromiter((v for _, v in keys), np.int64, len(keys))
    vals = np.fromiter((e.calls for e in draft.edges.values()), np.float64, len(keys))
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


def _add_cycles(draft: _Draft, rng: np.random.Generator, count: int) -> None:
    """A few deliberate in-team cycles of 2-4 services, each its own small SCC with radius <= 0.6.

    A cycle closes a chain of existing in-team calls with one back call.  Cross-team calls
    only go to later teams, so the new strongly connected component lies inside the team's
    services: it is found from the in-team call lists alone.
    """
    out: dict[int, list[int]] = {}
    into: dict[int, list[int]] = {}
    for u, v in draft.edges:
        if draft.kind[u] == draft.kind[v] == "service" and draft.team_no[u] == draft.team_no[v]:
            out.setdefault(u, []).append(v)
            into.setdefault(v, []).append(u)
    starts = sorted(out)
    made, tries = 0, 0
    while made < count and tries < 50 * count and starts:
        tries += 1
        chain = [starts[rng.integers(len(starts))]]
        for _ in range(int(rng.integers(1, 4))):
            nxt = [v for v in out.get(chain[-1], []) if v not in chain]
            if not nxt:
                break
            chain.append(nxt[rng.integers(len(nxt))])
        if len(chain) < 2 or (chain[-1], chain[0]) in draft.edges:
            continue
        first, last = chain[0], chain[-1]
        draft.call(last, first, rng.uniform(0.05, 0.5), True, _lognormal(rng, 4, 0.9, 1, 64))
        out.setdefault(last, []).append(first)
        into.setdefault(first, []).append(last)
        members = sorted(_reach(first, out) & _reach(first, into))
        if len(members) > 4:
            del draft.edges[(last, first)]
            out[last].pop()
            into[first].pop()
            continue
        back = draft.edges[(last, first)]
        while _radius(draft, members) > CYCLE_MAX_RADIUS:
            back.calls = _sig(back.calls / 2, 4)
        made += 1


def _reach(start: int, adjacency: dict[int, list[int]]) -> set[int]:
    """Apps reachable from ``start`` (itself included) along ``adjacency``."""
    seen, stack = {start}, [start]
    while stack:
        for v in adjacency.get(stack.pop(), []):
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return seen


def _radius(draft: _Draft, members: list[int]) -> float:
    """Spectral radius of calls_per_request inside one small SCC."""
    c = np.array(
        [[draft.edges[(u, v)].calls if (u, v) in draft.edges else 0.0 for v in members] for u in members]
    )
    return float(np.abs(np.linalg.eigvals(c)).max())


def _solve_qps(draft: _Draft, rng: np.random.Generator) -> np.ndarray:
    """qps = background + A^T qps; external traffic scaled to 600 QPS per app at the entry."""
    n = len(draft.ids)
    kinds = np.array(draft.kind)
    entry = (kinds == "frontend") | (kinds == "gateway")
    a = _call_matrix(draft, n)
    called = np.diff(a.tocsc().indptr) > 0
    external = np.where(entry, rng.lognormal(0.0, 1.2, n), 0.0)
    background = np.where(entry, 0.0, rng.lognormal(math.log(2.0), 1.0, n))
    background += np.where(~entry & ~called, rng.lognormal(math.log(50.0), 1.0, n), 0.0)
    system = (sp.identity(n, format="csc") - a.T.tocsc()).tocsc()
    q_ext, q_bg = splu(system).solve(np.column_stack([external, background])).T
    scale = ENTRY_QPS_PER_APP * n / float(q_ext[entry].sum())
    return np.maximum(q_ext * scale + q_bg, 0.0)


def _planted_waves(draft: _Draft, waves: int) -> np.ndarray:
    """Cut the block order into waves (pilot first), SCCs and groups kept in one wave."""
    order = [a for block in draft.blocks for a in block]
    n = len(order)
    borders = np.cumsum([0] + [len(b) for b in draft.blocks])
    unit = n / (waves - 1 + PILOT_SHARE)
    cuts: list[int] = []
    for k in range(1, waves):
        target = unit * (PILOT_SHARE + k - 1)
        near = int(borders[np.abs(borders - target).argmin()])
        cut = near if abs(near - target) <= 0.5 * unit else round(target)
        lo = (cuts[-1] + 1) if cuts else 1
        cuts.append(min(max(cut, lo), n - (waves - k)))
    position = np.empty(n, np.int64)
    position[order] = np.arange(n)
    wave = 1 + np.searchsorted(np.asarray(cuts), position, side="right")
    # Each SCC and group moves with its earliest member.
    _, labels = connected_components(_call_matrix(draft, n), directed=True, connection="strong")
    units = labels.astype(object)
    for a, g in draft.group.items():
        units[a] = g
    first: dict[object, int] = {}
    for a in order:
        first.setdefault(units[a], int(wave[a]))
    return np.fromiter((first[units[a]] for a in range(n)), np.int64, n)


def _apps(
    draft: _Draft, qps: np.ndarray, planted: np.ndarray, rng: np.random.Generator, waves: int
) -> list[App]:
    """Per-app attributes (budgets come later, from the planted plan's added latency)."""
    n = len(draft.ids)
    crit_p: dict[str, list[float]] = {
        "frontend": [0.4, 0.4, 0.2, 0, 0],
        "gateway": [0.6, 0.4, 0, 0, 0],
        "control-plane": [1, 0, 0, 0, 0],
        "database": [0.2, 0.3, 0.3, 0.2, 0],
        "middleware": [0.2, 0.3, 0.3, 0.2, 0],
        "service": [0.07, 0.18, 0.35, 0.25, 0.15],
    }
    inst_median = {
        "frontend": 12,
        "gateway": 20,
        "control-plane": 4,
        "database": 2,
        "middleware": 4,
        "service": 3,
    }
    services = [a for a in range(n) if draft.kind[a] == "service"]
    pins = {a: int(planted[a]) for a in range(n) if draft.role[a] == "deploy"}
    for a in rng.choice(services, size=n // 700, replace=False):
        pins[int(a)] = int(planted[a])
    windows: dict[int, tuple[int | None, int | None]] = {}
    for a in rng.choice(services, size=n // 200, replace=False):
        if int(a) in pins:
            continue
        lo = max(1, int(planted[a]) - int(rng.integers(0, 3)))
        hi = min(waves, int(planted[a]) + int(rng.integers(0, 3)))
        windows[int(a)] = (lo if rng.random() < 0.7 else None, hi)
    apps = []
    for a in range(n):
        kind, role = draft.kind[a], draft.role[a]
        data = 0.0
        if kind == "database":
            data = _lognormal(rng, 300, 1.2, 5, 20000)
        elif role in ("cache", "redis"):
            data = _lognormal(rng, 20, 0.8, 1, 500)
        elif role == "kafka":
            data = _lognormal(rng, 800, 0.8, 50, 10000)
        elif kind == "control-plane":
            data = {"registry": 1.0, "config": 5.0, "deploy": 200.0, "monitoring": 2000.0}[role]
        elif rng.random() < 0.1:
            data = _lognormal(rng, 10, 1.0, 1, 200)
        stateful = kind in ("database", "control-plane") or role in ("cache", "redis", "kafka")
        window = windows.get(a, (None, None))
        apps.append(
            App(
                app_id=draft.ids[a],
                name=draft.ids[a],
                team=draft.team[a],
                qps=round(float(qps[a]), 2),
                criticality=int(rng.choice(5, p=crit_p[kind])) + 1,
                instances=round(_lognormal(rng, inst_median[kind], 0.9, 1, 50)),
                data_gb=_sig(data, 3),
                stateful=stateful,
                kind=kind,
                rehearsed=bool(rng.random() < (0.8 if kind == "database" else 0.9)),
                group=draft.group.get(a),
                pinned_wave=pins.get(a),
                earliest_wave=window[0],
                latest_wave=window[1],
            )
        )
    return apps


def _dependencies(draft: _Draft, qps: np.ndarray) -> list[Dependency]:
    return [
        Dependency(draft.ids[u], draft.ids[v], round(float(qps[u]) * e.calls, 2), e.calls, e.sync, e.kb)
        for (u, v), e in draft.edges.items()
    ]


def _rules(draft: _Draft, planted: np.ndarray) -> tuple[Rule, ...]:
    """A bring-up rule (registry before a late frontend) and gateways kept apart, as planted."""
    rules = []
    registry = draft.ids.index(_CONTROL_PLANE[0][0] if draft.readable else _CONTROL_PLANE[0][1])
    later = [a for a in range(len(draft.ids)) if planted[a] > planted[registry]]
    if later:
        fronts = [a for a in later if draft.kind[a] == "frontend"] or later
        rules.append(Rule("before", (draft.ids[registry], draft.ids[fronts[-1]])))
    gateways = [a for a in range(len(draft.ids)) if draft.kind[a] == "gateway"]
    pair = next(((g, h) for g in gateways for h in gateways if planted[g] < planted[h]), None)
    if pair:
        rules.append(Rule("apart", (draft.ids[pair[0]], draft.ids[pair[1]])))
    return tuple(rules)


def _budget_floor(app: App, rng: np.random.Generator) -> tuple[float, bool]:
    """(floor in ms, tight?) by kind; tight services must not be split from their sync callees."""
    if app.kind == "frontend":
        return rng.uniform(50, 300), False
    if app.kind == "gateway":
        return rng.uniform(30, 120), False
    if app.kind == "service":
        if rng.random() < (TIGHT_SHARE_CRITICAL if app.criticality <= 2 else TIGHT_SHARE_OTHER):
            return rng.uniform(2, 12), True
        return rng.uniform(20, 150), False
    return rng.uniform(10, 60), False


def _fit_constraints(
    inv: Inventory, plan: Plan, rules: tuple[Rule, ...], rng: np.random.Generator
) -> GeneratedEstate:
    """Set budgets, capacities, link and risk limits from the planted plan's own figures."""
    worst = metrics.added_latency(inv, plan.array).max(axis=1, initial=0.0)
    link = float(metrics.link_load_gbps(inv, plan.array).max(initial=0.0))
    risk = float(metrics.wave_risk_share(inv, plan.array).max())
    apps = []
    for app, planted_ms in zip(inv.apps, worst, strict=True):
        floor, tight = _budget_floor(app, rng)
        budget = float(math.ceil(max(float(planted_ms) * LATENCY_SLACK, floor)))
        loose = not tight and app.kind == "service" and budget <= DEFAULT_BUDGET_MS
        empty = loose and rng.random() < 0.2  # the scenario default (100 ms) covers it
        apps.append(replace(app, latency_budget_ms=None if empty else budget))
    final = Inventory(tuple(apps), inv.dependencies)
    caps: dict[str, float | tuple[float, ...]] = {}
    for res in RESOURCES:
        load = np.bincount(plan.array - 1, weights=final.load(res), minlength=inv.K)
        if res == "data_gb":  # one number for every wave
            caps[res] = float(math.ceil(load.max() * CAPACITY_SLACK))
            continue
        rest = float(math.ceil(load[1:].max() * CAPACITY_SLACK))
        caps[res] = (float(math.ceil(load[0] * CAPACITY_SLACK)), *([rest] * (inv.K - 1)))
    scenario = Scenario(
        source=SOURCE,
        target=TARGET,
        rtt_ms=inv.scenario.rtt_ms,
        waves=inv.K,
        default_latency_budget_ms=DEFAULT_BUDGET_MS,
        link_gbps=max(_ceil_sig(link * LINK_SLACK), 1.0),
        capacity_apps=caps["apps"],
        capacity_instances=caps["instances"],
        capacity_data_gb=caps["data_gb"],
        max_risk=min(1.0, math.ceil(risk * RISK_SLACK * 100) / 100),
        rules=rules,
    )
    return GeneratedEstate(Inventory(final.apps, final.dependencies, scenario), plan)
