"""What every page module shares: the handler types, the query of a view, CSV export, error pages.

A page handler takes the request, the dashboard, the viewer and the URL's filters; it runs its analyses
in worker threads (`run_in_threadpool`; two independent ones at once with `run_both`) and renders its
template. An action (a form post) takes the request, the dashboard, the viewer and the posted form, after
`keystep.web.app` checked session and CSRF.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from keystep.conversions.definitions import Unit
from keystep.query import Query
from keystep.web.app import Dashboard, Viewer
from keystep.web.views import Filters, Table, find_table, table_csv

Handler = Callable[[Request, Dashboard, Viewer, Filters], Awaitable[Response]]
Action = Callable[[Request, Dashboard, Viewer, dict[str, str]], Awaitable[Response]]
A = TypeVar("A")
B = TypeVar("B")

# The breakdown selector (every name of `keystep.query.BREAKDOWNS`): the ones people split by first;
# `prop:NAME` (a property) is given in the URL.
BREAKDOWN_CHOICES: tuple[tuple[str, str], ...] = (
    ("device_type", "device"), ("channel", "channel"), ("utm_source", "source"), ("utm_medium", "medium"),
    ("utm_campaign", "campaign"), ("visitor_type", "new vs returning"), ("landing_page", "landing page"),
    ("browser", "browser"), ("os", "operating system"), ("country", "country"), ("referrer", "referrer"),
    ("utm_term", "term"), ("utm_content", "content"),
)


async def run_both(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """Two independent analyses at once, each in a worker thread: the store runs their queries in
    parallel (a page's wait is the longer of the two, not their sum, when a core is free)."""
    a, b = await asyncio.gather(run_in_threadpool(first), run_in_threadpool(second))
    return a, b


def query_of(dashboard: Dashboard, filters: Filters) -> Query:
    """The analyses' query for the view: project, range and the definitions' timezone and session timeout."""
    d = dashboard.definitions()
    return Query(project=filters.project, start=filters.start, end=filters.end, timezone=d.timezone,
                 session_timeout=d.session_timeout)


def has_events(dashboard: Dashboard, filters: Filters) -> bool:
    """The project has events (the range defaults to its last days with events, so without any it is empty)."""
    return filters.end is not None


def unit_of(filters: Filters, default: Unit) -> Unit:
    """`?unit=visitor|session|user`, else the page's default; an unknown unit raises ValueError."""
    text = filters.get("unit")
    return Unit(text) if text else default


def csv_or_page(request: Request, tables: list[Table], render: Callable[[], Response]) -> Response:
    """`?export=KEY` answers the table KEY as CSV (formula cells neutralized), else the page."""
    key = request.query_params.get("export")
    if key is None:
        return render()
    table = find_table(tables, key)
    if table is None:
        return PlainTextResponse(f"no table {key!r} on this page", status_code=404)
    return Response(table_csv(table), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{table.key}.csv"'})


def problem(dashboard: Dashboard, request: Request, viewer: Viewer, filters: Filters, title: str, message: str,
            status: int = 400) -> Response:
    """A page that cannot be shown as asked (an unknown funnel, a bad breakdown in the URL): say why."""
    return dashboard.render("empty.html", request, viewer, filters, status=status, title=title, error=message)


def no_events(dashboard: Dashboard, request: Request, viewer: Viewer, filters: Filters, title: str) -> Response:
    return dashboard.render("empty.html", request, viewer, filters, title=title)


def no_goals(dashboard: Dashboard, request: Request, viewer: Viewer, filters: Filters, title: str) -> Response:
    return dashboard.render("empty.html", request, viewer, filters, title=title, no_goals=True)


def breakdown_of(filters: Filters, default: str | None) -> str | None:
    """The breakdown of the view: `?breakdown=NAME`, `none` for none, else the page's default."""
    if filters.breakdown == "none":
        return None
    return filters.breakdown or default
