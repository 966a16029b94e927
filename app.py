"""migplan dashboard: explore an inventory and a wave plan (``make run``).

A thin layer: loading, metrics and planning all come from the migplan package;
the planner runs in its own process (``migplan plan``) so the page stays live.
Start: ``streamlit run app.py -- --inventory datasets/demo``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from migplan import analysis
from migplan.io.inventory import LoadResult, load_inventory
from migplan.io.planfiles import CLOSEST_WAVES_FILE, PLAN_FILE, WAVES_FILE, read_waves_csv
from migplan.metrics import evaluate
from migplan.model import Finding, Inventory, Plan
from migplan.text import amount
from migplan.ui.charts import latency_figure, period_figure, wave_figure

PLANS = Path("out")  # 'Plan waves' writes PLANS/<inventory folder name>/


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inventory", default="datasets/demo")
    args, _ = parser.parse_known_args(sys.argv[1:])
    return args


@st.cache_resource(show_spinner="Loading inventory…")
def _load(folder: str, stamp: float) -> LoadResult:
    """Cached per folder and modification time, so edits on disk are picked up."""
    del stamp
    return load_inventory(Path(folder))


def _stamp(folder: Path) -> float:
    files = [folder / name for name in ("apps.csv", "dependencies.csv", "scenario.toml")]
    return max((f.stat().st_mtime for f in files if f.exists()), default=0.0)


def _findings_table(findings: tuple[Finding, ...] | list[Finding]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"severity": f.severity, "where": f.location(), "message": f.message, "value": f.value}
            for f in findings
        ]
    )


def _overview(inv: Inventory) -> None:
    sc = inv.scenario
    cols = st.columns(5)
    cols[0].metric("applications", f"{inv.n:,}")
    cols[1].metric("dependencies", f"{inv.m:,}")
    cols[2].metric("total QPS", f"{sum(a.qps for a in inv.apps):,.0f}")
    cols[3].metric("waves", sc.waves)
    cols[4].metric("extra RTT", f"{sc.rtt_ms:g} ms")
    st.caption(f"{sc.source} → {sc.target}")


def _plan_folder(folder: Path) -> Path:
    """Where 'Plan waves' writes: one folder per inventory, so a plan is never shown for another."""
    return PLANS / (folder.resolve().name or "inventory")


def _plan_source(folder: Path, inv: Inventory) -> tuple[Plan | None, bool]:
    """(plan, whether a plan file was offered) from an uploaded waves.csv, the planner's
    folder for this inventory, or the dataset's planted plan."""
    upload = st.sidebar.file_uploader("waves.csv", type=["csv"])
    if upload is not None:
        name = Path(upload.name).name or "waves.csv"
        with tempfile.TemporaryDirectory() as tmp:  # removed at once: reruns leave nothing behind
            path = Path(tmp) / name  # findings then name the uploaded file, not a temporary one
            path.write_bytes(upload.getvalue())
            plan, findings = read_waves_csv(path, inv)
    else:
        planned = _plan_folder(folder) / WAVES_FILE
        closest = planned.with_name(CLOSEST_WAVES_FILE)  # the planner's last run found no plan
        candidates = [p for p in (planned, closest, folder / "planted-waves.csv") if p.exists()]
        if not candidates:
            return None, False
        path = Path(st.sidebar.selectbox("plan", [str(p) for p in candidates]))
        name = str(path)
        if path == planned:
            _planner_record(planned.parent)
        if path == closest:
            st.warning(
                f"{name}: the planner found no feasible plan; this is the closest it reached, and it"
                " breaks the rules listed below (fix or relax them, or plan with a longer time limit)"
            )
        plan, findings = read_waves_csv(path, inv)
    if plan is None:
        st.error(f"{name} is not a plan for this inventory")
        st.dataframe(_findings_table(findings))
    return plan, True


def _planner_record(out: Path) -> None:
    """The planner's status line from plan.json: status, quality, objective, seed."""
    report = _read_report(out)
    solver = report.get("solver") or {}
    if solver:
        objective = report.get("objective")
        shown = f", objective {amount(objective)}" if isinstance(objective, int | float) else ""
        st.caption(
            f"{out / WAVES_FILE}: {solver.get('status')} ({solver.get('quality', '')}){shown}, "
            f"seed {solver.get('seed')}, {solver.get('seconds', 0):.0f} s"
        )


