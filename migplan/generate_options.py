"""The limits of ``migplan generate``'s options, checked all at once before anything is built.

Why a module of its own: the command line needs these limits for its help text and checks
at start-up, and importing the generator itself (numpy, scipy, metrics) costs half a second
that ``migplan validate`` and friends should not pay.
"""

from __future__ import annotations

from migplan.io.scenario import MAX_WAVES

MIN_APPS = 20  # and at least 3 apps per wave: max(MIN_APPS, 3 x waves) in all
MAX_APPS = 200_000  # 4 x the largest estate measured (50,000 apps); more only exhausts memory
MIN_WAVES = 2
# budgets are set from the planted added latency, many round trips deep (10 x rtt_ms at 40
# apps), and must stay under the inventory's limit of 1e15 ms or the loader rejects the files
# the generator wrote (--rtt-ms 1e15 did); 1e6 ms (17 minutes) is past any real link
MAX_RTT_MS = 1e6


def option_problems(n_apps: int, waves: int, rtt_ms: float) -> list[tuple[str, str, str]]:
    """(option, value, what was expected) for each option the generator cannot honour.

    At least 20 apps and 3 per wave (a team needs 6 apps, a wave a few to cut between);
    waves from 2 (one wave has no order to plan) to the planner's MAX_WAVES; rtt_ms from 0
    to MAX_RTT_MS.  All problems are returned at once, so one run shows all of them.
    """
    problems = []
    waves_ok = MIN_WAVES <= waves <= MAX_WAVES
    if not waves_ok:
        problems.append(("waves", str(waves), f"an integer from {MIN_WAVES} to {MAX_WAVES}"))
    need = max(MIN_APPS, 3 * waves) if waves_ok else MIN_APPS
    if not need <= n_apps <= MAX_APPS:
        rule = f"max({MIN_APPS}, 3 x waves) = {need}" if waves_ok else str(MIN_APPS)
        problems.append(("apps", str(n_apps), f"at least {rule} and at most {MAX_APPS:,}"))
    if not 0 <= rtt_ms <= MAX_RTT_MS:  # nan fails too
        problems.append(("rtt_ms", f"{rtt_ms:g}", f"a number from 0 to {MAX_RTT_MS:,.0f} (ms)"))
    return problems
