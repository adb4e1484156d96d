"""Funnels: where units drop off between the steps, and how long each step takes.

The database returns, over all units and per segment, the units that reached each step and the median
and 90th percentile of the time from the previous step (see `keystep.sql.funnels` for the exact
meaning of "reached" in each mode, of the window and of the path the times are measured on). This
module turns those into rates and flags the segments whose funnel conversion differs from the rest.

Per step k (1-based):
- `units`: units that reached step k; step 1 counts the units that did step 1 in the range (the units
  that entered the funnel), so units that never did step 1 appear nowhere;
- `conversion_from_start` = units(k) / units(1); `conversion_from_previous` = units(k) / units(k-1)
  (None when the denominator is 0; step 1 has both 1.0 when any unit entered);
- `drop_off` = units(k-1) - units(k) (0 for step 1), `drop_off_rate` = drop_off / units(k-1);
- `median_seconds` / `p90_seconds`: the time from step k-1 to step k (None for step 1 and when no unit
  reached step k).

The funnel's `rate` is its overall conversion: units that reached the last step / units that entered,
with a Wilson 95% interval. With a breakdown, every segment gets the same table, and its rate is
compared with the rate of all other entered units (two-proportion test), the p-values Holm-adjusted
across the segments (`keystep.analysis.segments.compare_segments`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from keystep.analysis.segments import ALPHA, Direction, compare_segments
from keystep.backends.base import Backend
from keystep.conversions.definitions import Funnel, FunnelMode, Unit
from keystep.query import Query
from keystep.sql.funnels import (
    build_aggregate,
    build_funnel,
    build_ordered_sequences,
    build_time_span,
    build_visitor_steps,
    packs,
)
from keystep.stats.proportions import Rate, compute_rate

if TYPE_CHECKING:
    from keystep.analysis.funnel_paths import Events


@dataclass(frozen=True, slots=True)
class FunnelStep:
    step: int  # 1-based position
    name: str
    units: int  # units that reached this step
    conversion_from_start: float | None  # units / units at step 1
    conversion_from_previous: float | None  # units / units at the previous step (1.0 for step 1)
    drop_off: int  # units at the previous step that did not reach this one (0 for step 1)
    drop_off_rate: float | None  # drop_off / units at the previous step (0.0 for step 1)
    median_seconds: float | None  # time from the previous step; None for step 1 or without units
    p90_seconds: float | None


@dataclass(frozen=True, slots=True)
class FunnelTable:
    entered: int  # units that did step 1
    converted: int  # units that reached the last step
    rate: Rate  # converted / entered, Wilson 95% interval
    steps: tuple[FunnelStep, ...]


@dataclass(frozen=True, slots=True)
class SegmentFunnel:
    segment: str
    table: FunnelTable
    rest_rate: Rate  # the overall conversion of all other entered units
    p_value: float | None  # two-proportion test, this segment vs the rest; None when not testable
    adjusted_p: float | None  # Holm-adjusted across the segments
    significant: bool  # adjusted_p < alpha
    direction: Direction


@dataclass(frozen=True, slots=True)
class FunnelResult:
    funnel: str
    steps: tuple[str, ...]
    mode: FunnelMode
    unit: Unit
    window: timedelta
    project: str | None
    start: date | None
    end: date | None
    timezone: str
    breakdown: str | None
    alpha: float
    total: FunnelTable
    segments: tuple[SegmentFunnel, ...]  # with a breakdown: most entered units first


def run_funnel(backend: Backend, funnel: Funnel, query: Query, *, alpha: float = ALPHA) -> FunnelResult:
    """Measure `funnel` over the query's range, project and breakdown, counting `funnel.unit` (the
    query's own unit is not used)."""
    return compute_funnel(funnel, query, funnel_rows(backend, funnel, query), alpha=alpha)


