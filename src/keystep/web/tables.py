"""The tables of the conversions, funnels and micro → macro pages: analysis results in, `Table`s out.

Pure, like `keystep.web.views`: every cell is a display string (the templates escape it, the CSV export
neutralizes formulas), numbers formatted by `keystep.display` as everywhere else.
"""

from __future__ import annotations

from keystep.analysis.conversions import ConversionReport, GoalConversions
from keystep.analysis.funnels import FunnelResult
from keystep.analysis.micro_macro import MicroMacroResult
from keystep.analysis.segments import Direction, Pace
from keystep.analysis.suggest import SuggestResult
from keystep.analysis.time_to_convert import TimeToConvertResult
from keystep.conversions.definitions import Condition, Definitions, Goal, Matcher, Value
from keystep.display import DASH, duration, interval, number, p_value, percent
from keystep.web.views import Table, stats_row


def _mark(significant: bool, direction: Direction | Pace | None) -> str:
    """The row's mark (its CSS class): `higher` for a segment above the rest (or converting faster),
    `lower` below (or slower), else none."""
    if not significant or direction is None:
        return ""
    return {Direction.HIGHER: "higher", Pace.FASTER: "higher", Direction.LOWER: "lower", Pace.SLOWER: "lower"}.get(
        direction, "")


def _flag(mark: str, higher: str = "higher", lower: str = "lower") -> str:
    return {"higher": f"▲ {higher}", "lower": f"▼ {lower}"}.get(mark, "")


# -- definitions, summarised -------------------------------------------------------------------------


def condition_text(c: Condition) -> str:
    """`plan in [pro, team]`, `amount > 5`: a condition as the file's `field op value` form."""
    def scalar(v: str | float) -> str:
        return f"{v:g}" if isinstance(v, float) else v

    value = f"[{', '.join(scalar(v) for v in c.value)}]" if isinstance(c.value, tuple) else scalar(c.value)
    return f"{c.field} {c.op.value} {value}"


def matcher_text(m: Matcher) -> str:
    parts = []
    if m.events:
        parts.append("event " + " or ".join(m.events))
    if m.path:
        parts.append(f"path {m.path}")
    if m.url:
        parts.append(f"url {m.url}")
    parts.extend(f"where {condition_text(c)}" for c in m.conditions)
    return ", ".join(parts)


def value_text(value: Value) -> str:
    unit = f" {value.currency}" if value.currency else ""
    return f"{value.fixed:g}{unit} each" if value.fixed is not None else f"from {value.source}{unit}"


def definition_summary(goal: Goal) -> str:
    """What the goal counts, in one line: its matchers (any of them), who is eligible, what it is worth."""
    text = " | ".join(matcher_text(m) for m in goal.match)
    if goal.eligible:
        text += "; eligible: " + " | ".join(matcher_text(m) for m in goal.eligible)
    if goal.value is not None:
        text += "; value " + value_text(goal.value)
    return text


# -- conversions -------------------------------------------------------------------------------------


def goals_table(report: ConversionReport, previous: ConversionReport | None, definitions: Definitions) -> Table:
    """Every goal, grouped by macro type and micro category: its definition, rate, interval, value and the
    change of its rate against the previous period."""
    before = {g.goal: g.total for g in previous.goals} if previous else {}
    by_name = {g.name: g for g in definitions.goals}
    rows: list[tuple[str, ...]] = []
    groups = []
    for group in report.groups:
        groups.append(len(rows))
        rows.append((group.title,))
        for g in group.goals:
            title, *stats = stats_row(g.title, g.total, g.currency, before.get(g.goal))
            summary = definition_summary(by_name[g.goal]) if g.goal in by_name else ""
            rows.append((title, summary, *stats))
    unit = report.unit.value
    headers = ("Goal", "Definition", f"Eligible {unit}s", "Converted", "Rate", "95% interval", "Actions / unit",
               "Value", "vs previous period")
    return Table("conversions", "Macro and micro conversions", headers, tuple(rows), tuple(groups))


