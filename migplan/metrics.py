"""SPEC §3: the one definition of every number migplan reports (pure, vectorized, no I/O).

Conventions used throughout:

* ``waves`` is an int array of length n with values 1..K; period k = 1..K-1 is the time
  after wave k.  An app is *moved* in period k iff ``wave <= k``; an edge is *split* in
  period k iff exactly one endpoint is moved, i.e. ``min(w_u, w_v) <= k < max(w_u, w_v)``.
* Float comparisons against a limit (capacity, link, budget, max_risk) use
  ``value > limit + REL_TOL * max(1, |limit|)``: a relative tolerance of 1e-9 with an
  absolute floor, so that sums computed in another order (the solver's integer scaling,
  a spreadsheet) never flip a verdict.
* Per-inventory precomputations (the latency factorization, latency coefficients,
  constraint index arrays, risk scores) are cached *on the Inventory object itself*, in
  its ``__dict__`` the way ``functools.cached_property`` stores values.  An Inventory is
  immutable, so the cache cannot go stale; keying on the object is O(1) (hashing a frozen
  dataclass of tuples would be O(n)) and, unlike ``id()``, cannot be confused with a dead
  object's id.  The cache is dropped when the inventory is pickled or copied.

Added latency (SPEC §3) solves E = D + C·E with D = rtt·B·split.  Only *latency edges*
matter: sync dependencies with calls_per_request > 0.  Where a strongly connected part of
that graph has spectral radius >= 1 - DIVERGENCE_TOL ("divergent cycle", e.g. a <-> b
with 1 call per request each way) the series diverges.  Exact rule: with U the apps of
divergent cycles, in period k app a's latency is +inf iff a reaches some divergent cycle
that reaches a split latency edge (the cycle's own edges included); everything else is
solved with U's latency set to 0, which is exact for them.  So a plan that splits nothing
below a cycle still has zero added latency there.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar, cast

import networkx as nx
import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla

from migplan.model import RESOURCES, BoolArray, Finding, FloatArray, IntArray, Inventory, Plan

REL_TOL = 1e-9  # relative tolerance of every "over the limit" comparison (see module doc)
RISK_SCALE_SHARE = 0.01  # risk_weight 1 trades 1 % of (total qps x K) per unit of risk share
DIVERGENCE_TOL = 1e-9  # a cycle with spectral radius >= 1 - this is treated as unbounded
DENSE_EIG_MAX = 300  # SCCs up to this size get dense eigenvalues; larger ones ARPACK
# latency coefficients (one per app and sync call it reaches) the planner may build: it needs
# about 100 bytes per coefficient at its peak (a deep graph of 4,000 services: 2.7 GB), so this
# keeps it under about 8 GB; beyond it LatencyModelTooLargeError says so before memory runs out
MAX_COEFFICIENTS = 80_000_000
# ... past it the planner keeps only coefficients of at least this many ms (``planner_coefficients``)
FALLBACK_TOL_MS = 1e-5

VIOLATION_KINDS = (
    "wave",
    "capacity",
    "pin",
    "window",
    "group",
    "cycle",
    "rule",
    "link",
    "latency",
    "risk",
)

_T = TypeVar("_T")


class _Cache(dict[str, Any]):
    """Per-inventory derived data; copied or pickled as empty (a SuperLU factorization cannot be
    pickled, and the receiving process rebuilds what it needs on first use)."""

    def __reduce__(self) -> tuple[type[_Cache], tuple[()]]:
        return (_Cache, ())


def _cached(inv: Inventory, key: str, build: Callable[[Inventory], _T]) -> _T:
    """Build once per Inventory object and keep it on the object (see module doc)."""
    store = inv.__dict__.get("_migplan_cache")
    if store is None:
        store = inv.__dict__["_migplan_cache"] = _Cache()
    if key not in store:
        store[key] = build(inv)
    return cast(_T, store[key])


def _over(value: FloatArray | float, limit: FloatArray | float) -> Any:
    """value > limit beyond the documented tolerance (elementwise for arrays)."""
    return np.asarray(value) > np.asarray(limit) + REL_TOL * np.maximum(1.0, np.abs(limit))


# ---------------------------------------------------------------------------------------------
# Splits, cross-site traffic, link load
# ---------------------------------------------------------------------------------------------


def split_matrix(inv: Inventory, waves: IntArray) -> BoolArray:
    """(m, K-1): dependency e is split in period k (one endpoint moved, the other not)."""
    w = np.asarray(waves, dtype=np.int64)
    wu = w[inv.caller]
    wv = w[inv.callee]
    lo = np.minimum(wu, wv)[:, None]
    hi = np.maximum(wu, wv)[:, None]
    k = np.arange(1, inv.K, dtype=np.int64)[None, :]
    return (lo <= k) & (k < hi)


def cross_site_qps(inv: Inventory, waves: IntArray) -> FloatArray:
    """(K-1,): qps over the dependencies split in each period."""
    return inv.edge_qps @ split_matrix(inv, waves)


def chatty_cost(inv: Inventory, waves: IntArray) -> float:
    """Σ qps·|w(u) − w(v)|; equals the sum of ``cross_site_qps`` when every wave is in 1..K."""
    w = np.asarray(waves, dtype=np.int64)
    return float(inv.edge_qps @ np.abs(w[inv.caller] - w[inv.callee]))


def _edge_gbps(inv: Inventory) -> FloatArray:
    """Link use of each dependency while split: qps · kb_per_call · 8 bits / 10^6 (kb -> Gbps)."""
    return inv.edge_qps * inv.edge_kb * 8.0 / 1e6


def link_load_gbps(inv: Inventory, waves: IntArray) -> FloatArray:
    """(K-1,): inter-site link load of each period in Gbps."""
    return _edge_gbps(inv) @ split_matrix(inv, waves)


# ---------------------------------------------------------------------------------------------
# Added latency
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DivergentCycle:
    """A strongly connected set of sync calls whose round trips multiply without bound."""

    apps: tuple[int, ...]  # ascending
    spectral_radius: float
    cycle: tuple[int, ...]  # one simple cycle inside, in call order (the heaviest we found)
    cycle_product: float  # product of calls_per_request along ``cycle``


@dataclass(frozen=True)
class LatencyModel:
    """Everything about added latency that depends on the inventory alone (built once)."""

    rtt_ms: float
    is_latency_edge: BoolArray  # (m,) sync and calls_per_request > 0
    B: sp.csr_matrix  # (n, m): B[caller(e), e] = calls_per_request(e) on latency edges
    C: sp.csr_matrix  # (n, n): C[a, b] = calls_per_request(a -> b) on latency edges
    component: IntArray  # (n,) strongly connected component in the latency graph
    divergent: tuple[DivergentCycle, ...]
    reach: BoolArray  # (n, J): app reaches divergent cycle j (its members included)
    downstream: BoolArray  # (n, J): app is reachable from divergent cycle j (members included)
    cut: sp.csr_matrix  # C with the divergent apps' rows and columns removed (their E is 0 or inf)
    level: IntArray  # (n,) level in the condensation of ``cut``: 0 calls nothing, callers higher
    order: IntArray  # (n,) apps by level, callees first: I − cut is block lower triangular in it
    lu: spla.SuperLU | None  # factorization of (I − cut)[order][:, order], no fill outside cycles

    @cached_property
    def in_divergent(self) -> BoolArray:
        """Apps that belong to a divergent cycle."""
        out = np.zeros(self.C.shape[0], dtype=bool)
        for cyc in self.divergent:
            out[list(cyc.apps)] = True
        return out

    @property
    def unbounded_apps(self) -> BoolArray:
        """(n,) apps whose latency becomes infinite when something below their cycle is split."""
        return cast(BoolArray, self.reach.any(axis=1))

    def unbounded_edges(self) -> BoolArray:
        """(m, J): latency edge e lies below divergent cycle j (splitting it makes j unbounded)."""
        rows = self.B.tocoo()
        out = np.zeros((self.B.shape[1], len(self.divergent)), dtype=bool)
        out[rows.col] = self.downstream[rows.row]
        return out


def _spectral_radius(block: sp.csr_matrix) -> float:
    """Largest |eigenvalue| of a non-negative irreducible block (dense when small)."""
    size = block.shape[0]
    if size <= DENSE_EIG_MAX:
        return float(np.max(np.abs(np.linalg.eigvals(block.toarray()))))
    try:
        vals = spla.eigs(
            block.astype(np.float64), k=1, which="LM", v0=np.ones(size), tol=1e-12, return_eigenvectors=False
        )
        return float(np.max(np.abs(vals)))
    except spla.ArpackNoConvergence:
        return float(np.max(np.abs(np.linalg.eigvals(block.toarray()))))


SMALL_CYCLE_SEARCH = 30  # SCCs up to this size: enumerate simple cycles; larger: greedy walk


def _greedy_cycle(block: sp.csr_matrix) -> list[int]:
    """Follow each app's heaviest call inside the SCC until an app repeats: O(size) and never empty
    (every app of an SCC calls another one of it)."""
    seen: dict[int, int] = {}
    path: list[int] = []
    node = 0
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        lo, hi = block.indptr[node], block.indptr[node + 1]
        node = int(block.indices[lo + int(np.argmax(block.data[lo:hi]))])
    return path[seen[node] :]


def _heaviest_cycle(block: sp.csr_matrix, members: IntArray) -> tuple[tuple[int, ...], float]:
    """A simple cycle inside a divergent SCC to show the user, with its calls_per_request product.

    Small SCCs: the heaviest of their first 2,000 simple cycles (length <= 12); large ones:
    the greedy heaviest-call walk (enumerating cycles there takes seconds).
    """
    block = block.tocsr()
    candidates: list[list[int]] = [_greedy_cycle(block)]
    if block.shape[0] <= SMALL_CYCLE_SEARCH:
        coo = block.tocoo()
        graph = nx.DiGraph()
        graph.add_edges_from(zip(coo.row.tolist(), coo.col.tolist(), strict=True))
        candidates += itertools.islice(nx.simple_cycles(graph, length_bound=12), 2000)
    dense = block.toarray() if block.shape[0] <= SMALL_CYCLE_SEARCH else None
    best: tuple[tuple[int, ...], float] = ((), -1.0)
    for cyc in candidates:
        nxt = cyc[1:] + cyc[:1]
        weights = dense[cyc, nxt] if dense is not None else np.asarray(block[cyc, nxt]).ravel()
        prod = float(math.prod(weights.tolist()))
        if prod > best[1]:
            best = (tuple(int(members[i]) for i in cyc), prod)
    return best


def _build_latency_model(inv: Inventory) -> LatencyModel:
    n, m = inv.n, inv.m
    lat = inv.edge_sync & (inv.edge_calls > 0)
    cpr = np.where(lat, inv.edge_calls, 0.0)
    B = sp.csr_matrix((cpr, (inv.caller, np.arange(m))), shape=(n, m))
    B.eliminate_zeros()
    C = sp.csr_matrix((cpr[lat], (inv.caller[lat], inv.callee[lat])), shape=(n, n))
    _, labels = csgraph.connected_components(C, directed=True, connection="strong")
    comp: IntArray = np.asarray(labels, dtype=np.int64)
    sizes = np.bincount(comp, minlength=int(comp.max()) + 1 if n else 0)
    divergent: list[DivergentCycle] = []
    for c in np.flatnonzero(sizes > 1):
        members = np.flatnonzero(comp == c)
        block = C[members][:, members]
        rho = _spectral_radius(block)
        if rho >= 1.0 - DIVERGENCE_TOL:
            ring, prod = _heaviest_cycle(block, members)
            divergent.append(DivergentCycle(tuple(int(a) for a in members), rho, ring, prod))
    J = len(divergent)
    reach = np.zeros((n, J), dtype=bool)
    downstream = np.zeros((n, J), dtype=bool)
    CT = C.T.tocsr()
    for j, cyc in enumerate(divergent):
        start = cyc.apps[0]
        downstream[csgraph.breadth_first_order(C, start, directed=True, return_predecessors=False), j] = True
        reach[csgraph.breadth_first_order(CT, start, directed=True, return_predecessors=False), j] = True
    keep = np.ones(n)
    for cyc in divergent:
        keep[list(cyc.apps)] = 0.0
    cut = (sp.diags(keep) @ C @ sp.diags(keep)).tocsr()
    cut.eliminate_zeros()
    level = _levels(cut, comp)[comp] if n else np.zeros(0, dtype=np.int64)
    order = np.argsort(level, kind="stable")
    lu = None
    if n:
        # Callees-first order makes I − cut block triangular, so the natural ordering has no
        # fill outside cyclic blocks (COLAMD filled it 30x at 10,000 apps); no pivoting is
        # needed: I − cut is a non-singular M-matrix.
        matrix = (sp.identity(n, format="csr") - cut)[order][:, order].tocsc()
        lu = spla.splu(matrix, permc_spec="NATURAL", diag_pivot_thresh=0.0)
    return LatencyModel(
        float(inv.scenario.rtt_ms),
        lat,
        B,
        C,
        comp,
        tuple(divergent),
        reach,
        downstream,
        cut,
        level,
        order,
        lu,
    )


def latency_model(inv: Inventory) -> LatencyModel:
    """The inventory's latency model, built on first use and cached on the inventory."""
    return _cached(inv, "_migplan_latency_model", _build_latency_model)