def funnel_rows(backend: Backend, funnel: Funnel, query: Query) -> list[dict[str, Any]]:
    """The rows `keystep.sql.funnels.COLUMNS`. The `strict` and `any_order` modes are one statement; the
    `ordered` mode is a statement that groups each unit's step events, the compiled scan of each unit
    (`keystep.analysis.funnel_paths`), and a statement that counts and takes quantiles over the result."""
    if funnel.mode is not FunnelMode.ORDERED:
        return list(backend.execute(build_funnel(funnel, query)))
    # imported here: numba takes a fifth of a second to import, which no other command should pay
    from keystep.analysis.funnel_paths import Events, ordered_paths

    steps = len(funnel.steps)
    span = next(iter(backend.execute(build_time_span(query))))
    empty = span["first_us"] is None  # no events in the range
    base = None if empty else span["first_us"] if packs(funnel, span["first_us"], span["last_us"]) else None
    if funnel.unit is Unit.VISITOR:
        first, last = (0, -1) if empty else (span["first_visitor"], span["last_visitor"])
        columns, events = _events_by_visitor(backend, funnel, query, base, first, last)
    else:
        columns, events = _events_by_unit(backend, funnel, query, base)
    if base is not None:
        events = Events(events.offsets, events.times, events.masks, shift=steps)
    levels, path = ordered_paths(events, steps, funnel.window // timedelta(microseconds=1))
    columns["level"] = levels
    columns.update((f"p{k + 1}", path[k]) for k in range(steps))
    aggregate = build_aggregate(funnel, query, by_visitor=funnel.unit is Unit.VISITOR)
    return list(backend.execute(aggregate, relations={"supplied": pa.table(columns)}))


def _events_by_visitor(
    backend: Backend, funnel: Funnel, query: Query, base: int | None, first: int, last: int
) -> tuple[dict[str, Any], Events]:
    """The step events grouped by the store's visitor numbers (in [first, last]), and the numbers."""
    from keystep.analysis.funnel_paths import group_by_key

    rows = backend.execute_arrow(build_visitor_steps(funnel, query, base_us=base))
    keys = _numpy(rows.column("visitor_no"))
    numbers, events = (
        group_by_key(keys, first, last, _numpy(rows.column("packed"))) if base is not None
        else group_by_key(keys, first, last, _numpy(rows.column("ts")), _numpy(rows.column("mask")))
    )
    return {"visitor_no": numbers}, events


def _events_by_unit(backend: Backend, funnel: Funnel, query: Query, base: int | None) -> tuple[dict[str, Any], Events]:
    """The step events of each session or user, grouped by the database, and the units' segments."""
    from keystep.analysis.funnel_paths import Events

    sequences = backend.execute_arrow(build_ordered_sequences(funnel, query, base_us=base))
    lists = sequences.column("packed" if base is not None else "ts").combine_chunks()
    times = lists.values.to_numpy()
    masks = times if base is not None else sequences.column("masks").combine_chunks().values.to_numpy()
    return {"segment": sequences.column("segment")}, Events(lists.offsets.to_numpy(), times, masks)


def _numpy(column: pa.ChunkedArray) -> Any:
    return column.combine_chunks().to_numpy(zero_copy_only=False)


def compute_funnel(
    funnel: Funnel, query: Query, rows: Iterable[dict[str, Any]], *, alpha: float = ALPHA
) -> FunnelResult:
    """The result from the rows of `build_funnel(funnel, query)`: pure."""
    names = tuple(step.name for step in funnel.steps)
    total = compute_table(names, [0] * len(names), [None] * len(names), [None] * len(names))
    tables: dict[str, FunnelTable] = {}
    for row in rows:
        table = compute_table(names, row["units"], row["median_us"], row["p90_us"])
        if row["all_segments"]:
            total = table
        else:
            tables[str(row["segment"])] = table
    segments: tuple[SegmentFunnel, ...] = ()
    if query.breakdown is not None and tables:
        ordered = dict(sorted(tables.items(), key=lambda item: (-item[1].entered, item[0])))
        comparisons = compare_segments(
            {name: (t.converted, t.entered) for name, t in ordered.items()},
            total=(total.converted, total.entered),
            alpha=alpha,
        )
        segments = tuple(
            SegmentFunnel(
                segment=c.segment,
                table=ordered[c.segment],
                rest_rate=c.rest_rate,
                p_value=c.p_value,
                adjusted_p=c.adjusted_p,
                significant=c.significant,
                direction=c.direction,
            )
            for c in comparisons
        )
    return FunnelResult(
        funnel=funnel.name,
        steps=names,
        mode=funnel.mode,
        unit=funnel.unit,
        window=funnel.window,
        project=query.project,
        start=query.start,
        end=query.end,
        timezone=query.timezone,
        breakdown=query.breakdown,
        alpha=alpha,
        total=total,
        segments=segments,
    )


def compute_table(
    names: Sequence[str],
    units: Sequence[int],
    median_us: Sequence[float | None],
    p90_us: Sequence[float | None],
) -> FunnelTable:
    """Rates and drop-offs from the units per step (non-increasing) and the step times in microseconds."""
    if not len(names) == len(units) == len(median_us) == len(p90_us):
        raise ValueError("one count and one time per step expected")
    counts = [int(u) for u in units]
    if any(later > earlier for earlier, later in pairwise(counts)) or any(
        c < 0 for c in counts
    ):
        raise ValueError(f"units per step must be non-negative and non-increasing, got {counts}")
    steps = []
    for i, name in enumerate(names):
        previous = counts[i - 1] if i else counts[0]
        steps.append(
            FunnelStep(
                step=i + 1,
                name=name,
                units=counts[i],
                conversion_from_start=_ratio(counts[i], counts[0]),
                conversion_from_previous=_ratio(counts[i], previous),
                drop_off=previous - counts[i],
                drop_off_rate=_ratio(previous - counts[i], previous),
                median_seconds=_seconds(median_us[i]) if i else None,
                p90_seconds=_seconds(p90_us[i]) if i else None,
            )
        )
    entered = counts[0] if counts else 0
    converted = counts[-1] if counts else 0
    return FunnelTable(
        entered=entered, converted=converted, rate=compute_rate(converted, entered), steps=tuple(steps)
    )


def _ratio(x: int, n: int) -> float | None:
    return x / n if n else None


def _seconds(us: float | None) -> float | None:
    return None if us is None else float(us) / 1_000_000
