"""The embedded store: one DuckDB file. The only module that talks to DuckDB."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pyarrow as pa

from keystep.backends.base import SQL, Dialect, Rows
from keystep.events.schema import EVENT_COLUMNS, TABLES, TABLES_BY_NAME, Column, Kind, Table

DIALECT = Dialect(
    name="duckdb",
    types={Kind.TEXT: "VARCHAR", Kind.TIMESTAMP: "TIMESTAMP", Kind.DOUBLE: "DOUBLE", Kind.JSON: "JSON"},
)

DEFAULT_DB = Path("keystep.duckdb")

# The order in which `insert_events` writes the rows of one batch (see there).
CLUSTER_ORDER: tuple[str, ...] = ("project", "visitor_id", "ts", "event_id")


def _column_ddl(column: Column) -> str:
    not_null = " NOT NULL" if column.required else ""
    return f"{column.name} {DIALECT.types[column.kind]}{not_null}"


def _create_table(table: Table) -> str:
    key = [f"PRIMARY KEY ({', '.join(table.primary_key)})"] if table.primary_key else []
    body = ",\n  ".join([_column_ddl(c) for c in table.columns] + key)
    return f"CREATE TABLE IF NOT EXISTS {table.name} (\n  {body}\n)"


def event_arrow_schema() -> pa.Schema:
    """The Arrow schema of a batch handed to `insert_events`."""
    arrow = {Kind.TEXT: pa.string(), Kind.TIMESTAMP: pa.timestamp("us"), Kind.DOUBLE: pa.float64(),
             Kind.JSON: pa.string()}
    return pa.schema([pa.field(c.name, arrow[c.kind], nullable=not c.required) for c in EVENT_COLUMNS])


class DuckDBBackend:
    """A DuckDB database file (or `:memory:`). Writes are serialized through one lock: one writer."""

    dialect = DIALECT

    def __init__(self, path: str | Path = DEFAULT_DB, *, read_only: bool = False) -> None:
        self.path = str(path)
        self._con = duckdb.connect(self.path, read_only=read_only)
        self._run("SET TimeZone = 'UTC'")
        self._write_lock = threading.Lock()
        if not read_only:
            self.migrate()

    # -- schema -----------------------------------------------------------------------------
    def migrate(self) -> None:
        """Create the tables, and add any column the canonical schema gained since the file was made."""
        with self._write_lock:
            for table in TABLES:
                self._run(_create_table(table))
                have = {r[0] for r in self._run(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table.name]
                )}
                for column in table.columns:
                    if column.name not in have:
                        kind = DIALECT.types[column.kind]
                        self._run(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")

    # -- reads ------------------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self._con.cursor()

    def execute(self, query: SQL, relations: Mapping[str, pa.Table] | None = None) -> Rows:
        cur = self._con.cursor()
        try:
            for name, table in (relations or {}).items():
                cur.register(name, table)
            cur.execute(query.text, dict(query.params) if query.params else None)
            columns = tuple(d[0] for d in cur.description or ())
            return Rows(columns, tuple(cur.fetchall()))
        finally:
            cur.close()

    def execute_arrow(self, query: SQL) -> pa.Table:
        cur = self._con.cursor()
        try:
            # a relation, not a DB-API result: Arrow straight from DuckDB's vectors, without a copy
            return cur.sql(query.text, params=dict(query.params) if query.params else None).to_arrow_table()
        finally:
            cur.close()

    # -- writes (the one writer) --------------------------------------------------------------
    def insert_events(self, table: pa.Table) -> int:
        """Store a batch of events; one whose (project, event_id) is stored already, or comes twice in the
        batch, is ignored (the first received is kept).

        The batch is written in `CLUSTER_ORDER`: a visitor's events of one batch lie together (DuckDB's
        parallel INSERT OR IGNORE keeps the order within each thread's share, so it is a run or two per
        visitor), and per-unit work (funnel paths, first touches, sessions) reads runs of one visitor
        rather than rows scattered over the batch. Batches are appended in arrival order, so a stream of
        small batches stays ordered by time as a whole (and a date range can still skip row groups)."""
        staged = table.select([c.name for c in EVENT_COLUMNS]).cast(event_arrow_schema())
        with self._write_lock:
            self._con.register("_staged_events", staged)
            try:
                inserted = self._run(
                    "INSERT OR IGNORE INTO events SELECT * FROM _staged_events "
                    "QUALIFY row_number() OVER (PARTITION BY project, event_id ORDER BY received_at) = 1 "
                    f"ORDER BY {', '.join(CLUSTER_ORDER)}"
                )
            finally:
                self._con.unregister("_staged_events")
            return int(inserted[0][0])  # DuckDB answers an INSERT with the rows it inserted

    def insert_rejected(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.insert_rows("rejected_events", rows)

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Rows into one of the schema's tables (`TABLES`); rows whose primary key is stored are ignored.
        Returns how many were new."""
        if not rows:
            return 0
        spec = TABLES_BY_NAME[table]
        names = [c.name for c in spec.columns]
        placeholders = ", ".join("?" for _ in names)
        verb = "INSERT OR IGNORE" if spec.primary_key else "INSERT"
        with self._write_lock:
            before = self._count(table)
            self._con.executemany(
                f"{verb} INTO {table} ({', '.join(names)}) VALUES ({placeholders})",
                [[row.get(n) for n in names] for row in rows],
            )
            return self._count(table) - before  # executemany does not report the rows it inserted

    def write(self, query: SQL) -> int:
        """A data-changing statement (UPDATE, DELETE) through the one writer; returns the rows changed."""
        with self._write_lock:
            cur = self._con.cursor()
            try:
                cur.execute(query.text, dict(query.params) if query.params else None)
                row = cur.fetchone()
                return int(row[0]) if row else 0
            finally:
                cur.close()

    def _count(self, table: str) -> int:
        return int(self._run(f"SELECT count(*) FROM {table}")[0][0])

    def _run(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Execute on the writer's connection and drain the result (DuckDB wants results finished)."""
        return self._con.execute(sql, params).fetchall()

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> DuckDBBackend:
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.close()
