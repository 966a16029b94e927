"""Generated estates with a share of their budgets at the planted plan's exact latency.

    python -m bench.exact_budgets [--time-limit S --work-limit W] [--search-path] [--estates N:S:K:SHARE ...]

Estates are APPS:SEED:WAVES:SHARE: ``generate_estate(n, seed, waves)``, then each app whose
planted worst added latency is above 0 gets, with probability SHARE (drawn with the seed),
that latency as its budget, to the last bit.  The planted plan still meets every rule
(checked), so "no plan found" is the planner's failure.  Such budgets are what the safe
search model cannot hold (it drops small coefficients and rounds against the plan); the
overtime repair moves to the relaxation for them (``pipeline._overtime_model``).  Prints
``feasibility_sweep``'s table.  ``--search-path``: estates of any size skip the small
estates' full-model path, so a few hundred apps show what the search does at scale.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from functools import partial

import numpy as np

from bench.feasibility_sweep import add_limits, limits, print_sweep
from migplan import metrics
from migplan.generate import generate_estate
from migplan.model import Inventory, Plan
from migplan.solve import pipeline

ESTATES = ((800, 3, 12, 0.1), (1500, 7, 12, 0.1), (600, 8, 8, 0.1), (800, 3, 12, 1.0))


def exact_budgets(n: int, seed: int, waves: int, share: float) -> tuple[Inventory, Plan]:
    """The estate with SHARE of its budgets at the planted plan's worst latency, and that plan."""
    estate = generate_estate(n, seed, waves=waves)
    inv, planted = estate.inventory, estate.planted
    worst = metrics.added_latency(inv, planted.array).max(axis=1, initial=0.0)
    pick = (np.random.default_rng(seed).random(inv.n) < share) & (worst > 0)
    apps = tuple(
        replace(app, latency_budget_ms=float(ms)) if chosen else app
        for app, ms, chosen in zip(inv.apps, worst, pick, strict=True)
    )
    tight = replace(inv, apps=apps)
    if not metrics.evaluate(tight, planted).feasible:
        raise AssertionError(f"the planted plan of {n}:{seed}:{waves}:{share} breaks a rule")
    return tight, planted


def _estate(text: str) -> tuple[int, int, int, float]:
    n, seed, waves, share = text.split(":")
    return int(n), int(seed), int(waves), float(share)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_limits(parser)
    parser.add_argument(
        "--estates", type=_estate, nargs="+", default=list(ESTATES), help="APPS:SEED:WAVES:SHARE"
    )
    parser.add_argument(
        "--search-path", action="store_true", help="no full-model path for small estates (search as at scale)"
    )
    args = parser.parse_args()
    if args.search_path:
        pipeline.SMALL_BLOCKS = pipeline.SMALL_LITERALS = 0
    estates = [
        (f"{n} | {s} | {k} | {share:g}", partial(exact_budgets, n, s, k, share))
        for n, s, k, share in args.estates
    ]
    path = " --search-path" if args.search_path else ""
    title = f"`python -m bench.exact_budgets {limits(args)}{path}`"
    print_sweep(title, ("apps", "seed", "waves", "exact share"), estates, args.time_limit, args.work_limit)


if __name__ == "__main__":
    main()