def segment_rates_table(report: ConversionReport) -> Table:
    """Per goal, the rate of every segment of the breakdown against the rest (Holm-adjusted p-values)."""
    rows: list[tuple[str, ...]] = []
    groups: list[int] = []
    marks: list[str] = []
    goal: GoalConversions
    for goal in report.goals:
        groups.append(len(rows))
        rows.append((goal.title,))
        marks.append("")
        for seg in goal.segments:
            mark = _mark(seg.significant, seg.direction)
            s = seg.stats
            rows.append((seg.segment, f"{s.eligible_units:,}", f"{s.converted_units:,}", percent(s.rate.estimate, 2),
                         interval(s.rate, 2), percent(seg.rest_rate.estimate, 2), p_value(seg.adjusted_p),
                         _flag(mark)))
            marks.append(mark)
    headers = (str(report.breakdown), f"Eligible {report.unit.value}s", "Converted", "Rate", "95% interval",
               "Rate of the rest", "Adjusted p", "Differs (Holm 5%)")
    return Table("segments", f"Rates by {report.breakdown}", headers, tuple(rows), tuple(groups), tuple(marks))


# -- funnels -----------------------------------------------------------------------------------------


def funnel_steps_table(result: FunnelResult) -> Table:
    rows = tuple(
        (str(s.step), s.name, f"{s.units:,}", percent(s.conversion_from_start), percent(s.conversion_from_previous),
         f"{s.drop_off:,}", percent(s.drop_off_rate), duration(s.median_seconds), duration(s.p90_seconds))
        for s in result.total.steps
    )
    headers = ("#", "Step", f"{result.unit.value.capitalize()}s", "From the start", "From the previous step",
               "Drop-off", "Drop-off rate", "Median time from the previous step", "90th percentile")
    return Table("steps", f"Funnel {result.funnel}: steps", headers, rows)


def funnel_segments_table(result: FunnelResult) -> Table:
    marks = tuple(_mark(s.significant, s.direction) for s in result.segments)
    rows = tuple(
        (s.segment, f"{s.table.entered:,}", f"{s.table.converted:,}", percent(s.table.rate.estimate, 2),
         interval(s.table.rate, 2), percent(s.rest_rate.estimate, 2), p_value(s.adjusted_p), _flag(mark))
        for s, mark in zip(result.segments, marks, strict=True)
    )
    headers = (str(result.breakdown), "Entered", "Converted", "Conversion", "95% interval", "Conversion of the rest",
               "Adjusted p", "Differs (Holm 5%)")
    return Table("segments", f"Funnel conversion by {result.breakdown}", headers, rows, marks=marks)


def time_to_convert_table(result: TimeToConvertResult) -> Table:
    o = result.overall
    unit = result.unit.value
    rows: list[tuple[str, ...]] = [
        (f"{unit.capitalize()}s that started the clock ({result.start_label})", f"{o.started:,}"),
        (f"converted ({result.end_label})", f"{o.converted:,}"),
        ("not converted yet (censored)", f"{o.censored:,}"),
    ]
    for q in o.quantiles:
        bounds = f" ({duration(q.lower)} – {duration(q.upper)})" if q.lower is not None or q.upper is not None else ""
        rows.append((f"{q.q:.0%} converted by", duration(q.seconds) + bounds))
    rows.extend((f"converted within {duration(m.seconds)}", percent(m.converted, 2)) for m in o.milestones)
    return Table("time_to_convert", "Time to convert (Kaplan–Meier)", ("Measure", "Value"), tuple(rows))


def time_to_convert_segments_table(result: TimeToConvertResult) -> Table:
    """Per segment: its median time to convert and whether its curve differs from the rest's (log-rank,
    Holm-adjusted)."""
    marks = tuple(_mark(g.significant, g.direction) for g in result.segments)
    rows = tuple(
        (str(g.segment), f"{g.started:,}", f"{g.converted:,}",
         duration(next((q.seconds for q in g.quantiles if q.q == 0.5), None)),
         DASH if g.expected is None else number(g.expected), p_value(g.adjusted_p), _flag(mark, "faster", "slower"))
        for g, mark in zip(result.segments, marks, strict=True)
    )
    headers = (str(result.breakdown), "Started", "Converted", "Median time", "Conversions expected at the rest's pace",
               "Adjusted p", "Differs (Holm 5%)")
    return Table("time_to_convert_segments", f"Time to convert by {result.breakdown}", headers, rows, marks=marks)


