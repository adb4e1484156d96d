"""`keystep import FILE`: load events from a CSV, Parquet or NDJSON file, with a column mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from keystep.backends.base import Backend
from keystep.cli.common import (
    DEFAULT_DB_PATH,
    DbOption,
    JsonOption,
    console,
    emit_json,
    errors,
    fail,
    open_store,
)
from keystep.events.timestamps import TsFormat
from keystep.importers.files import ImportOptions, ImportResult, plan_import, run_import
from keystep.importers.mapping import MappingError, parse_mapping
from keystep.importers.readers import FileFormat, FileSource, SourceError, open_source

MapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="CANONICAL=SOURCE_COLUMN[,...]: read a canonical column from a source column; the source "
        "@row is the row number. Columns named like canonical ones map themselves. Repeatable.",
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="CANONICAL=VALUE: the same value for every row (e.g. event=session). Repeatable."
    ),
]
TsFormatOption = Annotated[
    TsFormat,
    typer.Option(
        "--ts-format",
        help="How ts is written: iso (ISO 8601; no offset means UTC), s or ms (epoch), or auto (per value: "
        "numbers >= 1e11 are milliseconds, other numbers seconds, the rest ISO 8601).",
    ),
]
FormatOption = Annotated[
    FileFormat | None, typer.Option("--format", help="The file format (default: from the file name).")
]
ImportProjectOption = Annotated[str, typer.Option("--project", help="The project the events belong to.")]


def import_file(
    file: Annotated[
        Path, typer.Argument(help="A .csv, .tsv, .parquet, .ndjson or .jsonl file (optionally .gz).")
    ],
    mapping: MapOption = None,
    constants: SetOption = None,
    ts_format: TsFormatOption = TsFormat.AUTO,
    file_format: FormatOption = None,
    project: ImportProjectOption = "default",
    db: DbOption = DEFAULT_DB_PATH,
    as_json: JsonOption = False,
) -> None:
    """Import events from a CSV, Parquet or NDJSON file.

    Every row must give event, visitor_id and ts (from a column, --map or --set); columns that fill no
    canonical column go into properties. Bad rows are rejected with their row number, column and
    reason, and kept in the rejected_events table; the good rows are stored. Rows without an event_id
    get a deterministic one, so importing the same file twice stores it once.
    """
    if not project.strip():
        fail("--project must not be empty")
    try:
        options = ImportOptions(mapping=parse_mapping(mapping or [], constants or []), project=project,
                                ts_format=ts_format)
        source = open_source(file, file_format)
        plan_import(source, options)
    except (MappingError, SourceError) as exc:
        fail(str(exc))
    store = open_store(db, must_exist=False)
    try:
        result = run_with_progress(store, source, options, show=not as_json and errors.is_terminal)
    except (MappingError, SourceError) as exc:
        fail(str(exc))
    finally:
        store.close()
    if as_json:
        emit_json(result)
    else:
        print_result(result)


def run_with_progress(
    store: Backend, source: FileSource, options: ImportOptions, *, show: bool
) -> ImportResult:
    """Run the import with a progress bar on stderr (bytes read, or rows for Parquet)."""
    unit = DownloadColumn() if source.format is not FileFormat.PARQUET else MofNCompleteColumn()
    with Progress(
        TextColumn("[bold]importing[/] {task.description}"),
        BarColumn(),
        unit,
        TimeElapsedColumn(),
        console=errors,
        disable=not show,
    ) as progress:
        task = progress.add_task(source.path.name, total=source.size)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return run_import(store, source, options, on_progress=advance)


def print_result(result: ImportResult) -> None:
    """The summary for people: counts, then the sample of rejections."""
    console.print(f"[bold]Imported[/] {result.file} ({result.format.value}) into project {result.project!r}",
                  highlight=False)
    summary = Table(show_header=False)
    summary.add_column(style="bold")
    summary.add_column(justify="right")
    summary.add_row("rows read", f"{result.rows_read:,}")
    summary.add_row("stored (new events)", f"[green]{result.stored:,}[/]")
    summary.add_row("duplicates (already stored)", f"{result.duplicates:,}")
    summary.add_row("rejected", f"[red]{result.rejected:,}[/]" if result.rejected else "0")
    console.print(summary)
    if not result.rejection_sample:
        return
    sample = Table(title=f"First {len(result.rejection_sample)} of {result.rejected:,} rejected rows "
                         "(all are in the rejected_events table)", title_justify="left")
    sample.add_column("row", justify="right")
    sample.add_column("column")
    sample.add_column("reason")
    for rejection in result.rejection_sample:
        sample.add_row(str(rejection.row), rejection.field or "-", rejection.reason)
    console.print(sample)
