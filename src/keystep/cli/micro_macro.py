"""`keystep time-to-convert`, `keystep micro-macro` and `keystep suggest`: how micro leads to macro."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from keystep.analysis.micro_macro import GroupRate, MicroMacroGroup, MicroMacroResult, run_micro_macro
from keystep.analysis.suggest import Suggestion, SuggestResult, compute_suggestions
from keystep.analysis.time_to_convert import TimeToConvertGroup, TimeToConvertResult, run_time_to_convert
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
    run_on_store,
    segment_flag,
)
from keystep.conversions.definitions import Unit
from keystep.display import duration, number, p_value, percent

MacroOption = Annotated[
    str | None,
    typer.Option(
        "--macro", help="The macro goal (default: the first macro goal of type revenue, else the first)."
    ),
]




def _rate(rate: GroupRate) -> str:
    if rate.rate is None:
        return "–"
    return f"{rate.rate:.1%} [{percent(rate.lower)}, {percent(rate.upper)}]"






# -- time to convert ------------------------------------------------------------------------------


def time_to_convert(
    db: DbOption = DEFAULT_DB_PATH,
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    project: ProjectOption = None,
    start: StartOption = None,
    end: EndOption = None,
    tz: TzOption = None,
    unit: UnitOption = None,
    breakdown: BreakdownOption = None,
    from_goal: Annotated[
        str | None,
        typer.Option("--from-goal", help="Start the clock at this goal (default: any micro goal)."),
    ] = None,
    to_goal: Annotated[
        str | None, typer.Option("--to-goal", help="Stop the clock at this goal (default: any macro goal).")
    ] = None,
    curve: Annotated[
        bool, typer.Option("--curve", help="Also print every step of the survival curve.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Time from a unit's first micro conversion to its first macro conversion (Kaplan–Meier).

    Units that have not converted are censored at the end of observation (the range's last event), not
    dropped. Units whose first macro came before any micro are left out of the curve and counted.
    With --breakdown, segments whose curve differs from the rest of the units' (log-rank test,
    Holm-corrected across the segments, 5%) are flagged as converting faster or slower.
    """
    definitions = open_definitions(config)
    query = build_query(
        definitions,
        project=project,
        start=start,
        end=end,
        tz=tz,
        unit=unit,
        default_unit=Unit.VISITOR,
        breakdown=breakdown,
    )
    result = run_on_store(db, lambda store: run_time_to_convert(store, definitions, query, from_goal=from_goal,
                                                                to_goal=to_goal))
    if as_json:
        emit_json(result)
        return
    print_time_to_convert(result, curve)


def print_time_to_convert(result: TimeToConvertResult, curve: bool) -> None:
    console.print(
        f"[bold]Time to convert[/] ({result.unit.value}s): {result.start_label} → {result.end_label}; "
        f"observation ends {result.observation_end or '–'}",
        highlight=False,
    )
    groups = [result.overall, *result.segments]
    table = Table(show_edge=False)
    if result.breakdown:
        table.add_column(result.breakdown)
    for name in (
        "started",
        "converted",
        "censored",
        "macro first",
        "macro only",
        "25% by",
        "median",
        "75% by",
        *(("expected", "p", "adj. p", "vs rest") if result.breakdown else ()),
    ):
        table.add_column(name, justify="right")
    for g in groups:
        cells = [str(g.started), str(g.converted), str(g.censored), str(g.macro_first), str(g.macro_only)]
        for q in g.quantiles:
            interval = f" [{duration(q.lower)}, {duration(q.upper)}]" if q.seconds is not None else ""
            cells.append(duration(q.seconds) + interval)
        if result.breakdown is None:
            table.add_row(*cells)
        elif g.segment is None:
            table.add_row("all", *cells)
        else:
            table.add_row(Text(g.segment, style="bold" if g.significant else ""), *cells, number(g.expected),
                          p_value(g.p_value), p_value(g.adjusted_p), segment_flag(g.significant, g.direction))
    console.print(table)
    if result.breakdown:
        console.print(
            "Segments flagged ▲/▼ convert faster/slower than the rest of the units (log-rank test of the "
            f"curves, Holm-adjusted across the segments, α = {result.alpha}); expected = the conversions a "
            "segment would have had at the rest's pace.",
            highlight=False,
        )
    _print_milestones(result.overall)
    if curve:
        steps = Table(title="Kaplan–Meier curve (share converted)", show_edge=False)
        for name in ("time", "at risk", "converted", "censored", "share converted", "95% interval"):
            steps.add_column(name, justify="right")
        for p in result.overall.curve:
            steps.add_row(
                duration(p.seconds),
                str(p.at_risk),
                str(p.events),
                str(p.censored),
                percent(p.converted),
                f"[{percent(p.lower)}, {percent(p.upper)}]",
            )
        console.print(steps)


def _print_milestones(group: TimeToConvertGroup) -> None:
    table = Table(title="Converted within", show_edge=False)
    for m in group.milestones:
        table.add_column(duration(m.seconds), justify="right")
    table.add_row(*(percent(m.converted) for m in group.milestones))
    console.print(table)


# -- micro → macro --------------------------------------------------------------------------------


