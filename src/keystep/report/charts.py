"""Plotly figures of the analyses' results: pure, results in, figures out (no I/O, no database)."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from keystep.analysis.conversions import ConversionReport, GoalConversions
from keystep.analysis.funnels import FunnelResult, FunnelTable
from keystep.analysis.micro_macro import MicroMacroResult
from keystep.analysis.time_to_convert import TimeToConvertResult
from keystep.conversions.definitions import Kind

MACRO_COLOR = "#c2410c"
MICRO_COLOR = "#2563eb"
SECONDARY_COLOR = "#0d9488"
SEGMENT_COLORS = ("#2563eb", "#c2410c", "#0d9488", "#7c3aed", "#ca8a04", "#db2777", "#4b5563")
LAYOUT = {
    "template": "plotly_white",
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    "font": {"family": "system-ui, sans-serif", "size": 13},
    "height": 420,
}


def _color(goal: GoalConversions) -> str:
    if goal.kind is Kind.MACRO:
        return MACRO_COLOR
    return MICRO_COLOR if goal.group.endswith("process_milestone") else SECONDARY_COLOR


def _pct(values: Sequence[float | None]) -> list[float | None]:
    return [None if v is None else 100 * v for v in values]


def rates_chart(report: ConversionReport) -> go.Figure:
    """Every goal's rate with its Wilson 95% interval; macro goals orange, milestones blue, secondary teal."""
    goals = [g for g in report.goals if g.total.rate.estimate is not None]
    estimate = [g.total.rate.estimate for g in goals]
    fig = go.Figure(go.Bar(
        x=[g.title for g in goals],
        y=_pct(estimate),
        marker_color=[_color(g) for g in goals],
        error_y={
            "type": "data",
            "symmetric": False,
            "array": [100 * ((g.total.rate.upper or 0) - (g.total.rate.estimate or 0)) for g in goals],
            "arrayminus": [100 * ((g.total.rate.estimate or 0) - (g.total.rate.lower or 0)) for g in goals],
        },
        hovertemplate="%{x}: %{y:.2f}%<extra></extra>",
    ))
    fig.update_layout(title=f"Conversion rate per {report.unit.value} (95% interval)", yaxis_title="%", **LAYOUT)
    return fig


TREND_MIN_UNITS = 30  # a period's rate from fewer eligible units is left out of the trend (noise)


def trend_chart(report: ConversionReport) -> go.Figure:
    """Each goal's rate per period, macro goals solid, micro goals dotted; periods with fewer than
    `TREND_MIN_UNITS` eligible units are gaps."""
    fig = go.Figure()
    for g in report.goals:
        fig.add_trace(go.Scatter(
            x=[p.period for p in g.periods],
            y=_pct([p.stats.rate.estimate if p.stats.eligible_units >= TREND_MIN_UNITS else None
                    for p in g.periods]),
            name=g.title,
            mode="lines",
            line={"color": _color(g), "dash": "solid" if g.kind is Kind.MACRO else "dot"},
            hovertemplate=f"{g.title}: " + "%{y:.2f}% on %{x}<extra></extra>",
        ))
    period = report.granularity.value if report.granularity else "period"
    fig.update_layout(title=f"Conversion rate per {period} (a {report.unit.value} counts on its first day)",
                      yaxis_title="%", **LAYOUT)
    return fig


def _funnel_trace(table: FunnelTable, name: str, color: str) -> go.Funnel:
    return go.Funnel(
        y=[s.name for s in table.steps],
        x=[s.units for s in table.steps],
        name=name,
        marker={"color": color},
        textinfo="value+percent initial",
    )


def funnel_chart(result: FunnelResult) -> go.Figure:
    """Units per step, over all units."""
    fig = go.Figure(_funnel_trace(result.total, "all", MICRO_COLOR))
    fig.update_layout(title=f"Funnel {result.funnel} ({result.mode.value}, per {result.unit.value})", **LAYOUT)
    return fig


def funnel_segments_chart(result: FunnelResult) -> go.Figure:
    """Conversion from the previous step, per segment: where each segment drops off."""
    fig = go.Figure()
    for i, seg in enumerate(result.segments):
        steps = seg.table.steps[1:]
        fig.add_trace(go.Bar(
            x=[f"{s.step - 1}→{s.step} {s.name}" for s in steps],
            y=_pct([s.conversion_from_previous for s in steps]),
            name=seg.segment + (" ▼" if seg.significant and seg.direction.value == "lower" else
                                " ▲" if seg.significant else ""),
            marker_color=SEGMENT_COLORS[i % len(SEGMENT_COLORS)],
            hovertemplate=f"{seg.segment}: " + "%{y:.1f}%<extra></extra>",
        ))
    fig.update_layout(title=f"Step conversion by {result.breakdown} (▲▼: differs from the rest, Holm 5%)",
                      yaxis_title="% from the previous step", barmode="group", **LAYOUT)
    return fig


def lift_chart(result: MicroMacroResult) -> go.Figure:
    """Each micro goal's lift on the macro rate (with ÷ without), with its 95% interval, on a log axis."""
    effects = sorted((e for e in result.overall.micro if e.lift.ratio), key=lambda e: e.lift.ratio or 0)
    fig = go.Figure(go.Bar(
        y=[e.label for e in effects],
        x=[e.lift.ratio for e in effects],
        orientation="h",
        marker_color=[MICRO_COLOR if e.category == "process_milestone" else SECONDARY_COLOR for e in effects],
        error_x={
            "type": "data",
            "symmetric": False,
            "array": [(e.lift.upper or e.lift.ratio or 0) - (e.lift.ratio or 0) for e in effects],
            "arrayminus": [(e.lift.ratio or 0) - (e.lift.lower or e.lift.ratio or 0) for e in effects],
        },
        hovertemplate="%{y}: %{x:.2f}×<extra></extra>",
    ))
    fig.add_vline(x=1, line_dash="dash", line_color="#6b7280")
    fig.update_xaxes(type="log", title=f"{result.macro_label} rate with ÷ without (log scale)")
    fig.update_layout(title=f"Which micro conversions lead to {result.macro_label} (per {result.unit.value})",
                      **LAYOUT)
    return fig


def time_to_convert_chart(result: TimeToConvertResult) -> go.Figure:
    """Share converted over time since the first micro conversion (1 − Kaplan–Meier), with its band."""
    curve = [p for p in result.overall.curve if p.seconds > 0]  # a log axis cannot show t = 0
    minutes = [p.seconds / 60 for p in curve]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=minutes, y=_pct([p.upper for p in curve]), mode="lines", line={"width": 0},
                             line_shape="hv", showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=minutes, y=_pct([p.lower for p in curve]), mode="lines", line={"width": 0},
                             line_shape="hv", fill="tonexty", fillcolor="rgba(194,65,12,0.15)",
                             name="95% interval", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=minutes, y=_pct([p.converted for p in curve]), mode="lines", line_shape="hv",
                             line={"color": MACRO_COLOR}, name="converted",
                             hovertemplate="%{y:.2f}% within %{x:.1f} min<extra></extra>"))
    fig.update_xaxes(type="log", title=f"minutes since {result.start_label} (log scale)")
    fig.update_layout(title=f"Time to convert: {result.start_label} → {result.end_label} "
                            f"(per {result.unit.value}; not yet converted = censored)",
                      yaxis_title="% converted", **LAYOUT)
    return fig
