"""The dashboard's pages (GET, read-only: a share link may open them) and actions (POST, logged in, CSRF).

Each page handler takes the request, the dashboard, the viewer and the URL's filters, runs the analyses
it shows in worker threads (two independent ones at once, `run_both`) and renders its template. Empty
states say what to do next. This module holds the registries (`PAGES`, `ACTIONS`), the overview and the
settings; the other pages live in `pages_conversions` (with the definitions editor), `pages_funnels`,
`pages_micro_macro` and `pages_experiments`, their tables in `tables` and `experiment_tables`, what they
share in `handlers`.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.routing import compile_path

from keystep.analysis.funnels import run_funnel
from keystep.analysis.overview import run_range_conversions
from keystep.collector import keys
from keystep.conversions.definitions import Unit
from keystep.report import charts
from keystep.web import auth, pages_conversions, pages_experiments, pages_funnels, pages_micro_macro
from keystep.web.app import Dashboard, Viewer
from keystep.web.handlers import (
    Action,
    Handler,
    csv_or_page,
    has_events,
    query_of,
    run_both,
)
from keystep.web.views import Filters, chart, conversion_table

__all__ = ["ACTIONS", "PAGES", "Action", "Handler", "csv_or_page", "find_page", "has_events", "query_of"]


async def overview(request: Request, dashboard: Dashboard, viewer: Viewer, filters: Filters) -> Response:
    definitions = dashboard.definitions()
    if not has_events(dashboard, filters):
        return dashboard.render("empty.html", request, viewer, filters, title="Overview")
    if not definitions.goals:
        return dashboard.render("empty.html", request, viewer, filters, title="Overview", no_goals=True)
    query = query_of(dashboard, filters)

    backend = dashboard.backend()
    funnel = definitions.funnels[0] if definitions.funnels else None
    # the checkout funnel as a whole: its segments are the funnels page's
    rates, result = await run_both(
        lambda: run_range_conversions(backend, definitions, query,
                                      previous=filters.previous() if filters.compare else None),
        lambda: run_funnel(backend, funnel, query.with_(unit=Unit.SESSION, breakdown=None)) if funnel else None)
    shown = [chart("rates", charts.rates_chart(rates.conversions)), chart("trend", charts.trend_chart(rates.trend))]
    if result is not None:
        shown.append(chart("funnel", charts.funnel_chart(result)))
    data: dict[str, Any] = {"tables": [conversion_table(rates.conversions, rates.previous)], "charts": shown}
    return csv_or_page(request, data["tables"], lambda: dashboard.render(
        "overview.html", request, viewer, filters, title="Overview", **data))


async def settings(request: Request, dashboard: Dashboard, viewer: Viewer, filters: Filters,
                   new_key: str | None = None) -> Response:
    if viewer.shared:
        return PlainTextResponse("Settings are not shared.", status_code=403)

    def run() -> dict[str, Any]:
        backend = dashboard.backend()
        return {"project_list": keys.list_projects(backend), "keys": keys.list_keys(backend)}

    data = await run_in_threadpool(run)
    host = request.headers.get("host", "localhost:8000")
    scheme = "https" if request.url.scheme == "https" else "http"
    return dashboard.render("settings.html", request, viewer, filters, title="Settings", base_url=f"{scheme}://{host}",
                            new_key=new_key, **data)


async def create_key(request: Request, dashboard: Dashboard, viewer: Viewer, form: dict[str, str]) -> Response:
    try:
        kind = keys.KeyKind(form.get("kind", "read"))
        key = await run_in_threadpool(keys.create_key, dashboard.backend(), form.get("project", ""), kind)
    except (ValueError, keys.ProjectError) as exc:
        return PlainTextResponse(str(exc), status_code=400)
    # a read key is shown once, in this response: never in a URL, never stored in clear
    return await settings(request, dashboard, viewer, dashboard.filters(request), new_key=key.secret)


async def create_project(request: Request, dashboard: Dashboard, viewer: Viewer, form: dict[str, str]) -> Response:
    try:
        await run_in_threadpool(keys.create_project, dashboard.backend(), form.get("name", ""))
    except keys.ProjectError as exc:
        return PlainTextResponse(str(exc), status_code=400)
    return RedirectResponse("/settings", status_code=303)


async def revoke_key(request: Request, dashboard: Dashboard, viewer: Viewer, form: dict[str, str]) -> Response:
    try:
        await run_in_threadpool(keys.revoke_key, dashboard.backend(), form.get("key_id", ""))
    except keys.ProjectError as exc:
        return PlainTextResponse(str(exc), status_code=400)
    return RedirectResponse("/settings", status_code=303)


async def share(request: Request, dashboard: Dashboard, viewer: Viewer, form: dict[str, str]) -> Response:
    try:
        token = await run_in_threadpool(auth.create_share, dashboard.backend(), form.get("path", "/"),
                                        viewer.username or "")
    except auth.AuthError as exc:
        return PlainTextResponse(str(exc), status_code=400)
    return RedirectResponse(f"/shared?token={token}", status_code=303)


async def shared_link(request: Request, dashboard: Dashboard, viewer: Viewer, filters: Filters) -> Response:
    token = request.query_params.get("token", "")
    return dashboard.render("shared.html", request, viewer, filters, title="Share link", token=token)


PAGES: dict[str, Handler] = {
    "/": overview,
    "/conversions": pages_conversions.conversions,
    "/funnels": pages_funnels.funnels,
    "/micro-macro": pages_micro_macro.micro_macro,
    "/experiments": pages_experiments.experiments,
    "/experiments/{key}": pages_experiments.experiment,
    "/settings": settings,
    "/shared": shared_link,
}
ACTIONS: dict[str, Action] = {
    "/conversions/goals": pages_conversions.save_goal,
    "/conversions/goals/delete": pages_conversions.delete_goal,
    "/conversions/funnels": pages_conversions.save_funnel,
    "/conversions/funnels/delete": pages_conversions.delete_funnel,
    "/settings/keys": create_key,
    "/settings/projects": create_project,
    "/settings/keys/revoke": revoke_key,
    "/share": share,
}


def find_page(path: str) -> tuple[Handler, dict[str, str]] | None:
    """The page a path opens (for share links), with its path parameters: `/experiments/green_button`
    opens `/experiments/{key}` with key `green_button`."""
    if path in PAGES:
        return PAGES[path], {}
    for template, handler in PAGES.items():
        match = compile_path(template)[0].match(path) if "{" in template else None
        if match:
            return handler, match.groupdict()
    return None
