"""Benchmark: every baseline and the planner on generated estates and the bundled datasets.

    python -m bench.run [--quick] [--huge] [--time-limit S] [--only NAME]

Each (dataset, method) runs in its own process (multiprocessing "spawn"), so
its peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss`` read in that
process: loading or generating the estate included) and wall time (the method
call alone) are its own.  Every number comes from ``metrics.evaluate``.
Writes ``bench/results/<date>-bench[-quick].md`` and ``.json`` and prints the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.metadata
import inspect
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from migplan.model import Inventory, Plan

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
REFERENCE = "louvain-pack"
STRONGEST = "latency-blind-mapping"
PLANNER = "planner"


@dataclass(frozen=True)
class Dataset:
    """A generated estate (n_apps, seed) or an inventory folder; the planner's time limit."""

    name: str
    n_apps: int | None = None
    seed: int | None = None
    folder: str | None = None
    time_limit: float = 60.0


DEFAULT = (
    Dataset("gen-200", 200, 1, time_limit=60.0),
    Dataset("gen-2000", 2000, 3, time_limit=60.0),  # netease is generate_estate(2100, 7)
    Dataset("gen-10000", 10000, 11, time_limit=300.0),
    Dataset("netease", folder="datasets/netease", time_limit=60.0),
    Dataset("demo", folder="datasets/demo", time_limit=60.0),
)
QUICK = (
    Dataset("gen-200", 200, 1, time_limit=10.0),
    Dataset("demo", folder="datasets/demo", time_limit=10.0),
)
HUGE = Dataset("gen-50000", 50000, 13, time_limit=600.0)


def load(dataset: Dataset) -> tuple[Inventory | None, str]:
    """The dataset's inventory, or None and why not."""
    if dataset.folder is None:
        from migplan.generate import generate_estate

        assert dataset.n_apps is not None and dataset.seed is not None
        return generate_estate(dataset.n_apps, dataset.seed).inventory, ""
    folder = Path(dataset.folder)
    folder = folder if folder.is_absolute() else ROOT / folder
    if not folder.is_dir():
        return None, f"dataset folder {dataset.folder} not found"
    from migplan.io.inventory import load_inventory

    result = load_inventory(folder)
    if result.inventory is None:
        errors = [f.render() for f in result.findings if f.severity == "error"]
        return None, "cannot load: " + "; ".join(errors[:3])
    return result.inventory, ""


def methods() -> list[str]:
    """Baseline names in registry order, then the planner."""
    from migplan.baselines import BASELINES

    return [*BASELINES, PLANNER]


def _run_planner(inv: Inventory, time_limit: float) -> tuple[Plan | None, dict[str, Any]]:
    """The CP-SAT planner with the options it accepts (its module may not exist yet)."""
    try:
        pipeline = importlib.import_module("migplan.solve.pipeline")
    except ImportError:
        return None, {"note": "planner not available"}
    wanted: dict[str, Any] = {"time_limit": time_limit, "seed": 0, "workers": 2}
    params = inspect.signature(pipeline.PlanOptions).parameters
    options = pipeline.PlanOptions(**{k: v for k, v in wanted.items() if k in params})
    result = pipeline.plan(inv, options)
    info: dict[str, Any] = {"status": str(getattr(result, "status", "")), "gap": getattr(result, "gap", None)}
    lower = getattr(result, "lower_bound", None)
    info["lower_bound"] = float(lower) if lower is not None else None
    return getattr(result, "plan", None), info


def run_method(dataset: Dataset, method: str, time_limit: float | None = None) -> dict[str, Any]:
    """Load the dataset, run one method on it, evaluate: one result row (no ratios yet)."""
    from migplan import metrics
    from migplan.baselines import BASELINES

    row: dict[str, Any] = {"dataset": dataset.name, "method": method}
    inv, why = load(dataset)
    if inv is None:
        row["note"] = why
        return row
    row["apps"] = inv.n
    limit = dataset.time_limit if time_limit is None else time_limit
    start = time.perf_counter()
    try:
        if method == PLANNER:
            plan, info = _run_planner(inv, limit)
            row.update(info)
        else:
            plan = BASELINES[method](inv, 0)
    except Exception as exc:
        row["note"] = f"error: {type(exc).__name__}: {exc}"
        row["traceback"] = traceback.format_exc()
        plan = None
    row["wall_s"] = time.perf_counter() - start
    if plan is not None:
        ev = metrics.evaluate(inv, plan)
        counts = ev.violation_counts
        row["chatty_cost"] = float(ev.chatty_cost)
        row["latency_violations"] = int(counts.get("latency", 0))
        row["capacity_violations"] = int(counts.get("capacity", 0))
        row["link_violations"] = int(counts.get("link", 0))
        row["other_violations"] = int(
            sum(v for k, v in counts.items() if k not in ("latency", "capacity", "link"))
        )
        row["feasible"] = bool(ev.feasible)
    return row


def _child(dataset: Dataset, method: str, time_limit: float | None, out: Any) -> None:
    """Process entry: run, add own peak RSS, send the row back."""
    try:
        row = run_method(dataset, method, time_limit)
    except Exception as exc:  # loading or evaluation crashed: still report the row
        row = {"dataset": dataset.name, "method": method, "note": f"error: {exc}"}
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    out.send(row)
    out.close()


