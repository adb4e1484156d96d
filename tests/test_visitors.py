"""The store's visitor numbers: dense, one per (project, visitor_id), kept across batches, reopened stores,
failed writes and stores made before visitors were numbered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import event_table
from keystep.backends.base import SQL
from keystep.backends.directory import DigestDirectory, digests
from keystep.backends.duckdb import DIALECT, DuckDBBackend
from keystep.events.schema import EVENT_COLUMNS

pairs = st.tuples(st.sampled_from(["p", "q", "pq"]), st.text(min_size=1, max_size=3))


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(st.lists(pairs, max_size=40), max_size=8))
def test_directory_numbers_like_a_dictionary(batches: list[list[tuple[str, str]]]) -> None:
    """Against a dict: each new pair gets the next number, in batch order; a known pair keeps its own;
    a directory rebuilt from the digests so far numbers the rest the same."""
    directory = DigestDirectory(np.empty((0, 2), dtype=np.int64))
    want: dict[tuple[str, str], int] = {}
    seen: list[np.ndarray] = []
    for batch in batches:
        distinct = list(dict.fromkeys(batch))
        d = digests([p for p, _ in distinct], [v for _, v in distinct])
        numbers, new = directory.number(d)
        expected_new = [pair not in want for pair in distinct]
        for pair in distinct:
            want.setdefault(pair, len(want))
        assert numbers.tolist() == [want[pair] for pair in distinct]
        assert new.tolist() == expected_new
        seen.extend(d[new])
        rebuilt = DigestDirectory(np.array(seen, dtype=np.int64).reshape(-1, 2))
        assert len(rebuilt) == len(directory) == len(want)
        assert rebuilt.number(d)[0].tolist() == numbers.tolist()


def test_directory_grows_past_its_first_table() -> None:
    directory = DigestDirectory(np.empty((0, 2), dtype=np.int64))
    ids = [f"v{i}" for i in range(50_000)]
    for lo in range(0, len(ids), 7_000):
        numbers, new = directory.number(digests(["p"] * len(ids[lo:lo + 7_000]), ids[lo:lo + 7_000]))
        assert new.all() and numbers.tolist() == list(range(lo, min(lo + 7_000, len(ids))))
    again, new = directory.number(digests(["p"] * len(ids), ids))
    assert not new.any() and again.tolist() == list(range(len(ids)))


def test_digest_keeps_project_and_visitor_apart() -> None:
    d = digests(["ab", "a", "b"], ["c", "bc", "c"])
    assert len({tuple(row) for row in d.tolist()}) == 3


def _numbers(backend: DuckDBBackend) -> dict[tuple[str, str], set[int]]:
    out: dict[tuple[str, str], set[int]] = {}
    for row in backend.execute(SQL("SELECT project, visitor_id, visitor_no FROM events")):
        out.setdefault((row["project"], row["visitor_id"]), set()).add(row["visitor_no"])
    return out


def _assert_dense_and_consistent(backend: DuckDBBackend) -> None:
    numbers = _numbers(backend)
    assert all(len(n) == 1 for n in numbers.values()), "a visitor has one number"
    flat = sorted(n for ns in numbers.values() for n in ns)
    assert flat == list(range(len(flat))), "numbers are 0..n-1, one per visitor"
    stored = backend.execute(SQL("SELECT * FROM visitors"))
    directory = {(r["project"], r["visitor_id"]): r["visitor_no"] for r in stored}
    assert directory == {pair: next(iter(n)) for pair, n in numbers.items()}


def _rows(visitors: list[str], offset: int = 0) -> list[dict[str, Any]]:
    return [{"visitor_id": v, "event": "x", "t": i, "event_id": f"e{offset + i}"} for i, v in enumerate(visitors)]


def test_numbers_survive_reopening_and_new_projects(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    with DuckDBBackend(db) as store:
        store.insert_events(event_table(_rows(["b", "a", "b", "c"])))
        store.insert_events(event_table(_rows(["a", "d"], 10), project="other"))
        first = _numbers(store)
    with DuckDBBackend(db) as store:  # the directory is rebuilt from the visitors table
        store.insert_events(event_table(_rows(["c", "e", "a"], 20)))
        again = _numbers(store)
        _assert_dense_and_consistent(store)
    assert {pair: again[pair] for pair in first} == first
    # first batch in (project, visitor_id) order: a b c; then other's a d; then e
    assert {pair: next(iter(n)) for pair, n in again.items()} == {
        ("test", "a"): 0, ("test", "b"): 1, ("test", "c"): 2, ("other", "a"): 3, ("other", "d"): 4, ("test", "e"): 5,
    }


def test_a_failed_write_numbers_nobody(store: DuckDBBackend) -> None:
    """A batch the events table refuses (properties that are not JSON) is not stored, nor are its new
    visitors: the next batch's visitors take the numbers."""
    bad = event_table([{"visitor_id": "lost", "event": "x", "t": 0, "properties": "{not json"}])
    with pytest.raises(duckdb.Error):
        store.insert_events(bad)
    store.insert_events(event_table(_rows(["kept"])))
    assert store.execute(SQL("SELECT visitor_id, visitor_no FROM visitors")).rows == (("kept", 0),)
    _assert_dense_and_consistent(store)


def test_a_store_from_before_visitor_numbers_gets_them(tmp_path: Path) -> None:
    """An events table without `visitor_no` (and no visitors table), as earlier versions made it:
    opening the store numbers every stored visitor, and later batches go on from there."""
    db = tmp_path / "old.duckdb"
    columns = ", ".join(f"{c.name} {DIALECT.types[c.kind]}" for c in EVENT_COLUMNS)
    old = event_table(_rows(["b", "a", "b"]))
    with duckdb.connect(str(db)) as con:
        con.execute(f"CREATE TABLE events ({columns}, PRIMARY KEY (project, event_id))")
        con.register("old", old)
        con.execute("INSERT INTO events SELECT * FROM old")
    with pytest.raises(ValueError, match="earlier version of keystep: open it once for writing"):
        DuckDBBackend(db, read_only=True)
    with DuckDBBackend(db) as store:
        store.insert_events(event_table(_rows(["c", "a"], 10)))
        _assert_dense_and_consistent(store)
        assert store.execute(SQL("SELECT count(*) FROM events")).rows[0][0] == 5
