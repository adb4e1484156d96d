"""One raw row to one canonical event, or to a rejection that names the column and what was wrong.

Pure: no I/O. `RowPlan` is built once per import (the mapping resolved, constants already checked);
`normalize_row` applies it to each row; `EventIds` gives rows without an id a deterministic one.

Rules: `event`, `visitor_id` and `ts` must be present and non-empty; `ts` must parse (see
`keystep.events.timestamps`) and fall within 2000..2100; `revenue`, if given, must be a number;
`currency`, if given, three letters (stored upper-case). Text values are stripped, and an empty value
counts as absent. When `path` is absent and `url` given, `path` and any absent `utm_*` come from the url.
Source columns that fill no canonical column go into `properties` (a JSON object, empty values left out;
from CSV, text that is plainly a number is stored as a number).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from hashlib import blake2b
from typing import Any
from urllib.parse import parse_qs, urlsplit

from keystep.events.schema import EVENT_COLUMN_NAMES, RAW_LIMIT
from keystep.events.timestamps import TimestampError, TsFormat, parse_timestamp
from keystep.importers.mapping import ROW_NUMBER, ColumnMapping, MappingError

REQUIRED = ("event", "visitor_id", "ts")
UTM_COLUMNS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_INTEGER_TEXT = re.compile(r"-?(0|[1-9]\d{0,14})")  # longer digit strings are ids, kept as text
_DECIMAL_TEXT = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_ID_CONTENT = tuple(name for name in EVENT_COLUMN_NAMES if name not in ("project", "event_id", "received_at"))


class FieldError(ValueError):
    """A value that does not fit its canonical column."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A row left out: its number, the column at fault (None when the row itself was unreadable), why."""

    row: int
    field: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class RowPlan:
    """How every row of one import becomes an event."""

    sources: Mapping[str, str]
    """Canonical column → source column (or `@row`) for each canonical column not set to a constant."""
    constants: Mapping[str, Any]
    """Canonical column → its constant value, already normalized."""
    consumed: frozenset[str]
    ts_format: TsFormat = TsFormat.AUTO
    text_values: bool = False


def build_plan(
    mapping: ColumnMapping, ts_format: TsFormat = TsFormat.AUTO, text_values: bool = False
) -> RowPlan:
    """Resolve the mapping and check each `--set` constant once (a bad one fails the whole import)."""
    constants: dict[str, Any] = {}
    for name, text in mapping.constants.items():
        try:
            constants[name] = normalize_value(name, text, ts_format)
        except FieldError as exc:
            raise MappingError(f"--set {name}={text}: {exc}") from None
    return RowPlan(mapping.resolved_sources(), constants, mapping.consumed(), ts_format, text_values)


def normalize_row(raw: Mapping[str, Any], row: int, plan: RowPlan) -> dict[str, Any] | Rejection:
    """The canonical values of one row (without project, received_at and, unless mapped, event_id)."""
    event: dict[str, Any] = dict(plan.constants)
    for name, source in plan.sources.items():
        value = row if source == ROW_NUMBER else raw.get(source)
        if value is None:
            continue
        try:
            event[name] = normalize_value(name, value, plan.ts_format)
        except FieldError as exc:
            return Rejection(row, name, str(exc))
    for name in REQUIRED:
        if event.get(name) is None:
            column = plan.sources.get(name)
            where = f" (column {column!r})" if column and column != name else ""
            return Rejection(row, name, f"{name} is missing or empty{where}")
    derive_from_url(event)
    try:
        event["properties"] = _properties(raw, event.get("properties"), plan)
    except FieldError as exc:
        return Rejection(row, "properties", str(exc))
    return event


class EventIds:
    """Deterministic event ids for rows that bring none.

    The id hashes the event's canonical content (everything but project, event_id and received_at)
    together with how many identical events came earlier in the same file. So importing a file again
    gives the same ids (nothing new is stored), identical rows within a file stay distinct events, and
    rows appended to a file leave the ids of the earlier rows unchanged.
    """

    def __init__(self) -> None:
        self._seen: dict[bytes, int] = {}

    def next_id(self, event: Mapping[str, Any]) -> str:
        content = json.dumps([event.get(name) for name in _ID_CONTENT], default=_json_default,
                             ensure_ascii=False, separators=(",", ":"))
        digest = blake2b(content.encode("utf-8"), digest_size=16).digest()
        occurrence = self._seen.get(digest, 0)
        self._seen[digest] = occurrence + 1
        return blake2b(digest + occurrence.to_bytes(8, "big"), digest_size=16).hexdigest()


def raw_text(raw: Mapping[str, Any]) -> str:
    """A raw row as JSON for the rejected-events table, truncated to `RAW_LIMIT` characters."""
    return json.dumps(dict(raw), default=_json_default, ensure_ascii=False)[:RAW_LIMIT]


# -- one value ------------------------------------------------------------------------------------


def normalize_value(name: str, value: Any, ts_format: TsFormat) -> Any:
    if name == "ts":
        if _is_empty(value):
            return None
        try:
            return parse_timestamp(value, ts_format)
        except TimestampError as exc:
            raise FieldError(str(exc)) from None
    normalizer = _NORMALIZERS.get(name)
    return normalizer(value) if normalizer else _text(value)


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8").strip() or None
        except UnicodeDecodeError:
            raise FieldError("binary value, not UTF-8 text") from None
    raise FieldError(f"expected text, found {_json_kind(value)}")


def _revenue(value: Any) -> float | None:
    if _is_empty(value):
        return None
    if isinstance(value, bool):
        raise FieldError(f"{value!r} is not a number")
    if isinstance(value, int | float | Decimal):
        number = float(value)
    elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        raise FieldError(f"{_short(value)} is not a number")
    if not math.isfinite(number):
        raise FieldError(f"{_short(value)} is not a finite number")
    return number


def _currency(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    if not _CURRENCY.fullmatch(text.upper()):
        raise FieldError(f"{_short(text)} is not a 3-letter currency code (ISO 4217)")
    return text.upper()


def properties_object(value: Any) -> dict[str, Any] | None:
    if _is_empty(value):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise FieldError("not a JSON object") from None
    if not isinstance(value, dict):
        raise FieldError(f"expected a JSON object, found {_json_kind(value)}")
    return value


_NORMALIZERS: Mapping[str, Callable[[Any], Any]] = {
    "revenue": _revenue,
    "currency": _currency,
    "properties": properties_object,
}


# -- derived values -------------------------------------------------------------------------------


def derive_from_url(event: dict[str, Any]) -> None:
    url = event.get("url")
    if url is None or event.get("path") is not None:
        return
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    event["path"] = parts.path or "/"
    query = parse_qs(parts.query)
    for name in UTM_COLUMNS:
        if event.get(name) is None and query.get(name):
            event[name] = query[name][0].strip() or None


def _properties(raw: Mapping[str, Any], given: dict[str, Any] | None, plan: RowPlan) -> str | None:
    properties: dict[str, Any] = dict(given or {})
    for key, value in raw.items():
        if key in plan.consumed or _is_empty(value):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue
        properties[key] = _number_or_text(value) if plan.text_values and isinstance(value, str) else value
    if not properties:
        return None
    try:
        return json.dumps(properties, default=_json_default, ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise FieldError("a value is not representable in JSON (NaN or infinity)") from None


def _number_or_text(text: str) -> int | float | str:
    if _INTEGER_TEXT.fullmatch(text):
        return int(text)
    if _DECIMAL_TEXT.fullmatch(text):
        number = float(text)
        return number if math.isfinite(number) else text
    return text


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