def _direct_latency(model: LatencyModel, split: BoolArray) -> FloatArray:
    """D: (n, K-1) ms of cross-site round trips an app's own split sync calls add."""
    return model.rtt_ms * np.asarray(model.B @ split.astype(np.float64))


def _hot_cycles(model: LatencyModel, direct: FloatArray) -> BoolArray:
    """(J, K-1): divergent cycle j reaches an app with a split latency edge in period k."""
    return (model.downstream.T.astype(np.float64) @ (direct > 0)) > 0


def _solve_latency(model: LatencyModel, split: BoolArray) -> FloatArray:
    """Added latency (n, K-1) for a split matrix; +inf where a divergent cycle is fed."""
    n = model.C.shape[0]
    direct = _direct_latency(model, split)
    if n == 0 or direct.shape[1] == 0 or model.lu is None:
        return np.zeros_like(direct)
    rhs = direct.copy()
    rhs[model.in_divergent] = 0.0
    latency = np.empty_like(direct)
    latency[model.order] = np.asarray(model.lu.solve(np.ascontiguousarray(rhs[model.order]))).reshape(
        direct.shape
    )
    # (I-C)^-1 is non-negative: what the LU leaves below 1e-12 ms is rounding noise.
    latency[latency < 1e-12] = 0.0
    if model.divergent:
        infinite = (model.reach.astype(np.float64) @ _hot_cycles(model, direct)) > 0
        latency[infinite] = np.inf
    return latency


