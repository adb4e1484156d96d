"""`keystep report`: the overview of a store as one self-contained HTML file (and as tables or JSON)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from keystep.analysis.overview import DEFAULT_BREAKDOWN, Overview, run_overview
from keystep.backends.base import Backend
from keystep.cli.common import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_DB_PATH,
    ConfigOption,
    DbOption,
    EndOption,
    JsonOption,
    ProjectOption,
    StartOption,
    TzOption,
    build_query,
    console,
    emit_json,
    fail,
    open_definitions,
    open_store,
)
from keystep.cli.conversions import print_report
from keystep.cli.funnels import print_result as print_funnel
from keystep.cli.micro_macro import print_micro_macro, print_suggestions, print_time_to_convert
from keystep.conversions.definitions import Definitions
from keystep.query import Query
from keystep.report.html import render_report

DEFAULT_REPORT = Path("keystep-report.html")

OutOption = Annotated[Path, typer.Option("--out", "-o", help="Where to write the HTML report.")]
FunnelOption = Annotated[
    str | None, typer.Option("--funnel", help="The funnel to show (default: the definitions file's first).")
]
ReportBreakdownOption = Annotated[
    str, typer.Option("--breakdown", help="The funnel's breakdown (any --breakdown of the analyses).")
]


def report(
    out: OutOption = DEFAULT_REPORT,
    db: DbOption = DEFAULT_DB_PATH,
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    project: ProjectOption = None,
    start: StartOption = None,
    end: EndOption = None,
    tz: TzOption = None,
    funnel: FunnelOption = None,
    breakdown: ReportBreakdownOption = DEFAULT_BREAKDOWN,
    as_json: JsonOption = False,
) -> None:
    """Write the overview (conversions, trend, funnel by segment, time to convert, micro → macro and the
    suggested micro conversions) as one HTML file with charts that needs no network to open."""
    definitions = open_definitions(config)
    query = build_query(definitions, project=project, start=start, end=end, tz=tz)
    store = open_store(db)
    try:
        overview = compute_overview(store, definitions, query, funnel=funnel, breakdown=breakdown)
    finally:
        store.close()
    write_report(overview, out, title="keystep report" + (f": {project}" if project else ""))
    if as_json:
        emit_json(overview_document(overview, out))
        return
    print_overview(overview)
    console.print(f"[bold]report:[/] {out.resolve()}", highlight=False)


def compute_overview(
    store: Backend, definitions: Definitions, query: Query, *, funnel: str | None = None,
    breakdown: str = DEFAULT_BREAKDOWN,
) -> Overview:
    try:
        return run_overview(store, definitions, query, funnel=funnel, breakdown=breakdown)
    except KeyError as exc:
        fail(str(exc.args[0]) if exc.args else str(exc))
    except ValueError as exc:
        fail(str(exc))


def write_report(overview: Overview, out: Path, *, title: str) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(overview, title=title, generated=datetime.now(UTC)), encoding="utf-8")
    return out


def overview_document(overview: Overview, out: Path, **extra: Any) -> dict[str, Any]:
    """The JSON document: where the report is, then every analysis of the overview."""
    return {"report": str(out.resolve()), **extra, "overview": overview}


def print_overview(overview: Overview) -> None:
    print_report(overview.conversions)
    if overview.funnel is not None:
        console.print()
        print_funnel(overview.funnel)
    if overview.time_to_convert is not None:
        console.print()
        print_time_to_convert(overview.time_to_convert, curve=False)
    if overview.micro_macro is not None:
        console.print()
        print_micro_macro(overview.micro_macro)
    if overview.suggestions is not None:
        console.print()
        print_suggestions(overview.suggestions)