def _read_report(out: Path) -> dict[str, Any]:
    """plan.json of ``out`` as a dict; empty when missing or unreadable (the page still works)."""
    try:
        data = json.loads((out / PLAN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _run_planner(folder: Path, seconds: int) -> None:
    """Run the planner in its own process (CP-SAT must not block the page), its progress
    (``--progress json`` lines) on a progress bar."""
    out = _plan_folder(folder)
    cmd = [sys.executable, "-m", "migplan", "plan", str(folder), "--out", str(out)]
    cmd += ["--time-limit", str(seconds), "--progress", "json"]
    bar = st.progress(0.0, text="Planning: starting…")
    messages: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as process:
        assert process.stderr is not None
        for line in process.stderr:
            update = _progress_update(line)
            if update is None:
                messages.append(line.rstrip())
            else:
                bar.progress(*update)
    bar.empty()
    text = "\n".join(messages).strip()[-2000:]
    if process.returncode == 0:
        st.success(text or "done")
        return
    st.error(text or f"the planner exited with status {process.returncode}")
    report = _read_report(out)
    if report.get("feasible") is False and report.get("findings"):
        st.dataframe(pd.DataFrame(report["findings"]), width="stretch")


def _progress_update(line: str) -> tuple[float, str] | None:
    """(fraction, label) from one ``--progress json`` line; None for any other line."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or "stage" not in data:
        return None
    parts = [f"Planning: {data['stage']}"]
    if data.get("objective") is not None:
        parts.append(f"objective {amount(data['objective'])}")
    if data.get("violations") is not None:
        parts.append(f"{data['violations']} violation(s) left")
    parts.append(f"{data.get('elapsed', 0):.0f} s")
    return min(max(float(data.get("fraction", 0.0)), 0.0), 1.0), ", ".join(parts)


def _plan_section(inv: Inventory, plan: Plan) -> None:
    ev = evaluate(inv, plan)
    cols = st.columns(4)
    cols[0].metric("chatty cost", amount(ev.chatty_cost))
    cols[1].metric("feasible", "yes" if ev.feasible else "no")
    cols[2].metric("peak cross-site QPS", f"{ev.cross_site_qps.max(initial=0):,.0f}")
    cols[3].metric("peak link load", f"{ev.link_load_gbps.max(initial=0):.2f} Gbps")
    st.plotly_chart(period_figure(inv, ev), width="stretch")
    left, right = st.columns(2)
    left.plotly_chart(wave_figure(inv, ev), width="stretch")
    right.plotly_chart(latency_figure(inv, ev), width="stretch")
    violations = [f for f in ev.findings if f.severity == "error"]
    if violations:
        st.subheader(f"{len(violations)} violations")
        st.dataframe(_findings_table(violations), width="stretch")
    table = pd.DataFrame(
        {
            "app_id": inv.ids,
            "wave": plan.array,
            "team": [a.team for a in inv.apps],
            "kind": [a.kind for a in inv.apps],
            "qps": [a.qps for a in inv.apps],
        }
    ).sort_values(["wave", "app_id"])
    st.dataframe(table, width="stretch", hide_index=True)


def main() -> None:
    st.set_page_config(page_title="migplan", layout="wide")
    st.title("migplan: migration wave planner")
    folder = Path(st.sidebar.text_input("inventory folder", _arguments().inventory))
    result = _load(str(folder), _stamp(folder))
    if result.findings:
        with st.expander(f"{len(result.findings)} findings while loading", expanded=result.inventory is None):
            st.dataframe(_findings_table(result.findings), width="stretch")
    inv = result.inventory
    if inv is None:
        st.error("The inventory has errors; fix them and reload.")
        return
    _overview(inv)
    facts = analysis.findings(inv)
    if facts:
        with st.expander(f"{len(facts)} dependency findings (cycles, control plane, …)"):
            st.dataframe(_findings_table(facts), width="stretch")
    seconds = st.sidebar.slider("planner time limit (s)", 5, 300, 30)
    if st.sidebar.button("Plan waves"):
        _run_planner(folder, seconds)
    plan, offered = _plan_source(folder, inv)
    if plan is None:
        if not offered:
            st.info("No plan yet: press 'Plan waves' or upload a waves.csv.")
        return
    _plan_section(inv, plan)


main()
