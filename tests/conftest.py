"""Shared test helpers: build canonical events from short dicts, open a real DuckDB store."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from keystep.backends.duckdb import DuckDBBackend, event_arrow_schema

EPOCH = datetime(2026, 3, 2, 9, 0, 0)  # a Monday, naive UTC

HERE = Path(__file__).parent
DATA = HERE / "data"  # real data sets, with their provenance in data/README.md
ORACLES = HERE / "oracles"  # reference numbers from established engines, see oracles/README.md


def event_table(rows: Iterable[Mapping[str, Any]], project: str = "test") -> pa.Table:
    """Canonical events from dicts that give at least `event` and `visitor_id` and either `ts` (datetime)
    or `t` (minutes after EPOCH); event_id defaults to the row index; properties may be a dict."""
    schema = event_arrow_schema()
    out = []
    for i, row in enumerate(rows):
        r: dict[str, Any] = {f.name: None for f in schema}
        r.update(project=project, event_id=str(i), received_at=EPOCH)
        for key, value in row.items():
            if key == "t":
                r["ts"] = EPOCH + timedelta(minutes=value)
            elif key == "properties" and isinstance(value, dict):
                r["properties"] = json.dumps(value)
            else:
                r[key] = value
        out.append(r)
    return pa.Table.from_pylist(out, schema=schema)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBBackend]:
    backend = DuckDBBackend(tmp_path / "test.duckdb")
    yield backend
    backend.close()
