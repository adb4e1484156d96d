"""The funnels page: a funnel of the definitions (`?funnel=NAME`, overrides `window`, `mode`, `unit`) or one
from the URL (`?steps=a,b,c`): units per step with drop-off and the time between steps, each segment of a
breakdown (`?breakdown=`, default device) with the ones that differ from the rest marked, and the
time-to-convert curve from the funnel's first step to its last."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from keystep.analysis.funnels import run_funnel
from keystep.analysis.time_to_convert import TimeToConvertResult, run_time_to_convert
from keystep.backends.base import Backend
from keystep.conversions.definitions import (
    Category,
    Definitions,
    Funnel,
    FunnelMode,
    Goal,
    Kind,
    MacroType,
    Unit,
    adhoc_funnel,
    format_duration,
    parse_duration,
)
from keystep.query import Query
from keystep.report import charts
from keystep.sql.funnels import MAX_STEPS
from keystep.web.app import Dashboard, Viewer
from keystep.web.handlers import (
    BREAKDOWN_CHOICES,
    breakdown_of,
    csv_or_page,
    has_events,
    no_events,
    problem,
    query_of,
    run_both,
)
from keystep.web.tables import (
    funnel_segments_table,
    funnel_steps_table,
    time_to_convert_segments_table,
    time_to_convert_table,
)
from keystep.web.views import Chart, Filters, Table, chart

TITLE = "Funnels"
DEFAULT_BREAKDOWN = "device_type"


def choose_funnel(definitions: Definitions, filters: Filters) -> Funnel | None:
    """The funnel the URL asks for (None: the definitions have none and the URL gives no steps).
    Raises ValueError (or KeyError for an unknown name) with what is wrong."""
    window = parse_duration(filters.get("window")) if filters.get("window") else None
    if window is not None and window.total_seconds() <= 0:
        raise ValueError("window: expected a positive duration")
    mode = FunnelMode(filters.get("mode")) if filters.get("mode") else None
    unit = Unit(filters.get("unit")) if filters.get("unit") else None
    if filters.get("steps"):
        names = [s.strip() for s in filters.get("steps").split(",")]
        if any(not s for s in names) or not 2 <= len(names) <= MAX_STEPS:
            raise ValueError(f"steps: expected 2 to {MAX_STEPS} comma-separated goal or event names")
        return adhoc_funnel(definitions, names, window or timedelta(days=1), mode or FunnelMode.ORDERED,
                            unit or Unit.VISITOR, name="custom")
    if filters.get("funnel"):
        chosen = definitions.funnel(filters.get("funnel"))
    elif definitions.funnels:
        chosen = definitions.funnels[0]
    else:
        return None
    return replace(chosen, window=window or chosen.window, mode=mode or chosen.mode, unit=unit or chosen.unit)


def time_to_convert(backend: Backend, definitions: Definitions, funnel: Funnel, query: Query) -> TimeToConvertResult:
    """From the funnel's first step to its last, per visitor (or user): across sessions and without the
    funnel's window, the other half of "how long does it take"."""
    first, last = funnel.steps[0], funnel.steps[-1]
    titles = {g.name: g.title for g in definitions.goals}
    ends = replace(definitions, goals=(
        Goal("first_step", Kind.MICRO, first.match, category=Category.PROCESS_MILESTONE,
             label=titles.get(first.name, first.name)),
        Goal("last_step", Kind.MACRO, last.match, type=MacroType.REVENUE, label=titles.get(last.name, last.name)),
    ))
    unit = Unit.USER if funnel.unit is Unit.USER else Unit.VISITOR
    return run_time_to_convert(backend, ends, query.with_(unit=unit), from_goal="first_step", to_goal="last_step")


async def funnels(request: Request, dashboard: Dashboard, viewer: Viewer, filters: Filters) -> Response:
    definitions = dashboard.definitions()
    if not has_events(dashboard, filters):
        return no_events(dashboard, request, viewer, filters, TITLE)
    context: dict[str, Any] = {"title": TITLE, "definitions": definitions, "breakdowns": BREAKDOWN_CHOICES,
                               "breakdown": breakdown_of(filters, DEFAULT_BREAKDOWN), "modes": list(FunnelMode),
                               "units": list(Unit)}
    try:
        chosen = choose_funnel(definitions, filters)
        query = query_of(dashboard, filters).with_(breakdown=context["breakdown"])
    except (ValueError, KeyError) as exc:
        return problem(dashboard, request, viewer, filters, TITLE, str(exc.args[0] if exc.args else exc))
    if chosen is None:
        return dashboard.render("funnels.html", request, viewer, filters, no_funnels=True, **context)

    backend = dashboard.backend()
    result, ttc = await run_both(lambda: run_funnel(backend, chosen, query.with_(unit=chosen.unit)),
                                 lambda: time_to_convert(backend, definitions, chosen, query))
    tables: list[Table] = [funnel_steps_table(result)]
    shown: list[Chart] = [chart("funnel", charts.funnel_chart(result))]
    if result.segments:
        tables.append(funnel_segments_table(result))
        shown.append(chart("segments", charts.funnel_segments_chart(result)))
    tables.append(time_to_convert_table(ttc))
    if ttc.segments:
        tables.append(time_to_convert_segments_table(ttc))
    if any(p.seconds > 0 for p in ttc.overall.curve):
        shown.append(chart("time_to_convert", charts.time_to_convert_chart(ttc)))
    context.update({"result": result, "tables": tables, "charts": shown, "ttc": ttc,
                    "window": format_duration(chosen.window)})
    return csv_or_page(request, context["tables"], lambda: dashboard.render(
        "funnels.html", request, viewer, filters, **context))
