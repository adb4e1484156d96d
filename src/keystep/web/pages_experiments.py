"""The experiments pages: the list (variants, primary metric, exposed units, sample-ratio check) and one
experiment: the sample-ratio warning before anything else, every metric's effect with its interval (as a
chart and a table with p-values or the chance to win, per the experiment's method), the cumulative effect
of the primary metric, the surrogate predictions of the macro effect (labelled as predictions) and the
plan that compares how soon micro and macro metrics can decide (`?effect=0.05`)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from keystep.analysis.experiments import run_experiment
from keystep.analysis.planning import run_plan
from keystep.report.experiments import cumulative_chart, interval_chart
from keystep.web.app import Dashboard, Viewer
from keystep.web.experiment_tables import (
    comparisons_table,
    experiments_table,
    plan_table,
    srm_text,
    surrogates_table,
    units_text,
)
from keystep.web.handlers import csv_or_page, has_events, no_events, problem, query_of, run_both
from keystep.web.views import Chart, Filters, Table, chart

TITLE = "Experiments"
DEFAULT_EFFECT = 0.05


async def experiments(request: Request, dashboard: Dashboard, viewer: Viewer, filters: Filters) -> Response:
    definitions = dashboard.definitions()
    if not definitions.experiments:
        return dashboard.render("experiments.html", request, viewer, filters, title=TITLE, no_experiments=True)
    if not has_events(dashboard, filters):
        return no_events(dashboard, request, viewer, filters, TITLE)
    query = query_of(dashboard, filters)

    def run() -> dict[str, Any]:
        backend = dashboard.backend()
        rows = [(e, run_experiment(backend, definitions, e.key, query.with_(unit=e.unit)))
                for e in definitions.experiments]
        return {"rows": rows, "tables": [experiments_table(rows)]}

    data = await run_in_threadpool(run)
    return csv_or_page(request, data["tables"], lambda: dashboard.render(
        "experiments.html", request, viewer, filters, title=TITLE, **data))


async def experiment(request: Request, dashboard: Dashboard, viewer: Viewer, filters: Filters) -> Response:
    definitions = dashboard.definitions()
    key = str(request.path_params.get("key", ""))
    try:
        chosen = definitions.experiment(key)
    except KeyError as exc:
        return problem(dashboard, request, viewer, filters, TITLE, str(exc.args[0]), status=404)
    title = f"Experiment: {chosen.title}"
    if not has_events(dashboard, filters):
        return no_events(dashboard, request, viewer, filters, title)
    try:
        effect = float(filters.get("effect") or DEFAULT_EFFECT)
        if not effect > 0:
            raise ValueError
    except ValueError:
        return problem(dashboard, request, viewer, filters, title,
                       f"effect: expected a positive relative effect such as 0.05, got {filters.get('effect')!r}")
    query = query_of(dashboard, filters).with_(unit=chosen.unit)

    backend = dashboard.backend()
    result, plan = await run_both(lambda: run_experiment(backend, definitions, key, query),
                                  lambda: run_plan(backend, definitions, key, query, effect=effect))
    tables: list[Table] = [comparisons_table(result)]
    if result.surrogates:
        tables.append(surrogates_table(result))
    tables.append(plan_table(plan))
    shown: list[Chart] = []
    exposed = any(result.units)
    if exposed:
        shown.append(chart("intervals", interval_chart(result)))
    if exposed and any(points for _, points in result.cumulative):
        shown.append(chart("cumulative", cumulative_chart(result)))
    data: dict[str, Any] = {"result": result, "plan": plan, "tables": tables, "charts": shown, "exposed": exposed,
                            "units_text": units_text(result), "srm_text": srm_text(result)}
    return csv_or_page(request, data["tables"], lambda: dashboard.render(
        "experiment.html", request, viewer, filters, title=title, experiment=chosen, effect=effect, **data))
