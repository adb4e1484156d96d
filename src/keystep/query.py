"""A query is plain data: what to measure, over which units, range, timezone and breakdown.

Dates are calendar days in the reporting timezone; `utc_bounds` turns them into the exact UTC
instants (DST included) with `now` passed in, so the same query always means the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

from keystep.conversions.definitions import Unit
from keystep.events.schema import EVENT_DIMENSIONS


class Granularity(Enum):
    DAY = "day"
    WEEK = "week"


# Breakdowns computed per unit rather than read from an event column.
DERIVED_DIMENSIONS: tuple[str, ...] = ("landing_page", "visitor_type")
PROPERTY_PREFIX = "prop:"
BREAKDOWNS: tuple[str, ...] = EVENT_DIMENSIONS + DERIVED_DIMENSIONS


@dataclass(frozen=True, slots=True)
class Query:
    project: str | None = None  # None: every project in the store
    start: date | None = None  # first day, inclusive (reporting timezone)
    end: date | None = None  # last day, inclusive
    timezone: str = "UTC"
    unit: Unit = Unit.SESSION
    breakdown: str | None = None  # one of BREAKDOWNS, or `prop:NAME`
    granularity: Granularity | None = None
    session_timeout: timedelta = timedelta(minutes=30)

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)
        if self.breakdown is not None:
            validate_breakdown(self.breakdown)
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"the range starts ({self.start}) after it ends ({self.end})")

    def with_(self, **changes: object) -> Query:
        return replace(self, **changes)  # type: ignore[arg-type]

    def utc_bounds(self) -> tuple[datetime | None, datetime | None]:
        """[start, end) as naive UTC datetimes: local midnight of `start` and of the day after `end`."""
        zone = ZoneInfo(self.timezone)

        def at_midnight(day: date) -> datetime:
            return datetime.combine(day, time(), zone).astimezone(UTC).replace(tzinfo=None)

        lo = at_midnight(self.start) if self.start else None
        hi = at_midnight(self.end + timedelta(days=1)) if self.end else None
        return lo, hi


def validate_breakdown(name: str) -> str:
    if name in BREAKDOWNS:
        return name
    if name.startswith(PROPERTY_PREFIX) and len(name) > len(PROPERTY_PREFIX):
        return name
    raise ValueError(f"unknown breakdown {name!r}; expected one of {', '.join(BREAKDOWNS)} or prop:NAME")


def last_days(days: int, now: datetime, timezone: str) -> tuple[date, date]:
    """The `days` calendar days up to and including today in `timezone`."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    return today - timedelta(days=days - 1), today