def added_latency(inv: Inventory, waves: IntArray) -> FloatArray:
    """(n, K-1) ms: SPEC §3 added latency of every app in every period (+inf where unbounded)."""
    return _solve_latency(latency_model(inv), split_matrix(inv, waves))


class LatencyModelTooLargeError(Exception):
    """The coefficient matrix would pass MAX_COEFFICIENTS (raised while it is built, not after)."""

    code = "latency-model-too-large"  # of the findings that report it (plan's error, validate's warning)

    def __init__(self, entries: int, apps_done: int, apps: int, limit: int, tol_ms: float = 0.0) -> None:
        self.entries, self.apps_done, self.apps, self.limit = entries, apps_done, apps, limit
        which = f" that adds {tol_ms:g} ms or more" if tol_ms > 0 else ""
        super().__init__(
            f"the latency model needs more than {limit:,} coefficients (one per app and sync call it"
            f" reaches{which}): {entries:,} after {apps_done:,} of {apps:,} apps"
        )


@dataclass(frozen=True)
class LatencyCoefficients:
    """Added latency as a linear function of the splits: E[:, k] = matrix @ split[:, k].

    ``matrix`` holds entries >= tol_ms only; ``dropped_ms[a]`` bounds what the dropped ones
    can add to app a in any period (so ``budget - dropped_ms`` is a safe budget).  For
    ``unbounded`` apps the matrix holds only the finite part: their latency is +inf as soon
    as an edge flagged in ``unbounded_edges`` is split, so the solver must keep those whole.
    Behaves like the matrix for ``@``, ``shape``, ``nnz`` and ``tocsr()``.
    """

    matrix: sp.csr_matrix  # (n, m) ms per split edge
    dropped_ms: FloatArray  # (n,)
    unbounded: BoolArray  # (n,)
    unbounded_edges: BoolArray  # (m,)
    tol_ms: float = 0.0

    def __matmul__(self, other: Any) -> Any:
        return self.matrix @ other

    @property
    def shape(self) -> tuple[int, int]:
        shape: tuple[int, int] = self.matrix.shape
        return shape

    @property
    def nnz(self) -> int:
        return int(self.matrix.nnz)

    def tocsr(self) -> sp.csr_matrix:
        return self.matrix


