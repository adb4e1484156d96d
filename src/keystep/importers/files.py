"""Import a CSV, Parquet or NDJSON file into the store: read in batches, normalize, store, reject.

Each batch of raw rows (see `readers`) is normalized row by row (see `normalize`); the good rows go to
`backend.insert_events` as one Arrow table in the canonical schema, the bad ones to
`backend.insert_rejected` with their row number, column and reason. Memory stays flat apart from one
16-byte hash per distinct event (for deterministic ids). Events are deduplicated on
(project, event_id) by the store, so importing the same file twice stores it once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from keystep.backends.base import Backend
from keystep.backends.duckdb import event_arrow_schema
from keystep.events.schema import RAW_LIMIT
from keystep.events.timestamps import TsFormat
from keystep.importers.mapping import ColumnMapping
from keystep.importers.normalize import EventIds, Rejection, RowPlan, build_plan, normalize_row, raw_text
from keystep.importers.readers import FileFormat, FileSource, Malformed, RawBatch

ProgressCallback = Callable[[int, int], None]
"""Called with (done, total) in the source's progress unit (bytes, or rows for Parquet)."""


@dataclass(frozen=True, slots=True)
class ImportOptions:
    mapping: ColumnMapping = field(default_factory=ColumnMapping)
    project: str = "default"
    ts_format: TsFormat = TsFormat.AUTO
    batch_size: int = 50_000
    sample_size: int = 10
    """How many rejections the result keeps (all of them go to the rejected_events table)."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    file: str
    format: FileFormat
    project: str
    rows_read: int
    stored: int
    """Events new to the store."""
    duplicates: int
    """Good rows whose (project, event_id) was already stored, or repeated within the file."""
    rejected: int
    rejection_sample: tuple[Rejection, ...]
    """The first rejections, in file order."""


def plan_import(source: FileSource, options: ImportOptions) -> RowPlan:
    """Check the mapping against the file and the constants (raises `MappingError`) before any write."""
    if source.columns is not None:
        options.mapping.check_columns(source.columns)
    return build_plan(options.mapping, options.ts_format, source.text_values)


def run_import(
    backend: Backend,
    source: FileSource,
    options: ImportOptions | None = None,
    *,
    now: datetime | None = None,
    on_progress: ProgressCallback | None = None,
) -> ImportResult:
    """Import `source` into `backend`; `now` (default: the clock) becomes every event's `received_at`."""
    options = options or ImportOptions()
    plan = plan_import(source, options)
    received_at = _naive_utc(now or datetime.now(UTC))
    batch_import = _BatchImport(backend, source, options, plan, received_at)
    if on_progress:
        on_progress(0, source.size)
    for batch in source.batches(options.batch_size):
        batch_import.add(batch)
        if on_progress:
            on_progress(batch.position, source.size)
    return batch_import.result()


class _BatchImport:
    """The running state of one import: ids seen, counts, the sample of rejections."""

    def __init__(
        self,
        backend: Backend,
        source: FileSource,
        options: ImportOptions,
        plan: RowPlan,
        received_at: datetime,
    ) -> None:
        self.backend, self.source, self.options, self.plan = backend, source, options, plan
        self.received_at = received_at
        self.ids = EventIds()
        self.rows_read = self.good = self.stored = self.rejected = 0
        self.sample: list[Rejection] = []

    def add(self, batch: RawBatch) -> None:
        events: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        for raw, number in zip(batch.rows, batch.numbers, strict=True):
            if isinstance(raw, Malformed):
                rejected.append(self._reject(Rejection(number, None, raw.reason), raw.raw[:RAW_LIMIT]))
                continue
            outcome = normalize_row(raw, number, self.plan)
            if isinstance(outcome, Rejection):
                rejected.append(self._reject(outcome, raw_text(raw)))
                continue
            outcome["project"] = self.options.project
            outcome["received_at"] = self.received_at
            if outcome.get("event_id") is None:
                outcome["event_id"] = self.ids.next_id(outcome)
            events.append(outcome)
        self.rows_read += len(batch.rows)
        self.good += len(events)
        self.rejected += len(rejected)
        if events:
            table = pa.Table.from_pylist(events, schema=event_arrow_schema())
            self.stored += self.backend.insert_events(table)
        self.backend.insert_rejected(rejected)

    def _reject(self, rejection: Rejection, raw: str) -> dict[str, Any]:
        """Count and sample a rejection; the row for the rejected_events table."""
        if len(self.sample) < self.options.sample_size:
            self.sample.append(rejection)
        return {
            "project": self.options.project,
            "received_at": self.received_at,
            "source": str(self.source.path),
            "location": f"row {rejection.row}",
            "field": rejection.field,
            "reason": rejection.reason,
            "raw": raw,
        }

    def result(self) -> ImportResult:
        return ImportResult(
            file=str(self.source.path),
            format=self.source.format,
            project=self.options.project,
            rows_read=self.rows_read,
            stored=self.stored,
            duplicates=self.good - self.stored,
            rejected=self.rejected,
            rejection_sample=tuple(self.sample),
        )


def _naive_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
