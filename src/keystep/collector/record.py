"""One spool record: the events, rejections and identity links of one accepted request.

The payload (the spool frames it with a length and a CRC-32, see `keystep.collector.spool`) is

    b"KSA1" | u32 little-endian n | n bytes of JSON {"rejected": [...], "identities": [...]} | Arrow IPC

The events are an Arrow IPC stream in the store's event schema (`event_arrow_schema`), built once per
request by the process that ran the pipeline, so the writer concatenates the tables of a chunk of records
and inserts them without touching an event in Python. An empty IPC part means no events. The rejections
and identity links (few, and rare) are JSON, their timestamps epoch microseconds.

Records of the earlier format, one JSON object `{"events": [...], "rejected": [...], "identities": [...]}`
(a spool left by an older keystep), are still read.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from keystep.backends.duckdb import event_arrow_schema

MAGIC = b"KSA1"
_SIDE = struct.Struct("<I")
_EPOCH = datetime(1970, 1, 1)
_ONE_US = timedelta(microseconds=1)
_TIME_FIELDS = ("ts", "received_at")
SCHEMA = event_arrow_schema()
_COLUMNS = tuple((f.name, f.type) for f in SCHEMA)
_ROW = pa.struct(list(SCHEMA))


def _empty_stream() -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, SCHEMA):
        pass
    return bytes(sink.getvalue().to_pybytes())


# An Arrow IPC stream is its schema message, its record batches' messages and an end-of-stream marker
# (8 bytes): what `pa.ipc.new_stream` writes, byte for byte, without its writer per record.
_STREAM_START, _STREAM_END = _empty_stream()[:-8], _empty_stream()[-8:]


@dataclass(frozen=True, slots=True)
class Record:
    events: pa.Table | None  # None: no events
    rejected: list[dict[str, Any]] = field(default_factory=list)  # rows of rejected_events
    identities: list[dict[str, Any]] = field(default_factory=list)  # rows of identities


def _micros(moment: datetime) -> int:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (moment - _EPOCH) // _ONE_US


def event_table(events: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Canonical events (as `finalize` leaves them: `ts`/`received_at` datetimes) as an Arrow table in the
    store's schema: its columns, read from each event by name in one pass of Arrow's converter (a missing
    one is null, other keys are not read). Raises an Arrow error (`pa.ArrowException`) or `TypeError`
    for a value its column cannot take. (Arrow converts an aware datetime to UTC, as the store keeps it.)"""
    return pa.Table.from_batches([pa.RecordBatch.from_struct_array(pa.array(events, type=_ROW))], schema=SCHEMA)


def encode_record(events: pa.Table | Sequence[Mapping[str, Any]], rejected: Sequence[Mapping[str, Any]] = (),
                  identities: Sequence[Mapping[str, Any]] = ()) -> bytes:
    def plain(row: Mapping[str, Any]) -> dict[str, Any]:
        return {k: _micros(v) if isinstance(v, datetime) else v for k, v in row.items()}

    table = events if isinstance(events, pa.Table) else event_table(events)
    side = orjson.dumps({"rejected": [plain(r) for r in rejected], "identities": [plain(i) for i in identities]})
    parts: list[Any] = [MAGIC, _SIDE.pack(len(side)), side]
    if table.num_rows:  # the IPC stream: its schema (the same for every record), the batches, the end
        parts += (_STREAM_START, *(batch.serialize() for batch in table.to_batches()), _STREAM_END)
    return b"".join(parts)


def decode_record(payload: bytes) -> Record:
    if not payload.startswith(MAGIC):
        return _decode_json(payload)
    start = len(MAGIC) + _SIDE.size
    (n,) = _SIDE.unpack_from(payload, len(MAGIC))
    side = orjson.loads(payload[start:start + n])
    ipc = memoryview(payload)[start + n:]
    events = pa.ipc.open_stream(pa.py_buffer(ipc)).read_all() if len(ipc) else None
    return Record(events, [_with_times(r) for r in side.get("rejected", ())],
                  [_with_times(i) for i in side.get("identities", ())])


def _decode_json(payload: bytes) -> Record:
    """A record of the earlier, all-JSON format."""
    data: dict[str, list[dict[str, Any]]] = orjson.loads(payload)
    events = data.get("events") or []
    return Record(_json_event_table(events) if events else None,
                  [_with_times(r) for r in data.get("rejected", ())],
                  [_with_times(i) for i in data.get("identities", ())])


def _with_times(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (_EPOCH + v * _ONE_US) if k in _TIME_FIELDS and isinstance(v, int) else v for k, v in row.items()}


def _json_event_table(events: list[dict[str, Any]]) -> pa.Table:
    columns = {}
    for name, kind in _COLUMNS:
        values = [e.get(name) for e in events]
        if pa.types.is_timestamp(kind):
            columns[name] = pa.array(values, pa.int64()).cast(kind)
        else:
            columns[name] = pa.array(values, kind)
    return pa.table(columns, schema=SCHEMA)
