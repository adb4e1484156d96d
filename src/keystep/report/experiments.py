"""An experiment as a self-contained HTML file: the sample-ratio check, an interval plot per metric and
the cumulative effect of the primary metric over time. Pure apart from `write_experiment_report`."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from pathlib import Path

from keystep.analysis.experiments import ExperimentResult
from keystep.report.charts import SEGMENT_COLORS, Figure, dashed_line, plot
from keystep.report.html import figure, page, table


def interval_chart(result: ExperimentResult) -> Figure:
    """Every metric's relative effect per treatment with its interval; 0 marked."""
    traces = []
    for k, variant in enumerate(result.variants[1:]):
        rows = [(m.label, c) for m in result.metrics for c in m.comparisons if c.variant == variant]
        traces.append({
            "type": "scatter",
            "x": [100 * (c.effect or 0) for _, c in rows], "y": [label for label, _ in rows], "mode": "markers",
            "name": variant, "marker": {"size": 11, "color": SEGMENT_COLORS[k % len(SEGMENT_COLORS)]},
            "error_x": {"type": "data", "symmetric": False,
                        "array": [100 * ((c.upper or 0) - (c.effect or 0)) for _, c in rows],
                        "arrayminus": [100 * ((c.effect or 0) - (c.lower or 0)) for _, c in rows]},
        })
    return plot(traces, "Relative effect vs control, with its interval (%)", shapes=[dashed_line(x=0)])


def cumulative_chart(result: ExperimentResult) -> Figure:
    traces = []
    for k, (variant, points) in enumerate(result.cumulative):
        days = [p.day for p in points]
        band = {"type": "scatter", "x": days, "mode": "lines", "line": {"width": 0}, "showlegend": False,
                "hoverinfo": "skip"}
        traces.append({**band, "y": [None if p.upper is None else 100 * p.upper for p in points]})
        traces.append({**band, "y": [None if p.lower is None else 100 * p.lower for p in points],
                       "fill": "tonexty", "fillcolor": "rgba(37,99,235,0.12)"})
        traces.append({"type": "scatter", "x": days, "mode": "lines+markers", "name": variant,
                       "y": [None if p.effect is None else 100 * p.effect for p in points],
                       "line": {"color": SEGMENT_COLORS[k % len(SEGMENT_COLORS)]}})
    return plot(traces, "Cumulative effect on the primary metric by day of exposure (%)",
                shapes=[dashed_line(y=0)])


def render_experiment(result: ExperimentResult, *, generated: datetime) -> str:
    srm = result.srm
    counts = ", ".join(f"{v}: {n:,}" for v, n in zip(result.variants, result.units, strict=True))
    banner = (f'<p class="lower">Sample ratio mismatch (p = {srm.p_value:.2g}): {escape(counts)}. Do not trust the '
              "effects until the assignment or the tracking is fixed.</p>" if srm.mismatch else
              f"<p>{escape(counts)}; sample ratio p = {srm.p_value:.3g}</p>")
    rows = [[m.label, m.role.value, c.variant, _pct(c.effect), f"{_pct(c.lower)} … {_pct(c.upper)}",
             "" if c.p_value is None else f"{c.p_value:.4f}", "" if c.chance_to_win is None else _pct(c.chance_to_win)]
            for m in result.metrics for c in m.comparisons]
    notes = "".join(f'<p class="note">{escape(w)}</p>' for w in result.warnings)
    body = (banner + table(("Metric", "Role", "Variant", "Effect", "Interval", "p", "Chance to win"), rows) + notes
            + figure(interval_chart(result))
            + (figure(cumulative_chart(result)) if result.cumulative else ""))
    return page(f"Experiment: {result.label}", f"{result.method.value} analysis", [("Result", body)], generated)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def write_experiment_report(result: ExperimentResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_experiment(result, generated=datetime.now(UTC)), encoding="utf-8")
    return path
