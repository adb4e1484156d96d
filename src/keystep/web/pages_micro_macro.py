"""The micro → macro page: for one macro goal (`?macro=NAME`, default the first revenue goal), every micro
goal's lift on it, the micro goals worth tracking as leading indicators (with the reasons), and what each
is worth by the data next to the value the definitions give it. Per visitor by default (`?unit=`): the
path to a purchase often spans sessions."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from keystep.analysis.micro_macro import default_macro, run_micro_macro
from keystep.analysis.suggest import compute_suggestions
from keystep.conversions.definitions import Kind, Unit
from keystep.report import charts
from keystep.web.app import Dashboard, Viewer
from keystep.web.handlers import (
    BREAKDOWN_CHOICES,
    breakdown_of,
    csv_or_page,
    has_events,
    no_events,
    no_goals,
    problem,
    query_of,
    unit_of,
)
from keystep.web.tables import effects_table, micro_macro_segments_table, suggestions_table, values_table
from keystep.web.views import Filters, chart

TITLE = "Micro → macro"


async def micro_macro(request: Request, dashboard: Dashboard, viewer: Viewer, filters: Filters) -> Response:
    definitions = dashboard.definitions()
    if not has_events(dashboard, filters):
        return no_events(dashboard, request, viewer, filters, TITLE)
    if not definitions.goals:
        return no_goals(dashboard, request, viewer, filters, TITLE)
    context: dict[str, Any] = {"title": TITLE, "definitions": definitions, "units": list(Unit),
                               "breakdowns": BREAKDOWN_CHOICES, "breakdown": breakdown_of(filters, None)}
    if not definitions.micro or not definitions.macro:
        missing = "micro" if not definitions.micro else "macro"
        return dashboard.render("micro_macro.html", request, viewer, filters, missing=missing, **context)
    try:
        name = filters.get("macro") or default_macro(definitions).name
        macro = definitions.goal(name)
        if macro.kind is not Kind.MACRO:
            raise ValueError(f"{name!r} is a micro goal; pick a macro goal")
        query = query_of(dashboard, filters).with_(unit=unit_of(filters, Unit.VISITOR), breakdown=context["breakdown"])
    except (ValueError, KeyError) as exc:
        return problem(dashboard, request, viewer, filters, TITLE, str(exc.args[0] if exc.args else exc))

    def run() -> dict[str, Any]:
        result = run_micro_macro(dashboard.backend(), definitions, query, macro=name)
        suggestions = compute_suggestions(result)
        tables = [effects_table(result), suggestions_table(suggestions), values_table(result, definitions)]
        if result.segments:
            tables.append(micro_macro_segments_table(result))
        return {"result": result, "suggestions": suggestions, "tables": tables,
                "charts": [chart("lift", charts.lift_chart(result))]}

    context.update(await run_in_threadpool(run))
    context["macro"] = macro
    return csv_or_page(request, context["tables"], lambda: dashboard.render(
        "micro_macro.html", request, viewer, filters, **context))