# -- micro → macro -----------------------------------------------------------------------------------


def micro_macro_segments_table(result: MicroMacroResult) -> Table:
    """Per segment: its macro rate against the rest's (two-proportion test, Holm-adjusted)."""
    marks = tuple(_mark(g.significant, g.direction) for g in result.segments)
    rows = tuple(
        (str(g.segment), f"{g.units:,}", f"{g.macro_units:,}", percent(g.macro_rate.rate, 2),
         percent(g.rest_rate.rate if g.rest_rate else None, 2), p_value(g.adjusted_p), _flag(mark))
        for g, mark in zip(result.segments, marks, strict=True)
    )
    headers = (str(result.breakdown), f"{result.unit.value.capitalize()}s", f"With {result.macro_label}",
               f"{result.macro_label} rate", "Rate of the rest", "Adjusted p", "Differs (Holm 5%)")
    return Table("segments", f"{result.macro_label} rate by {result.breakdown}", headers, rows, marks=marks)


def effects_table(result: MicroMacroResult) -> Table:
    """Every micro goal against the macro: macro rate with and without it, lift, how often it precedes."""
    unit = result.unit.value
    rows, marks = [], []
    for e in result.overall.micro:
        lift = e.lift
        mark = "higher" if lift.lower is not None and lift.lower > 1 else \
            "lower" if lift.upper is not None and lift.upper < 1 else ""
        bounds = DASH if lift.lower is None or lift.upper is None else f"{lift.lower:.2f}–{lift.upper:.2f}×"
        rows.append((e.label, e.category or "", f"{e.did.units:,}", percent(e.frequency), percent(e.did.rate, 2),
                     percent(e.did_not.rate, 2), DASH if lift.ratio is None else f"{lift.ratio:.2f}×", bounds,
                     p_value(lift.p_value), percent(e.preceded_share), duration(e.lag_median_s)))
        marks.append(mark)
    headers = ("Micro conversion", "Category", f"{unit.capitalize()}s that did it", f"Share of {unit}s",
               f"{result.macro_label} rate with it", "without it", "Lift", "95% interval", "p",
               f"Precedes (share of {result.macro_label})", "Median lead time")
    return Table("effects", f"Micro conversions and {result.macro_label}", headers, tuple(rows), marks=tuple(marks))


def suggestions_table(result: SuggestResult) -> Table:
    ranked = (*result.recommended, *result.others)
    rows = tuple((str(s.rank), s.label, "yes" if s.recommended else "no", number(s.score, 3), s.reason)
                 for s in ranked)
    marks = tuple("higher" if s.recommended and s.significant else "" for s in ranked)
    return Table("suggestions", f"Micro conversions worth tracking as leading indicators of {result.macro_label}",
                 ("Rank", "Micro conversion", "Recommended", "Score", "Reason"), rows, marks=marks)


def values_table(result: MicroMacroResult, definitions: Definitions) -> Table:
    """What each micro conversion is worth by the data (the macro value that follows it) next to the value
    the definitions file gives it."""
    unit, currency = result.unit.value, f" {result.currency}" if result.currency else ""
    configured = {g.name: g.value for g in definitions.goals}
    rows = []
    for e in result.overall.micro:
        inc = e.incremental_value
        bounds = DASH if inc.lower is None or inc.upper is None else \
            f"{number(inc.lower)} – {number(inc.upper)}{currency}"
        value = configured.get(e.goal)
        rows.append((e.label, _money(e.value_per_unit, currency), _money(e.value_per_unit_without, currency),
                     _money(inc.difference, currency), bounds, _money(e.value_per_macro_unit, currency),
                     value_text(value) if value is not None else DASH))
    headers = ("Micro conversion", f"{result.macro_label} value per {unit} that did it", "per one that did not",
               "Incremental value", "95% interval", "per converting unit", "Value in the definitions")
    return Table("values", f"Data-driven values of the micro conversions (observational, per {unit})", headers,
                 tuple(rows))


def _money(value: float | None, currency: str) -> str:
    return DASH if value is None else number(value) + currency
