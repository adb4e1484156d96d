"""Random event logs for the funnel property tests: few visitors and names, a coarse clock (many equal
timestamps), repeated steps, steps that share event names, rows in random order, around local midnight
and the 2026 DST changes of Europe/Berlin (2026-03-29 01:00 UTC and 2026-10-25 01:00 UTC)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

BASES = (
    datetime(2026, 3, 28, 21, 0),  # the night before the spring change in Berlin
    datetime(2026, 10, 24, 20, 0),  # the night before the autumn change
    datetime(2026, 3, 2, 22, 30),  # local midnight in Berlin and New York within a day
)
VISITORS = ("a", "b", "c")
NAMES = ("a", "b", "c", "x")  # x matches no step
STEP_SETS: tuple[tuple[tuple[str, ...], ...], ...] = (
    (("a",), ("b",), ("c",)),
    (("a",), ("a", "b"), ("c",)),  # an `a` event matches steps 1 and 2
    (("a",), ("b",), ("a",)),  # a repeated step
    (("a", "b"), ("b",)),
    (("a",), ("b",), ("b",), ("c",)),
    (("b",), ("a",)),
)
WINDOWS = (timedelta(0), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=20), timedelta(days=2))
TIMEZONES = ("UTC", "Europe/Berlin", "America/New_York")


@st.composite
def event_logs(draw: st.DrawFn, max_events: int = 30) -> list[dict[str, Any]]:
    base = draw(st.sampled_from(BASES))
    # minutes on a 20-minute grid over two days, sometimes with seconds: ties are common
    offset = st.tuples(st.integers(0, 144), st.sampled_from((0, 0, 0, 1, 59)))
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(VISITORS),
                st.sampled_from(NAMES),
                offset,
                st.sampled_from((None, None, None, "u1", "u2")),
            ),
            max_size=max_events,
        )
    )
    return [
        {"visitor_id": v, "event": name, "ts": base + timedelta(minutes=20 * k, seconds=s), "user_id": user}
        for v, name, (k, s), user in rows
    ]


@st.composite
def ranges(draw: st.DrawFn, logs_base: tuple[datetime, ...] = BASES) -> tuple[date | None, date | None, str]:
    tz = draw(st.sampled_from(TIMEZONES))
    if draw(st.booleans()):
        return None, None, tz
    day = draw(st.sampled_from(logs_base)).date()
    start = day + timedelta(days=draw(st.integers(0, 2)))
    return start, start + timedelta(days=draw(st.integers(0, 1))), tz
