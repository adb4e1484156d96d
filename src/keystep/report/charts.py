"""Plotly figures of the analyses' results: pure, results in, figures out (no I/O, no database).

A figure is its plotly JSON as plain data (`Figure`: `{"data": [...], "layout": {...}}`), written out
directly: building `plotly.graph_objects` figures validates every property and costs tens of milliseconds
per page, more than the figures' JSON. `plotly.io` takes these dicts as they are (the HTML report) and the
dashboard sends them as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from functools import cache
from typing import Any

import plotly.io as pio

from keystep.analysis.conversions import ConversionReport, GoalConversions
from keystep.analysis.funnels import FunnelResult, FunnelTable
from keystep.analysis.micro_macro import MicroMacroResult
from keystep.analysis.time_to_convert import CurvePoint, TimeToConvertResult
from keystep.conversions.definitions import Kind

Figure = dict[str, Any]

MACRO_COLOR = "#c2410c"
MICRO_COLOR = "#2563eb"
SECONDARY_COLOR = "#0d9488"
SEGMENT_COLORS = ("#2563eb", "#c2410c", "#0d9488", "#7c3aed", "#ca8a04", "#db2777", "#4b5563")
TEMPLATE = "plotly_white"
LAYOUT = {
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    "font": {"family": "system-ui, sans-serif", "size": 13},
    "height": 420,
}
CURVE_POINTS = 300  # the time-to-convert chart draws its curve at most at this many times


@cache
def _template() -> dict[str, Any]:
    """The plotly template as plotly.js wants it (an object; it knows no template names)."""
    return dict(pio.templates[TEMPLATE].to_plotly_json())


def plot(data: Sequence[dict[str, Any]], title: str, **layout: Any) -> Figure:
    """A figure with the common layout, the template and a title."""
    return {"data": list(data),
            "layout": {"template": _template(), **LAYOUT, "title": {"text": title}, **layout}}


def figure_json(fig: Figure) -> str:
    """The figure's JSON (dates as ISO text)."""
    return json.dumps(fig, default=_iso, separators=(",", ":"))


def _iso(value: object) -> str:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def axis(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title}, **extra}


def dashed_line(*, x: float | None = None, y: float | None = None) -> dict[str, Any]:
    """A dashed grey line across the plot at `x` (vertical) or `y` (horizontal)."""
    line = {"line": {"color": "#6b7280", "dash": "dash"}, "type": "line"}
    if x is not None:
        return {**line, "x0": x, "x1": x, "xref": "x", "y0": 0, "y1": 1, "yref": "y domain"}
    return {**line, "x0": 0, "x1": 1, "xref": "x domain", "y0": y, "y1": y, "yref": "y"}


def _color(goal: GoalConversions) -> str:
    if goal.kind is Kind.MACRO:
        return MACRO_COLOR
    return MICRO_COLOR if goal.group.endswith("process_milestone") else SECONDARY_COLOR


def _pct(values: Sequence[float | None]) -> list[float | None]:
    return [None if v is None else 100 * v for v in values]


def rates_chart(report: ConversionReport) -> Figure:
    """Every goal's rate with its Wilson 95% interval; macro goals orange, milestones blue, secondary teal."""
    goals = [g for g in report.goals if g.total.rate.estimate is not None]
    estimate = [g.total.rate.estimate for g in goals]
    bar = {
        "type": "bar",
        "x": [g.title for g in goals],
        "y": _pct(estimate),
        "marker": {"color": [_color(g) for g in goals]},
        "error_y": {
            "type": "data",
            "symmetric": False,
            "array": [100 * ((g.total.rate.upper or 0) - (g.total.rate.estimate or 0)) for g in goals],
            "arrayminus": [100 * ((g.total.rate.estimate or 0) - (g.total.rate.lower or 0)) for g in goals],
        },
        "hovertemplate": "%{x}: %{y:.2f}%<extra></extra>",
    }
    return plot([bar], f"Conversion rate per {report.unit.value} (95% interval)", yaxis=axis("%"))


TREND_MIN_UNITS = 30  # a period's rate from fewer eligible units is left out of the trend (noise)


def trend_chart(report: ConversionReport) -> Figure:
    """Each goal's rate per period, macro goals solid, micro goals dotted; periods with fewer than
    `TREND_MIN_UNITS` eligible units are gaps."""
    lines = [{
        "type": "scatter",
        "x": [p.period for p in g.periods],
        "y": _pct([p.stats.rate.estimate if p.stats.eligible_units >= TREND_MIN_UNITS else None
                   for p in g.periods]),
        "name": g.title,
        "mode": "lines",
        "line": {"color": _color(g), "dash": "solid" if g.kind is Kind.MACRO else "dot"},
        "hovertemplate": f"{g.title}: " + "%{y:.2f}% on %{x}<extra></extra>",
    } for g in report.goals]
    period = report.granularity.value if report.granularity else "period"
    return plot(lines, f"Conversion rate per {period} (a {report.unit.value} counts on its first day)",
                  yaxis=axis("%"))


