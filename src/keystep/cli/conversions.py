"""`keystep conversions`: the rate of every goal, grouped into macro types and micro categories."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from keystep.analysis.conversions import ConversionReport, ConversionStats, GoalConversions, run_conversions
from keystep.cli.common import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_DB_PATH,
    BreakdownOption,
    ByOption,
    ConfigOption,
    DbOption,
    EndOption,
    JsonOption,
    ProjectOption,
    StartOption,
    TzOption,
    UnitOption,
    build_query,
    console,
    emit_json,
    fail,
    open_definitions,
    run_on_store,
    segment_flag,
)
from keystep.display import interval, number, p_value, percent

GoalOption = Annotated[
    list[str] | None, typer.Option("--goal", "-g", help="Only this goal (repeat for several; default: all).")
]


def conversions(
    db: DbOption = DEFAULT_DB_PATH,
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    project: ProjectOption = None,
    start: StartOption = None,
    end: EndOption = None,
    tz: TzOption = None,
    unit: UnitOption = None,
    breakdown: BreakdownOption = None,
    by: ByOption = None,
    goal: GoalOption = None,
    as_json: JsonOption = False,
) -> None:
    """Conversion rate of every goal: units that converted ÷ eligible units, with a Wilson 95% interval.

    Eligible units are every unit with an event in the range, or the units matching the goal's
    `eligible` rule. Also shows actions per eligible unit and value (total, per converting unit).
    With --breakdown, segments whose rate differs from the rest of the units (two-proportion test,
    Holm-corrected across the goal's segments, 5%) are flagged. With --by, a unit counts in the day
    or week of its first event in the range (reporting timezone).
    """
    definitions = open_definitions(config)
    if not definitions.goals:
        fail(f"{config} defines no goals")
    query = build_query(definitions, project=project, start=start, end=end, tz=tz, unit=unit,
                        breakdown=breakdown, granularity=by)
    report = run_on_store(db, lambda store: run_conversions(store, definitions, query, goals=goal))
    if as_json:
        emit_json(report)
        return
    print_report(report)


# -- rich output ----------------------------------------------------------------------------------










def _stats_cells(stats: ConversionStats, currency: str | None) -> list[str]:
    unit = f" {currency}" if currency else ""
    return [
        f"{stats.eligible_units:,}",
        f"{stats.converted_units:,}",
        percent(stats.rate.estimate if stats.eligible_units else None, 2),
        interval(stats.rate, 2),
        number(stats.actions_per_unit),
        "–" if stats.value is None else f"{number(stats.value)}{unit}",
        "–" if stats.value_per_conversion is None else f"{number(stats.value_per_conversion)}{unit}",
    ]


def _table(title: str, first: str, breakdown: bool) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    table.add_column(first)
    for name in ("Eligible", "Converted", "Rate", "95% CI", "Actions/unit", "Value", "Value/conv."):
        table.add_column(name, justify="right")
    if breakdown:
        for name in ("p", "adj. p", "vs rest"):
            table.add_column(name, justify="right")
    return table


def _goal_rows(table: Table, goal: GoalConversions, breakdown: bool) -> None:
    extra = ["", "", ""] if breakdown else []
    table.add_row(Text(goal.title, style="bold"), *_stats_cells(goal.total, goal.currency), *extra)
    for seg in goal.segments:
        style = "bold" if seg.significant else "dim"
        table.add_row(Text(f"  {seg.segment}", style=style), *_stats_cells(seg.stats, goal.currency),
                      p_value(seg.p_value), p_value(seg.adjusted_p), segment_flag(seg.significant, seg.direction))


def print_report(report: ConversionReport) -> None:
    unit = report.unit.value
    span = f"{report.start or 'first event'} to {report.end or 'last event'} ({report.timezone})"
    console.print(f"[bold]Conversions[/] per {unit}, {span}"
                  + (f", by {report.breakdown}" if report.breakdown else ""), highlight=False)
    breakdown = report.breakdown is not None
    for group in report.groups:
        table = _table(group.title, "Goal", breakdown)
        for goal in group.goals:
            _goal_rows(table, goal, breakdown)
        console.print(table)
    if any(goal.total.value is not None for goal in report.goals):
        console.print(f"Value/conv. is the value per converting {unit}.", highlight=False)
    for goal in report.goals:
        for note in goal.notes:
            console.print(f"[yellow]note[/] {goal.title}: {note}", highlight=False)
    if breakdown:
        console.print(f"Segments flagged ▲/▼ differ from the rest of the units (two-proportion test, "
                      f"Holm-adjusted across each goal's segments, α = {report.alpha}).", highlight=False)
    if report.granularity is not None:
        for goal in report.goals:
            table = _table(f"{goal.title} by {report.granularity.value}", "Period", False)
            for period in goal.periods:
                table.add_row(period.period.isoformat(), *_stats_cells(period.stats, goal.currency))
            console.print(table)
        console.print(f"A {unit} counts in the {report.granularity.value} of its first event in the range.",
                      highlight=False)
