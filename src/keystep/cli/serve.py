"""`keystep serve`: the collector and the JSON query API in one process on the embedded store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from keystep.cli.common import DEFAULT_CONFIG_PATH, DEFAULT_DB_PATH, ConfigOption, DbOption, console
from keystep.conversions.definitions import Definitions, DefinitionsError, load_definitions

DRAIN_SECONDS = 25  # uvicorn's graceful shutdown; the spool drain follows, well within 30 s


def serve(
    host: Annotated[str, typer.Option("--host", help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="The port to listen on.")] = 8000,
    db: DbOption = DEFAULT_DB_PATH,
    config: ConfigOption = DEFAULT_CONFIG_PATH,
    spool: Annotated[
        Path | None, typer.Option("--spool", help="The write-ahead spool folder (default: <db>.spool).")
    ] = None,
    max_pending_mb: Annotated[
        int, typer.Option("--max-pending-mb", help="Spooled but unstored data above which requests get 503.")
    ] = 512,
    hold_pending_mb: Annotated[
        int, typer.Option("--hold-pending-mb", help="Spooled but unstored data above which a request waits for the "
                                                    "writer before it is read (flow control; then 503 after 10 s).")
    ] = 48,
    workers: Annotated[
        int, typer.Option("--workers", min=0, help="Worker processes that run the ingest pipeline (0: threads of "
                                                   "the one server process).")
    ] = 0,
) -> None:
    """Serve the collector (native, Segment, RudderStack, PostHog, Snowplow, Umami, Mixpanel and GA4 wire
    formats) and the JSON query API (/api/v1/..., OpenAPI at /docs) on one store. An event is acknowledged
    only once it is fsynced in the spool; SIGTERM stops accepting, then stores what was acknowledged."""
    import uvicorn

    from keystep.collector.app import Settings, create_app

    try:
        definitions = load_definitions(config) if config.exists() else Definitions()
    except DefinitionsError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    app = create_app(Settings(db=db, spool=spool, definitions=definitions, config=config,
                              max_pending_bytes=max_pending_mb << 20, hold_pending_bytes=hold_pending_mb << 20,
                              workers=workers))
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=DRAIN_SECONDS,
                access_log=False, http="httptools", loop="asyncio" if sys.platform == "win32" else "uvloop")