def _levels(C: sp.csr_matrix, comp: IntArray) -> IntArray:
    """Level of every SCC in the condensation: 0 for sinks, else 1 + max level of a callee SCC.

    Edges only go from a higher level to a strictly lower one, so within one level the
    only calls are inside an SCC (Kahn's algorithm, peeled one level at a time, vectorized).
    """
    ncomp = int(comp.max()) + 1
    coo = C.tocoo()
    cross = comp[coo.row] != comp[coo.col]
    dag = sp.csr_matrix(
        (np.ones(int(cross.sum())), (comp[coo.row[cross]], comp[coo.col[cross]])), shape=(ncomp, ncomp)
    )
    dag.sum_duplicates()
    callers_of = dag.T.tocsr()  # row v: the SCCs that call v
    out_deg = np.diff(dag.indptr).astype(np.int64)  # distinct callee SCCs
    level = np.full(ncomp, -1, dtype=np.int64)
    frontier = np.flatnonzero(out_deg == 0)
    depth = 0
    while frontier.size:  # each step touches only the frontier's edges: O(V + E) overall
        level[frontier] = depth
        callers = callers_of[frontier].indices
        np.subtract.at(out_deg, callers, 1)
        candidates = np.unique(callers)
        frontier = candidates[out_deg[candidates] == 0]
        depth += 1
    return level


def _block_inverse(C: sp.csr_matrix, rows: IntArray, comp: IntArray) -> sp.csr_matrix:
    """(I − C[rows, rows])^-1 for one level: block diagonal, one dense block per cyclic SCC."""
    size = rows.size
    local = C[rows][:, rows]
    if local.nnz == 0:
        return sp.identity(size, format="csr")
    sub_comp = comp[rows]
    r_idx: list[IntArray] = []
    c_idx: list[IntArray] = []
    vals: list[FloatArray] = []
    counts = np.bincount(np.unique(sub_comp, return_inverse=True)[1])
    cyclic = np.unique(sub_comp)[counts > 1]
    plain = ~np.isin(sub_comp, cyclic)
    r_idx.append(np.flatnonzero(plain))
    c_idx.append(np.flatnonzero(plain))
    vals.append(np.ones(int(plain.sum())))
    for c in cyclic:
        idx = np.flatnonzero(sub_comp == c)
        inv_block = np.linalg.inv(np.eye(idx.size) - local[idx][:, idx].toarray())
        rr, cc = np.meshgrid(idx, idx, indexing="ij")
        r_idx.append(rr.ravel())
        c_idx.append(cc.ravel())
        vals.append(inv_block.ravel())
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(r_idx), np.concatenate(c_idx))), shape=(size, size)
    )


def _build_coefficients(inv: Inventory, tol_ms: float) -> LatencyCoefficients:
    model = latency_model(inv)
    n, m = inv.n, inv.m
    unbounded = model.unbounded_apps
    unb_edges: BoolArray = np.zeros(m, dtype=bool)
    if model.divergent:
        unb_edges = np.asarray(model.unbounded_edges().any(axis=1), dtype=bool)
    if n == 0:
        return LatencyCoefficients(sp.csr_matrix((0, m)), np.zeros(0), unbounded, unb_edges, tol_ms)
    keep = (~model.in_divergent).astype(np.float64)
    # Recursion L = rtt·B + C·L, the divergent apps cut out (their finite part is 0).
    C = model.cut
    direct = (sp.diags(keep * model.rtt_ms) @ model.B).tocsr()
    level, order = model.level, model.order
    bounds = np.searchsorted(level[order], np.arange(int(level.max()) + 2))
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    C_perm = C[order][:, order].tocsr()
    # Finished rows (in ``order``) kept as a binary counter of stacked chunks: each level
    # multiplies against O(log depth) chunks and every row is re-stacked O(log depth) times.
    chunks: list[tuple[int, sp.csr_matrix]] = []
    dropped_perm = np.zeros(n)
    entries = 0
    for lv in range(int(level.max()) + 1):
        lo, hi = int(bounds[lv]), int(bounds[lv + 1])
        rows = order[lo:hi]
        feed = C_perm[lo:hi, :lo]
        rhs = direct[rows]
        for start, chunk in chunks:
            rhs = rhs + feed[:, start : start + chunk.shape[0]] @ chunk
        inverse = _block_inverse(C, rows, model.component)
        block = (inverse @ rhs).tocsr()
        dropped = inverse @ (feed @ dropped_perm[:lo]) if lo else np.zeros(hi - lo)
        if tol_ms > 0 and block.nnz:
            small = block.data < tol_ms
            dropped = dropped + np.bincount(
                np.repeat(np.arange(hi - lo), np.diff(block.indptr))[small],
                weights=block.data[small],
                minlength=hi - lo,
            )
            block.data[small] = 0.0
        block.eliminate_zeros()
        entries += block.nnz
        if entries > MAX_COEFFICIENTS:
            raise LatencyModelTooLargeError(entries, hi, n, MAX_COEFFICIENTS, tol_ms)
        dropped_perm[lo:hi] = dropped
        chunks.append((lo, block))
        while len(chunks) > 1 and chunks[-2][1].shape[0] <= chunks[-1][1].shape[0]:
            (start, first), (_, second) = chunks[-2], chunks[-1]
            chunks[-2:] = [(start, sp.vstack([first, second], format="csr"))]
    done = sp.vstack([c for _, c in chunks], format="csr") if chunks else sp.csr_matrix((0, m))
    dropped_done = dropped_perm
    matrix = done[pos].tocsr()
    matrix.sort_indices()
    return LatencyCoefficients(matrix, dropped_done[pos], unbounded, unb_edges, float(tol_ms))


def latency_coefficients(inv: Inventory, tol_ms: float = 0.0) -> LatencyCoefficients:
    """L (n x m) with added latency of a in period k = Σ_e L[a, e]·split_k(e), L = rtt·(I−C)^-1·B.

    Built by reachability, callees first: row L[a] = rtt·B[a] + Σ_b C[a, b]·L[b], one level
    of the SCC condensation at a time (a cyclic SCC gets its small dense inverse), so the
    cost follows the number of (app, reachable edge) pairs, never n².  Cached per tol_ms.
    Raises LatencyModelTooLargeError once the pairs pass MAX_COEFFICIENTS.
    """
    key = f"_migplan_latency_coefficients_{float(tol_ms)!r}"
    return _cached(inv, key, lambda i: _build_coefficients(i, float(tol_ms)))


