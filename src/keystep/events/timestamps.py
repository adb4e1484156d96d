"""Timestamps from the outside world to keystep's form: a naive UTC `datetime` with microseconds.

Accepted inputs:

- ISO 8601 text (`2026-03-02`, `2026-03-02T09:00:00`, `2026-03-02 09:00:00.5+01:00`, `...Z`): a value
  without an offset is taken as UTC; fractions beyond microseconds are truncated;
- epoch seconds or epoch milliseconds, as numbers or numeric text (fractions allowed);
- `datetime` and `date` objects (from typed files such as Parquet): aware ones are converted to UTC.

With `TsFormat.AUTO` each value is detected on its own: numeric values of at least 1e11 are epoch
milliseconds, smaller ones epoch seconds, anything else ISO 8601. Every result must fall within
[`MIN_TS`, `MAX_TS`); anything else raises `TimestampError`, whose message says what was wrong.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import Enum

MIN_TS = datetime(2000, 1, 1)
MAX_TS = datetime(2100, 1, 1)
MILLISECONDS_FROM = 100_000_000_000  # 1e11: in seconds that is the year 5138, in milliseconds 1973
_EPOCH = datetime(1970, 1, 1)
_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TOO_LARGE = Decimal(10) ** 16  # beyond any date a timedelta can hold, in either unit
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


class TsFormat(Enum):
    """How timestamp values are written in a source."""

    AUTO = "auto"
    ISO = "iso"
    SECONDS = "s"
    MILLISECONDS = "ms"


# The members as plain names: reading an attribute of an Enum class costs more than the rest of a parse.
_AUTO, _ISO, _SECONDS, _MILLISECONDS = TsFormat.AUTO, TsFormat.ISO, TsFormat.SECONDS, TsFormat.MILLISECONDS
_fromisoformat = datetime.fromisoformat


class TimestampError(ValueError):
    """A value that is not a usable timestamp; `str(error)` is the reason, fit to show a user."""


def parse_timestamp(value: object, fmt: TsFormat = TsFormat.AUTO) -> datetime:
    """One value as a naive UTC datetime (microseconds), or `TimestampError` saying what was wrong."""
    if isinstance(value, str):  # the usual case first
        text = value.strip()
        if not text:
            raise TimestampError("empty")
        if fmt is not _ISO and ":" not in text and _NUMBER.fullmatch(text):  # no number has a ":"
            return _from_number(Decimal(text), value, fmt)
        if fmt is _SECONDS or fmt is _MILLISECONDS:
            raise TimestampError(f"{_show(value)} is not a number of epoch {_unit(fmt)}")
        try:
            parsed = _fromisoformat(text)
        except ValueError:
            if _NUMBER.fullmatch(text):  # only reached with TsFormat.ISO
                raise TimestampError(f"{_show(value)} is a number, not an ISO 8601 timestamp") from None
            raise TimestampError(f"{_show(value)} is not an ISO 8601 timestamp or an epoch number") from None
        zone = parsed.tzinfo
        if zone is UTC:  # `Z`, `+00:00`: the same fields, naive (a plain datetime of fold 0, as fromisoformat gives)
            parsed = _EPOCH + (parsed - _UTC_EPOCH)
        elif zone is not None:
            parsed = _to_naive_utc(parsed)
        if MIN_TS <= parsed < MAX_TS:
            return parsed
        raise TimestampError(f"{_show(value)} is outside {MIN_TS.date()}..{MAX_TS.date()}")
    if value is None:
        raise TimestampError("empty")
    if isinstance(value, datetime):
        return _in_range(_to_naive_utc(value), value)
    if isinstance(value, date):
        return _in_range(datetime(value.year, value.month, value.day), value)
    if isinstance(value, bool):
        raise TimestampError(f"{value!r} is not a timestamp")
    if isinstance(value, int | float):
        return _from_number(_decimal(value), value, fmt)
    raise TimestampError(f"{_show(value)} ({type(value).__name__}) is not a timestamp")


def parse_timestamps(
    values: Iterable[object], fmt: TsFormat = TsFormat.AUTO
) -> list[datetime | TimestampError]:
    """A column of values: each parsed on its own, the error in place of a value that failed."""
    out: list[datetime | TimestampError] = []
    for value in values:
        try:
            out.append(parse_timestamp(value, fmt))
        except TimestampError as exc:
            out.append(exc)
    return out


def _from_number(number: Decimal, original: object, fmt: TsFormat) -> datetime:
    if not number.is_finite():
        raise TimestampError(f"{_show(original)} is not a finite number")
    if fmt is _ISO:
        raise TimestampError(f"{_show(original)} is a number, not an ISO 8601 timestamp")
    if fmt is _AUTO:
        fmt = _MILLISECONDS if abs(number) >= MILLISECONDS_FROM else _SECONDS
    if abs(number) >= _TOO_LARGE:
        raise TimestampError(f"{_show(original)} read as epoch {_unit(fmt)} is out of range")
    scale = 1_000_000 if fmt is _SECONDS else 1_000
    micros = int((number * scale).to_integral_value(ROUND_HALF_EVEN))
    try:
        result = _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise TimestampError(f"{_show(original)} read as epoch {_unit(fmt)} is out of range") from None
    if not MIN_TS <= result < MAX_TS:
        raise TimestampError(
            f"{_show(original)} read as epoch {_unit(fmt)} is {result.isoformat()}, "
            f"outside {MIN_TS.date()}..{MAX_TS.date()} (another unit or format?)"
        )
    return result


def _in_range(result: datetime, original: object) -> datetime:
    if not MIN_TS <= result < MAX_TS:
        raise TimestampError(f"{_show(original)} is outside {MIN_TS.date()}..{MAX_TS.date()}")
    return result


def _to_naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    offset = moment.utcoffset()
    if offset:
        try:
            moment -= offset  # what astimezone(UTC) computes, without its overhead
        except OverflowError:
            raise TimestampError(f"{moment.isoformat()} is out of range") from None
    return datetime.combine(moment.date(), moment.time())  # naive; 4x faster than replace(tzinfo=None)


def _decimal(number: int | float) -> Decimal:
    if isinstance(number, float) and not math.isfinite(number):
        return Decimal("NaN")
    try:
        return Decimal(repr(number)) if isinstance(number, float) else Decimal(number)
    except InvalidOperation:  # pragma: no cover - repr of a finite float is always a decimal
        return Decimal("NaN")


def _unit(fmt: TsFormat) -> str:
    return "milliseconds" if fmt is _MILLISECONDS else "seconds"


def _show(value: object) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
