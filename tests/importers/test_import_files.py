"""Importing files into a real DuckDB store: formats, mapping, rejections, deduplication, a real data set.

Expected events are written out by hand below; the real file's counts come from the `csv` module."""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import DATA
from keystep.backends.base import SQL
from keystep.backends.duckdb import DuckDBBackend
from keystep.events.timestamps import TsFormat
from keystep.importers.files import ImportOptions, ImportResult, plan_import, run_import
from keystep.importers.mapping import MappingError, parse_mapping
from keystep.importers.normalize import Rejection
from keystep.importers.readers import FileFormat, SourceError, open_source

NOW = datetime(2026, 3, 10, 12, 0, 0)
SHOPPERS = DATA / "online_shoppers_intention.csv"


def import_path(
    store: DuckDBBackend,
    path: Path,
    maps: Sequence[str] = (),
    sets: Sequence[str] = (),
    **options: Any,
) -> ImportResult:
    source = open_source(path, options.pop("file_format", None))
    opts = ImportOptions(mapping=parse_mapping(maps, sets), **options)
    return run_import(store, source, opts, now=NOW)


def stored(store: DuckDBBackend, columns: str = "ts, event, visitor_id, path, utm_source, utm_medium, "
           "revenue, currency, properties") -> list[tuple[Any, ...]]:
    rows = store.execute(SQL(f"SELECT {columns} FROM events ORDER BY ts, event, visitor_id, event_id")).rows
    return [tuple(_json_or_value(v) for v in row) for row in rows]


def _json_or_value(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) and value.startswith("{") else value


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def event_count(store: DuckDBBackend) -> int:
    return int(store.execute(SQL("SELECT count(*) FROM events")).rows[0][0])


# -- the same events in three formats ----------------------------------------------------------------

HEADER = ("ts", "event", "visitor_id", "url", "revenue", "currency", "plan", "qty")
PRICING = "https://shop.example/pricing?utm_source=news&utm_medium=email"
CHECKOUT = "https://shop.example/checkout"
NINE, NINE_05, TEN = datetime(2026, 3, 2, 9, 0), datetime(2026, 3, 2, 9, 5), datetime(2026, 3, 2, 10, 0)
CSV_ROWS = [
    ("2026-03-02T09:00:00Z", "page_view", "v1", PRICING, "", "", "pro", "1"),
    ("2026-03-02T10:05:00+01:00", "purchase", "v1", CHECKOUT, "49.5", "eur", "pro", "2"),
    ("2026-03-02T09:00:00Z", "page_view", "v1", PRICING, "", "", "pro", "1"),  # an identical row: a 2nd view
    ("1772445600", "page_view", "v2", "/blog/post", "", "", "", ""),
]
EXPECTED = [
    (NINE, "page_view", "v1", "/pricing", "news", "email", None, None, {"plan": "pro", "qty": 1}),
    (NINE, "page_view", "v1", "/pricing", "news", "email", None, None, {"plan": "pro", "qty": 1}),
    (NINE_05, "purchase", "v1", "/checkout", None, None, 49.5, "EUR", {"plan": "pro", "qty": 2}),
    (TEN, "page_view", "v2", "/blog/post", None, None, None, None, None),
]