def planner_coefficients(inv: Inventory) -> LatencyCoefficients:
    """Every coefficient when they fit MAX_COEFFICIENTS, else the matrix built with tol_ms =
    FALLBACK_TOL_MS: entries under it are left out as the rows are built (callees first, so
    an entry may also lose what a callee's left-out one carried), and ``dropped_ms`` bounds
    what they add per app; the planner takes that bound off the budgets.

    Why: a deep call graph gives most apps a coefficient for most calls below them, nearly
    all of them tiny.  A generated 50,000-app estate needs more than 80 M exact ones; at
    1e-5 ms it needs 13.6 M, built in 2 s, and the dropped ones add at most 0.06 ms (0.56 %
    of a budget) to any app, where the model's own unit is 0.001 ms.  Raises
    LatencyModelTooLargeError when even those pass the limit.  Cached per inventory.
    """

    def build(i: Inventory) -> LatencyCoefficients:
        try:
            return latency_coefficients(i, 0.0)
        except LatencyModelTooLargeError:
            return latency_coefficients(i, FALLBACK_TOL_MS)

    return _cached(inv, "_migplan_planner_coefficients", build)


# ---------------------------------------------------------------------------------------------
# Risk
# ---------------------------------------------------------------------------------------------

CRITICALITY_BASE = {1: 5.0, 2: 4.0, 3: 3.0, 4: 2.0, 5: 1.0}
KIND_FACTOR = {"control-plane": 1.5, "database": 1.3, "middleware": 1.2}


def _risk_scores(inv: Inventory) -> FloatArray:
    base = np.fromiter((CRITICALITY_BASE.get(a.criticality, 3.0) for a in inv.apps), np.float64, inv.n)
    qps = np.fromiter((max(a.qps, 0.0) for a in inv.apps), np.float64, inv.n)
    stateful = np.fromiter((a.stateful for a in inv.apps), bool, inv.n)
    rehearsed = np.fromiter((a.rehearsed for a in inv.apps), bool, inv.n)
    kind = np.fromiter((KIND_FACTOR.get(a.kind.strip().lower(), 1.0) for a in inv.apps), np.float64, inv.n)
    score = base * (1.0 + 0.25 * np.log10(1.0 + qps)) * np.where(stateful, 1.5, 1.0)
    score = score * np.where(rehearsed, 1.0, 1.5) * kind
    given = np.fromiter((np.nan if a.risk is None else a.risk for a in inv.apps), np.float64, inv.n)
    out = np.where(np.isnan(given), score, np.maximum(given, 0.0))
    out.setflags(write=False)
    return cast(FloatArray, out)


def risk_scores(inv: Inventory) -> FloatArray:
    """(n,) risk of each app: the ``risk`` column where given, else the documented score

        risk = base(criticality) · (1 + 0.25·log10(1 + qps)) · 1.5 if stateful · 1.5 if not rehearsed
               · kind factor

    base: criticality 1→5, 2→4, 3→3, 4→2, 5→1; kind factor: control-plane 1.5, database 1.3,
    middleware 1.2, anything else 1.0 (kind compared case-insensitively).  Why: a P0 app is
    five times a P4 one, traffic raises the blast radius slowly (10x qps = +25 %), and each of
    "holds data", "never rehearsed", "infrastructure others depend on" makes a cut-over harder.
    The array is read-only (cached per inventory).
    """
    return _cached(inv, "_migplan_risk", _risk_scores)


def objective(inv: Inventory, waves: IntArray, risk_weight: float) -> float:
    """The planner's objective (README "Objective"): chatty cost + risk_weight x RISK_SCALE_SHARE x total
    qps x K x (wave 1's risk share + the largest wave's), the risk part 0 without any risk.

    Here, not in the solver, so that ``evaluate`` reports the figure plan.json does.
    """
    cost = chatty_cost(inv, waves)
    share = wave_risk_share(inv, waves)
    if risk_weight <= 0 or not share.any():
        return cost
    scale = risk_weight * RISK_SCALE_SHARE * float(inv.edge_qps.sum()) * inv.K
    return cost + scale * float(share[0] + share.max())


def wave_risk_share(inv: Inventory, waves: IntArray) -> FloatArray:
    """(K,) each wave's share of the total risk (zeros when the total is 0)."""
    w = np.asarray(waves, dtype=np.int64)
    risk = risk_scores(inv)
    ok = (w >= 1) & (w <= inv.K)
    per_wave = np.bincount(w[ok] - 1, weights=risk[ok], minlength=inv.K)[: inv.K]
    total = float(risk.sum())
    return per_wave / total if total > 0 else np.zeros(inv.K)


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """Every SPEC §3 figure of one plan, plus the findings that make it (in)feasible."""

    K: int
    cross_site_qps: FloatArray  # (K-1,) per period
    chatty_cost: float
    link_load_gbps: FloatArray  # (K-1,) per period
    added_latency: FloatArray  # (n, K-1) ms; inf where unbounded
    wave_apps: FloatArray  # (K,)
    wave_instances: FloatArray  # (K,)
    wave_data_gb: FloatArray  # (K,)
    wave_risk_share: FloatArray  # (K,) share of total risk, sums to 1
    violation_counts: dict[str, int]  # category -> count; categories: see VIOLATION_KINDS
    findings: tuple[Finding, ...]  # violations (severity error) and warnings
    latency_violations: BoolArray = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))  # (n, K-1)
    max_added_latency: FloatArray = field(default_factory=lambda: np.zeros(0))  # (n,) worst period

    @property
    def feasible(self) -> bool:
        return not any(self.violation_counts.values())

    @property
    def violations(self) -> int:
        """Total number of violations over all categories."""
        return sum(self.violation_counts.values())


