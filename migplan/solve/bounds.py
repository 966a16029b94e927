"""A proven lower bound on the chatty cost: the spectral bound per connected component.

Why not CP-SAT's bound: the LP relaxation of the order model is 0 (x[a,k] = k/K splits
nothing), so CP-SAT's bound is 0 on every instance it cannot solve outright.

Derivation.  Chatty cost = sum over periods k of cut_k, the qps between S_k (apps with
wave <= k) and the rest.  Let Lap_c be the Laplacian of connected component c of the
call graph (symmetric qps weights, n_c apps) and lambda_c its second-smallest
eigenvalue.  For the indicator vector of S_k within c, with s = |S_k n c|,
    cut_k(c) = x^T Lap_c x >= lambda_c * |x - mean(x)|^2 = lambda_c * s (n_c - s) / n_c
(x - mean(x) is orthogonal to the constant eigenvector).  s is not known, but every plan
keeps it in an interval: at least the apps of c whose latest wave is <= k and at
least n_c minus everything that fits in waves k+1..K (apps capacity); at most the apps
of c whose earliest wave is <= k and at most what fits in waves 1..k.  s (n_c - s) is
concave, so its minimum over the interval is at an end.  Summing the per-component,
per-period minima gives a bound no plan can beat; eigenvalues are shaved by 1e-6
relative to stay on the safe side of rounding.  Without pins or an apps capacity the
bound is 0 and reported as unknown.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import eigsh

from migplan.model import Inventory

DENSE_LIMIT = 400


def spectral_lower_bound(inv: Inventory) -> float | None:
    """Lower bound on the chatty cost of every feasible plan, or None when it says nothing."""
    n, K = inv.n, inv.K
    if inv.m == 0 or K < 2:
        return None
    W = sp.coo_matrix((inv.edge_qps, (inv.caller, inv.callee)), shape=(n, n)).tocsr()
    W = (W + W.T).tocsr()
    count, label = connected_components(W, directed=False)
    lo, hi = _app_ranges(inv)
    cap = inv.scenario.capacity("apps")
    before = np.cumsum(cap) if cap is not None else np.full(K, np.inf)  # fits in waves 1..k
    after = (cap.sum() - before) if cap is not None else np.full(K, np.inf)  # fits in waves k+1..K
    total = 0.0
    for c in range(count):
        members = np.flatnonzero(label == c)
        n_c = len(members)
        if n_c < 2:
            continue
        lam = _lambda2(W[members][:, members]) * (1 - 1e-6)
        if lam <= 0:
            continue
        for k in range(1, K):
            # apps left behind must fit in waves k+1..K, even if all others are left behind too
            s_min = max(float(np.sum(hi[members] <= k)), n_c - float(after[k - 1]), 0.0)
            s_max = min(float(np.sum(lo[members] <= k)), float(before[k - 1]), float(n_c))
            if s_min > s_max:
                return None  # infeasible: no plan, no bound to report
            f = min(s_min * (n_c - s_min), s_max * (n_c - s_max)) / n_c
            total += lam * f
    return total if total > 0 else None


def _app_ranges(inv: Inventory) -> tuple[np.ndarray, np.ndarray]:
    """Earliest and latest allowed wave per app from pins and windows."""
    K = inv.K
    lo = np.array([max(a.earliest_wave or 1, a.pinned_wave or 1) for a in inv.apps])
    hi = np.array([min(a.latest_wave or K, a.pinned_wave or K) for a in inv.apps])
    return lo, hi


def _lambda2(W: sp.csr_matrix) -> float:
    """Second-smallest Laplacian eigenvalue of a connected weighted graph."""
    W = sp.csr_matrix(W, dtype=np.float64)
    degree = np.asarray(W.sum(axis=1)).ravel()
    lap = sp.csc_matrix(sp.diags(degree) - W)
    if W.shape[0] <= DENSE_LIMIT:
        values = np.linalg.eigvalsh(lap.toarray())
        return float(max(values[1], 0.0))
    found: Any = eigsh(lap, k=2, sigma=-1e-3, which="LM", return_eigenvectors=False)
    return float(max(np.sort(np.asarray(found, dtype=np.float64))[1], 0.0))