def write_ndjson(path: Path) -> Path:
    lines = [
        {"ts": "2026-03-02T09:00:00Z", "event": "page_view", "visitor_id": "v1", "url": PRICING,
         "plan": "pro", "qty": 1},
        {"ts": "2026-03-02T10:05:00+01:00", "event": "purchase", "visitor_id": "v1", "url": CHECKOUT,
         "revenue": 49.5, "currency": "eur", "plan": "pro", "qty": 2},
        {"ts": "2026-03-02T09:00:00Z", "event": "page_view", "visitor_id": "v1", "url": PRICING,
         "plan": "pro", "qty": 1},
        {"ts": 1772445600, "event": "page_view", "visitor_id": "v2", "url": "/blog/post", "plan": None},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return path


def write_parquet(path: Path) -> Path:
    utc = pa.timestamp("us", tz="UTC")
    table = pa.table({
        "ts": pa.array([NINE, NINE_05, NINE, TEN], utc),
        "event": ["page_view", "purchase", "page_view", "page_view"],
        "visitor_id": ["v1", "v1", "v1", "v2"],
        "url": [PRICING, CHECKOUT, PRICING, "/blog/post"],
        "revenue": pa.array([None, 49.5, None, None], pa.float64()),
        "currency": [None, "eur", None, None],
        "plan": ["pro", "pro", "pro", None],
        "qty": pa.array([1, 2, 1, None], pa.int64()),
    })
    pq.write_table(table, path)
    return path


def test_csv_parquet_and_ndjson_store_the_same_events(tmp_path: Path) -> None:
    files = {
        "csv": write_csv(tmp_path / "events.csv", HEADER, CSV_ROWS),
        "ndjson": write_ndjson(tmp_path / "events.ndjson"),
        "parquet": write_parquet(tmp_path / "events.parquet"),
    }
    with gzip.open(tmp_path / "events.csv.gz", "wt", encoding="utf-8", newline="") as f:
        f.write(files["csv"].read_text(encoding="utf-8"))
    files["csv.gz"] = tmp_path / "events.csv.gz"
    ids: dict[str, list[str]] = {}
    for name, path in files.items():
        store = DuckDBBackend(tmp_path / f"{name}.duckdb")
        result = import_path(store, path)
        assert (result.rows_read, result.stored, result.duplicates, result.rejected) == (4, 4, 0, 0), name
        assert result.format is FileFormat(name.removesuffix(".gz"))
        assert stored(store) == EXPECTED, name
        received = store.execute(SQL("SELECT DISTINCT project, received_at FROM events")).rows
        assert received == (("default", NOW),)
        ids[name] = [row[0] for row in stored(store, "event_id")]
        store.close()
    # deterministic ids depend on the canonical content only, not on the file format
    assert ids["csv"] == ids["ndjson"] == ids["parquet"] == ids["csv.gz"]
    assert len(set(ids["csv"])) == 4


# -- mapping, constants, @row, properties --------------------------------------------------------------


def test_map_set_row_number_and_properties(store: DuckDBBackend, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "orders.csv",
        ("when", "what", "who", "amount", "event", "code", "price", "flag"),
        [
            ("1772442000000", "order", "c-007", "10", "ignored-name", "007", "1.50", "TRUE"),
            ("1772442060000", "order", "c-008", "", "", "12", "-3", "FALSE"),
        ],
    )
    result = import_path(
        store, path, maps=["ts=when,event=what", "visitor_id=who, revenue=amount,session_id=@row"],
        sets=["currency=usd", "channel=Email"], ts_format=TsFormat.MILLISECONDS, project="shop",
    )
    assert (result.rows_read, result.stored, result.rejected) == (2, 2, 0)
    rows = stored(store, "project, ts, event, visitor_id, session_id, revenue, currency, channel, properties")
    assert rows == [
        ("shop", datetime(2026, 3, 2, 9, 0), "order", "c-007", "1", 10.0, "USD", "Email",
         {"event": "ignored-name", "code": "007", "price": 1.5, "flag": "TRUE"}),
        ("shop", datetime(2026, 3, 2, 9, 1), "order", "c-008", "2", None, "USD", "Email",
         {"code": 12, "price": -3, "flag": "FALSE"}),
    ]


def test_mapping_options_are_checked() -> None:
    mapping = parse_mapping(["ts=event_time,event=event_type,", "visitor_id=user_id"],
                            ["channel=Paid, Search"])
    assert dict(mapping.sources) == {"ts": "event_time", "event": "event_type", "visitor_id": "user_id"}
    assert dict(mapping.constants) == {"channel": "Paid, Search"}
    # unmapped canonical columns read their namesakes; mapped and set ones do not
    resolved = mapping.resolved_sources()
    assert resolved["ts"] == "event_time" and resolved["url"] == "url" and "channel" not in resolved
    assert "project" not in resolved and "received_at" not in resolved
    cases = {
        (("TS=time",), ()): "--map TS: not a canonical column (did you mean 'ts'?)",
        (("visitor=uid",), ()): "--map visitor: not a canonical column (did you mean 'visitor_id'?)",
        (("project=site",), ()): "--map project: cannot be given, it comes from --project",
        (("ts=a,ts=b",), ()): "--map: ts is mapped twice (a, b)",
        (("event=kind",), ("event=view",)): "event is both mapped (--map) and set (--set): choose one",
        ((), ("event",)): "--set 'event': expected CANONICAL=...",
        ((), ("event=",)): "--set event=: expected CANONICAL=VALUE with a value",
        (("ts=",), ()): "--map ts=: expected CANONICAL=SOURCE_COLUMN",
    }
    for (maps, sets), message in cases.items():
        with pytest.raises(MappingError) as caught:
            parse_mapping(maps, sets)
        assert str(caught.value) == message


def test_a_mapped_column_missing_from_the_file_or_a_bad_constant_fails_before_writing(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "e.csv", ("time", "name", "uid"), [("2026-03-02", "x", "v")])
    source = open_source(path)
    with pytest.raises(MappingError) as caught:
        plan_import(source, ImportOptions(mapping=parse_mapping(["ts=time,event=name,visitor_id=user"])))
    assert str(caught.value) == (
        "--map visitor_id=user: the file has no column 'user' (columns: time, name, uid)"
    )
    with pytest.raises(MappingError) as caught:
        plan_import(source, ImportOptions(mapping=parse_mapping(["event=name,visitor_id=uid"], ["ts=soon"])))
    assert str(caught.value) == "--set ts=soon: 'soon' is not an ISO 8601 timestamp or an epoch number"
    with pytest.raises(SourceError):
        open_source(tmp_path / "missing.csv")
    with pytest.raises(SourceError):
        open_source(write_csv(tmp_path / "e.xlsx", ("a",), []))


# -- rejections ----------------------------------------------------------------------------------------


def test_bad_rows_are_rejected_with_row_column_and_reason(store: DuckDBBackend, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "mixed.csv",
        ("ts", "event", "visitor_id", "revenue", "currency"),
        [
            ("2026-03-02T09:00:00", "page_view", "v1", "", ""),  # 1 good
            ("2026-03-02T09:01:00", "page_view", "  ", "", ""),  # 2 no visitor
            ("last tuesday", "page_view", "v2", "", ""),  # 3 bad ts
            ("2026-03-02T09:03:00", "purchase", "v3", "12,50", "EUR"),  # 4 revenue not a number
            ("2026-03-02T09:04:00", "purchase", "v3", "12.50", "EURO"),  # 5 currency not 3 letters
            ("2026-03-02T09:05:00", "page_view"),  # 6 too few fields
            ("1999-05-01", "page_view", "v4", "", ""),  # 7 out of range
            ("2026-03-02T09:06:00", "purchase", "v5", "7", "gbp"),  # 8 good
        ],
    )
    result = import_path(store, path)
    assert (result.rows_read, result.stored, result.duplicates, result.rejected) == (8, 2, 0, 6)
    expected = [
        Rejection(2, "visitor_id", "visitor_id is missing or empty"),
        Rejection(3, "ts", "'last tuesday' is not an ISO 8601 timestamp or an epoch number"),
        Rejection(4, "revenue", "'12,50' is not a number"),
        Rejection(5, "currency", "'EURO' is not a 3-letter currency code (ISO 4217)"),
        Rejection(6, None, "expected 5 fields, found 2"),
        Rejection(7, "ts", "'1999-05-01' is outside 2000-01-01..2100-01-01"),
    ]
    assert list(result.rejection_sample) == expected
    table = store.execute(SQL(
        "SELECT project, received_at, source, location, field, reason, raw "
        "FROM rejected_events ORDER BY location"
    )).rows
    assert [(r[3], r[4], r[5]) for r in table] == [(f"row {x.row}", x.field, x.reason) for x in expected]
    assert {(r[0], r[1], r[2]) for r in table} == {("default", NOW, str(path))}
    assert json.loads(table[2][6]) == {"ts": "2026-03-02T09:03:00", "event": "purchase", "visitor_id": "v3",
                                       "revenue": "12,50", "currency": "EUR"}
    assert table[4][6] == "2026-03-02T09:05:00,page_view"
    assert stored(store, "visitor_id, revenue, currency") == [("v1", None, None), ("v5", 7.0, "GBP")]


def test_the_sample_is_bounded_but_every_rejection_is_kept(store: DuckDBBackend, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", ("ts", "event", "visitor_id"), [("x", "e", "v")] * 25)
    result = import_path(store, path, sample_size=3)
    assert result.rejected == 25
    assert [r.row for r in result.rejection_sample] == [1, 2, 3]
    assert store.execute(SQL("SELECT count(*) FROM rejected_events")).rows[0][0] == 25


def test_ndjson_rows_are_line_numbers_and_broken_lines_rejected(store: DuckDBBackend, tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text(
        '{"ts": "2026-03-02T09:00:00Z", "event": "a", "visitor_id": "v1", "meta": {"k": [1, 2]}}\n'
        "\n"
        '{"ts": "2026-03-02T09:00:00Z", "event": "a", \n'
        '["not", "an", "object"]\n'
        '{"ts": "2026-03-02T09:00:00Z", "event": "a", "visitor_id": {"id": 1}}\n'
        '{"ts": 1772442000, "event": "b", "visitor_id": 42, "properties": {"from": "file"}, "x": true}\n',
        encoding="utf-8",
    )
    result = import_path(store, path)
    assert (result.rows_read, result.stored, result.rejected) == (5, 2, 3)
    assert list(result.rejection_sample) == [
        Rejection(3, None, "not valid JSON: Expecting property name enclosed in double quotes (column 46)"),
        Rejection(4, None, "not a JSON object but list"),
        Rejection(5, "visitor_id", "expected text, found an object"),
    ]
    assert stored(store, "event, visitor_id, properties") == [
        ("a", "v1", {"meta": {"k": [1, 2]}}),
        ("b", "42", {"from": "file", "x": True}),
    ]


# -- deduplication ---------------------------------------------------------------------------------------


def test_importing_the_same_file_twice_stores_it_once(store: DuckDBBackend, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "events.csv", HEADER, CSV_ROWS)
    first = import_path(store, path)
    second = import_path(store, path)
    assert (first.stored, first.duplicates) == (4, 0)
    assert (second.rows_read, second.stored, second.duplicates) == (4, 0, 4)
    assert event_count(store) == 4


def test_identical_rows_stay_distinct_and_appending_keeps_ids(store: DuckDBBackend, tmp_path: Path) -> None:
    row = ("2026-03-02T09:00:00Z", "page_view", "v1")
    path = write_csv(tmp_path / "log.csv", ("ts", "event", "visitor_id"), [row, row, row])
    assert import_path(store, path).stored == 3
    ids_before = {r[0] for r in stored(store, "event_id")}
    other = ("2026-03-02T09:01:00Z", "page_view", "v2")
    write_csv(path, ("ts", "event", "visitor_id"), [row, row, row, row, other])
    again = import_path(store, path)
    assert (again.stored, again.duplicates) == (2, 3)
    ids_after = {r[0] for r in stored(store, "event_id")}
    assert ids_before < ids_after and len(ids_after) == 5


def test_a_mapped_event_id_is_used_and_deduplicated(store: DuckDBBackend, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "ids.csv",
        ("id", "ts", "event", "visitor_id"),
        [("e1", "2026-03-02", "a", "v"), ("e2", "2026-03-02", "b", "v"), ("e1", "2026-03-03", "c", "v")],
    )
    result = import_path(store, path, maps=["event_id=id"])
    assert (result.rows_read, result.stored, result.duplicates) == (3, 2, 1)
    assert sorted(r[0] for r in stored(store, "event_id")) == ["e1", "e2"]


def test_batches_and_progress(tmp_path: Path) -> None:
    rows = [(f"2026-03-02T09:{i % 60:02d}:00Z", "view", f"v{i % 7}") for i in range(23)]
    path = write_csv(tmp_path / "many.csv", ("ts", "event", "visitor_id"), rows)
    results: dict[int, list[tuple[Any, ...]]] = {}
    size = path.stat().st_size
    for batch_size in (1, 5, 50_000):
        store = DuckDBBackend(tmp_path / f"b{batch_size}.duckdb")
        calls: list[tuple[int, int]] = []
        run_import(store, open_source(path), ImportOptions(batch_size=batch_size), now=NOW,
                   on_progress=lambda done, total: calls.append((done, total)))  # noqa: B023 - runs now
        results[batch_size] = stored(store, "event_id, ts, visitor_id")
        assert calls[0] == (0, size) and calls[-1] == (size, size)
        assert [done for done, _ in calls] == sorted(done for done, _ in calls)
        store.close()
    assert results[1] == results[5] == results[50_000]
    assert len(results[1]) == 23


# -- a real data set -------------------------------------------------------------------------------------


def _number_or_text(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def test_the_online_shoppers_file_imports_completely(tmp_path: Path) -> None:
    with SHOPPERS.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        records = list(reader)
    duplicate_rows = sum(n - 1 for n in Counter(map(tuple, records)).values())
    assert (len(records), duplicate_rows) == (12_330, 125)

    store = DuckDBBackend(tmp_path / "shoppers.duckdb")
    result = import_path(store, SHOPPERS, maps=["session_id=@row,visitor_id=@row"],
                         sets=["event=session", "ts=2017-06-01"])
    assert (result.rows_read, result.stored, result.duplicates, result.rejected) == (12_330, 12_330, 0, 0)
    rows = store.execute(SQL(
        "SELECT session_id, visitor_id, event, ts, properties FROM events "
        "ORDER BY CAST(session_id AS INTEGER)"
    )).rows
    assert [r[0] for r in rows] == [str(i) for i in range(1, 12_331)]
    assert all(r[1] == r[0] and r[2] == "session" and r[3] == datetime(2017, 6, 1) for r in rows)
    expected = [{k: _number_or_text(v) for k, v in zip(header, record, strict=True)} for record in records]
    assert [json.loads(r[4]) for r in rows] == expected
    assert import_path(store, SHOPPERS, maps=["session_id=@row,visitor_id=@row"],
                       sets=["event=session", "ts=2017-06-01"]).stored == 0
    store.close()

    # Without @row the 125 duplicate rows are identical events, and still all stored.
    store = DuckDBBackend(tmp_path / "anonymous.duckdb")
    result = import_path(store, SHOPPERS, sets=["event=session", "ts=2017-06-01", "visitor_id=anonymous"])
    assert (result.stored, result.duplicates) == (12_330, 0)
    distinct = store.execute(SQL("SELECT count(DISTINCT properties) FROM events")).rows[0][0]
    assert distinct == 12_330 - 125
    store.close()