@dataclass(frozen=True)
class _Checks:
    """Constraint data of an inventory as index arrays (built once, cached)."""

    pinned: IntArray  # (n,) 0 = not pinned
    earliest: IntArray  # (n,) 0 = none
    latest: IntArray  # (n,) 0 = none
    group: IntArray  # (n,) -1 = none
    group_names: tuple[str, ...]
    scc: IntArray  # (n,) component in the full call graph, -1 for acyclic apps
    cycles: tuple[tuple[int, ...], ...]
    rules: tuple[tuple[str, IntArray], ...]  # (kind, app indexes) of rules that name known apps
    rule_findings: tuple[Finding, ...]


def _build_checks(inv: Inventory) -> _Checks:
    from migplan.analysis import cycles  # imported here: analysis imports metrics at load time

    def opt(values: list[int | None]) -> IntArray:
        return np.array([0 if v is None else v for v in values], dtype=np.int64)

    names: dict[str, int] = {}
    group = np.array(
        [-1 if a.group in (None, "") else names.setdefault(str(a.group), len(names)) for a in inv.apps],
        dtype=np.int64,
    )
    cyc = tuple(cycles(inv))
    scc = np.full(inv.n, -1, dtype=np.int64)
    for i, members in enumerate(cyc):
        scc[list(members)] = i
    rules: list[tuple[str, IntArray]] = []
    bad: list[Finding] = []
    for r in inv.scenario.rules:
        unknown = [a for a in r.apps if a not in inv.index]
        if unknown:
            bad.append(
                Finding(
                    "warning",
                    "rule-unknown-app",
                    f"{r.kind} rule names apps that are not in the inventory: {', '.join(unknown)}; "
                    "rule ignored",
                    apps=tuple(unknown),
                )
            )
            continue
        rules.append((r.kind, np.array([inv.index[a] for a in r.apps], dtype=np.int64)))
    return _Checks(
        opt([a.pinned_wave for a in inv.apps]),
        opt([a.earliest_wave for a in inv.apps]),
        opt([a.latest_wave for a in inv.apps]),
        group,
        tuple(names),
        scc,
        cyc,
        tuple(rules),
        tuple(bad),
    )


def _checks(inv: Inventory) -> _Checks:
    return _cached(inv, "_migplan_checks", _build_checks)


def _err(code: str, message: str, apps: tuple[str, ...] = (), **kw: Any) -> Finding:
    return Finding("error", code, message, apps=apps, **kw)


def number_text(x: float) -> str:
    """A figure as a message shows it: 6 significant digits, whole numbers with thousands
    separators, and past 1e15 (deep call chains' latencies) in exponent form."""
    if abs(x) < 1e6:
        return f"{x:,.6g}"
    return f"{x:,.0f}" if abs(x) < 1e15 else f"{x:.4g}"


def _wave_findings(inv: Inventory, w: IntArray) -> list[Finding]:
    bad = np.flatnonzero((w < 1) | (w > inv.K))
    return [
        _err(
            "wave-out-of-range",
            f"{inv.ids[i]} is planned in wave {w[i]}, but waves run from 1 to {inv.K}",
            (inv.ids[i],),
            value=str(int(w[i])),
            expected=f"1..{inv.K}",
        )
        for i in bad
    ]


def _capacity_findings(inv: Inventory, loads: dict[str, FloatArray]) -> list[Finding]:
    out: list[Finding] = []
    for res in RESOURCES:
        cap = inv.scenario.capacity(res)
        if cap is None:
            continue
        for k in np.flatnonzero(_over(loads[res], cap)):
            out.append(
                _err(
                    "capacity",
                    f"wave {k + 1} moves {number_text(loads[res][k])} {res}, "
                    f"over its capacity of {number_text(cap[k])}",
                    value=number_text(loads[res][k]),
                    expected=f"<= {number_text(cap[k])} {res}",
                )
            )
    return out


def _pin_window_findings(inv: Inventory, w: IntArray, ck: _Checks) -> tuple[list[Finding], list[Finding]]:
    pins = [
        _err(
            "pin",
            f"{inv.ids[i]} is pinned to wave {ck.pinned[i]} but planned in wave {w[i]}",
            (inv.ids[i],),
            value=str(int(w[i])),
            expected=str(int(ck.pinned[i])),
        )
        for i in np.flatnonzero((ck.pinned > 0) & (w != ck.pinned))
    ]
    early = (ck.earliest > 0) & (w < ck.earliest)
    late = (ck.latest > 0) & (w > ck.latest)
    windows = []
    for i in np.flatnonzero(early | late):
        lo = int(ck.earliest[i]) or 1
        hi = int(ck.latest[i]) or inv.K
        windows.append(
            _err(
                "window",
                f"{inv.ids[i]} is planned in wave {w[i]}, outside its window of waves {lo}..{hi}",
                (inv.ids[i],),
                value=str(int(w[i])),
                expected=f"{lo}..{hi}",
            )
        )
    return pins, windows


def _spread(labels: IntArray, w: IntArray, count: int) -> IntArray:
    """Indexes of labels (0..count-1) whose members sit in more than one wave."""
    has = labels >= 0
    if count == 0 or not has.any():
        return np.zeros(0, dtype=np.int64)
    lo = np.full(count, np.iinfo(np.int64).max)
    hi = np.full(count, np.iinfo(np.int64).min)
    np.minimum.at(lo, labels[has], w[has])
    np.maximum.at(hi, labels[has], w[has])
    return cast(IntArray, np.flatnonzero(lo < hi))


def _members_text(inv: Inventory, w: IntArray, members: IntArray) -> str:
    return ", ".join(f"{inv.ids[i]} (wave {w[i]})" for i in members)


def _group_cycle_findings(inv: Inventory, w: IntArray, ck: _Checks) -> tuple[list[Finding], list[Finding]]:
    groups = []
    for g in _spread(ck.group, w, len(ck.group_names)):
        members = np.flatnonzero(ck.group == g)
        groups.append(
            _err(
                "group-split",
                f"move-together group {ck.group_names[g]!r} is spread over several waves: "
                + _members_text(inv, w, members),
                tuple(inv.ids[i] for i in members),
                column="group",
                value=ck.group_names[g],
            )
        )
    cycs = []
    if not inv.scenario.split_cycles:
        for c in _spread(ck.scc, w, len(ck.cycles)):
            members = np.asarray(ck.cycles[c])
            cycs.append(
                _err(
                    "cycle-split",
                    "circular dependency split across waves (split_cycles is false, so a cycle moves "
                    "in one wave): " + _members_text(inv, w, members),
                    tuple(inv.ids[i] for i in members),
                )
            )
    return groups, cycs


