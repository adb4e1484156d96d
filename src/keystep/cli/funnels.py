"""`keystep funnel`: units per step, conversion, drop-off and time between steps."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from keystep.cli.common import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_DB_PATH,
    BreakdownOption,
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
    open_store,
    segment_flag,
)
from keystep.conversions.definitions import (
    Definitions,
    Funnel,
    FunnelMode,
    Unit,
    adhoc_funnel,
    format_duration,
    parse_duration,
)
from keystep.display import duration, interval, p_value, percent
from keystep.sql.funnels import MAX_STEPS

if TYPE_CHECKING:  # the analysis (and its statistics) is imported when a funnel is run, not with the CLI
    from keystep.analysis.funnels import FunnelResult, FunnelTable

DEFAULT_WINDOW = timedelta(days=1)

NameArgument = Annotated[
    str | None, typer.Argument(help="A funnel of the definitions file (or give --steps).", show_default=False)
]
StepsOption = Annotated[
    str | None,
    typer.Option("--steps", help="Comma-separated goal or event names, e.g. view_item,add_to_cart,purchase."),
]
WindowOption = Annotated[
    str | None,
    typer.Option("--window", help="Conversion window from the first step, e.g. 30m, 12h, 7d (default: 1d)."),
]
ModeOption = Annotated[
    FunnelMode | None,
    typer.Option("--mode", help="ordered (others may come between), strict (nothing between) or any_order."),
]


def funnel(
    name: NameArgument = None,
    steps: StepsOption = None,
    window: WindowOption = None,
    mode: ModeOption = None,
    db: DbOption = DEFAULT_DB_PATH,
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    project: ProjectOption = None,
    start: StartOption = None,
    end: EndOption = None,
    tz: TzOption = None,
    unit: UnitOption = None,
    breakdown: BreakdownOption = None,
    as_json: JsonOption = False,
) -> None:
    """Per step: units that reached it, conversion from the start and from the previous step, drop-off,
    and the median and 90th percentile time from the previous step.

    NAME picks a funnel of the definitions file; --window, --mode and --unit override its settings.
    Or give the steps on the command line with --steps (goal names, else event names).
    The window is absolute time from the unit's first step (inclusive); the range (--from/--to) is cut
    at midnights of the reporting timezone and only events in it count.
    ordered: steps in order with non-decreasing timestamps, other events may come between, one event
    may count for several steps (as ClickHouse's windowFunnel). strict: each step is the unit's very
    next event. any_order: step k is reached when steps 1..k were all done within one window.
    With --breakdown, segments whose overall conversion (last step ÷ first step) differs from the rest
    (two-proportion test, Holm-corrected across the segments, 5%) are flagged.
    """
    definitions = open_definitions(config) if (name is not None or config.exists()) else Definitions()
    chosen = _funnel(definitions, name, steps, window, mode, unit)
    query = build_query(
        definitions, project=project, start=start, end=end, tz=tz, unit=chosen.unit, breakdown=breakdown
    )
    from keystep.analysis.funnels import run_funnel

    store = open_store(db)
    try:
        result = run_funnel(store, chosen, query)
    finally:
        store.close()
    if as_json:
        emit_json(result)
        return
    print_result(result)


def _funnel(
    definitions: Definitions,
    name: str | None,
    steps: str | None,
    window: str | None,
    mode: FunnelMode | None,
    unit: Unit | None,
) -> Funnel:
    """The named funnel with the given overrides, or an ad-hoc one from --steps."""
    if (name is None) == (steps is None):
        fail("give either a funnel NAME from the definitions file or --steps a,b,c")
    duration: timedelta | None = None
    if window is not None:
        try:
            duration = parse_duration(window)
        except ValueError as exc:
            fail(f"--window: {exc}")
        if duration.total_seconds() <= 0:
            fail("--window: expected a positive duration")
    if name is not None:
        try:
            chosen = definitions.funnel(name)
        except KeyError as exc:
            fail(str(exc.args[0]) if exc.args else str(exc))
        return replace(
            chosen, window=duration or chosen.window, mode=mode or chosen.mode, unit=unit or chosen.unit
        )
    assert steps is not None
    names = [s.strip() for s in steps.split(",")]
    if any(not s for s in names) or not 2 <= len(names) <= MAX_STEPS:
        fail(f"--steps: expected 2 to {MAX_STEPS} comma-separated goal or event names, got {steps!r}")
    return adhoc_funnel(
        definitions,
        names,
        window=duration or DEFAULT_WINDOW,
        mode=mode or FunnelMode.ORDERED,
        unit=unit or Unit.VISITOR,
    )


# -- rich output ----------------------------------------------------------------------------------










def _steps_table(title: str, table: FunnelTable) -> Table:
    out = Table(title=title, title_justify="left", title_style="bold")
    out.add_column("#", justify="right")
    out.add_column("Step")
    for column in ("Units", "From start", "From previous", "Drop-off", "Median time", "p90 time"):
        out.add_column(column, justify="right")
    for step in table.steps:
        out.add_row(
            str(step.step),
            step.name,
            f"{step.units:,}",
            percent(step.conversion_from_start),
            percent(step.conversion_from_previous) if step.step > 1 else "",
            f"{step.drop_off:,} ({percent(step.drop_off_rate)})" if step.step > 1 else "",
            duration(step.median_seconds),
            duration(step.p90_seconds),
        )
    return out


def print_result(result: FunnelResult) -> None:
    span = f"{result.start or 'first event'} to {result.end or 'last event'} ({result.timezone})"
    console.print(
        f"[bold]Funnel {result.funnel}[/]: {' → '.join(result.steps)}; {result.mode.value}, "
        f"window {format_duration(result.window)}, per {result.unit.value}, {span}"
        + (f", by {result.breakdown}" if result.breakdown else ""),
        highlight=False,
    )
    total = result.total
    console.print(_steps_table("All units", total))
    console.print(
        f"Conversion {percent(total.rate.estimate if total.entered else None)} "
        f"(95% CI {interval(total.rate)}): {total.converted:,} of {total.entered:,} units "
        "that did the first step reached the last.",
        highlight=False,
    )
    if result.breakdown is None:
        return
    summary = Table(title=f"Conversion by {result.breakdown}", title_justify="left", title_style="bold")
    summary.add_column("Segment")
    for column in ("Entered", "Converted", "Rate", "95% CI", "Rest", "p", "adj. p", "vs rest"):
        summary.add_column(column, justify="right")
    for seg in result.segments:
        t = seg.table
        summary.add_row(
            Text(seg.segment, style="bold" if seg.significant else ""),
            f"{t.entered:,}",
            f"{t.converted:,}",
            percent(t.rate.estimate if t.entered else None),
            interval(t.rate),
            percent(seg.rest_rate.estimate if seg.rest_rate.n else None),
            p_value(seg.p_value),
            p_value(seg.adjusted_p),
            segment_flag(seg.significant, seg.direction),
        )
    console.print(summary)
    console.print(
        f"Segments flagged ▲/▼ convert differently from the rest of the units (two-proportion test, "
        f"Holm-adjusted across the segments, α = {result.alpha}).",
        highlight=False,
    )
    for seg in result.segments:
        console.print(_steps_table(f"{result.breakdown} = {seg.segment}", seg.table))
