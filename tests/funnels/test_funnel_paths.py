"""The ordered funnel's compiled per-unit scan against the pure-Python reference, on inputs the SQL tests
do not reach: long units in random order (merge sort), many units split across threads, packed input."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from funnel_reference import ordered_path, window_funnel_level
from hypothesis import given, settings
from hypothesis import strategies as st

from keystep.analysis.funnel_paths import (
    INSERTION_SORT_MAX,
    MIN_ROWS_PER_THREAD,
    MIN_UNITS_PER_THREAD,
    Events,
    group_by_key,
    ordered_paths,
)

STEPS = (("a",), ("a", "b"), ("c",), ("b",))  # an `a` matches steps 1 and 2; `b` steps 2 and 4
NAMES = ("a", "b", "c", "x")
WINDOW_US = 3_000_000  # three seconds on a clock of whole seconds: ties and window edges are common


def random_units(rng: np.random.Generator, units: int, longest: int) -> list[list[tuple[int, str]]]:
    def unit(n: int) -> list[tuple[int, str]]:
        seconds, names = rng.integers(0, 20, n), rng.integers(0, 4, n)
        return [(int(t) * 1_000_000, NAMES[int(k)]) for t, k in zip(seconds, names, strict=True)]

    return [unit(int(n)) for n in rng.integers(1, longest + 1, units)]


def as_events(units: list[list[tuple[int, str]]], pack: bool) -> Events:
    offsets = np.cumsum([0] + [len(u) for u in units])
    ts = np.array([t for u in units for t, _ in u], dtype=np.int64)
    masks = np.array(
        [sum(1 << j for j, step in enumerate(STEPS) if name in step) for u in units for _, name in u], dtype=np.int64
    )
    if pack:
        packed = ts << len(STEPS) | masks
        return Events(offsets, packed, packed, shift=len(STEPS))
    return Events(offsets, ts, masks)


def reference(unit: list[tuple[int, str]]) -> list[int]:
    events = [{"ts": datetime(1970, 1, 1) + timedelta(microseconds=t), "event": name} for t, name in unit]
    path = ordered_path(events, STEPS, WINDOW_US)
    assert window_funnel_level(events, STEPS, WINDOW_US) == len(path)
    return path


def check(units: list[list[tuple[int, str]]], levels: np.ndarray, path: np.ndarray, sample: range) -> None:
    for u in sample:
        want = reference(units[u])
        assert levels[u] == len(want), (u, units[u])
        assert list(path[: len(want), u]) == want, (u, units[u])


def test_long_units_in_random_order() -> None:
    rng = np.random.default_rng(7)
    units = random_units(rng, 300, longest=4 * INSERTION_SORT_MAX)
    for pack in (False, True):
        levels, path = ordered_paths(as_events(units, pack), len(STEPS), WINDOW_US)
        check(units, levels, path, range(len(units)))


def test_threads_give_the_same_paths() -> None:
    rng = np.random.default_rng(11)
    units = random_units(rng, 3 * MIN_UNITS_PER_THREAD, longest=6)
    events = as_events(units, pack=True)
    one = ordered_paths(events, len(STEPS), WINDOW_US, threads=1)
    three = ordered_paths(events, len(STEPS), WINDOW_US, threads=3)
    assert np.array_equal(one[0], three[0]) and np.array_equal(one[1], three[1])
    # units at the edges of the threads' runs and a sample elsewhere
    check(units, *three, range(0, len(units), 997))
    for edge in (MIN_UNITS_PER_THREAD, 2 * MIN_UNITS_PER_THREAD):
        check(units, *three, range(edge - 50, edge + 50))


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(5, 40), st.integers(-(2**62), 2**62), st.integers(0, 2**40))),
    packed=st.booleans(),
)
def test_group_by_key_groups_like_a_dictionary(rows: list[tuple[int, int, int]], packed: bool) -> None:
    """Rows keyed by numbers in [5, 40]: the keys present in increasing order, each key's values in the
    rows' order (a dict of lists is the reference)."""
    want: dict[int, list[tuple[int, int]]] = {}
    for key, time, mask in rows:
        want.setdefault(key, []).append((time, mask))
    keys = np.array([r[0] for r in rows], dtype=np.int64)
    times = np.array([r[1] for r in rows], dtype=np.int64)
    masks = np.array([r[2] for r in rows], dtype=np.int64)
    present, events = group_by_key(keys, 5, 40, times, None if packed else masks)
    assert present.tolist() == sorted(want)
    for u, key in enumerate(present.tolist()):
        lo, hi = events.offsets[u], events.offsets[u + 1]
        got_times = events.times[lo:hi].tolist()
        assert got_times == [t for t, _ in want[key]]
        assert events.masks[lo:hi].tolist() == (got_times if packed else [m for _, m in want[key]])


def test_group_by_key_in_threads_equals_a_stable_sort() -> None:
    """Enough rows for three threads, each with its own range of keys: the same as a stable sort by key."""
    rng = np.random.default_rng(7)
    n = 3 * MIN_ROWS_PER_THREAD
    keys = rng.integers(100, 100 + n // 4, n)
    times, masks = rng.integers(0, 2**50, n), rng.integers(0, 16, n)
    present, events = group_by_key(keys, 100, 100 + n // 4 - 1, times, masks, threads=3)
    order = np.argsort(keys, kind="stable")
    assert present.tolist() == np.unique(keys).tolist()
    assert np.diff(events.offsets).tolist() == np.unique(keys, return_counts=True)[1].tolist()
    assert np.array_equal(events.times, times[order]) and np.array_equal(events.masks, masks[order])
