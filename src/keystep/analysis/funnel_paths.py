"""The ordered funnel's per-unit scan: how far each unit got, and when it did each step on its path.

The step events come grouped by unit: by visitor, `group_by_key` puts the rows of
`keystep.sql.funnels.build_visitor_steps` together by the store's visitor numbers (a counting sort, no
hash table); sessions and users the database groups (`keystep.sql.funnels.build_ordered_sequences`).
This module then walks each unit's events once, as ClickHouse's `windowFunnel` does, but also returns the path the
step times are measured on (windowFunnel returns only the level). Semantics (those of the `ordered` mode
in `keystep.sql.funnels`): every occurrence of step 1 starts a chain; each next step is the first
occurrence of that step at or after the previous step's time (so equal timestamps count, and one event
may serve several consecutive steps), kept only within `start + window` (inclusive). A unit's level is
the longest chain of any start; its path is the chain of the earliest start that reaches that level.

Input: `Events`, per unit u the events `offsets[u]:offsets[u+1]`, each a time (microseconds, on any
scale) and a mask (bit j set when the event matches step j+1), in any order: the database's parallel
grouping hands a unit over in a few runs sorted by time, which the scan puts together first. The time
and the mask may be packed into one integer (`time << shift | mask`), as the database sends them when
they fit. The scan is compiled (numba) and linear in the events: per unit it records, for every event,
the next occurrence of each step at or after that event's time, then follows each start's chain
through those links.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numba import njit
from numpy.typing import NDArray

from keystep.sql.funnels import MAX_STEPS

MIN_UNITS_PER_THREAD = 50_000  # below this a second thread costs more than it saves
MIN_ROWS_PER_THREAD = 200_000  # the same for grouping rows by key
INSERTION_SORT_MAX = 64  # longer units that need sorting are sorted by merge sort


@dataclass(frozen=True, slots=True)
class Events:
    """Each unit's step events: event i's time is `times[i] >> shift`, its mask `masks[i] & (2^steps - 1)`
    (with `shift` 0, two arrays; packed, one array passed as both and `shift` = steps)."""

    offsets: NDArray[np.int64]  # len(units) + 1
    times: NDArray[np.int64]
    masks: NDArray[np.int64]
    shift: int = 0


def group_by_key(
    keys: NDArray[np.int64],
    first: int,
    last: int,
    times: NDArray[np.int64],
    masks: NDArray[np.int64] | None = None,
    *,
    threads: int | None = None,
) -> tuple[NDArray[np.int64], Events]:
    """Rows keyed by dense unit numbers in [first, last] (the store's visitor numbers) grouped by key, in
    the rows' order within each key: the keys present, in increasing order, and their `Events`
    (`masks` None: `times` is packed with the masks, as `Events` says, and `shift` is to be set by the
    caller). A counting sort: each of `threads` threads (default: one per CPU) counts and places the
    rows of its own range of keys, so they write to disjoint parts of the result."""
    keys = np.ascontiguousarray(keys, dtype=np.int64)
    counts = np.zeros(last - first + 1, dtype=np.int64)
    runs = min(threads or os.cpu_count() or 1, max(1, len(keys) // MIN_ROWS_PER_THREAD))
    ranges = list(pairwise(np.linspace(first, last + 1, runs + 1).astype(np.int64).tolist()))
    _in_threads(lambda lo, hi: _count(keys, lo, hi, first, counts), ranges)
    present = np.flatnonzero(counts)
    offsets = np.zeros(len(present) + 1, dtype=np.int64)
    np.cumsum(counts[present], out=offsets[1:])
    starts = np.zeros_like(counts)
    starts[present] = offsets[:-1]

    def placed(values: NDArray[np.int64]) -> NDArray[np.int64]:
        source, out, at = np.ascontiguousarray(values, dtype=np.int64), np.empty(len(keys), np.int64), starts.copy()
        _in_threads(lambda lo, hi: _place(keys, lo, hi, first, at, source, out), ranges)
        return out

    grouped = placed(times)
    return present + first, Events(offsets, grouped, grouped if masks is None else placed(masks))


def _in_threads(scan: Callable[[int, int], None], parts: list[tuple[int, int]]) -> None:
    """`scan(a, b)` for each part, side by side in threads (the compiled scans release the interpreter
    lock); in this thread when there is one part."""
    if len(parts) == 1:
        scan(*parts[0])
    elif parts:
        with ThreadPoolExecutor(len(parts)) as pool:
            list(pool.map(lambda ab: scan(*ab), parts))


@njit(cache=True, nogil=True)
def _count(keys: NDArray[np.int64], lo: int, hi: int, first: int, counts: NDArray[np.int64]) -> None:
    for k in keys:
        if lo <= k < hi:
            counts[k - first] += 1


@njit(cache=True, nogil=True)
def _place(
    keys: NDArray[np.int64],
    lo: int,
    hi: int,
    first: int,
    starts: NDArray[np.int64],
    values: NDArray[np.int64],
    out: NDArray[np.int64],
) -> None:
    for i in range(len(keys)):
        k = keys[i]
        if lo <= k < hi:
            out[starts[k - first]] = values[i]
            starts[k - first] += 1


def ordered_paths(
    events: Events, steps: int, window_us: int, *, threads: int | None = None
) -> tuple[NDArray[np.int8], NDArray[np.int64]]:
    """`levels[u]` (0 when the unit never did step 1) and `path[k, u]`: when unit u did step k+1 on its
    path (on the time scale of the events; 0 beyond its level). The units are split into `threads` runs
    of about equal events (default: one per CPU), scanned side by side (the compiled scan releases the
    interpreter lock)."""
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"a funnel has 1 to {MAX_STEPS} steps, got {steps}")
    bounds = np.ascontiguousarray(events.offsets, dtype=np.int64)
    units = len(bounds) - 1
    levels = np.zeros(units, dtype=np.int8)
    path = np.zeros((steps, units), dtype=np.int64)
    runs = min(threads or os.cpu_count() or 1, max(1, units // MIN_UNITS_PER_THREAD))
    cuts = np.searchsorted(bounds, np.linspace(bounds[0], bounds[-1], runs + 1)[1:-1])
    edges = sorted({0, units, *(int(c) for c in cuts if 0 < c < units)})

    def scan(a: int, b: int) -> None:
        longest = int(np.max(np.diff(bounds[a : b + 1])))
        _scan(
            bounds[a : b + 1],
            events.times,
            events.masks,
            events.shift,
            steps,
            window_us,
            levels[a:b],
            path[:, a:b],
            np.empty(longest, dtype=np.int64),
            np.empty(longest, dtype=np.int64),
            np.empty((longest, max(steps - 1, 1)), dtype=np.int64),
            np.empty(steps, dtype=np.int64),
        )

    _in_threads(scan, list(pairwise(edges)))
    return levels, path


def warm_up() -> None:
    """Compile the scan now (or load it from numba's on-disk cache), so that the first funnel a server
    answers does not wait for it."""
    ordered_paths(Events(np.array([0, 1]), np.array([0]), np.array([1])), 2, 0)


@njit(cache=True, nogil=True)
def _scan(
    offsets: NDArray[np.int64],
    times: NDArray[np.int64],
    masks: NDArray[np.int64],
    shift: int,
    steps: int,
    window_us: int,
    levels: NDArray[np.int8],
    path: NDArray[np.int64],
    t: NDArray[np.int64],
    m: NDArray[np.int64],
    following: NDArray[np.int64],
    chain: NDArray[np.int64],
) -> None:
    bits = (np.int64(1) << np.int64(steps)) - 1
    for u in range(len(offsets) - 1):
        lo = offsets[u]
        n = offsets[u + 1] - lo
        for i in range(n):
            t[i] = times[lo + i] >> shift
            m[i] = masks[lo + i] & bits
        _sort(t, m, n)
        # following[i, j-1]: the first event at or after event i's time (counted from the first event
        # with that time) that matches step j+1; -1 when there is none
        for j in range(1, steps):
            bit = np.int64(1) << np.int64(j)
            nxt = -1
            for i in range(n - 1, -1, -1):
                if m[i] & bit:
                    nxt = i
                following[i, j - 1] = nxt
        for i in range(1, n):  # ties: an event sees what the first event of its time sees
            if t[i] == t[i - 1]:
                for j in range(steps - 1):
                    following[i, j] = following[i - 1, j]
        best = 0
        for s in range(n):
            if not m[s] & 1 or (s > 0 and t[s] == t[s - 1] and m[s - 1] & 1):
                continue  # not step 1, or the same time started the same chain already
            start = t[s]
            chain[0] = start
            level = 1
            at = s
            while level < steps:
                nxt = following[at, level - 1]
                if nxt < 0 or t[nxt] > start + window_us:
                    break
                chain[level] = t[nxt]
                at = nxt
                level += 1
            if level > best:  # strictly: the earliest start keeps a level it shares with later ones
                best = level
                for k in range(level):
                    path[k, u] = chain[k]
                if best == steps:
                    break
        levels[u] = best


@njit(cache=True, nogil=True)
def _sort(t: NDArray[np.int64], m: NDArray[np.int64], n: int) -> None:
    """Sort the first n events by time, in place: insertion sort (about linear on a few sorted runs),
    merge sort for long units."""
    i = 1
    while i < n and t[i] >= t[i - 1]:
        i += 1
    if i >= n:
        return
    if n > INSERTION_SORT_MAX:
        order = np.argsort(t[:n], kind="mergesort")
        t[:n] = t[:n][order]
        m[:n] = m[:n][order]
        return
    for i in range(1, n):
        key_t, key_m = t[i], m[i]
        j = i - 1
        while j >= 0 and t[j] > key_t:
            t[j + 1] = t[j]
            m[j + 1] = m[j]
            j -= 1
        t[j + 1] = key_t
        m[j + 1] = key_m
