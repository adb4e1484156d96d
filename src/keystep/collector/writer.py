"""The one writer: drains the spool into the store, then moves the spool's checkpoint.

A spool record is one accepted request: `{"events": [...], "rejected": [...], "identities": [...]}` with
timestamps as epoch microseconds (`encode_record` / `decode_record`). The writer reads the durable
records after the checkpoint in chunks, stores their events (deduplicated on (project, event_id)),
rejections and identity links, and only then commits the checkpoint, so a crash in between stores the
chunk again, once. `drain` stores everything durable and returns (for shutdown and tests).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from keystep.backends.base import Backend
from keystep.backends.duckdb import event_arrow_schema
from keystep.collector.spool import Position, Spool

log = logging.getLogger("keystep.collector")

_EPOCH = datetime(1970, 1, 1)
_ONE_US = timedelta(microseconds=1)
_TIME_FIELDS = ("ts", "received_at")


def _micros(moment: datetime) -> int:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (moment - _EPOCH) // _ONE_US


def encode_record(events: Sequence[Mapping[str, Any]], rejected: Sequence[Mapping[str, Any]] = (),
                  identities: Sequence[Mapping[str, Any]] = ()) -> bytes:
    def plain(row: Mapping[str, Any]) -> dict[str, Any]:
        return {k: _micros(v) if isinstance(v, datetime) else v for k, v in row.items()}

    return orjson.dumps({"events": [plain(e) for e in events], "rejected": [plain(r) for r in rejected],
                         "identities": [plain(i) for i in identities]})


def decode_record(payload: bytes) -> dict[str, list[dict[str, Any]]]:
    data: dict[str, list[dict[str, Any]]] = orjson.loads(payload)
    return data


class Writer:
    """A thread that stores spool records; `on_stored(events)` is told how many events were new."""

    def __init__(self, spool: Spool, backend: Backend, *, on_stored: Callable[[int, int], None] | None = None,
                 chunk_bytes: int = 8 << 20) -> None:
        self.spool = spool
        self.backend = backend
        self.chunk_bytes = chunk_bytes
        self.on_stored = on_stored
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="keystep-writer", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self.spool.wait_for_records(timeout=0.2):
                continue
            try:
                self.drain_once()
                self.last_error = None
            except Exception as exc:  # keep running: the records stay in the spool and are retried
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("storing spooled events failed; retrying")
                time.sleep(0.5)

    def drain_once(self) -> int:
        """Store one chunk of durable records; returns how many records it stored."""
        with self._lock:
            events: list[dict[str, Any]] = []
            rejected: list[dict[str, Any]] = []
            identities: list[dict[str, Any]] = []
            end: Position | None = None
            records = 0
            for position, payload in self.spool.read(self.chunk_bytes):
                end = position
                if payload:
                    record = decode_record(payload)
                    events.extend(record.get("events", ()))
                    rejected.extend(record.get("rejected", ()))
                    identities.extend(record.get("identities", ()))
                    records += 1
            if end is None:
                return 0
            new = self._store(events, rejected, identities)
            self.spool.commit(end)
            if self.on_stored:
                self.on_stored(len(events), new)
            return records

    def drain(self) -> None:
        """Store every durable record (used on shutdown, after the spool stopped accepting)."""
        while self.drain_once():
            pass

    def _store(self, events: list[dict[str, Any]], rejected: list[dict[str, Any]],
               identities: list[dict[str, Any]]) -> int:
        new = 0
        if events:
            new = self.backend.insert_events(_event_table(events))
        if rejected:
            self.backend.insert_rejected([_with_times(r) for r in rejected])
        if identities:
            self.backend.insert_rows("identities", [_with_times(i) for i in identities])
        return new

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _with_times(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (_EPOCH + v * _ONE_US) if k in _TIME_FIELDS and isinstance(v, int) else v for k, v in row.items()}


def _event_table(events: list[dict[str, Any]]) -> pa.Table:
    schema = event_arrow_schema()
    columns = {}
    for f in schema:
        values = [e.get(f.name) for e in events]
        if pa.types.is_timestamp(f.type):
            columns[f.name] = pa.array(values, pa.int64()).cast(f.type)
        else:
            columns[f.name] = pa.array(values, f.type)
    return pa.table(columns, schema=schema)
