"""The HTML report: one self-contained file (plotly.js embedded, no network) of the overview.

Pure: an `Overview` in, a string out. Every text that came from the store or the definitions file is
escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

import plotly.io
import plotly.offline

from keystep.analysis.conversions import ConversionReport
from keystep.analysis.funnels import FunnelResult
from keystep.analysis.micro_macro import MicroMacroResult
from keystep.analysis.overview import Overview
from keystep.analysis.suggest import SuggestResult
from keystep.analysis.time_to_convert import TimeToConvertResult
from keystep.display import duration, interval, number, p_value, percent
from keystep.report import charts

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1.5rem; color: #111827; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #e5e7eb; padding-bottom: .3rem; }
.meta { color: #6b7280; } .note { color: #6b7280; font-size: .9rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .9rem; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #e5e7eb; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f9fafb; } .group td { background: #f3f4f6; font-weight: 600; text-align: left; }
.lower { color: #b91c1c; font-weight: 600; } .higher { color: #15803d; font-weight: 600; }
"""


def table(header: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if i < len(classes) and classes[i] else ""
        if len(row) == 1:
            body.append(f'<tr class="group"><td colspan="{len(header)}">{escape(row[0])}</td></tr>')
        else:
            body.append(f"<tr{cls}>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure(fig: charts.Figure) -> str:
    return str(plotly.io.to_html(fig, full_html=False, include_plotlyjs=False, config={"displaylogo": False},
                                 validate=False))


def _conversions(report: ConversionReport) -> str:
    rows: list[list[str]] = []
    for group in report.groups:
        rows.append([group.title])
        for g in group.goals:
            s, unit = g.total, f" {g.currency}" if g.currency else ""
            rows.append([
                g.title, f"{s.eligible_units:,}", f"{s.converted_units:,}", percent(s.rate.estimate, 2),
                interval(s.rate, 2), number(s.actions_per_unit),
                "–" if s.value is None else number(s.value) + unit,
                "–" if s.value_per_conversion is None else number(s.value_per_conversion) + unit,
            ])
    header = ("Goal", f"Eligible {report.unit.value}s", "Converted", "Rate", "95% interval", "Actions / unit",
              "Value", "Value / conversion")
    return table(header, rows)


def _funnel(result: FunnelResult) -> str:
    steps = [[f"{s.step}. {s.name}", f"{s.units:,}", percent(s.conversion_from_start),
              percent(s.conversion_from_previous) if s.step > 1 else "",
              f"{s.drop_off:,} ({percent(s.drop_off_rate)})" if s.step > 1 else "",
              duration(s.median_seconds), duration(s.p90_seconds)] for s in result.total.steps]
    out = [table(("Step", "Units", "From start", "From previous", "Drop-off", "Median time", "p90 time"), steps)]
    if result.segments:
        rows, classes = [], []
        for seg in result.segments:
            t = seg.table
            flag = f"{seg.direction.value} than the rest" if seg.significant else ""
            rows.append([seg.segment, f"{t.entered:,}", f"{t.converted:,}", percent(t.rate.estimate),
                         interval(t.rate), percent(seg.rest_rate.estimate), p_value(seg.adjusted_p), flag])
            classes.append(seg.direction.value if seg.significant else "")
        out.append(table((str(result.breakdown), "Entered", "Converted", "Rate", "95% interval", "Rest",
                           "adj. p (Holm)", "vs rest"), rows, classes))
    return "".join(out)


def _time_to_convert(result: TimeToConvertResult) -> str:
    g = result.overall
    quantiles = [[f"{int(100 * q.q)}% converted by", duration(q.seconds),
                  f"{duration(q.lower)} – {duration(q.upper)}" if q.seconds is not None else "–"]
                 for q in g.quantiles]
    counts = (f"{g.started:,} {result.unit.value}s started the clock; {g.converted:,} converted, "
              f"{g.censored:,} not yet (censored); {g.macro_first:,} converted before any micro step.")
    milestones = table(("within", *(duration(m.seconds) for m in g.milestones)),
                        [["converted", *(percent(m.converted) for m in g.milestones)]])
    out = f"<p>{escape(counts)}</p>" + table(("Quantile", "Time", "95% interval"), quantiles) + milestones
    if result.segments:
        rows, classes = [], []
        for seg in result.segments:
            median = next((q.seconds for q in seg.quantiles if q.q == 0.5), None)
            pace = seg.direction.value if seg.significant and seg.direction else ""
            rows.append([str(seg.segment), f"{seg.started:,}", f"{seg.converted:,}", duration(median),
                         "–" if seg.expected is None else number(seg.expected), p_value(seg.adjusted_p),
                         f"{pace} than the rest" if pace else ""])
            classes.append({"faster": "higher", "slower": "lower"}.get(pace, ""))
        out += table((str(result.breakdown), "Started", "Converted", "Median time", "Expected at the rest's pace",
                      "adj. p (Holm, log-rank)", "vs rest"), rows, classes)
    return out


def _micro_macro(result: MicroMacroResult) -> str:
    rows = []
    for e in result.overall.micro:
        lift = "–" if e.lift.ratio is None else f"{e.lift.ratio:.2f}× ({number(e.lift.lower)}–{number(e.lift.upper)})"
        rows.append([e.label, percent(e.frequency), percent(e.did.rate), percent(e.did_not.rate), lift,
                     percent(e.preceded_share), duration(e.lag_median_s), number(e.value_per_unit)])
    currency = f" ({result.currency})" if result.currency else ""
    out = table(("Micro goal", "Did it", f"{result.macro_label} rate with", "without", "Lift (95%)",
                 "Precedes", "Median lag", f"Value / unit{currency}"), rows)
    if result.segments:
        seg_rows, classes = [], []
        for seg in result.segments:
            flag = seg.direction.value if seg.significant and seg.direction else ""
            seg_rows.append([str(seg.segment), f"{seg.units:,}", f"{seg.macro_units:,}", percent(seg.macro_rate.rate),
                             percent(seg.rest_rate.rate if seg.rest_rate else None), p_value(seg.adjusted_p),
                             f"{flag} than the rest" if flag else ""])
            classes.append(flag)
        out += table((str(result.breakdown), "Units", f"With {result.macro_label}", "Rate", "Rest",
                      "adj. p (Holm)", "vs rest"), seg_rows, classes)
    return out


def _suggestions(result: SuggestResult) -> str:
    rows = [[f"{s.rank}. {s.label}", number(s.score, 3), s.reason] for s in result.recommended]
    return table(("Recommended micro conversion", "Score", "Why"), rows) + (
        f'<p class="note">{escape(result.rule)}</p>')


def render_report(overview: Overview, *, title: str, generated: datetime) -> str:
    """The whole report as one HTML document."""
    c = overview.conversions
    span = f"{c.start or 'first event'} to {c.end or 'last event'} ({c.timezone})"
    sections = [
        ("Macro and micro conversions", figure(charts.rates_chart(c)) + _conversions(c)),
        ("Trend", figure(charts.trend_chart(overview.trend))),
    ]
    if overview.funnel is not None:
        f = overview.funnel
        body = figure(charts.funnel_chart(f))
        if f.segments:
            body += figure(charts.funnel_segments_chart(f))
        sections.append((f"Funnel: {f.funnel}", body + _funnel(f)))
    if overview.time_to_convert is not None:
        t = overview.time_to_convert
        sections.append(("Time to convert", figure(charts.time_to_convert_chart(t)) + _time_to_convert(t)))
    if overview.micro_macro is not None:
        m = overview.micro_macro
        sections.append((f"Micro → macro: what leads to {m.macro_label}",
                         figure(charts.lift_chart(m)) + _micro_macro(m)))
    if overview.suggestions is not None:
        sections.append(("Micro conversions worth tracking", _suggestions(overview.suggestions)))
    return page(title, span, sections, generated)


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str]], generated: datetime) -> str:
    """One self-contained document: plotly.js inline, sections of (heading, HTML)."""
    body = "".join(f"<section><h2>{escape(name)}</h2>{content}</section>" for name, content in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title><style>{_STYLE}</style>"
        f"<script>{plotly.offline.get_plotlyjs()}</script></head><body>"
        f"<h1>{escape(title)}</h1><p class=\"meta\">{escape(subtitle)} · generated {escape(generated.isoformat())}"
        f" by keystep</p>{body}</body></html>\n"
    )
