"""Plotly figures of a plan's SPEC §3 figures; they take an Evaluation and compute nothing new."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from migplan.metrics import Evaluation
from migplan.model import Inventory

UNBOUNDED_BAR = 1000.0  # % of budget drawn for an unbounded added latency (labelled "unbounded")


def period_figure(inv: Inventory, ev: Evaluation) -> go.Figure:
    """Cross-site QPS (bars) and link load (line) per period: how long the estate is split."""
    periods = [f"P{k}" for k in range(1, ev.K)]
    fig = go.Figure()
    fig.add_bar(x=periods, y=ev.cross_site_qps, name="cross-site QPS")
    fig.add_scatter(x=periods, y=ev.link_load_gbps, name="link load (Gbps)", yaxis="y2", mode="lines+markers")
    if inv.scenario.link_gbps is not None:
        fig.add_hline(y=inv.scenario.link_gbps, line_dash="dot", yref="y2", annotation_text="link capacity")
    fig.update_layout(
        title="Traffic across the inter-site link, per period",
        yaxis={"title": "QPS"},
        yaxis2={"title": "Gbps", "overlaying": "y", "side": "right"},
        legend={"orientation": "h"},
    )
    return fig


def wave_figure(inv: Inventory, ev: Evaluation) -> go.Figure:
    """Apps per wave against capacity, with each wave's risk share."""
    waves = [f"W{k}" for k in range(1, ev.K + 1)]
    fig = go.Figure()
    fig.add_bar(x=waves, y=ev.wave_apps, name="apps")
    cap = inv.scenario.capacity("apps")
    if cap is not None:
        fig.add_scatter(x=waves, y=cap, name="capacity (apps)", mode="lines", line={"dash": "dot"})
    fig.add_scatter(
        x=waves, y=100 * ev.wave_risk_share, name="risk share (%)", yaxis="y2", mode="lines+markers"
    )
    fig.update_layout(
        title="Wave loads and risk",
        yaxis={"title": "apps"},
        yaxis2={"title": "% of total risk", "overlaying": "y", "side": "right"},
        legend={"orientation": "h"},
    )
    return fig


def latency_figure(inv: Inventory, ev: Evaluation) -> go.Figure:
    """Worst added latency as a share of budget, per period (100% = at budget)."""
    budgets = np.where(inv.budgets > 0, inv.budgets, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = ev.added_latency / budgets[:, None]
    raw = np.nanmax(share, axis=0, initial=0.0)
    unbounded = np.isinf(raw)  # below a divergent call cycle: drawn at UNBOUNDED_BAR, labelled
    worst = np.where(unbounded, UNBOUNDED_BAR, raw * 100)
    periods = [f"P{k}" for k in range(1, ev.K)]
    labels = ["unbounded" if u else "" for u in unbounded]
    bar = go.Bar(x=periods, y=worst, name="worst added latency / budget", text=labels, textposition="outside")
    fig = go.Figure(bar)
    fig.add_hline(y=100, line_dash="dot", annotation_text="budget")
    fig.update_layout(title="Tightest latency budget, per period", yaxis={"title": "% of budget"})
    return fig
