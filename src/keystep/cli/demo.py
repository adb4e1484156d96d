"""`keystep demo`: simulate a shop, load it through the import path, and show what keystep answers."""

from __future__ import annotations

import tempfile
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from keystep.backends.duckdb import DEFAULT_DB
from keystep.cli.common import JsonOption, console, emit_json, errors, open_store
from keystep.cli.importing import run_with_progress
from keystep.cli.init import Template, template_text
from keystep.cli.report import DEFAULT_REPORT, compute_overview, overview_document, print_overview, write_report
from keystep.conversions.definitions import DEFAULT_PATH, parse_definitions
from keystep.demo.simulator import PROJECT, simulate_shop, write_events
from keystep.importers.files import ImportOptions
from keystep.importers.readers import open_source
from keystep.query import Query


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="The folder for the database, definitions and report.")]
    = Path("."),
    db: Annotated[
        Path | None, typer.Option("--db", help="The DuckDB database file (default: keystep.duckdb in --out).")
    ] = None,
    visitors: Annotated[int, typer.Option("--visitors", min=100, help="Simulated visitors.")] = 50_000,
    weeks: Annotated[int, typer.Option("--weeks", min=1, help="Weeks over which they arrive.")] = 6,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (the same seed, the same shop).")] = 7,
    as_json: JsonOption = False,
) -> None:
    """Simulate an online shop (visitors, sessions, channels, devices, a checkout friction on mobile,
    newsletter and video actions that raise purchase propensity), import it into the embedded store and
    report micro and macro conversion rates, the checkout funnel by device, time to convert and which
    micro conversions lead to purchases. Leaves the database, a keystep.yaml (the shop template) and an
    HTML report in --out, so every other command can be tried on the same data."""
    out.mkdir(parents=True, exist_ok=True)
    db = db or out / DEFAULT_DB
    config = out / DEFAULT_PATH
    text = template_text(Template.SHOP)
    if not config.exists():
        config.write_text(text, encoding="utf-8")
    definitions = parse_definitions(text, "the shop template")
    show = not as_json and errors.is_terminal
    spinner = errors.status(f"simulating {visitors:,} visitors over {weeks} weeks") if show else nullcontext()
    with spinner:
        simulation = simulate_shop(visitors, weeks, seed)
    store = open_store(db, must_exist=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            source = open_source(write_events(simulation, Path(tmp) / "demo-shop-events.parquet"))
            imported = run_with_progress(store, source, ImportOptions(project=PROJECT), show=show)
        query = Query(project=PROJECT, timezone=definitions.timezone, session_timeout=definitions.session_timeout)
        overview = compute_overview(store, definitions, query)
    finally:
        store.close()
    report = write_report(overview, out / DEFAULT_REPORT, title="keystep demo: an online shop")
    if as_json:
        emit_json(overview_document(overview, report, database=str(db.resolve()), imported=imported))
        return
    console.print(
        f"[bold]keystep demo[/]: {visitors:,} simulated visitors, {imported.rows_read:,} events "
        f"({imported.stored:,} new) in {db}",
        highlight=False,
    )
    print_overview(overview)
    console.print(f"\n[bold]report:[/] {report.resolve()}\n"
                  f"[dim]try: keystep funnel checkout --breakdown device_type --db {db} --config {config}[/]",
                  highlight=False)
