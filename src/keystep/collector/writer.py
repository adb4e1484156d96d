"""The one writer: drains the spool into the store, then moves the spool's checkpoint.

A spool record is one accepted request (`keystep.collector.record`): its events as an Arrow table in the
store's schema, and its rejections and identity links. The writer reads the durable records after the
checkpoint in chunks, concatenates their event tables and stores them in one insert (deduplicated on
(project, event_id)) with the rejections and identity links, and only then commits the checkpoint, so a
crash in between stores the chunk again, once. `drain` stores everything durable and returns (for
shutdown and tests).

DuckDB's insert costs several times more per event in small batches (deduplication, ordering and the
primary key work per statement: about 30 µs of CPU an event at 500 events, 13 at 2,000, 10 at 10,000, 7
at 50,000 on 2 cores into a new store; into one of a million events, 16–20 at 13,000 and 12–13 at 26,000
or 52,000), so while less than `min_chunk_bytes` (16 MiB of records, about 50,000 events) waits, the
writer lingers up to `linger` seconds (1 s) for more before it stores: events reach the store (and the
query API) at most that much later; their acknowledgement never waits for it. A chunk is at most
`chunk_bytes` (16 MiB), so one insert (which keeps both cores busy for its duration, a few tenths of a
second) stays short.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from keystep.backends.base import Backend
from keystep.collector.record import decode_record
from keystep.collector.spool import Position, Spool

log = logging.getLogger("keystep.collector")


class Writer:
    """A thread that stores spool records; `on_stored(events)` is told how many events were new."""

    def __init__(self, spool: Spool, backend: Backend, *, on_stored: Callable[[int, int], None] | None = None,
                 chunk_bytes: int = 16 << 20, min_chunk_bytes: int = 16 << 20, linger: float = 1.0) -> None:
        self.spool = spool
        self.backend = backend
        self.chunk_bytes = chunk_bytes
        self.min_chunk_bytes = min_chunk_bytes
        self.linger = linger
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
            deadline = time.monotonic() + self.linger
            while (self.spool.pending_bytes < self.min_chunk_bytes and time.monotonic() < deadline
                   and not self._stop.wait(0.02)):
                pass  # gather a larger chunk: one insert of many events costs far less per event
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
            tables: list[pa.Table] = []
            rejected: list[dict[str, Any]] = []
            identities: list[dict[str, Any]] = []
            end: Position | None = None
            records = 0
            for position, payload in self.spool.read(self.chunk_bytes):
                end = position
                if payload:
                    record = decode_record(payload)
                    if record.events is not None and record.events.num_rows:
                        tables.append(record.events)
                    rejected.extend(record.rejected)
                    identities.extend(record.identities)
                    records += 1
            if end is None:
                return 0
            events = pa.concat_tables(tables) if tables else None
            new = self._store(events, rejected, identities)
            self.spool.commit(end)
            if self.on_stored:
                self.on_stored(events.num_rows if events is not None else 0, new)
            return records

    def drain(self) -> None:
        """Store every durable record (used on shutdown, after the spool stopped accepting)."""
        while self.drain_once():
            pass

    def _store(self, events: pa.Table | None, rejected: list[dict[str, Any]],
               identities: list[dict[str, Any]]) -> int:
        new = 0
        if events is not None:
            new = self.backend.insert_events(events)
        if rejected:
            self.backend.insert_rejected(rejected)
        if identities:
            self.backend.insert_rows("identities", identities)
        return new

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