def _funnel_trace(table: FunnelTable, name: str, color: str) -> dict[str, Any]:
    return {
        "type": "funnel",
        "y": [s.name for s in table.steps],
        "x": [s.units for s in table.steps],
        "name": name,
        "marker": {"color": color},
        "textinfo": "value+percent initial",
    }


def funnel_chart(result: FunnelResult) -> Figure:
    """Units per step, over all units."""
    return plot([_funnel_trace(result.total, "all", MICRO_COLOR)],
                  f"Funnel {result.funnel} ({result.mode.value}, per {result.unit.value})")


def funnel_segments_chart(result: FunnelResult) -> Figure:
    """Conversion from the previous step, per segment: where each segment drops off."""
    bars = []
    for i, seg in enumerate(result.segments):
        steps = seg.table.steps[1:]
        bars.append({
            "type": "bar",
            "x": [f"{s.step - 1}→{s.step} {s.name}" for s in steps],
            "y": _pct([s.conversion_from_previous for s in steps]),
            "name": seg.segment + (" ▼" if seg.significant and seg.direction.value == "lower" else
                                   " ▲" if seg.significant else ""),
            "marker": {"color": SEGMENT_COLORS[i % len(SEGMENT_COLORS)]},
            "hovertemplate": f"{seg.segment}: " + "%{y:.1f}%<extra></extra>",
        })
    return plot(bars, f"Step conversion by {result.breakdown} (▲▼: differs from the rest, Holm 5%)",
                  yaxis=axis("% from the previous step"), barmode="group")


def lift_chart(result: MicroMacroResult) -> Figure:
    """Each micro goal's lift on the macro rate (with ÷ without), with its 95% interval, on a log axis."""
    effects = sorted((e for e in result.overall.micro if e.lift.ratio), key=lambda e: e.lift.ratio or 0)
    bar = {
        "type": "bar",
        "y": [e.label for e in effects],
        "x": [e.lift.ratio for e in effects],
        "orientation": "h",
        "marker": {"color": [MICRO_COLOR if e.category == "process_milestone" else SECONDARY_COLOR
                             for e in effects]},
        "error_x": {
            "type": "data",
            "symmetric": False,
            "array": [(e.lift.upper or e.lift.ratio or 0) - (e.lift.ratio or 0) for e in effects],
            "arrayminus": [(e.lift.ratio or 0) - (e.lift.lower or e.lift.ratio or 0) for e in effects],
        },
        "hovertemplate": "%{y}: %{x:.2f}×<extra></extra>",
    }
    return plot([bar], f"Which micro conversions lead to {result.macro_label} (per {result.unit.value})",
                  shapes=[dashed_line(x=1)],
                  xaxis=axis(f"{result.macro_label} rate with ÷ without (log scale)", type="log"))


def sample_curve(curve: Sequence[CurvePoint], points: int = CURVE_POINTS) -> list[CurvePoint]:
    """At most about `points` of a step curve, for drawing: the first and last point, and on a grid of
    `points` log-spaced times (the chart's axis is logarithmic) the last point at or before each grid
    time, so every value drawn is the curve's exact value at a time it changes; between two drawn points
    the chart holds the earlier value (a step)."""
    if len(curve) <= points:
        return list(curve)
    lo, hi = curve[0].seconds, curve[-1].seconds
    if lo <= 0 or hi <= lo:
        return [curve[0], curve[-1]]
    ratio = (hi / lo) ** (1 / (points - 1))
    kept, i = [curve[0]], 0
    for k in range(1, points):
        edge = lo * ratio**k if k < points - 1 else hi
        while i + 1 < len(curve) and curve[i + 1].seconds <= edge:
            i += 1
        if curve[i] is not kept[-1]:
            kept.append(curve[i])
    if kept[-1] is not curve[-1]:
        kept.append(curve[-1])
    return kept


def time_to_convert_chart(result: TimeToConvertResult) -> Figure:
    """Share converted over time since the first micro conversion (1 − Kaplan–Meier), with its band; the
    curve sampled for drawing (`sample_curve`)."""
    curve = sample_curve([p for p in result.overall.curve if p.seconds > 0])  # a log axis cannot show t = 0
    minutes = [p.seconds / 60 for p in curve]
    band = {"type": "scatter", "x": minutes, "mode": "lines", "line": {"width": 0, "shape": "hv"},
            "hoverinfo": "skip"}
    traces: list[dict[str, Any]] = [
        {**band, "y": _pct([p.upper for p in curve]), "showlegend": False},
        {**band, "y": _pct([p.lower for p in curve]), "fill": "tonexty", "fillcolor": "rgba(194,65,12,0.15)",
         "name": "95% interval"},
        {"type": "scatter", "x": minutes, "y": _pct([p.converted for p in curve]), "mode": "lines",
         "line": {"color": MACRO_COLOR, "shape": "hv"}, "name": "converted",
         "hovertemplate": "%{y:.2f}% within %{x:.1f} min<extra></extra>"},
    ]
    return plot(traces, f"Time to convert: {result.start_label} → {result.end_label} "
                          f"(per {result.unit.value}; not yet converted = censored)",
                  xaxis=axis(f"minutes since {result.start_label} (log scale)", type="log"),
                  yaxis=axis("% converted"))
