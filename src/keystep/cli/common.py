"""What every command shares: the options, opening the store, building the query, printing."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from keystep.backends.duckdb import DEFAULT_DB, DuckDBBackend
from keystep.conversions.definitions import (
    DEFAULT_PATH,
    Definitions,
    DefinitionsError,
    Unit,
    load_definitions,
)
from keystep.query import Granularity, Query
from keystep.serialize import dumps

T = TypeVar("T")

console = Console()
errors = Console(stderr=True)

DbOption = Annotated[Path, typer.Option("--db", help="The DuckDB database file.")]
ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The definitions file (goals and funnels).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON document on stdout instead of tables.")]
ProjectOption = Annotated[str | None, typer.Option("--project", help="Only this project's events (default: all).")]
StartOption = Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD, reporting timezone).")]
EndOption = Annotated[str | None, typer.Option("--to", help="Last day, inclusive (YYYY-MM-DD).")]
TzOption = Annotated[str | None, typer.Option("--tz", help="Reporting timezone (default: the definitions file's).")]
UnitOption = Annotated[Unit | None, typer.Option("--unit", help="Count visitors, sessions or users.")]
BreakdownOption = Annotated[
    str | None,
    typer.Option(
        "--breakdown",
        help="Split by device_type, browser, os, country, channel, utm_source, utm_medium, utm_campaign, "
        "landing_page, visitor_type or prop:NAME.",
    ),
]
ByOption = Annotated[Granularity | None, typer.Option("--by", help="Also report per day or per week.")]

DEFAULT_DB_PATH = DEFAULT_DB
DEFAULT_CONFIG_PATH = DEFAULT_PATH


def fit_terminal() -> None:
    """Take the terminal width (`COLUMNS`) when a command starts, not when the module was imported."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        console.width = errors.width = int(columns)


def fail(message: str, code: int = 2) -> NoReturn:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def open_store(db: Path, *, must_exist: bool = True) -> DuckDBBackend:
    if must_exist and str(db) != ":memory:" and not db.exists():
        fail(f"no database at {db} (load events with `keystep import FILE` or try `keystep demo`)")
    return DuckDBBackend(db)


def run_on_store(db: Path, run: Callable[[DuckDBBackend], T]) -> T:
    """Open the store, run an analysis on it, close it; an unknown name or a bad value is a clear error."""
    store = open_store(db)
    try:
        return run(store)
    except KeyError as exc:
        fail(str(exc.args[0]) if exc.args else str(exc))
    except ValueError as exc:
        fail(str(exc))
    finally:
        store.close()


def open_definitions(config: Path) -> Definitions:
    try:
        return load_definitions(config)
    except DefinitionsError as exc:
        fail(str(exc))


def parse_day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option}: expected a date as YYYY-MM-DD, got {text!r}")


def build_query(
    definitions: Definitions,
    *,
    project: str | None = None,
    start: str | None = None,
    end: str | None = None,
    tz: str | None = None,
    unit: Unit | None = None,
    default_unit: Unit = Unit.SESSION,
    breakdown: str | None = None,
    granularity: Granularity | None = None,
) -> Query:
    try:
        return Query(
            project=project,
            start=parse_day(start, "--from"),
            end=parse_day(end, "--to"),
            timezone=tz or definitions.timezone,
            unit=unit or default_unit,
            breakdown=breakdown,
            granularity=granularity,
            session_timeout=definitions.session_timeout,
        )
    except (ValueError, KeyError) as exc:
        fail(str(exc))


# how a breakdown table marks a segment that differs significantly from the rest, by its direction
FLAGS: dict[str, tuple[str, str]] = {
    "higher": ("▲ higher", "bold green"),
    "lower": ("▼ lower", "bold red"),
    "faster": ("▲ faster", "bold green"),
    "slower": ("▼ slower", "bold red"),
}


def segment_flag(significant: bool, direction: Enum | None) -> Text:
    """`▲ higher`, `▼ slower`, ...: the mark of a significant segment (empty for the others)."""
    text, style = FLAGS.get(direction.value, ("", "")) if significant and direction is not None else ("", "")
    return Text(text, style=style)


def emit_json(result: Any) -> None:
    """The machine-readable document, alone on stdout."""
    typer.echo(dumps(result))


def now() -> datetime:
    return datetime.now().astimezone()
