"""``migplan plan``: plan the waves of an inventory and write the plan folder.

Exit 0: a feasible plan was written (also when interrupted with a feasible plan in hand,
marked "interrupted" in plan.json).  Exit 1: no feasible plan exists or none was found in
time; the reason goes to stderr and to plan.json (no waves.csv; an earlier plan there is
kept as waves.previous.csv; the search's closest plan, when it has one, goes to
closest-waves.csv), except after Ctrl-C / SIGTERM, which leave the folder as it was.
Exit 2: bad input.  Ctrl-C / SIGTERM ask the planner to stop; it returns the best
feasible plan found so far.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from migplan.cli import main
from migplan.cli.common import (
    EXIT_INFEASIBLE,
    SEED,
    PositiveSeconds,
    file_errors_exit,
    inventory_argument,
    is_terminal,
    load_or_exit_with_findings,
    print_findings,
    scenario_options,
)
from migplan.io.planfiles import (
    CLOSEST_WAVES_FILE,
    PLAN_FILE,
    PREVIOUS_WAVES_FILE,
    WAVES_FILE,
    out_dir_findings,
    write_no_plan_folder,
    write_plan_folder,
)
from migplan.metrics import LatencyModelTooLargeError
from migplan.model import Inventory
from migplan.report import no_plan_report, plan_report
from migplan.text import amount

# CP-SAT copies the model per worker: 1000 workers took 1 GB and 13 s for the 40-app demo
# (10 s limit) and planned it at twice the optimum; past a few dozen nothing is gained
MAX_WORKERS = 64
# stages that end with no plan in hand, and some of whose steps (the latency coefficients,
# a Mt-KaHyPar mapping) cannot be stopped: 4-15 s at 10,000-20,000 apps
NO_PLAN_YET = ("planning", "blocks", "precheck", "construction", "merged")
ABANDON_AFTER = 1.0  # seconds a stop waits for such a stage before the command leaves it
INTERRUPTED_EARLY = "interrupted before a feasible plan was found"


class _AbandonedError(Exception):
    """Ctrl-C / SIGTERM came while the planner was in a stage that has no plan to return."""


if TYPE_CHECKING:
    from migplan.solve.pipeline import PlanOptions, PlanResult, Progress


@main.command(name="plan")
@inventory_argument
@click.option(
    "--out",
    "out_text",
    type=str,
    required=True,
    help="Plan folder to write: an existing folder, or a new one (created).",
)
@scenario_options
@click.option(
    "--time-limit",
    type=PositiveSeconds(),
    default=60.0,
    show_default=True,
    help="Wall-clock cap in seconds, loading the inventory included.",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed (same seed, same plan).")
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=MAX_WORKERS),
    default=2,
    show_default=True,
    help=f"CP-SAT threads, 1 to {MAX_WORKERS}.",
)
@click.option(
    "--work-limit",
    type=PositiveSeconds(),
    default=None,
    help="Deterministic work budget (CP-SAT deterministic seconds); default from --time-limit.",
)
@click.option(
    "--progress",
    type=click.Choice(["auto", "bar", "json", "off"]),
    default="auto",
    show_default=True,
    help="Progress on stderr: a bar (auto: only on a terminal), JSON lines "
    '({"stage", "fraction", "objective", "violations", "elapsed"}, for scripts and the dashboard), or none.',
)
def plan_command(
    inventory_dir: Path,
    out_text: str,
    waves: int | None,
    rtt_ms: float | None,
    risk_weight: float | None,
    time_limit: float,
    seed: int,
    workers: int,
    work_limit: float | None,
    progress: str,
) -> None:
    """Plan the migration waves of INVENTORY_DIR and write waves.csv and plan.json to OUT."""
    t0 = time.monotonic()  # --time-limit counts loading too: it caps the whole command
    out_dir = Path(out_text)
    inv, load_findings = load_or_exit_with_findings(
        inventory_dir,
        waves=waves,
        rtt_ms=rtt_ms,
        risk_weight=risk_weight,
        extra=out_dir_findings(
            out_text, files=(WAVES_FILE, PLAN_FILE, CLOSEST_WAVES_FILE)
        ),  # before solving: a bad --out must not cost the solve
    )
    # imported here: ortools costs about a second, which other subcommands should not pay
    from migplan.solve.pipeline import PlanOptions

    options = PlanOptions(
        time_limit, seed=seed, workers=workers, risk_weight=risk_weight, work_limit=work_limit, clock_from=t0
    )
    stop = threading.Event()
    try:
        with _stop_on_signals(stop), _progress_display(progress) as show:
            result = _plan_in_thread(inv, options, show, stop)
    except _AbandonedError:
        with contextlib.suppress(OSError):  # a closed pipe: the exit status still says it
            click.echo(f"error: {INTERRUPTED_EARLY}; nothing was written to {out_dir}", err=True)
            sys.stdout.flush()
            sys.stderr.flush()
        # the planner's thread may be inside native code that never returns to Python in
        # time; nothing of it is written anywhere, so the process ends without waiting
        os._exit(EXIT_INFEASIBLE)
    if result.plan is None or result.evaluation is None:
        print_findings(result.explanation)
        why = _why_no_plan(result, time_limit)
        if result.status == "interrupted":  # stopped by the user: the folder stays as it was
            click.echo(f"error: {why}; nothing was written to {out_dir}", err=True)
            raise SystemExit(EXIT_INFEASIBLE)
        closest = (inv, result.closest) if result.closest is not None else None
        found = [*load_findings, *result.explanation]
        report = no_plan_report(inv, result.solver_info, why, found, CLOSEST_WAVES_FILE if closest else None)
        with file_errors_exit("write"):
            kept = write_no_plan_folder(out_dir, report, closest)
        earlier = f"; the earlier plan is now {PREVIOUS_WAVES_FILE}" if kept else ""
        near = f"; the closest plan found (it breaks the rules above) is {out_dir / CLOSEST_WAVES_FILE}"
        near = near if closest else ""
        click.echo(
            f"error: {why}; wrote the reasons to {out_dir / PLAN_FILE} (no {WAVES_FILE}{earlier}){near}",
            err=True,
        )
        raise SystemExit(EXIT_INFEASIBLE)
    report = plan_report(inv, result.plan, result.evaluation, result.solver_info, load_findings)
    with file_errors_exit("write"):
        replacing = (out_dir / WAVES_FILE).is_file()  # said, not silent (hostile-input audit)
        write_plan_folder(out_dir, inv, result.plan, report)
    replaced = f"; it replaces the {WAVES_FILE} that was there" if replacing else ""
    click.echo(_summary(result, out_dir) + replaced, err=True)


def _plan_in_thread(
    inv: Inventory,
    options: PlanOptions,
    show: Callable[[Progress], None] | None,
    stop: threading.Event,
) -> PlanResult:
    """Run the planner in a worker thread: the main thread stays free to take signals
    (Python runs signal handlers only in the main thread, between bytecodes, never
    inside a long CP-SAT call).

    A stop that finds the planner in a NO_PLAN_YET stage for ABANDON_AFTER seconds raises
    _AbandonedError: nothing can come of waiting, and building the latency coefficients of
    20,000 apps kept a Ctrl-C waiting 15 s (hostile-input audit).
    """
    from migplan.solve.pipeline import plan

    box: list[PlanResult] = []
    errors: list[BaseException] = []
    stage = [NO_PLAN_YET[0]]

    def report(progress: Progress) -> None:
        stage[0] = progress.stage
        if show is not None:
            show(progress)

    def work() -> None:
        try:
            box.append(plan(inv, options, report, stop))
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)

    worker = threading.Thread(target=work, name="migplan-plan", daemon=True)
    worker.start()
    stopped_at: float | None = None
    while worker.is_alive():
        worker.join(0.1)
        if stop.is_set() and worker.is_alive():
            stopped_at = stopped_at if stopped_at is not None else time.monotonic()
            if stage[0] in NO_PLAN_YET and time.monotonic() - stopped_at >= ABANDON_AFTER:
                raise _AbandonedError
    if errors:
        raise errors[0]
    return box[0]


def _why_no_plan(result: PlanResult, time_limit: float) -> str:
    """The one-line reason for exit 1: proven, interrupted, too large to model, or a limit reached."""
    if result.status == "infeasible":
        return "no feasible plan exists (proven)"
    if result.status == "interrupted":
        return INTERRUPTED_EARLY
    if any(f.code == LatencyModelTooLargeError.code for f in result.explanation):
        return "the estate's latency model is beyond the planner's memory limit (see above)"
    return _limit_reached(result, time_limit)


def _limit_reached(result: PlanResult, time_limit: float) -> str:
    """Which limit ended a search that found no plan, with the figures to raise it by."""
    info = result.solver_info
    cut = bool(info.get("wall_clock_cut"))
    which = "the wall clock (--time-limit)" if cut else "the work budget (--work-limit)"
    overtime = float(info.get("overtime_work", 0))
    limit = float(info.get("work_limit", 0))
    of = (
        f"{_units(limit + overtime)} ({_units(limit)} + {_units(overtime)} overtime)"
        if overtime
        else _units(limit)
    )
    return (
        f"no feasible plan found within --time-limit {time_limit:g} s "
        f"(work {_units(float(info.get('work_used', 0)))} of {of} units used; "
        f"{which} ended the search; not proven infeasible). "
        f"The {info.get('blocks', 0):,} blocks need more search: raise --time-limit "
        "(the work budget grows with it) and see the closest plan's violations above"
    )


def _units(work: float) -> str:
    """Work units as read: one decimal, or two significant digits below 1 (0.0035, not 0.0)."""
    return f"{work:.1f}" if work >= 1 or work == 0 else f"{work:.2g}"


def _summary(result: PlanResult, out_dir: Path) -> str:
    """One line: status, chatty cost, objective, gap, where the files went."""
    assert result.evaluation is not None
    from migplan.solve.pipeline import quality_label

    gap = quality_label(result.status, result.gap)
    objective = amount(result.objective) if result.objective is not None else "?"
    chatty = amount(result.evaluation.chatty_cost)
    return (
        f"{result.status}: chatty cost {chatty}, objective {objective} ({gap}), "
        f"{result.solver_info.get('seconds', 0):.1f} s; wrote {out_dir}"
    )


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` instead of killing the process; handlers restored after."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def _progress_display(mode: str = "auto") -> Iterator[Any]:
    """A rich progress bar (stage, objective, violations left, elapsed), JSON lines, or nothing.

    "auto": the bar on a terminal, nothing otherwise (logs stay clean).
    """
    if mode == "json":
        yield _json_lines()
        return
    if mode == "off" or (mode == "auto" and not is_terminal(sys.stderr)):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    bar = Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("planning", total=1.0, detail="")

    def show(p: Progress) -> None:
        parts = []
        if p.objective is not None:
            parts.append(f"objective {amount(p.objective)}")
        if p.violations is not None:
            parts.append(f"{p.violations} violation(s) left")
        bar.update(task, completed=p.fraction, description=p.stage, detail=", ".join(parts))

    with bar:
        yield show


JSON_PROGRESS_INTERVAL = 0.25  # seconds between two JSON progress lines of the same stage


def _json_lines() -> Callable[[Progress], None]:
    """One JSON object per line on stderr: on every stage change, else at most every
    JSON_PROGRESS_INTERVAL seconds (the repair reports each step, hundreds a minute)."""
    last: dict[str, Any] = {"stage": None, "at": float("-inf")}

    def show(p: Progress) -> None:
        now = time.monotonic()
        if p.stage == last["stage"] and now - last["at"] < JSON_PROGRESS_INTERVAL:
            return
        last.update(stage=p.stage, at=now)
        line = {
            "stage": p.stage,
            "fraction": round(p.fraction, 4),
            "objective": p.objective,
            "violations": p.violations,
            "elapsed": round(p.elapsed, 2),
        }
        click.echo(json.dumps(line), err=True)

    return show
