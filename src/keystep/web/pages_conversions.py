"""The conversions page: every goal with its definition, rate, interval, value and change, rates per
segment of a breakdown, and the definitions editor (goals and funnels) for logged-in users.

Edits go through `keystep.web.editor` (round trip, checked before writing); a failed check re-shows the
form with the file's error and writes nothing. A share link sees the page without any form, and its
posts are refused by `keystep.web.app` (no session, no CSRF token).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from keystep.analysis.conversions import run_conversion_reports
from keystep.conversions.definitions import (
    Category,
    DefinitionsError,
    FunnelMode,
    Kind,
    MacroType,
    Unit,
    format_duration,
)
from keystep.report import charts
from keystep.web import editor
from keystep.web.app import Dashboard, Viewer
from keystep.web.handlers import BREAKDOWN_CHOICES, breakdown_of, csv_or_page, has_events, query_of, unit_of
from keystep.web.tables import definition_summary, goals_table, segment_rates_table
from keystep.web.views import Filters, Table, chart

TITLE = "Conversions"
FORM_CHOICES = {
    "kinds": [k.value for k in Kind],
    "categories": [c.value for c in Category],
    "types": [t.value for t in MacroType],
    "modes": [m.value for m in FunnelMode],
    "units": [u.value for u in Unit],
}


@dataclass
class EditorState:
    """What the editor shows: the forms' values (the posted ones after a failed check) and the error."""

    error: str | None = None
    goal: dict[str, str] = field(default_factory=dict)
    goal_original: str | None = None  # the goal being edited (None: a new goal)
    goal_locked: str | None = None  # why the form cannot edit this goal (edit it in the file)
    funnel: dict[str, str] = field(default_factory=dict)
    funnel_original: str | None = None
    failed: str | None = None  # "goal" or "funnel": the form the error belongs to


def _editor_state(dashboard: Dashboard, filters: Filters) -> EditorState:
    """The forms from the URL: `?edit=GOAL` or `?edit_funnel=FUNNEL` opens one for editing."""
    definitions = dashboard.definitions()
    state = EditorState()
    name = filters.get("edit")
    if name and any(g.name == name for g in definitions.goals):
        state.goal, state.goal_locked = editor.goal_form(definitions.goal(name))
        state.goal_original = name
    name = filters.get("edit_funnel")
    if name and any(f.name == name for f in definitions.funnels):
        state.funnel, state.funnel_original = editor.funnel_form(definitions.funnel(name)), name
    return state


def _notice(dashboard: Dashboard, filters: Filters) -> str | None:
    """After a redirect: what was saved or deleted (only names the definitions confirm are repeated)."""
    d = dashboard.definitions()
    names = {g.name for g in d.goals} | {f.name for f in d.funnels}
    saved, deleted = filters.get("saved"), filters.get("deleted")
    if saved and saved in names:
        return f"Saved “{saved}” in the definitions file."
    if deleted and deleted not in names:
        return f"Deleted “{deleted}” from the definitions file."
    return None


async def conversions(request: Request, dashboard: Dashboard, viewer: Viewer, filters: Filters,
                      state: EditorState | None = None, status: int = 200) -> Response:
    definitions = dashboard.definitions()
    context: dict[str, Any] = {
        "title": TITLE, "path": "/conversions", "definitions": definitions, "choices": FORM_CHOICES,
        "breakdowns": BREAKDOWN_CHOICES, "config": dashboard.config(), "notice_text": _notice(dashboard, filters),
        "editor": state or _editor_state(dashboard, filters), "tables": [], "charts": [],
        "no_events": not has_events(dashboard, filters), "no_goals": not definitions.goals,
        "breakdown": breakdown_of(filters, None), "unit": filters.get("unit") or Unit.SESSION.value,
        "goal_rows": [(g, definition_summary(g)) for g in definitions.goals],
        "funnel_windows": {f.name: format_duration(f.window) for f in definitions.funnels},
    }
    if context["no_events"] or context["no_goals"]:
        return dashboard.render("conversions.html", request, viewer, filters, status=status, **context)
    try:
        query = query_of(dashboard, filters).with_(unit=unit_of(filters, Unit.SESSION), breakdown=context["breakdown"])
    except ValueError as exc:
        return dashboard.render("conversions.html", request, viewer, filters, status=400, problem=str(exc),
                                **context)

    def run() -> dict[str, Any]:
        previous = filters.previous() if filters.compare else None
        queries = [query] if previous is None else [
            query, query.with_(start=previous[0], end=previous[1], breakdown=None)]
        report, *rest = run_conversion_reports(dashboard.backend(), definitions, queries)
        before = rest[0] if rest else None
        tables: list[Table] = [goals_table(report, before, definitions)]
        if query.breakdown:
            tables.append(segment_rates_table(report))
        return {"report": report, "tables": tables, "charts": [chart("rates", charts.rates_chart(report))]}

    context.update(await run_in_threadpool(run))
    return csv_or_page(request, context["tables"], lambda: dashboard.render(
        "conversions.html", request, viewer, filters, status=status, **context))


