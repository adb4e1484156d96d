"""A pure-Python reference for funnels, written from the documented meaning of each mode (and, for `ordered`,
from ClickHouse's windowFunnel algorithm: sort the (timestamp, step) pairs of matching events by timestamp,
then step, and scan them keeping, per level, the start of the latest chain), not from the SQL.

Events are dicts with the canonical columns (`ts` naive UTC). Steps are tuples of event names (an event
matches a step when its name is one of them). Units are visitors, or users (the user id, else the id the
visitor is known under, else the visitor).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

Event = Mapping[str, Any]
Steps = Sequence[tuple[str, ...]]


@dataclass(frozen=True)
class Expected:
    units: list[int]
    median_us: list[float | None]
    p90_us: list[float | None]


def us(ts: datetime) -> int:
    return (ts - datetime(1970, 1, 1)) // timedelta(microseconds=1)


def in_range(event: Event, start: date | None, end: date | None, tz: str) -> bool:
    day = event["ts"].replace(tzinfo=UTC).astimezone(ZoneInfo(tz)).date()
    return (start is None or day >= start) and (end is None or day <= end)


def unit_of(events: Sequence[Event], unit: str) -> dict[int, str]:
    """Index of each event -> its unit id."""
    if unit == "visitor":
        return {i: e["visitor_id"] for i, e in enumerate(events)}
    known: dict[str, str] = {}
    for e in events:
        if e.get("user_id") is not None:
            known[e["visitor_id"]] = max(known.get(e["visitor_id"], e["user_id"]), e["user_id"])
    return {
        i: e.get("user_id") or known.get(e["visitor_id"]) or e["visitor_id"] for i, e in enumerate(events)
    }


def matches(event: Event, step: tuple[str, ...]) -> bool:
    return event["event"] in step


# -- per unit: (level, path of completion times in microseconds) --------------------------------------


def window_funnel_level(events: Sequence[Event], steps: Steps, window_us: int) -> int:
    """ClickHouse's windowFunnel(window)(ts, step1, ..., stepN), default mode."""
    entries = sorted((us(e["ts"]), j) for e in events for j, step in enumerate(steps, 1) if matches(e, step))
    if not entries:
        return 0
    starts: list[int | None] = [None] * len(steps)  # per level: the start of its latest chain
    for ts, j in entries:
        if j == 1:
            starts[0] = ts
        else:
            first = starts[j - 2]
            if first is not None and ts <= first + window_us:
                starts[j - 1] = first
                if j == len(steps):
                    return j
    return max((k for k in range(1, len(steps) + 1) if starts[k - 1] is not None), default=0)


def ordered_path(events: Sequence[Event], steps: Steps, window_us: int) -> list[int]:
    """From each step-1 occurrence, each next step at its first occurrence at or after the previous one,
    within the window; the path from the earliest start that reaches furthest."""
    times = [sorted(us(e["ts"]) for e in events if matches(e, step)) for step in steps]
    best: list[int] = []
    for t1 in sorted(set(times[0])):
        path = [t1]
        for later in times[1:]:
            nxt = next((t for t in later if t >= path[-1]), None)
            if nxt is None or nxt > t1 + window_us:
                break
            path.append(nxt)
        if len(path) > len(best):
            best = path
    return best


def strict_path(events: Sequence[Event], steps: Steps, window_us: int) -> list[int]:
    """Consecutive steps are consecutive events (ordered by ts, project, event_id)."""
    seq = sorted(events, key=lambda e: (e["ts"], e["project"], e["event_id"]))
    best: list[int] = []
    for i, e in enumerate(seq):
        if not matches(e, steps[0]):
            continue
        path = [us(e["ts"])]
        while len(path) < len(steps) and i + len(path) < len(seq):
            nxt = seq[i + len(path)]
            if not matches(nxt, steps[len(path)]) or us(nxt["ts"]) > path[0] + window_us:
                break
            path.append(us(nxt["ts"]))
        if len(path) > len(best):
            best = path
    return best


def any_order_path(events: Sequence[Event], steps: Steps, window_us: int) -> list[int]:
    """Step k reached when steps 1..k all occur in one window [t, t + window]; step k's time is when the
    first k steps were all done, taking each step's first occurrence from the window's start t."""
    times = [sorted(us(e["ts"]) for e in events if matches(e, step)) for step in steps]
    anchors = sorted({t for ts in times for t in ts})
    best: list[int] = []
    for t in anchors:
        path: list[int] = []
        for ts in times:
            first = next((x for x in ts if t <= x <= t + window_us), None)
            if first is None:
                break
            path.append(max([first, *path[-1:]]))
        if len(path) > len(best):
            best = path
    return best


# -- the funnel -------------------------------------------------------------------------------------


def quantile_cont(values: Sequence[float], q: float) -> float:
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def funnel(
    events: Sequence[Event],
    steps: Steps,
    window: timedelta,
    mode: str,
    *,
    unit: str = "visitor",
    start: date | None = None,
    end: date | None = None,
    tz: str = "UTC",
    project: str = "test",
) -> Expected:
    window_us = window // timedelta(microseconds=1)
    chosen = [e for e in events if e["project"] == project and in_range(e, start, end, tz)]
    units = unit_of(chosen, unit)
    by_unit: dict[str, list[Event]] = defaultdict(list)
    for i, e in enumerate(chosen):
        by_unit[units[i]].append(e)
    paths = []
    for unit_events in by_unit.values():
        if mode == "ordered":
            path = ordered_path(unit_events, steps, window_us)
            level = window_funnel_level(unit_events, steps, window_us)
            assert level == len(path), (level, path)  # the greedy scan and the best path agree
        elif mode == "strict":
            path = strict_path(unit_events, steps, window_us)
        else:
            path = any_order_path(unit_events, steps, window_us)
        if path:
            paths.append(path)
    n = len(steps)
    counts = [sum(1 for p in paths if len(p) >= k) for k in range(1, n + 1)]
    medians: list[float | None] = [None]
    p90s: list[float | None] = [None]
    for k in range(2, n + 1):
        gaps = [float(p[k - 1] - p[k - 2]) for p in paths if len(p) >= k]
        medians.append(quantile_cont(gaps, 0.5) if gaps else None)
        p90s.append(quantile_cont(gaps, 0.9) if gaps else None)
    return Expected(counts, medians, p90s)
