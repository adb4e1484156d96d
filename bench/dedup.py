"""Benchmark: the store's insert as it grows, against DuckDB's own unique key on the same batches.

    .venv/bin/python bench/dedup.py                          # 5 million events in 50,000-event batches
    .venv/bin/python bench/dedup.py --events 2000000 --counter

The store keeps events unique per (project, event_id) by a digest directory in the writer
(`keystep.backends.directory`). The reference is what it did before, and what a DuckDB user would
write: the same table with `PRIMARY KEY (project, event_id)` and `INSERT OR IGNORE`, which DuckDB
checks by joining each batch against the stored ids of every row group whose range of ids could hold
one of the batch's. Both get the same batches of `bench/ingest.py`'s events (as sent), each event with
a random UUID as client libraries give it (`--counter`: ordered ids `b<batch>-<i>` instead), into a
fresh file each, one after the other in this process. Printed per million events stored: the wall time
per event of each (the store's insert also numbers visitors; the reference's does not) and their ratio,
and the size of each file at the end.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from ingest import _uuids, sent_rows
from keystep.backends.duckdb import DIALECT, DuckDBBackend, event_arrow_schema
from keystep.events.schema import EVENT_COLUMNS


def batches(events: int, size: int, counter: bool) -> list[pa.Table]:
    template = pa.Table.from_pylist(sent_rows(size), schema=event_arrow_schema())
    at = template.schema.get_field_index("event_id")
    out = []
    for k in range(events // size):
        ids = [f"b{k}-{i}" for i in range(size)] if counter else _uuids(size)
        out.append(template.set_column(at, "event_id", pa.array(ids)))
    return out


def per_million(seconds: list[float], size: int) -> list[float]:
    """µs per event over each million events (the first batch of each left out: it warms the process)."""
    per = max(1, 1_000_000 // size)
    chunks = [seconds[max(i, 1):i + per] for i in range(0, len(seconds), per)]
    return [sum(c) / (len(c) * size) * 1e6 for c in chunks if c]


def store_insert(path: Path, tables: list[pa.Table]) -> list[float]:
    took = []
    with DuckDBBackend(path) as store:
        for table in tables:
            started = time.perf_counter()
            store.insert_events(table)
            took.append(time.perf_counter() - started)
    return took


def unique_key_insert(path: Path, tables: list[pa.Table]) -> list[float]:
    columns = ", ".join(f"{c.name} {DIALECT.types[c.kind]}" for c in EVENT_COLUMNS)
    took = []
    with duckdb.connect(str(path)) as con:
        con.execute(f"CREATE TABLE events ({columns}, PRIMARY KEY (project, event_id))")
        for table in tables:
            con.register("batch", table)
            started = time.perf_counter()
            con.execute("INSERT OR IGNORE INTO events SELECT * FROM batch")
            took.append(time.perf_counter() - started)
            con.unregister("batch")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--counter", action="store_true", help="ordered ids instead of random UUIDs")
    args = parser.parse_args()
    tables = batches(args.events, args.batch, args.counter)
    with tempfile.TemporaryDirectory() as tmp:
        ours = store_insert(Path(tmp) / "store.duckdb", tables)
        reference = unique_key_insert(Path(tmp) / "reference.duckdb", tables)
        sizes = [os.path.getsize(Path(tmp) / f) / 1e6 for f in ("store.duckdb", "reference.duckdb")]
    ids = "ordered ids" if args.counter else "random UUIDs"
    print(f"{len(tables) * args.batch:,} events in {args.batch:,}-event batches, {ids}; µs of wall time per event")
    print(f"{'stored':>9}  {'store':>6}  {'unique key':>10}  {'ratio':>5}")
    for m, (a, b) in enumerate(zip(per_million(ours, args.batch), per_million(reference, args.batch), strict=True)):
        print(f"{m + 1:>8}M  {a:6.1f}  {b:10.1f}  {b / a:5.2f}")
    total = sum(reference) / sum(ours)
    print(f"all: store {sum(ours):.1f} s, unique key {sum(reference):.1f} s (ratio {total:.2f}); "
          f"files {sizes[0]:,.0f} MB and {sizes[1]:,.0f} MB")


if __name__ == "__main__":
    main()
