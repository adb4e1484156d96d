"""The charts' plotly JSON: the time-to-convert curve drawn at a bounded number of its own points (the
analysis keeps every point), and figures written as plain data that plotly accepts as they are."""

from __future__ import annotations

import json
import random
from datetime import date

import plotly.graph_objects as go

from keystep.analysis.time_to_convert import CurvePoint
from keystep.report.charts import dashed_line, figure_json, plot, sample_curve


def step_curve(n: int, seed: int) -> list[CurvePoint]:
    rng = random.Random(seed)
    seconds, converted, out = 0.0, 0.0, []
    for _ in range(n):
        seconds += rng.expovariate(1 / 60) ** 1.5 + 1  # times spread over decades, as real ones
        converted = min(1.0, converted + rng.random() / n)
        out.append(CurvePoint(seconds=seconds, at_risk=n, events=1, censored=0, converted=converted,
                              lower=converted * 0.9, upper=min(1.0, converted * 1.1)))
    return out


def test_a_long_curve_is_drawn_at_a_bounded_number_of_its_own_points() -> None:
    for seed, n in ((1, 7000), (2, 301), (3, 2500)):
        curve = step_curve(n, seed)
        drawn = sample_curve(curve, 300)
        assert len(drawn) <= 302
        assert drawn[0] == curve[0] and drawn[-1] == curve[-1]
        assert all(p in curve for p in drawn)  # exact values, at times the curve changes
        assert [p.seconds for p in drawn] == sorted({p.seconds for p in drawn})
        # the step shape: every change of the curve is drawn, or a later one within one step of a grid of
        # 300 log-spaced times over the curve's span
        step = (curve[-1].seconds / curve[0].seconds) ** (1 / 299) * (1 + 1e-12)
        for c in curve:
            assert any(c.seconds <= d.seconds <= c.seconds * step for d in drawn), (seed, c.seconds)


def test_a_short_curve_is_drawn_whole() -> None:
    curve = step_curve(300, 4)
    assert sample_curve(curve, 300) == curve
    assert sample_curve([], 300) == []


def test_figures_as_plain_data_are_valid_plotly_figures() -> None:
    fig = plot([{"type": "scatter", "x": [date(2026, 3, 1), date(2026, 3, 2)], "y": [1.5, None], "mode": "lines",
                 "line": {"shape": "hv", "color": "#000"}}], "A title", shapes=[dashed_line(x=1), dashed_line(y=0)],
               yaxis={"title": {"text": "%"}})
    spec = json.loads(figure_json(fig))
    assert spec["data"][0]["x"] == ["2026-03-01", "2026-03-02"]
    assert spec["layout"]["title"] == {"text": "A title"}
    assert spec["layout"]["template"]["layout"]  # plotly.js needs the template itself, not its name
    checked = go.Figure(spec)  # raises on any property plotly does not know
    assert checked.layout.shapes[0].x0 == 1 and checked.layout.shapes[1].yref == "y"
