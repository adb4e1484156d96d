"""The embedded store: one DuckDB file. The only module that talks to DuckDB."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from keystep.backends.base import SQL, Dialect, Rows
from keystep.backends.directory import DigestDirectory, digests
from keystep.events.schema import (
    EVENT_COLUMNS,
    STORED_EVENT_COLUMNS,
    TABLES,
    TABLES_BY_NAME,
    Column,
    Kind,
    Table,
)

DIALECT = Dialect(
    name="duckdb",
    types={Kind.TEXT: "VARCHAR", Kind.TIMESTAMP: "TIMESTAMP", Kind.DOUBLE: "DOUBLE", Kind.INTEGER: "BIGINT",
           Kind.JSON: "JSON"},
)

DEFAULT_DB = Path("keystep.duckdb")

# The order in which `insert_events` writes the rows of one batch (see there).
CLUSTER_ORDER: tuple[str, ...] = ("visitor_no", "ts", "event_id")
# What makes an event the same event (`insert_events`): the MD5 of its project and id, as two 64-bit halves
# (a project never holds a NUL, so the pair reads back one way; one `md5_number` costs a fifth of
# `md5_number_upper` and `md5_number_lower` together)
_EVENT_DIGEST = ("(d >> 64)::UBIGINT AS hi, (d & 18446744073709551615::UHUGEINT)::UBIGINT AS lo"
                 " FROM (SELECT *, md5_number(project || chr(0) || event_id) AS d FROM {table})")


def _column_ddl(column: Column) -> str:
    not_null = " NOT NULL" if column.required else ""
    return f"{column.name} {DIALECT.types[column.kind]}{not_null}"


def _create_table(table: Table, name: str | None = None) -> str:
    key = [f"PRIMARY KEY ({', '.join(table.primary_key)})"] if table.primary_key else []
    body = ",\n  ".join([_column_ddl(c) for c in table.columns] + key)
    return f"CREATE TABLE IF NOT EXISTS {name or table.name} (\n  {body}\n)"


def event_arrow_schema() -> pa.Schema:
    """The Arrow schema of a batch handed to `insert_events`."""
    arrow = {Kind.TEXT: pa.string(), Kind.TIMESTAMP: pa.timestamp("us"), Kind.DOUBLE: pa.float64(),
             Kind.INTEGER: pa.int64(), Kind.JSON: pa.string()}
    return pa.schema([pa.field(c.name, arrow[c.kind], nullable=not c.required) for c in EVENT_COLUMNS])


class DuckDBBackend:
    """A DuckDB database file (or `:memory:`). Writes are serialized through one lock: one writer."""

    dialect = DIALECT

    def __init__(self, path: str | Path = DEFAULT_DB, *, read_only: bool = False) -> None:
        self.path = str(path)
        self._con = duckdb.connect(self.path, read_only=read_only)
        self._run("SET TimeZone = 'UTC'")
        self._write_lock = threading.Lock()
        self._directory: DigestDirectory | None = None  # the visitors: loaded by the first write that needs it
        self._event_ids: DigestDirectory | None = None  # the stored events' (project, event_id): likewise
        if not read_only:
            self.migrate()
        elif self._missing_columns():
            self._con.close()
            raise ValueError(f"{self.path} was made by an earlier version of keystep: open it once for writing"
                             f" (keystep init --db {self.path}) to bring its tables up to date")

    # -- schema -----------------------------------------------------------------------------
    def _missing_columns(self) -> list[tuple[Table, Column]]:
        """The columns of the schema that an existing table of the file lacks."""
        have = {(t, c) for t, c in self._run("SELECT table_name, column_name FROM information_schema.columns")}
        tables = {t for t, _ in have}
        return [(t, c) for t in TABLES if t.name in tables for c in t.columns if (t.name, c.name) not in have]

    def migrate(self) -> None:
        """Create the tables, and add any column the schema gained since the file was made (events stored
        before visitors were numbered get their numbers; see `_drop_event_index` for another change)."""
        with self._write_lock:
            missing = self._missing_columns()
            for table in TABLES:
                self._run(_create_table(table))
            for table, column in missing:
                self._run(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {DIALECT.types[column.kind]}")
            if any(t.name == "events" and c.name == "visitor_no" for t, c in missing):
                self._number_stored_visitors()
            self._drop_event_index()

    def _drop_event_index(self) -> None:
        """A store made before the writer kept event ids unique itself has a primary key on the events'
        (project, event_id), whose index costs more to keep with every event stored (and more memory and
        disk than the events' other columns together): its events move, once, into a table without it."""
        if not self._run("SELECT 1 FROM duckdb_constraints() WHERE table_name = 'events'"
                         " AND constraint_type = 'PRIMARY KEY'"):
            return
        names = ", ".join(c.name for c in TABLES_BY_NAME["events"].columns)
        self._run("BEGIN TRANSACTION")
        try:
            self._run(_create_table(TABLES_BY_NAME["events"], "events_rebuilt"))
            self._run(f"INSERT INTO events_rebuilt ({names}) SELECT {names} FROM events ORDER BY rowid")
            self._run("DROP TABLE events")
            self._run("ALTER TABLE events_rebuilt RENAME TO events")
            self._run("COMMIT")
        except BaseException:
            self._run("ROLLBACK")
            raise

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
        batch, is ignored (the first received is kept). Each event gets its visitor's number
        (`keystep.backends.directory`), new visitors numbered in (project, visitor_id) order.

        The events stored are known by the digest of their (project, event_id), in a directory in memory
        (`_event_ids`), not by a unique index in the store: DuckDB checks an index on two strings by a
        join against the table (the event ids of every row group whose range of ids might hold one of
        the batch's: with random ids such as UUIDs, all of them) and rewrites the index at every
        checkpoint, so its cost grows with every event stored; the directory's stays the same.

        The batch is written in `CLUSTER_ORDER`: a visitor's events of one batch lie together (DuckDB's
        parallel INSERT keeps the order within each thread's share, so it is a run or two per visitor),
        and per-unit work (funnel paths, first touches, sessions) reads runs of one visitor rather than
        rows scattered over the batch. Batches are appended in arrival order, so a stream of small batches
        stays ordered by time as a whole (and a date range can still skip row groups)."""
        staged = table.select([c.name for c in EVENT_COLUMNS]).cast(event_arrow_schema())
        names = ", ".join(c.name for c in EVENT_COLUMNS + STORED_EVENT_COLUMNS)
        with self._write_lock:
            ids = self._stored_event_ids()
            first_received = np.argsort(staged.column("received_at").to_numpy(), kind="stable")
            new = np.empty(staged.num_rows, dtype=np.bool_)
            _, new[first_received] = ids.number(self._event_digests(staged)[first_received])
            fresh = staged.filter(pa.array(new))
            if not fresh.num_rows:
                return 0
            self._con.register("_staged_events", fresh)
            try:
                inserted = self._numbering_visitors(
                    "SELECT DISTINCT project, visitor_id FROM _staged_events",
                    f"INSERT INTO events ({names}) SELECT s.*, b.visitor_no FROM _staged_events s"
                    f" JOIN _batch_visitors b USING (project, visitor_id) ORDER BY {', '.join(CLUSTER_ORDER)}",
                )
            except BaseException:
                self._event_ids = None  # it took in events that were not stored: rebuild it
                raise
            finally:
                self._con.unregister("_staged_events")
            return int(inserted[0][0])  # DuckDB answers an INSERT with the rows it inserted

    def _event_digests(self, events: pa.Table) -> np.ndarray:
        """`(n, 2)`: the digest of each event's (project, event_id), in the table's order."""
        numbered = pa.table({"row": pa.array(np.arange(events.num_rows)), "project": events.column("project"),
                             "event_id": events.column("event_id")})
        self._con.register("_event_keys", numbered)
        try:
            return self._digests(f"{_EVENT_DIGEST.format(table='_event_keys')} ORDER BY row")
        finally:
            self._con.unregister("_event_keys")

    def _stored_event_ids(self) -> DigestDirectory:
        """The directory of the stored events' digests, rebuilt from the `events` table on first use."""
        if self._event_ids is None:
            self._event_ids = DigestDirectory(self._digests(_EVENT_DIGEST.format(table="events")))
        return self._event_ids

    def _digests(self, select: str) -> np.ndarray:
        """`(n, 2)` signed 64-bit halves of the digests `SELECT {select}` gives (columns `hi` and `lo`)."""
        found = self._con.sql(f"SELECT {select}").to_arrow_table()
        return np.column_stack([found.column("hi").to_numpy(), found.column("lo").to_numpy()]).view(np.int64)

    def _number_stored_visitors(self) -> None:
        """Number the visitors of events stored before visitors were numbered (a store made by an
        earlier version), in one transaction."""
        self._numbering_visitors(
            "SELECT DISTINCT project, visitor_id FROM events WHERE visitor_no IS NULL",
            "UPDATE events SET visitor_no = b.visitor_no FROM _batch_visitors b"
            " WHERE events.visitor_no IS NULL AND events.project = b.project AND events.visitor_id = b.visitor_id",
        )

    def _numbering_visitors(self, pairs_sql: str, statement: str) -> list[tuple[Any, ...]]:
        """Run `statement` with `_batch_visitors(project, visitor_id, visitor_no)`: the numbers of the
        (project, visitor_id) pairs that `pairs_sql` selects, new visitors numbered (in pair order) and
        added to `visitors` in the same transaction. Under the write lock."""
        pairs = self._con.sql(f"{pairs_sql} ORDER BY project, visitor_id").to_arrow_table()
        digest = digests(pairs.column("project").to_pylist(), pairs.column("visitor_id").to_pylist())
        numbers, new = self._visitors().number(digest)
        batch = pairs.append_column("visitor_no", pa.array(numbers, pa.int64()))
        added = batch.filter(pa.array(new)).append_column("digest_hi", pa.array(digest[new, 0], pa.int64()))
        added = added.append_column("digest_lo", pa.array(digest[new, 1], pa.int64()))
        self._con.register("_batch_visitors", batch)
        self._con.register("_new_visitors", added)
        try:
            self._run("BEGIN TRANSACTION")
            try:
                self._run("INSERT INTO visitors SELECT * FROM _new_visitors")
                result = self._run(statement)
                self._run("COMMIT")
            except BaseException:
                self._run("ROLLBACK")
                self._directory = None  # it numbered visitors that were not stored: rebuild it
                raise
            return result
        finally:
            self._con.unregister("_batch_visitors")
            self._con.unregister("_new_visitors")

    def _visitors(self) -> DigestDirectory:
        """The visitor directory, rebuilt from the `visitors` table on first use."""
        if self._directory is None:
            stored = self._con.sql("SELECT visitor_no, digest_hi, digest_lo FROM visitors").to_arrow_table()
            known = np.empty((stored.num_rows, 2), dtype=np.int64)
            numbers = stored.column("visitor_no").to_numpy()
            known[numbers, 0] = stored.column("digest_hi").to_numpy()
            known[numbers, 1] = stored.column("digest_lo").to_numpy()
            self._directory = DigestDirectory(known)
        return self._directory

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