# -- the editor's actions ------------------------------------------------------------------------------


async def _apply(request: Request, dashboard: Dashboard, viewer: Viewer, change: editor.Change,
                 state: EditorState) -> Response:
    """Save the change, or re-show the page with the error (nothing written)."""
    filters = dashboard.filters(request)
    config = dashboard.config()
    if config is None:
        state.error = ("This server has no definitions file path (start it with `keystep serve --config FILE`), "
                       "so the dashboard cannot save goals or funnels.")
        return await conversions(request, dashboard, viewer, filters, state, status=400)
    try:
        await run_in_threadpool(editor.save, config, change, dashboard.set_definitions)
    except (editor.EditError, DefinitionsError) as exc:
        state.error = str(exc)
        return await conversions(request, dashboard, viewer, filters, state, status=400)
    done = {"saved": change.name} if change.spec is not None else {"deleted": change.name}
    return RedirectResponse(f"/conversions?{filters.query(**done)}", status_code=303)


def _failed(state: EditorState, message: str) -> EditorState:
    state.error = message
    return state


async def save_goal(request: Request, dashboard: Dashboard, viewer: Viewer, form: dict[str, str]) -> Response:
    """Create a goal, or (with `original`) replace the fields the form edits of an existing one."""
    original = form.get("original") or None
    state = EditorState(goal=form, goal_original=original, failed="goal")
    try:
        name = original or editor.check_name(form.get("name", ""), "goal")
        change = editor.Change("goals", name, editor.goal_spec(form), create=original is None)
    except editor.EditError as exc:
        return await conversions(request, dashboard, viewer, dashboard.filters(request), _failed(state, str(exc)),
                                 status=400)
    return await _apply(request, dashboard, viewer, change, state)


async def delete_goal(request: Request, dashboard: Dashboard, viewer: Viewer, form: dict[str, str]) -> Response:
    name = form.get("name", "")
    state = EditorState(failed="goal")
    used = editor.uses_of_goal(dashboard.definitions(), name)
    if used:
        message = f"“{name}” is a step of the funnel {', '.join(used)}; remove it there first."
        return await conversions(request, dashboard, viewer, dashboard.filters(request), _failed(state, message),
                                 status=400)
    return await _apply(request, dashboard, viewer, editor.Change("goals", name, None), state)


async def save_funnel(request: Request, dashboard: Dashboard, viewer: Viewer, form: dict[str, str]) -> Response:
    original = form.get("original") or None
    state = EditorState(funnel=form, funnel_original=original, failed="funnel")
    try:
        name = original or editor.check_name(form.get("name", ""), "funnel")
        change = editor.Change("funnels", name, editor.funnel_spec(form), create=original is None)
    except editor.EditError as exc:
        return await conversions(request, dashboard, viewer, dashboard.filters(request), _failed(state, str(exc)),
                                 status=400)
    return await _apply(request, dashboard, viewer, change, state)


async def delete_funnel(request: Request, dashboard: Dashboard, viewer: Viewer, form: dict[str, str]) -> Response:
    state = EditorState(failed="funnel")
    return await _apply(request, dashboard, viewer, editor.Change("funnels", form.get("name", ""), None), state)