def _rule_findings(inv: Inventory, w: IntArray, ck: _Checks) -> tuple[list[Finding], int]:
    out: list[Finding] = []
    count = 0
    for kind, idx in ck.rules:
        ids = tuple(inv.ids[i] for i in idx)
        if kind == "before":
            for a, b in itertools.pairwise(idx.tolist()):
                if not w[a] < w[b]:
                    count += 1
                    out.append(
                        _err(
                            "rule-before",
                            f"rule: {inv.ids[a]} must move before {inv.ids[b]}, "
                            f"but they are planned in waves {w[a]} and {w[b]}",
                            (inv.ids[a], inv.ids[b]),
                        )
                    )
        elif kind == "together":
            if idx.size and w[idx].min() != w[idx].max():
                count += 1
                out.append(
                    _err(
                        "rule-together",
                        "rule: these apps must move together but are spread: " + _members_text(inv, w, idx),
                        ids,
                    )
                )
        else:  # apart
            clash = [(a, b) for a, b in itertools.combinations(idx.tolist(), 2) if w[a] == w[b]]
            count += len(clash)
            for a, b in clash:
                out.append(
                    _err(
                        "rule-apart",
                        f"rule: {inv.ids[a]} and {inv.ids[b]} must move in different waves, "
                        f"but both are planned in wave {w[a]}",
                        (inv.ids[a], inv.ids[b]),
                    )
                )
    if inv.scenario.callees_first and inv.m:
        late = np.flatnonzero(w[inv.callee] > w[inv.caller])
        count += int(late.size)
        order = late[np.argsort(inv.caller[late], kind="stable")]
        for caller, edges in itertools.groupby(order.tolist(), key=lambda e: int(inv.caller[e])):
            callees = [int(inv.callee[e]) for e in edges]
            out.append(
                _err(
                    "callees-first",
                    f"callees_first: {inv.ids[caller]} moves in wave {w[caller]} before the apps it calls: "
                    + _members_text(inv, w, np.asarray(callees)),
                    (inv.ids[caller], *(inv.ids[c] for c in callees)),
                )
            )
    return out, count


def _link_findings(inv: Inventory, load: FloatArray) -> list[Finding]:
    cap = inv.scenario.link_gbps
    if cap is None:
        return []
    return [
        _err(
            "link",
            f"period {k + 1} (after wave {k + 1}) puts {number_text(load[k])} Gbps on the inter-site link, "
            f"over its {number_text(cap)} Gbps",
            value=number_text(load[k]),
            expected=f"<= {number_text(cap)} Gbps",
        )
        for k in np.flatnonzero(_over(load, cap))
    ]


def _risk_findings(inv: Inventory, share: FloatArray) -> list[Finding]:
    cap = inv.scenario.max_risk
    if cap is None:
        return []
    return [
        _err(
            "risk",
            f"wave {k + 1} carries {share[k]:.1%} of the total risk, over max_risk {cap:.1%}",
            value=f"{share[k]:.4f}",
            expected=f"<= {cap:g}",
        )
        for k in np.flatnonzero(_over(share, cap))
    ]


def _top_split_calls(
    inv: Inventory, split: BoolArray, apps: IntArray, periods: IntArray
) -> tuple[IntArray, FloatArray]:
    """For each (app, period), the split latency edge adding the most ms to it, and those ms.

    Reads the rows of the planner's latency coefficients (L[a, e] is what edge e adds to a
    when split), so the explanation and the solver's constraints are the same numbers.  Where
    even those pass MAX_COEFFICIENTS, no call is named (edge -1): the finding still says the
    app, the period, its latency and its budget.  (``evaluate`` on a 50,000-app plan that broke
    a budget ended in a traceback here when this read every coefficient.)
    """
    edge = np.full(apps.size, -1, dtype=np.int64)
    share = np.zeros(apps.size)
    if apps.size == 0 or inv.m == 0:
        return edge, share
    try:
        coefficients = planner_coefficients(inv)
    except LatencyModelTooLargeError:
        return edge, share
    rows = coefficients.matrix[apps]
    owner = np.repeat(np.arange(apps.size), np.diff(rows.indptr))
    value = rows.data * split[rows.indices, periods[owner]]
    best = np.lexsort((-value, owner))  # per row, the largest contribution first
    firsts = best[np.r_[0, np.flatnonzero(np.diff(owner[best])) + 1]] if best.size else best
    hit = value[firsts] > 0
    edge[owner[firsts[hit]]] = rows.indices[firsts[hit]]
    share[owner[firsts[hit]]] = value[firsts[hit]]
    return edge, share