def run_isolated(dataset: Dataset, method: str, time_limit: float | None = None) -> dict[str, Any]:
    """``run_method`` in a fresh spawned process (honest peak memory, no shared caches)."""
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(dataset, method, time_limit, send))
    proc.start()
    limit = (dataset.time_limit if time_limit is None else time_limit) * 2 + 300
    row: dict[str, Any] = {"dataset": dataset.name, "method": method, "note": "timed out"}
    if receive.poll(limit):
        row = receive.recv()
    proc.join(10)
    if proc.is_alive():
        proc.terminate()
        proc.join()
    return row


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """ratio_louvain / ratio_mapping per row, against the same dataset's reference rows."""
    for row in rows:
        same = {r["method"]: r for r in rows if r["dataset"] == row["dataset"]}
        for key, ref in (("ratio_louvain", REFERENCE), ("ratio_mapping", STRONGEST)):
            base = same.get(ref, {}).get("chatty_cost")
            cost = row.get("chatty_cost")
            row[key] = cost / base if cost is not None and base else None


def quality(row: dict[str, Any]) -> str:
    """The planner's quality in words (migplan.solve.pipeline.quality_label); baselines: empty."""
    if row["method"] != PLANNER or "status" not in row:
        return ""
    from migplan.solve.pipeline import quality_label  # not at import: children measure their own RSS

    status = str(row.get("status", ""))
    label = quality_label(status, row.get("gap"))
    return label if label.startswith("proven") else f"{label} ({status})"


def machine() -> dict[str, str]:
    """What ran the benchmark: cores, CPU, python and solver versions."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(pkg: str) -> str:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "ortools": version("ortools"),
        "mtkahypar": version("mtkahypar"),
        "numpy": version("numpy"),
        "networkx": version("networkx"),
        "started_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
    }


def machine_line(info: dict[str, str] | None = None) -> str:
    """``machine()`` (or ``info``) on one line, as every bench table prints it on top."""
    return ", ".join(f"{k}: {v}" for k, v in (info if info is not None else machine()).items())


COLUMNS = (
    ("dataset", "dataset"),
    ("apps", "apps"),
    ("method", "method"),
    ("chatty_cost", "chatty cost"),
    ("ratio_louvain", "÷ louvain-pack"),
    ("ratio_mapping", "÷ latency-blind mapping"),
    ("latency_violations", "latency viol. (app, period)"),
    ("capacity_violations", "capacity viol."),
    ("link_violations", "link viol."),
    ("other_violations", "other viol."),
    ("wall_s", "wall s"),
    ("peak_rss_mb", "peak RSS MB"),
    ("quality", "planner status / gap"),
    ("note", "note"),
)


def _cell(key: str, value: Any) -> str:
    if value is None or value == "":
        return ""
    if key == "chatty_cost":
        return f"{value:,.0f}"
    if key.startswith("ratio"):
        return f"{value:.3f}"
    if key in ("wall_s", "peak_rss_mb"):
        return f"{value:.1f}" if key == "wall_s" else f"{value:.0f}"
    return str(value)


def markdown(rows: list[dict[str, Any]], info: dict[str, str], command: str) -> str:
    """The results table with the machine on top."""
    lines = [
        "# migplan benchmark",
        "",
        f"`{command}`",
        "",
        machine_line(info),
        "",
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in rows:
        cells = [_cell(key, row.get(key)).replace("|", "/") for key, _ in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_bench(
    datasets: tuple[Dataset, ...],
    names: list[str],
    time_limit: float | None = None,
    isolate: bool = True,
) -> list[dict[str, Any]]:
    """Every method on every dataset; rows with ratios and planner quality filled in."""
    rows: list[dict[str, Any]] = []
    for dataset in datasets:
        for method in names:
            runner = run_isolated if isolate else run_method
            row = runner(dataset, method, time_limit)
            print(
                f"  {dataset.name:<10} {method:<22} {_cell('wall_s', row.get('wall_s')):>7} s",
                file=sys.stderr,
            )
            rows.append(row)
    add_ratios(rows)
    for row in rows:
        row["quality"] = quality(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200-app estate and demo, short limits")
    parser.add_argument("--huge", action="store_true", help="also a 50,000-app estate")
    parser.add_argument("--time-limit", type=float, default=None, help="planner time limit for all")
    parser.add_argument("--only", action="append", default=None, help="method or dataset name (repeatable)")
    args = parser.parse_args(argv)
    datasets = QUICK if args.quick else DEFAULT + ((HUGE,) if args.huge else ())
    names = methods()
    if args.only:
        chosen = set(args.only)
        unknown = chosen - set(names) - {d.name for d in datasets}
        if unknown:
            parser.error(
                f"unknown --only {sorted(unknown)}; methods {names}, datasets {[d.name for d in datasets]}"
            )
        if chosen & set(names):
            names = [n for n in names if n in chosen]
            # ratios need their references
            names = [n for n in methods() if n in names or n in (REFERENCE, STRONGEST)]
        if chosen & {d.name for d in datasets}:
            datasets = tuple(d for d in datasets if d.name in chosen)
    command = "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:])
    info = machine()
    rows = run_bench(datasets, names, args.time_limit)
    info["finished_utc"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    text = markdown(rows, info, command.strip())
    RESULTS.mkdir(parents=True, exist_ok=True)
    # a partial run (--only) gets its own name: it must not overwrite the day's full table
    kind = "-bench-quick" if args.quick else "-bench"
    if args.only:
        kind += "-only-" + "-".join(sorted(args.only))
    stem = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d") + kind
    (RESULTS / f"{stem}.md").write_text(text)
    payload = {
        "command": command.strip(),
        "machine": info,
        "datasets": [asdict(d) for d in datasets],
        "rows": rows,
    }
    (RESULTS / f"{stem}.json").write_text(json.dumps(payload, indent=2, default=str))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