def micro_macro(
    db: DbOption = DEFAULT_DB_PATH,
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    project: ProjectOption = None,
    start: StartOption = None,
    end: EndOption = None,
    tz: TzOption = None,
    unit: UnitOption = None,
    breakdown: BreakdownOption = None,
    macro: MacroOption = None,
    as_json: JsonOption = False,
) -> None:
    """For each micro goal: macro rate with and without it, lift, share of macros it precedes, lag, value.

    A unit counts as having done a micro when it did it before (or at) its first macro, or without any
    macro; a micro done only after the macro gets no credit.
    With --breakdown, segments whose macro rate differs from the rest of the units (two-proportion test,
    Holm-corrected across the segments, 5%) are flagged.
    """
    result = _run_micro_macro(db, config, project, start, end, tz, unit, breakdown, macro)
    if as_json:
        emit_json(result)
        return
    print_micro_macro(result)


def print_micro_macro(result: MicroMacroResult) -> None:
    console.print(
        f"[bold]Micro → macro[/]: {result.macro_label} ({result.unit.value}s; "
        f"{result.overall.macro_units} of {result.overall.units} converted, "
        f"{percent(result.overall.macro_rate.rate)})",
        highlight=False,
    )
    _print_group(result, result.overall)
    if result.breakdown is None:
        return
    summary = Table(title=f"{result.macro_label} rate by {result.breakdown}", title_justify="left",
                    title_style="bold", show_edge=False)
    summary.add_column("Segment")
    for name in ("Units", "Macro units", "Rate [95% CI]", "Rest", "p", "adj. p", "vs rest"):
        summary.add_column(name, justify="right")
    for g in result.segments:
        summary.add_row(
            Text(str(g.segment), style="bold" if g.significant else ""),
            f"{g.units:,}",
            f"{g.macro_units:,}",
            _rate(g.macro_rate),
            percent(g.rest_rate.rate if g.rest_rate else None),
            p_value(g.p_value),
            p_value(g.adjusted_p),
            segment_flag(g.significant, g.direction),
        )
    console.print(summary)
    console.print(
        f"Segments flagged ▲/▼ convert to {result.macro_label} more/less often than the rest of the units "
        f"(two-proportion test, Holm-adjusted across the segments, α = {result.alpha}).",
        highlight=False,
    )
    for group in result.segments:
        _print_group(result, group)


def _run_micro_macro(
    db: Path,
    config: Path,
    project: str | None,
    start: str | None,
    end: str | None,
    tz: str | None,
    unit: Unit | None,
    breakdown: str | None,
    macro: str | None,
) -> MicroMacroResult:
    definitions = open_definitions(config)
    query = build_query(
        definitions,
        project=project,
        start=start,
        end=end,
        tz=tz,
        unit=unit,
        default_unit=Unit.VISITOR,
        breakdown=breakdown,
    )
    if not definitions.micro:
        fail(f"{definitions.source}: no micro goal is defined")
    return run_on_store(db, lambda store: run_micro_macro(store, definitions, query, macro=macro))


def _print_group(result: MicroMacroResult, group: MicroMacroGroup) -> None:
    title = None if group.segment is None else f"{result.breakdown} = {group.segment} ({group.units} units)"
    table = Table(title=title, show_edge=False)
    for name in (
        "micro goal",
        "did",
        "rate with",
        "rate without",
        "lift",
        "p",
        "precedes",
        "lag (median)",
        "value / unit",
        "incremental value",
    ):
        table.add_column(name, justify="left" if name == "micro goal" else "right")
    for e in group.micro:
        lift = (
            "–"
            if e.lift.ratio is None
            else (f"{e.lift.ratio:.2f}× [{number(e.lift.lower)}, {number(e.lift.upper)}]")
        )
        inc = e.incremental_value
        incremental = (
            "–"
            if inc.difference is None
            else f"{inc.difference:,.2f}"
            + (
                f" [{inc.lower:,.2f}, {inc.upper:,.2f}]"
                if inc.lower is not None and inc.upper is not None
                else ""
            )
        )
        table.add_row(
            e.label,
            f"{e.did.units} ({percent(e.frequency)})",
            _rate(e.did),
            _rate(e.did_not),
            lift,
            number(e.lift.p_value, 3),
            percent(e.preceded_share),
            duration(e.lag_median_s),
            number(e.value_per_unit),
            incremental,
        )
    console.print(table)


# -- suggest --------------------------------------------------------------------------------------


def suggest(
    db: DbOption = DEFAULT_DB_PATH,
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    project: ProjectOption = None,
    start: StartOption = None,
    end: EndOption = None,
    tz: TzOption = None,
    unit: UnitOption = None,
    macro: MacroOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recommend the micro conversions most worth tracking as leading indicators of the macro (5 to 10)."""
    result = compute_suggestions(_run_micro_macro(db, config, project, start, end, tz, unit, None, macro))
    if as_json:
        emit_json(result)
        return
    print_suggestions(result)


def print_suggestions(result: SuggestResult) -> None:
    console.print(
        f"[bold]Micro conversions worth tracking[/] as leading indicators of {result.macro_label}",
        highlight=False,
    )
    table = Table(show_edge=False)
    for name in ("#", "micro goal", "score", "why"):
        table.add_column(name, justify="right" if name in ("#", "score") else "left")

    def row(s: Suggestion) -> None:
        table.add_row(str(s.rank), s.label, number(s.score, 3), s.reason)

    for s in result.recommended:
        row(s)
    console.print(table)
    if result.others:
        console.print(
            "not recommended: " + ", ".join(f"{s.label} ({number(s.score, 3)})" for s in result.others),
            highlight=False,
        )
    console.print(f"[dim]{result.rule}[/]", highlight=False)