def _latency_findings(
    inv: Inventory, model: LatencyModel, split: BoolArray, latency: FloatArray, over: BoolArray
) -> list[Finding]:
    apps = np.flatnonzero(over.any(axis=1))
    if apps.size == 0:
        return []
    masked = np.where(over[apps], latency[apps], -np.inf)
    worst = masked.argmax(axis=1)
    value = latency[apps, worst]
    finite = np.isfinite(value)
    edge, share = _top_split_calls(inv, split, apps[finite], worst[finite])
    cause_edge = np.full(apps.size, -1, dtype=np.int64)
    cause_ms = np.zeros(apps.size)
    cause_edge[finite] = edge
    cause_ms[finite] = share
    cycle_of = np.full(apps.size, -1, dtype=np.int64)
    if (~finite).any():
        direct = _direct_latency(model, split)
        hot = _hot_cycles(model, direct)  # (J, K-1)
        inf_apps, inf_k = apps[~finite], worst[~finite]
        cycle_of[~finite] = (model.reach[inf_apps] & hot[:, inf_k].T).argmax(axis=1)
    periods_over = over[apps].sum(axis=1)
    out: list[Finding] = []
    budgets = inv.budgets
    for j, a in enumerate(apps.tolist()):
        k = int(worst[j]) + 1
        head = f"{inv.ids[a]}: "
        tail = f" ({int(periods_over[j])} period(s) over budget)"
        if finite[j]:
            msg = (
                head + f"+{value[j]:.1f} ms added latency in period {k} (after wave {k}), over its "
                f"{budgets[a]:g} ms budget" + tail
            )
            e = int(cause_edge[j])
            if e >= 0:
                u, v = int(inv.caller[e]), int(inv.callee[e])
                msg += (
                    f"; largest share {cause_ms[j]:.1f} ms from the split call {inv.ids[u]} → {inv.ids[v]} "
                    f"({inv.edge_calls[e]:g} calls/request × {model.rtt_ms:g} ms"
                    + (")" if u == a else ", reached through its downstream calls)")
                )
            code = "latency"
            involved: tuple[str, ...] = (inv.ids[a],)
        else:
            cyc = model.divergent[int(cycle_of[j])]
            path = " → ".join(inv.ids[i] for i in (*cyc.cycle, cyc.cycle[0])) if cyc.cycle else ""
            msg = (
                head + f"added latency is unbounded in period {k} (after wave {k}): it reaches the "
                f"synchronous call cycle {path} (calls_per_request product {cyc.cycle_product:g}, "
                f"spectral radius {cyc.spectral_radius:.3g} ≥ 1) and a call below that cycle is split "
                "across sites; keep those calls on one site" + tail
            )
            code = "latency-unbounded"
            involved = (inv.ids[a], *(inv.ids[i] for i in cyc.cycle if i != a))
        out.append(
            _err(
                code,
                msg,
                involved,
                value="inf" if not finite[j] else f"{value[j]:.1f}",
                expected=f"<= {budgets[a]:g} ms",
            )
        )
    return out


def _empty_evaluation(inv: Inventory, findings: list[Finding]) -> Evaluation:
    K = inv.K
    counts = dict.fromkeys(VIOLATION_KINDS, 0)
    counts["wave"] = len([f for f in findings if f.severity == "error"])
    p = max(K - 1, 0)
    return Evaluation(
        K,
        np.zeros(p),
        0.0,
        np.zeros(p),
        np.zeros((inv.n, p)),
        np.zeros(K),
        np.zeros(K),
        np.zeros(K),
        np.zeros(K),
        counts,
        tuple(findings),
        np.zeros((inv.n, p), dtype=bool),
        np.zeros(inv.n),
    )


def evaluate(inv: Inventory, plan: Plan) -> Evaluation:
    """Every §3 figure of a plan and every violation, checked against the inventory's scenario.

    K is the scenario's; a plan whose K differs gets a warning.  Waves outside 1..K are
    violations, and the figures are then computed with those waves clipped into 1..K.  A
    plan of the wrong length cannot be measured: it gets one violation and zero figures.
    """
    findings: list[Finding] = []
    K = inv.K
    if plan.K != K:
        findings.append(
            Finding(
                "warning",
                "plan-waves",
                f"the plan was made for {plan.K} waves but the scenario has {K}; checked against {K}",
                value=str(plan.K),
                expected=str(K),
            )
        )
    raw = plan.array
    if raw.size != inv.n:
        findings.append(
            _err(
                "plan-length",
                f"the plan gives waves to {raw.size} apps but the inventory has {inv.n}",
                value=str(raw.size),
                expected=str(inv.n),
            )
        )
        return _empty_evaluation(inv, findings)
    counts = dict.fromkeys(VIOLATION_KINDS, 0)
    wave_f = _wave_findings(inv, raw)
    counts["wave"] = len(wave_f)
    w = np.clip(raw, 1, K) if K >= 1 else raw
    ck = _checks(inv)

    split = split_matrix(inv, w)
    xqps = inv.edge_qps @ split
    link = _edge_gbps(inv) @ split
    model = latency_model(inv)
    latency = _solve_latency(model, split)
    over = _over(latency, inv.budgets[:, None])

    loads: dict[str, FloatArray] = {
        res: np.bincount(w - 1, weights=inv.load(res), minlength=K)[:K].astype(np.float64)
        for res in RESOURCES
    }
    share = wave_risk_share(inv, w)

    cap_f = _capacity_findings(inv, loads)
    pin_f, win_f = _pin_window_findings(inv, w, ck)
    grp_f, cyc_f = _group_cycle_findings(inv, w, ck)
    rule_f, rule_count = _rule_findings(inv, w, ck)
    link_f = _link_findings(inv, link)
    lat_f = _latency_findings(inv, model, split, latency, over)
    risk_f = _risk_findings(inv, share)
    counts.update(
        capacity=len(cap_f),
        pin=len(pin_f),
        window=len(win_f),
        group=len(grp_f),
        cycle=len(cyc_f),
        rule=rule_count,
        link=len(link_f),
        latency=int(over.sum()),
        risk=len(risk_f),
    )
    findings += wave_f + cap_f + pin_f + win_f + grp_f + cyc_f + list(ck.rule_findings) + rule_f
    findings += link_f + lat_f + risk_f
    max_lat = latency.max(axis=1) if latency.shape[1] else np.zeros(inv.n)
    return Evaluation(
        K=K,
        cross_site_qps=np.asarray(xqps, dtype=np.float64),
        chatty_cost=chatty_cost(inv, w),
        link_load_gbps=np.asarray(link, dtype=np.float64),
        added_latency=latency,
        wave_apps=loads["apps"],
        wave_instances=loads["instances"],
        wave_data_gb=loads["data_gb"],
        wave_risk_share=share,
        violation_counts=counts,
        findings=tuple(findings),
        latency_violations=over,
        max_added_latency=max_lat,
    )
